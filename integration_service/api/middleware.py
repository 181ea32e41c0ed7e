"""ASGI middleware of the API: a trace span per request, metrics per route template, and
the request size limit."""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integration_service import tracing
from integration_service.api import metrics
from integration_service.api.errors import PayloadTooLarge
from integration_service.api.problems import PROBLEM_JSON, problem


class RequestTracing:
    """A server span per request, continuing the caller's ``traceparent`` when it sends
    one. Outermost, so every line logged for the request (audit, errors) carries its
    trace_id, and the jobs it publishes continue the trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in (b"traceparent", b"tracestate")
        }
        method = str(scope.get("method", "GET"))
        with tracing.span(
            method,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": str(scope.get("path"))},
            parent=tracing.context_from(headers),
        ) as span:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        tracing.mark_failed(span, str(status))
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                # Known only once routed: the template, never the ids in the path.
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or metrics.UNMATCHED
            metrics.REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(endpoint, str(status)).inc()
            if status >= 500:
                metrics.ERRORS.labels(endpoint).inc()


class BodyLimit:
    """413 for a body over ``limit`` bytes: by Content-Length before anything is read, or
    while a chunked body streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await self._refuse(send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(f"the request body is over {self.limit} bytes")
            return message

        try:
            await self.app(scope, limited, send)
        except PayloadTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body: dict[str, Any] = problem(
            413, "payload_too_large", f"the request body is over {self.limit} bytes"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", PROBLEM_JSON.encode())],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
