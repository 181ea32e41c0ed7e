"""One trace from an HTTP request to the Telegram call: the test opens a span (its own
in-memory exporter), calls POST .../send with its traceparent, and the API and worker
processes export their spans over OTLP to a collector in the test. The spans form one
chain, test -> API -> publish -> job -> Telegram, the job's log lines carry the trace id,
and the message.sent event row keeps the trace for the relay and webhooks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import text

from tests.api.conftest import KeyMaker, purge_queued_jobs
from tests.support.api_process import ApiProcess
from tests.support.otlp_collector import (
    FAST_EXPORT,
    CollectedSpan,
    Collector,
    chain,
    running_collector,
)
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest, WorkerProcess

T = "/api/integrations/telegram"
TENANT = "tenant-api-trace"


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with running_collector() as running:
        yield running


@pytest.fixture(scope="module")
def api_overrides(collector: Collector) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, **FAST_EXPORT}


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest, collector: Collector) -> Iterator[WorkerProcess]:
    # Other modules' leftover jobs (logins waiting for a scan among them) would hold this
    # worker's threads, and their spans are not this module's.
    purge_queued_jobs(system)
    started = system.start_worker(
        "api-trace", OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, **FAST_EXPORT
    )
    yield started
    system.stop_worker(started)


@pytest.fixture(scope="module")
def account(system: SystemUnderTest) -> Provisioned:
    return system.provision(1, tenant_id=TENANT)[0]


def test_one_trace_spans_the_request_the_job_and_the_telegram_call(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    account: Provisioned,
    worker: WorkerProcess,
    collector: Collector,
) -> None:
    key = make_key(TENANT, "send", "messages:read")
    recipient = f"trace{uuid.uuid4().hex[:8]}"
    system.control.create_user("+79870000101", "Traced", username=recipient)
    body = {"peer": f"@{recipient}", "text": "traced hello", "idempotency_key": "trace-1"}

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("test caller") as root:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        accepted = api.call(
            "POST", f"{T}/accounts/{account.key.app_id}/send", token=key, body=body, headers=carrier
        )
    assert accepted.status == 202, accepted.body
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    assert [s.name for s in exporter.get_finished_spans()] == ["test caller"]

    telegram = collector.wait_for_span(trace_id, "telegram messages.SendMessage", timeout=60)
    # Each process exports on its own schedule: wait for the chain to reach the test's span.
    wait_for(
        lambda: chain(collector.in_trace(trace_id), telegram)[-1].startswith("POST "),
        timeout=10,
        what="the API's span collected",
    )
    spans = collector.in_trace(trace_id)
    names = chain(spans, telegram)
    # Telegram call <- the job's run (more than one when a first attempt was retried: each
    # retry continues the attempt before it) <- the publish <- the API's request.
    assert names[0] == "telegram messages.SendMessage", names
    assert names[-2:] == [
        "publish tasks.messages.send_message",
        "POST /api/integrations/telegram/accounts/{account_id}/send",
    ], names
    runs = names[1:-2]
    assert runs and set(runs) == {"run tasks.messages.send_message"}, names
    server = next(s for s in spans if s.name == names[-1])
    # The API's span is the child of the caller's: the trace began in the test.
    assert server.parent_span_id == root_id and server.kind == "server"
    assert server.service == "integration-service-api"
    assert server.attributes["http.response.status_code"] == 202
    assert (
        server.attributes["http.route"] == "/api/integrations/telegram/accounts/{account_id}/send"
    )
    job = next(s for s in spans if s.span_id == telegram.parent_span_id)
    assert job.service == "integration-service-worker" and job.kind == "consumer"
    assert job.attributes["celery.state"] == "SUCCESS"
    assert telegram.kind == "client" and telegram.status_code != 2

    # The job's log lines carry the trace id; lines of other work do not.
    def job_lines() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("trace_id") == trace_id]

    traced = wait_for(job_lines, timeout=10, what="the job's log lines")
    assert any(line.get("tenant_id") == TENANT for line in traced), traced
    all_lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert all("trace_id" in line for line in all_lines)

    # The outcome's event keeps the trace (the outbox trigger read the job's traceparent).
    def event_trace() -> str | None:
        with system.engine.connect() as conn:
            value = conn.execute(
                text(
                    "SELECT traceparent FROM inbound_events WHERE tenant_id = :t "
                    "AND type = 'message.sent'"
                ),
                {"t": TENANT},
            ).scalar()
        return None if value is None else str(value)

    stored = wait_for(event_trace, timeout=30, what="the message.sent event")
    assert stored.split("-")[1] == trace_id


def test_a_malformed_traceparent_starts_a_new_trace_and_fails_nothing(
    api: ApiProcess, make_key: KeyMaker, account: Provisioned, collector: Collector
) -> None:
    key = make_key(TENANT, "accounts:read")
    for bad in ("garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "00-xyz-abc-01"):
        reply = api.call(
            "GET",
            f"{T}/accounts/{account.key.app_id}",
            token=key,
            headers={"traceparent": bad},
        )
        assert reply.status == 200, reply.body

    def fresh_roots() -> list[CollectedSpan] | None:
        roots = [
            s
            for s in collector.spans
            if s.name == "GET /api/integrations/telegram/accounts/{account_id}"
            and s.parent_span_id is None
        ]
        return roots if len(roots) >= 3 else None

    roots = wait_for(fresh_roots, timeout=10, what="three root spans")
    assert len(roots) == 3
