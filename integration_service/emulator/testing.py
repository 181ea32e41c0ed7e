"""Running the emulator from tests: as a subprocess, or in-process on a background loop.

Both wait for ``emulator.json`` with a deadline and always stop what they started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from integration_service.telegram.endpoint import TelegramEndpoint

from .rpc import World
from .runner import EMULATOR_JSON, RunningEmulator, start_emulator

T = TypeVar("T")


class EmulatorStartError(RuntimeError):
    """The emulator did not come up before the deadline (its output is in the message)."""


class EmulatorProcess:
    """``python -m integration_service.emulator`` in a subprocess, for one ``with`` block."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dc_id: int = 2,
        startup_timeout: float = 30.0,
        log_level: str = "WARNING",
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.args = [
            sys.executable,
            "-m",
            "integration_service.emulator",
            "--host",
            host,
            "--port",
            str(port),
            "--state-dir",
            str(self.state_dir),
            "--dc-id",
            str(dc_id),
            "--log-level",
            log_level,
            *(extra_args or []),
        ]
        self.startup_timeout = startup_timeout
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    @property
    def endpoint(self) -> TelegramEndpoint:
        return TelegramEndpoint.from_dict(self.info)

    @property
    def control_url(self) -> str | None:
        return self.info.get("control_url")

    def start(self) -> EmulatorProcess:
        info_path = self.state_dir / EMULATOR_JSON
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info_path.unlink(missing_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        self.process = subprocess.Popen(
            self.args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = (
                    self.process.stdout.read().decode(errors="replace")
                    if self.process.stdout
                    else ""
                )
                raise EmulatorStartError(
                    f"emulator exited with {self.process.returncode}: {output}"
                )
            if info_path.exists():
                self.info = json.loads(info_path.read_text(encoding="utf-8"))
                return self
            time.sleep(0.05)
        self.stop()
        raise EmulatorStartError(f"no {info_path} within {self.startup_timeout} s")

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class InProcessEmulator:
    """The emulator on its own event loop in a daemon thread of this process.

    Tests keep their own loop for Telethon; ``call`` runs a coroutine on the emulator's loop
    (for example ``server.drop_connections()``) and waits for its result.
    """

    def __init__(
        self,
        state_dir: Path | str,
        world: World,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dc_id: int = 2,
        startup_timeout: float = 30.0,
        **start_options: Any,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.world = world
        self.host, self.port, self.dc_id = host, port, dc_id
        self.startup_timeout = startup_timeout
        self.start_options = start_options
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningEmulator | None = None

    @property
    def endpoint(self) -> TelegramEndpoint:
        assert self.running is not None, "emulator not started"
        return TelegramEndpoint.from_dict(self.running.info())

    @property
    def server(self) -> Any:
        assert self.running is not None, "emulator not started"
        return self.running.server

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the emulator loop from a synchronous caller."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def acall(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the emulator loop from another event loop."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def start(self) -> InProcessEmulator:
        self._thread.start()
        self.running = self.call(
            start_emulator(
                self.host,
                self.port,
                self.state_dir,
                self.world,
                dc_id=self.dc_id,
                **self.start_options,
            ),
            self.startup_timeout,
        )
        return self

    def stop(self) -> None:
        if self.running is not None:
            self.call(self.running.stop())
            self.running = None
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()

    def __enter__(self) -> InProcessEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
