"""The HTTP API as a real process (``integration-service api``) for the tests, and a
small client for it. Every test that starts one stops it."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import running, wait_for
from tests.support.system import free_port


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class ApiProcess:
    base: str
    pid: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        # Always http://127.0.0.1:<port> (``base``): no other scheme can get here.
        request = urllib.request.Request(  # noqa: S310
            self.base + path, data=data, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                return _reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return _reply(error.code, dict(error.headers), error.read())


def _reply(status: int, headers: dict[str, str], payload: bytes) -> Reply:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        body: Any = json.loads(payload) if payload else None
    except ValueError:
        body = payload.decode(errors="replace")
    return Reply(status, lowered, body)


@contextmanager
def running_api(
    env: dict[str, str], log_path: Path, *, port: int | None = None, **overrides: str
) -> Iterator[ApiProcess]:
    port = port or free_port()
    args = [sys.executable, "-m", "integration_service.cli", "api", "--port", str(port)]
    full = {**env, "API_HOST": "127.0.0.1", **overrides}
    with running(args, env=full, log_path=log_path, stop_timeout=20) as process:
        api = ApiProcess(f"http://127.0.0.1:{port}", process.pid, log_path)

        def up() -> bool:
            assert process.poll() is None, api.log()
            try:
                return api.call("GET", "/health/live").status == 200
            except OSError:
                return False

        wait_for(up, timeout=30, interval=0.1, what="the API to answer /health/live")
        yield api
