"""W3C Trace Context in and out of carriers: Celery and AMQP headers, HTTP headers, rows.

Always the W3C ``traceparent``/``tracestate`` format, whatever OTEL_PROPAGATORS says: it
is what the message headers, the event rows and the webhook calls carry, and what a
receiver in any language can read.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()


def inject_into(carrier: MutableMapping[str, str]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to ``carrier``."""
    _W3C.inject(carrier)


def context_from(carrier: Mapping[str, object] | None) -> Context | None:
    """The remote parent a carrier names, or None (no header, or a malformed one: a bad
    traceparent from a caller starts a new trace, it never fails the request)."""
    if not carrier:
        return None
    headers = {key.lower(): value for key, value in carrier.items() if isinstance(value, str)}
    if "traceparent" not in headers:
        return None
    context = _W3C.extract(headers)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def current_traceparent() -> str | None:
    """The current span as a ``traceparent`` value (None outside any span)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def current_trace_id() -> str | None:
    """The current trace's id as 32 hex digits (None outside any span)."""
    return current_span_ids()[0]


def current_span_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span in hex, or (None, None) outside any."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
