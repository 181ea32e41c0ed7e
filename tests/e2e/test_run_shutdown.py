"""Ctrl-C of `integration-service run` (what `make run` starts): a clean stop, JSON logs.

The whole system runs in a subprocess on free ports with a temporary state dir; a bot
login leaves a worker holding a live Telegram client to the emulator (the client that
used to log "Automatic reconnection failed" when the emulator stopped first). After
SIGINT every process must have stopped within the deadline, no line may be at ERROR,
and every line a process wrote must be one JSON object, except the lines the README
lists: honcho's own ``system`` lines and the readiness summary of `run` itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.test_main_command import stop_everything
from tests.support.database import scratch_database
from tests.support.emulator_control import EmulatorControl
from tests.support.processes import REPO_ROOT, wait_for
from tests.support.rabbitmq import private_vhost
from tests.support.system import free_block

REDIS_DB = 5
# honcho prefixes every line: "HH:MM:SS <process name> | <the process's line>".
HONCHO_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<name>\S+)\s*\| (?P<line>.*)$")
PROCESSES = {"emulator", "worker_high", "worker_bulk", "beat", "relay", "api", "flower"}
SUMMARY_START = "integration-service is up:"
SUMMARY_END = "Press Ctrl-C to stop everything"


class Run:
    def __init__(self, env: dict[str, str], state_dir: Path, log_path: Path) -> None:
        self.env = env
        self.state_dir = state_dir
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "integration_service.cli", *args],
            env=self.env,
            cwd=REPO_ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def control(self) -> EmulatorControl:
        info = json.loads((self.state_dir / "emulator" / "emulator.json").read_text())
        return EmulatorControl(info["control_url"])


def run_env(database_url: str, broker_url: str, tmp_path: Path) -> dict[str, str]:
    """`run` on free ports, a private vhost and Redis data set, a temporary state dir."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "LOCAL_KEYRING": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "STATE_DIR": str(tmp_path / "state"),
        # One block of free ports for all of them: ports picked one by one could land on
        # the metrics ports base+1..+4 (seen once: a worker's "Address already in use").
        "METRICS_BASE_PORT": str(base := free_block(7)),
        "EMULATOR_PORT": str(base + 5),
        "FLOWER_PORT": str(base + 6),
        "API_PORT": str(base + 7),
        "FLOWER_BASIC_AUTH": "tester:shutdown-test-password",
        "TELEGRAM_EMULATOR_CONFIG": str(tmp_path / "state" / "emulator" / "emulator.json"),
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """Its own database (`run` migrates it): the bulk worker listens to every authorised
    session it finds, and the shared database holds other suites' sessions."""
    with scratch_database("is_shutdown") as url:
        yield url


@pytest.fixture
def started(database_url: str, tmp_path: Path) -> Iterator[tuple[Run, subprocess.Popen[bytes]]]:
    cache = redis.Redis(db=REDIS_DB)
    cache.flushdb()
    with private_vhost() as broker_url:
        env = run_env(database_url, broker_url, tmp_path)
        log_path = tmp_path / "run.log"
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "integration_service.cli", "run", "--concurrency", "2"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield Run(env, tmp_path / "state", log_path), process
        finally:
            stop_everything(process, log_path)
            log.close()
            cache.flushdb()


def lines_by_process(log: str) -> tuple[dict[str, list[str]], list[str]]:
    """Each process's own lines (honcho prefix removed), and the lines of `run` itself."""
    by_process: dict[str, list[str]] = {}
    unprefixed: list[str] = []
    for raw in log.splitlines():
        match = HONCHO_LINE.match(raw)
        if match is None:
            unprefixed.append(raw)
        else:
            by_process.setdefault(match["name"], []).append(match["line"])
    return by_process, unprefixed


def summary_lines(lines: list[str]) -> list[str]:
    """The readiness summary block `run` prints (documented as plain text)."""
    inside, block = False, []
    for line in lines:
        if SUMMARY_START in line:
            inside = True
        if inside:
            block.append(line)
        if SUMMARY_END in line:
            inside = False
    return block


def json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def test_ctrl_c_stops_everything_without_an_error_line(
    started: tuple[Run, subprocess.Popen[bytes]],
) -> None:
    run, process = started
    wait_for(lambda: SUMMARY_START in run.log(), timeout=90, interval=0.5, what="is up")

    # A bot login; it hands the session to placement, and the bulk worker listens to it.
    bot = run.control().call("POST", "/bots", {"username": "shutdown_test_bot"})
    assert run.cli("tenant", "add", "acme").returncode == 0
    login = run.cli("bot-login", "acme", "bot", "--json", stdin=bot["token"] + "\n")
    assert login.returncode == 0, login.stdout + login.stderr
    assert json.loads(login.stdout)["state"] == "authorized"
    wait_for(
        lambda: redis.Redis(db=REDIS_DB).keys("session_lock:*"),
        timeout=30,
        what="the listening worker holding the bot",
    )

    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`run` did not stop within 90 s of SIGINT:\n{run.log()[-5000:]}")
    log = run.log()
    assert redis.Redis(db=REDIS_DB).keys("session_lock:*") == [], log[-3000:]

    by_process, unprefixed = lines_by_process(log)
    assert PROCESSES <= set(by_process), sorted(by_process)
    # The emulator is stopped only once every other process has exited.
    system = by_process["system"]
    emulator_stop = next(i for i, line in enumerate(system) if "SIGTERM to emulator" in line)
    for name in PROCESSES - {"emulator"}:
        stopped = next(i for i, line in enumerate(system) if line.startswith(f"{name} stopped"))
        assert stopped < emulator_stop, system

    problems = []
    for name in PROCESSES:
        for line in by_process[name]:
            event = json_object(line)
            if event is None:
                problems.append(f"{name}: not JSON: {line}")
            elif str(event.get("level")).lower() in {"error", "critical", "exception"}:
                problems.append(f"{name}: {line}")
    # The rest: `run`'s own lines are the readiness summary only; honcho's `system` lines
    # (start, signal, stop notices) are plain text, as the README says.
    others = [line for line in unprefixed if line.strip() and line not in summary_lines(unprefixed)]
    problems += [f"run: not JSON: {line}" for line in others if json_object(line) is None]
    assert set(by_process) <= PROCESSES | {"system"}, sorted(by_process)
    assert not problems, "\n".join(problems)


def test_ctrl_c_stops_everything_when_the_output_reader_is_gone(
    database_url: str, tmp_path: Path
) -> None:
    """`make run | tee run.log`, then Ctrl-C: tee dies first. The supervisor must still stop
    every process it started instead of dying on the broken pipe and leaving them running."""
    cache = redis.Redis(db=REDIS_DB)
    cache.flushdb()
    with private_vhost() as broker_url:
        env = run_env(database_url, broker_url, tmp_path)
        process = subprocess.Popen(
            [sys.executable, "-m", "integration_service.cli", "run", "--concurrency", "2"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        seen = tmp_path / "seen.log"
        pids: list[int] = []
        try:
            assert process.stdout is not None
            with open(seen, "wb") as copy:
                for raw in process.stdout:  # the reader, until the system is up
                    copy.write(raw)
                    pids += [int(p) for p in re.findall(rb"started \(pid=(\d+)\)", raw)]
                    if SUMMARY_END.encode() in raw:
                        break
            assert len(pids) == len(PROCESSES), seen.read_text()
            process.stdout.close()  # the reader dies (tee on Ctrl-C)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=90)

            def all_stopped() -> bool:
                for pid in pids:
                    try:
                        os.killpg(pid, 0)
                    except ProcessLookupError:
                        continue
                    return False
                return True

            wait_for(all_stopped, timeout=30, interval=0.2, what="every process stopped")
            assert cache.keys("session_lock:*") == []
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            cache.flushdb()
