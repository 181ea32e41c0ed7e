"""The one way project code opens a span: failures are named, never described.

OpenTelemetry's default records an exception's message and traceback on the span; those
can hold a broker URL with its password, a phone number or a token, and spans leave the
process. Here a failure sets the span's status to the error's stable code (a
``ServiceError``) or its class name, and nothing else about it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from integration_service.tracing.propagation import context_from


def failure_name(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return str(code) if isinstance(code, str) else type(error).__name__


def mark_failed(span: trace.Span, error: BaseException | str) -> None:
    name = error if isinstance(error, str) else failure_name(error)
    span.set_attribute("error.type", name)
    span.set_status(Status(StatusCode.ERROR, name))


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    parent: Context | None = None,
) -> Iterator[trace.Span]:
    """A span current for the block (child of ``parent`` when given, else of the current
    span); an exception leaving the block marks it failed by name and propagates."""
    # Here, not at import: modules that may open spans (the event model) are imported by
    # CLI commands that never do, and the SDK costs a quarter second to import.
    from integration_service.tracing.provider import tracer

    with tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as error:
            mark_failed(current, error)
            raise


@contextmanager
def continuing(
    traceparent: str | None,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[trace.Span | None]:
    """A span continuing a stored ``traceparent`` (an event row's), or no span at all
    when there is none: work nobody traced does not start a trace of its own here."""
    parent = context_from({"traceparent": traceparent}) if traceparent else None
    if parent is None:
        yield None
        return
    with span(name, kind=kind, attributes=attributes, parent=parent) as current:
        yield current
