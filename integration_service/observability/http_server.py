"""A small HTTP endpoint for Prometheus and for liveness/readiness probes.

Stdlib ``ThreadingHTTPServer`` on a daemon thread: a scrape or a probe never waits behind
another one, and the worker needs no web framework. Every answer is built from metric
samples or health checks whose details are already scrubbed; nothing from the settings
is echoed back.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from integration_service.observability.health import HealthReport, run_checks, run_liveness
from integration_service.settings import Settings

logger = structlog.get_logger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/metrics":
                self._send(
                    HTTPStatus.OK, generate_latest(self.server.registry), CONTENT_TYPE_LATEST
                )
            elif path == "/health/live":
                self._send_report(self.server.owner.liveness())
            elif path in ("/health/ready", "/health"):
                self._send_report(self.server.owner.readiness())
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except Exception:
            logger.exception("observability_request_failed", path=path)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def _send_report(self, report: HealthReport) -> None:
        status = HTTPStatus.OK if report.ok else HTTPStatus.SERVICE_UNAVAILABLE
        self._send_json(status, report.to_dict())

    def _send_json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Probes hit every few seconds; access lines at debug keep the worker's log readable.
        logger.debug("observability_request", request=format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], owner: ObservabilityServer, registry: CollectorRegistry
    ) -> None:
        self.owner = owner
        self.registry = registry
        super().__init__(address, _Handler)


class ObservabilityServer:
    """Serves /metrics, /health/live, /health/ready and /health (= ready)."""

    def __init__(
        self,
        settings: Settings,
        runtime: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        check_timeout: float = 2.0,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.host = host
        self.check_timeout = check_timeout
        self._requested_port = port
        self._registry = registry
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the free one chosen when constructed with port 0)."""
        if self._server is None:
            raise RuntimeError("observability server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def liveness(self) -> HealthReport:
        return run_liveness(runtime=self.runtime, timeout=self.check_timeout)

    def readiness(self) -> HealthReport:
        return run_checks(self.settings, runtime=self.runtime, timeout=self.check_timeout)

    def start(self) -> ObservabilityServer:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._requested_port), self, self._registry)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"observability-http:{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("observability_server_started", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        logger.info("observability_server_stopped")

    def __enter__(self) -> ObservabilityServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
