"""Tracing in one process, with an in-memory exporter: spans name failures without their
messages, Celery publishes carry the current span, jobs continue the publisher's trace,
Telegram calls are child spans, and every log line has a trace_id."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from celery import signals
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from telethon.sessions import StringSession
from telethon.tl import functions

from integration_service import tracing
from integration_service.errors import PermanentError
from integration_service.observability.logging import configure_logging
from integration_service.settings import SettingsError, load_settings
from integration_service.telegram.traced_client import TracedTelegramClient, request_name
from integration_service.tracing import provider as provider_module
from integration_service.tracing.jobs import connect_publishing, publishing_span, start_job_span
from integration_service.tracing.spans import continuing


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    recording = TracerProvider()
    recording.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(provider_module, "_provider", recording)
    monkeypatch.setattr(provider_module, "_configured", True)
    yield memory
    recording.shutdown()


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    return next(s for s in exporter.get_finished_spans() if s.name == name)


class LeakyFailure(PermanentError):
    code = "leaky_failure"


def test_a_failure_is_named_by_its_code_and_its_message_never_recorded(
    exporter: InMemorySpanExporter,
) -> None:
    with pytest.raises(LeakyFailure), tracing.span("work"):
        raise LeakyFailure("token 123456:SECRET-bot-token in the message")
    with pytest.raises(KeyError), tracing.span("other"):
        raise KeyError("+79990001122")
    work, other = by_name(exporter, "work"), by_name(exporter, "other")
    assert work.status.status_code is StatusCode.ERROR
    assert work.status.description == "leaky_failure"
    assert other.status.description == "KeyError"
    for span in (work, other):
        assert not span.events  # no exception event, so no message and no traceback
        assert "SECRET" not in repr(span.attributes) and "7999" not in repr(span.attributes)


def test_a_celery_publish_carries_the_current_span(exporter: InMemorySpanExporter) -> None:
    connect_publishing()
    connect_publishing()  # once per process, however often called
    headers: dict[str, Any] = {"x-existing": "kept"}
    with publishing_span("tasks.messages.send_message", "job-1", "mid") as _:
        current = tracing.current_traceparent()
        signals.before_task_publish.send(sender="tasks.messages.send_message", headers=headers)
    assert headers["traceparent"] == current and headers["x-existing"] == "kept"
    publish = by_name(exporter, "publish tasks.messages.send_message")
    assert publish.kind is SpanKind.PRODUCER
    assert publish.attributes is not None and publish.attributes["messaging.message.id"] == "job-1"
    # Outside any span nothing is added: a carried header (a retry's) stays as it was.
    carried = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    signals.before_task_publish.send(sender="tasks.messages.send_message", headers=carried)
    assert carried["traceparent"] == "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


def test_a_job_continues_the_publishers_trace_and_names_its_failure(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("caller") as caller:
        carrier: dict[str, str] = {}
        tracing.inject_into(carrier)
    job = start_job_span("tasks.messages.send_message", carrier, {"tenant_id": "t1"})
    assert tracing.current_trace_id() == format(caller.get_span_context().trace_id, "032x")
    job.failed(LeakyFailure("details"))
    job.end("FAILURE")
    assert tracing.current_trace_id() is None  # detached from the pool thread
    run = by_name(exporter, "run tasks.messages.send_message")
    assert run.parent is not None and run.parent.span_id == caller.get_span_context().span_id
    assert run.kind is SpanKind.CONSUMER
    assert run.status.description == "leaky_failure"
    assert run.attributes is not None and run.attributes["celery.state"] == "FAILURE"
    # A retry is not an error of the trace.
    retried = start_job_span("tasks.messages.send_message", None, {})
    retried.end("RETRY")
    assert exporter.get_finished_spans()[-1].status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",  # an all-zero trace id is invalid
        "00-" + "1" * 32 + "-" + "0" * 16 + "-01",  # so is an all-zero span id
        "00-xyz-abc-01",
        "",
    ],
)
def test_a_malformed_traceparent_is_no_parent(value: str) -> None:
    assert tracing.context_from({"traceparent": value}) is None


def test_a_stored_traceparent_is_continued_and_none_opens_nothing(
    exporter: InMemorySpanExporter,
) -> None:
    stored = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    with continuing(stored, "publish event", kind=SpanKind.PRODUCER) as span:
        assert span is not None
        assert tracing.current_trace_id() == "c" * 32
    with continuing(None, "publish event") as nothing:
        assert nothing is None
    finished = exporter.get_finished_spans()
    assert len(finished) == 1 and finished[0].parent is not None
    assert finished[0].parent.span_id == int("d" * 16, 16)


def test_telegram_calls_are_child_spans_only_inside_a_trace(
    exporter: InMemorySpanExporter,
) -> None:
    client = TracedTelegramClient(StringSession(), 1, "0" * 32)
    seen: list[Any] = []

    async def answer(_sender: Any, request: Any, ordered: bool = False, **_: Any) -> str:
        # Telethon's network layer: Telegram itself is external.
        seen.append(request)
        if isinstance(request, functions.auth.LogOutRequest):
            raise ConnectionError("telegram unreachable at 149.154.167.51")
        return "answer"

    client._call = answer

    async def calls() -> None:
        assert await client(functions.updates.GetStateRequest()) == "answer"  # no span
        with tracing.span("job"):
            request = functions.messages.GetDialogFiltersRequest()
            assert await client(request) == "answer"
            with pytest.raises(ConnectionError):
                await client(functions.auth.LogOutRequest())

    asyncio.run(calls())
    assert len(seen) == 3
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["telegram messages.GetDialogFilters", "telegram auth.LogOut", "job"]
    call = by_name(exporter, "telegram messages.GetDialogFilters")
    job = by_name(exporter, "job")
    assert call.parent is not None and call.parent.span_id == job.context.span_id
    assert call.kind is SpanKind.CLIENT
    failed = by_name(exporter, "telegram auth.LogOut")
    assert failed.status.description == "ConnectionError" and not failed.events


def test_request_names() -> None:
    assert request_name(functions.messages.SendMessageRequest(peer="me", message="x")) == (
        "messages.SendMessage"
    )
    assert request_name(functions.PingRequest(ping_id=1)) == "Ping"
    assert request_name([functions.PingRequest(ping_id=1)] * 3) == "Ping+2"


def test_every_log_line_has_a_trace_id(exporter: InMemorySpanExporter) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        log = structlog.get_logger("test")
        log.info("outside")
        with tracing.span("request") as span:
            log.info("inside")
            import logging

            logging.getLogger("celery.worker").info("a library line")
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["outside"]["trace_id"] is None and "span_id" not in by_event["outside"]
    expected = format(span.get_span_context().trace_id, "032x")
    assert by_event["inside"]["trace_id"] == expected
    assert by_event["a library line"]["trace_id"] == expected
    assert by_event["inside"]["span_id"] == format(span.get_span_context().span_id, "016x")


def test_configured_without_an_endpoint_ids_exist_but_nothing_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provider_module, "_configured", False)
    monkeypatch.setattr(provider_module, "_provider", provider_module._provider)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    provider = tracing.configure_tracing(load_settings(), "test")
    assert tracing.configure_tracing(load_settings(), "other") is provider  # once
    with tracing.span("unrecorded") as span:
        assert not span.is_recording()
        assert tracing.current_traceparent() is not None


def test_configured_with_an_endpoint_it_exports_over_otlp(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.setattr(provider_module, "_configured", False)
    monkeypatch.setattr(provider_module, "_provider", provider_module._provider)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    settings = load_settings(otel_exporter_otlp_endpoint="http://127.0.0.1:4318")
    provider = tracing.configure_tracing(settings, "api")
    try:
        assert provider.resource.attributes["service.name"] == "integration-service-api"
        processors = provider._active_span_processor._span_processors
        assert any(isinstance(p.span_exporter, OTLPSpanExporter) for p in processors)  # type: ignore[attr-defined]
    finally:
        provider.shutdown()


def test_an_otlp_endpoint_that_is_no_http_url_is_refused() -> None:
    with pytest.raises(SettingsError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        load_settings(otel_exporter_otlp_endpoint="grpc://collector:4317")
