"""Run the planned processes under honcho and report once everything is healthy.

honcho supervises (start, multiplexed output, stop on Ctrl-C or when one process dies);
this module waits for readiness endpoints, prints where things listen, and stops the
system in order: workers, beat and Flower first, the emulator only once they have all
exited. Stopped together, the workers would lose the emulator mid-shutdown and log
reconnection failures at ERROR.
"""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import honcho.manager
import honcho.printer

from integration_service.devserver.processes import Ports, Process

# Workers finish their jobs and release every lease on SIGTERM (warm shutdown); give them
# time before honcho escalates to SIGKILL.
honcho.manager.KILL_WAIT = 30
# What the other processes talk to: stopped last.
LAST_STAGE = frozenset({"emulator"})


class ReaderProofOutput:
    """stdout that outlives its reader. With `make run | tee run.log`, Ctrl-C stops tee
    at once; the stop notices written after that would raise BrokenPipeError in honcho's
    loop and end the supervisor before it has stopped its processes, leaving them
    running. Once the reader is gone, output is dropped and the stop goes on."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
                self._stream.flush()
            except OSError:  # BrokenPipeError, or EIO from a closed terminal
                self._gone = True
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except OSError:
                self._gone = True

    def isatty(self) -> bool:
        return not self._gone and bool(self._stream.isatty())


class StagedManager(honcho.manager.Manager):  # type: ignore[misc,unused-ignore]
    """honcho's Manager, stopping in two stages instead of all processes at once.

    On Ctrl-C, SIGTERM or the exit of any process, every process outside ``last`` gets
    SIGTERM first; a watcher thread sends SIGTERM to the ``last`` ones once all the others
    have exited. honcho's own deadline (KILL_WAIT) still SIGKILLs whatever is left.
    """

    def __init__(self, last: frozenset[str] = LAST_STAGE, *, output: Any = None) -> None:
        super().__init__(printer=honcho.printer.Printer(output=output or sys.stdout))
        self._last = last

    def _running(self) -> list[str]:
        return [name for name, p in self._processes.items() if "returncode" not in p]

    def _killall(self, force: bool = False) -> None:
        first = [name for name in self._running() if name not in self._last]
        if force or not first:
            super()._killall(force=force)
            return
        for name in first:
            self._stop(name)
        threading.Thread(
            target=self._stop_last_stage, args=(first,), name="staged-stop", daemon=True
        ).start()

    def _stop(self, name: str) -> None:
        pid = self._processes[name]["pid"]
        self._system_print(f"sending SIGTERM to {name} (pid {pid})\n")
        self._procmgr.terminate(pid)

    def _stop_last_stage(self, first: list[str]) -> None:
        # The loop thread records each exit in _processes; only read here.
        while any("returncode" not in self._processes[name] for name in first):
            time.sleep(0.1)
        for name in self._running():
            if name in self._last:
                self._stop(name)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_until_ready(
    processes: list[Process], *, emulator_json: Path | None, timeout: float = 120.0
) -> bool:
    deadline = time.monotonic() + timeout
    pending = [p.ready_url for p in processes if p.ready_url]
    while time.monotonic() < deadline:
        pending = [url for url in pending if not _ready(url)]
        emulator_up = emulator_json is None or emulator_json.exists()
        if not pending and emulator_up:
            return True
        time.sleep(0.5)
    return False


def summary(processes: list[Process], ports: Ports, emulator_json: Path | None) -> str:
    lines = ["", "integration-service is up:"]
    if emulator_json is not None and emulator_json.exists():
        info = json.loads(emulator_json.read_text())
        lines.append(
            f"  emulator     mtproto {info['host']}:{info['port']}, control {info['control_url']}"
        )
    for p in processes:
        if p.name == "emulator":
            continue
        where = p.ready_url.rsplit("/health", 1)[0] if p.ready_url else ""
        extra = f" (metrics {where}/metrics)" if p.name != "flower" else ""
        lines.append(f"  {p.name:<12} {where}{extra} - {p.description}")
    lines.append("  Press Ctrl-C to stop everything (leases are released on the way out).")
    return "\n".join(lines) + "\n"


def run(
    processes: list[Process],
    ports: Ports,
    *,
    emulator_json: Path | None,
    env: dict[str, str],
    announce: Callable[[str], None],
) -> int:
    output = ReaderProofOutput(sys.stdout)
    manager = StagedManager(output=output)
    for process in processes:
        command = shlex.join(process.argv)
        manager.add_process(process.name, command, env={**env, **process.env})

    def report() -> None:
        ready = wait_until_ready(processes, emulator_json=emulator_json)
        try:
            if ready:
                announce(summary(processes, ports, emulator_json))
            else:
                announce("integration-service: some components did not become ready in time\n")
        except OSError:
            pass  # nobody reads the output any more (see ReaderProofOutput)

    threading.Thread(target=report, name="readiness", daemon=True).start()
    manager.loop()
    return int(manager.returncode or 0)
