"""OpenTelemetry tracing: one trace from an API request through its Celery job to the
Telegram call, and from a Telegram update through the event log to RabbitMQ and webhooks.

Every process configures it once (``configure_tracing``). Spans are exported over OTLP/HTTP
only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; otherwise they are not recorded, but
their ids still exist, still propagate (``traceparent``) and still stamp every log line,
so the logs of one request correlate across processes either way.

Modules: ``provider`` (the process's tracer provider and exporter), ``propagation`` (W3C
``traceparent`` in and out of headers and rows), ``spans`` (opening a span; failures
named, never described), ``jobs`` (Celery publish and run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integration_service.tracing.propagation import (
        context_from,
        current_span_ids,
        current_trace_id,
        current_traceparent,
        inject_into,
    )
    from integration_service.tracing.provider import (
        configure_tracing,
        shutdown_tracing,
        tracer,
        use_provider,
    )
    from integration_service.tracing.spans import mark_failed, span

# Loaded on first use: logging needs only the propagation helpers (the OpenTelemetry API),
# and must not pay for the SDK on every CLI start.
_HOME = {
    "context_from": "propagation",
    "current_span_ids": "propagation",
    "current_trace_id": "propagation",
    "current_traceparent": "propagation",
    "inject_into": "propagation",
    "configure_tracing": "provider",
    "shutdown_tracing": "provider",
    "tracer": "provider",
    "use_provider": "provider",
    "mark_failed": "spans",
    "span": "spans",
}

__all__ = [
    "configure_tracing",
    "context_from",
    "current_span_ids",
    "current_trace_id",
    "current_traceparent",
    "inject_into",
    "mark_failed",
    "shutdown_tracing",
    "span",
    "tracer",
    "use_provider",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
