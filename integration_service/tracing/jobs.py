"""Traces through Celery jobs: the publisher puts ``traceparent`` in the message headers,
the worker runs the job in a span that continues it.

``before_task_publish`` is a process-wide signal, so one connection covers every publish
of the process: the producer's jobs, the worker's retries and forwards (whose carried
headers get the running job's span, keeping the trace) and beat's jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from integration_service.tracing.propagation import context_from, inject_into
from integration_service.tracing.provider import tracer
from integration_service.tracing.spans import mark_failed, span

_connected = threading.Lock()
_is_connected = False


def _inject(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        carrier: dict[str, str] = {}
        inject_into(carrier)
        headers.update(carrier)


def connect_publishing() -> None:
    """Inject ``traceparent`` into every Celery message this process publishes (once)."""
    global _is_connected
    from celery import signals

    with _connected:
        if not _is_connected:
            signals.before_task_publish.connect(_inject, weak=False, dispatch_uid=__name__)
            _is_connected = True


@dataclass
class JobSpan:
    """A running job's span, current on the job's thread until ``end``."""

    span: trace.Span
    token: object
    _failed: bool = False

    def failed(self, error: BaseException) -> None:
        """Name the error the job failed with (Celery's task_failure, before ``end``)."""
        mark_failed(self.span, error)
        self._failed = True

    def end(self, state: str | None) -> None:
        # Celery's states: SUCCESS, RETRY (deferred or retried: not an error of the trace),
        # FAILURE, REJECTED, IGNORED.
        if state is not None:
            self.span.set_attribute("celery.state", state)
            if state == "FAILURE" and not self._failed:
                mark_failed(self.span, "job_failed")
        self.span.end()
        otel_context.detach(self.token)  # type: ignore[arg-type]


def start_job_span(
    task_name: str, headers: Mapping[str, object] | None, attributes: Mapping[str, str]
) -> JobSpan:
    """A consumer span for one delivery of ``task_name``, continuing the publisher's trace
    when the message carries one, made current on this thread."""
    job = tracer().start_span(
        f"run {task_name}",
        context=context_from(headers),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "rabbitmq", "celery.task_name": task_name, **attributes},
    )
    token = otel_context.attach(trace.set_span_in_context(job))
    return JobSpan(job, token)


@contextmanager
def publishing_span(task_name: str, job_id: str, queue: str) -> Iterator[None]:
    """A producer span around one publish: the ``traceparent`` the message carries is
    this span's, so the job's span is its child."""
    with span(
        f"publish {task_name}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "celery.task_name": task_name,
        },
    ):
        yield
