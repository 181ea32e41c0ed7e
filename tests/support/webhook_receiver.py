"""A real HTTP webhook receiver for the tests, run as its own process.

``python -m tests.support.webhook_receiver --port P`` serves:

- ``POST /hooks/<name>``: a webhook endpoint. Every call is checked with the
  ``standardwebhooks`` package (the independent implementation) against the endpoint's
  secrets, then recorded: webhook-id, webhook-timestamp, which secrets verified it, when
  it arrived, what was answered, the headers and body.
- ``PUT /control/<name>``: the endpoint's secrets and behaviour, as JSON:
  ``{"secrets": [...], "status": 200, "fail_status": 500, "fail_until": <unix time>,
  "sleep_ms": 0, "hang": false, "body_bytes": 0}``: answer ``fail_status`` until
  ``fail_until``, then ``status``, after sleeping ``sleep_ms``, with a body of
  ``body_bytes`` bytes (0: a short one); ``hang`` never answers.
- ``GET /records/<name>``: the calls recorded, oldest first.
- ``GET /health``: 200 once serving.

``ReceiverProcess`` starts it on a free port and stops it; every test that starts one
stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Endpoint:
    secrets: list[str] = field(default_factory=list)
    status: int = 200
    fail_status: int = 500
    fail_until: float = 0.0
    sleep_ms: int = 0
    hang: bool = False
    body_bytes: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


ENDPOINTS: dict[str, Endpoint] = {}


def _endpoint(name: str) -> Endpoint:
    return ENDPOINTS.setdefault(name, Endpoint())


async def hook(request: web.Request) -> web.Response:
    received_at = time.time()
    endpoint = _endpoint(request.match_info["name"])
    body = await request.text()
    headers = {key.lower(): value for key, value in request.headers.items()}
    verified_by = []
    for index, secret in enumerate(endpoint.secrets):
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            continue
        verified_by.append(index)
    record: dict[str, Any] = {
        "id": headers.get("webhook-id"),
        "timestamp": headers.get("webhook-timestamp"),
        "signature": headers.get("webhook-signature"),
        "verified_by": verified_by,
        "valid": bool(verified_by),
        "received_at": received_at,
        # The caller's TCP port: calls sharing one are on one keep-alive connection.
        "peer_port": (request.transport.get_extra_info("peername") or (None, None))[1]
        if request.transport is not None
        else None,
        "headers": headers,
        "body": body,
    }
    endpoint.records.append(record)
    if endpoint.hang:
        record["answered"] = None
        await asyncio.sleep(3600)
    if endpoint.sleep_ms:
        await asyncio.sleep(endpoint.sleep_ms / 1000)
    status = endpoint.fail_status if time.time() < endpoint.fail_until else endpoint.status
    record["answered"] = status
    record["answered_at"] = time.time()
    if endpoint.body_bytes:
        return web.Response(status=status, body=b"x" * endpoint.body_bytes)
    return web.Response(status=status, text="ok" if status < 300 else "no")


async def control(request: web.Request) -> web.Response:
    endpoint = _endpoint(request.match_info["name"])
    wanted = await request.json()
    for key, value in wanted.items():
        if key == "records" or not hasattr(endpoint, key):
            return web.json_response({"error": f"unknown setting {key}"}, status=400)
        setattr(endpoint, key, value)
    return web.json_response({"ok": True})


async def records(request: web.Request) -> web.Response:
    return web.json_response(_endpoint(request.match_info["name"]).records)


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def application() -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.add_routes(
        [
            web.post("/hooks/{name}", hook),
            web.put("/control/{name}", control),
            web.get("/records/{name}", records),
            web.get("/health", health),
        ]
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # A short shutdown: a hanging call must not hold up SIGTERM.
    web.run_app(
        application(),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        shutdown_timeout=0.5,
    )


# The test side ---------------------------------------------------------------------------


def _call(method: str, url: str, document: Any = None) -> Any:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


@dataclass
class Receiver:
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base}/hooks/{name}"

    def configure(self, name: str, **settings: Any) -> None:
        _call("PUT", f"{self.base}/control/{name}", settings)

    def records(self, name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = _call("GET", f"{self.base}/records/{name}")
        return found

    def wait_for_calls(self, name: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The endpoint's records once it has at least ``count`` (oldest first)."""
        from tests.support.processes import wait_for

        def enough() -> list[dict[str, Any]] | None:
            found = self.records(name)
            return found if len(found) >= count else None

        return wait_for(enough, timeout=timeout, interval=0.05, what=f"{count} calls to {name}")


@contextmanager
def running_receiver(log_path: Path) -> Iterator[Receiver]:
    """The receiver process on a free loopback port, up once /health answers."""
    # Here, not at the top: the receiver process itself needs none of the test support.
    from tests.support.processes import running, wait_for
    from tests.support.system import free_port

    port = free_port()
    args = [sys.executable, "-m", "tests.support.webhook_receiver", "--port", str(port)]
    with running(args, env={}, log_path=log_path) as process:
        receiver = Receiver(port)

        def up() -> bool:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                return bool(_call("GET", f"{receiver.base}/health")["ok"])
            except OSError:
                return False

        wait_for(up, timeout=30, interval=0.1, what="the webhook receiver's /health")
        yield receiver


if __name__ == "__main__":
    main()
