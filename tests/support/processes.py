"""Real subprocesses for end-to-end tests: started, waited on with deadlines, stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(
    condition: Callable[[], T | None], *, timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last_error = error
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}: {last_error}")


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 20.0) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; always reaps the process."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


@contextmanager
def running(
    args: list[str], *, env: dict[str, str], log_path: Path, stop_timeout: float = 20.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` with ``env`` (on top of os.environ), logging to ``log_path``."""
    full_env = {**os.environ, **env}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, env=full_env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            stop_process(process, timeout=stop_timeout)


def celery_worker_args(name: str, queues: str, concurrency: int = 4) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "integration_service.celery_app",
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency}",
        f"--queues={queues}",
        f"--hostname={name}@%h",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
    ]


@contextmanager
def running_flower(env: dict[str, str], log_path: Path) -> Iterator[tuple[int, int]]:
    """Flower started as `integration-service run` starts it (the project's wrapper, its
    credentials in ``env`` only), on a free loopback port, up once /healthcheck answers.
    Yields (port, pid)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    args = [
        sys.executable,
        "-m",
        "integration_service.observability.flower",
        "--address=127.0.0.1",
        f"--port={port}",
    ]
    with running(args, env=env, log_path=log_path) as process:

        def up() -> bool:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthcheck", timeout=2
                ) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_for(up, timeout=60, interval=0.3, what="Flower's /healthcheck")
        yield port, process.pid
