"""The inbound path is one trace: the listening worker's span for a pushed update is the
parent of the relay's publish to RabbitMQ and of the webhook call, in other processes; the
event row, the AMQP message and the webhook request carry its traceparent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from integration_service.webhooks import SubscriptionStore
from tests.listening.inbound_support import running_relay, send_as, started_feeds
from tests.support.events_consumer import EventsConsumer
from tests.support.otlp_collector import FAST_EXPORT, Collector, running_collector
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest
from tests.support.webhook_receiver import running_receiver

TENANT = "tenant-inbound-trace"


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with running_collector() as running:
        yield running


@pytest.fixture(scope="module")
def system_overrides(collector: Collector) -> dict[str, str]:
    # Every process of this module's system exports to the collector.
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "RELAY_POLL_INTERVAL": "0.05",
        **FAST_EXPORT,
    }


def _received_traceparent(system: SystemUnderTest) -> str | None:
    with system.engine.connect() as conn:
        value = conn.execute(
            text(
                "SELECT traceparent FROM inbound_events WHERE tenant_id = :t "
                "AND type = 'message.received'"
            ),
            {"t": TENANT},
        ).scalar()
    return None if value is None else str(value)


def test_an_inbound_message_is_one_trace_from_the_update_to_the_webhook(
    system: SystemUnderTest, collector: Collector
) -> None:
    account = system.provision(1, tenant_id=TENANT)[0]
    sender = system.control.create_user("+79770000301", "Tracer", username="tracer_in")
    store = SubscriptionStore(system.settings, system.engine, system.cipher)
    amqp_headers: list[dict[str, Any]] = []
    with (
        running_receiver(system.state_dir / "receiver.log") as receiver,
        EventsConsumer(
            system.env["CELERY_BROKER_URL"],
            "test-trace-events",
            f"{TENANT}.#",
            lambda _body, message: amqp_headers.append(dict(message.headers)),
        ),
        running_relay(system),
    ):
        subscription = store.add(TENANT, receiver.url("traced"), "message.received")
        receiver.configure("traced", secrets=[subscription.secret])
        worker = system.start_worker("trace-listen")
        try:
            wait_for(
                lambda: system.redis.exists(f"session_lock:{TENANT}:{account.key.app_id}"),
                timeout=30,
                what="placement claimed the account",
            )
            wait_for(
                lambda: started_feeds(system, TENANT) == 1,
                timeout=30,
                what="the feed's first state stored",
            )
            send_as(system, int(sender["user_id"]), account.user_id, "trace me")
            traceparent = wait_for(
                lambda: _received_traceparent(system), timeout=30, what="the event row"
            )
            trace_id, updates_id = traceparent.split("-")[1:3]
            updates = wait_for(
                lambda: next(
                    (s for s in collector.in_trace(trace_id) if s.span_id == updates_id), None
                ),
                timeout=30,
                what="the feed's span",
            )
            publish = collector.wait_for_span(trace_id, "publish event")
            delivery = collector.wait_for_span(trace_id, "webhook delivery")
            calls = receiver.wait_for_calls("traced", 1)
            wait_for(lambda: amqp_headers, timeout=30, what="the event on RabbitMQ")
        finally:
            system.stop_worker(worker)

    # The row holds the update span's context; relay and dispatcher are its children.
    # A pushed update (or, had the push found a gap, the catch-up that fetched it).
    assert updates.name in {"telegram updates", "telegram catch-up"}, updates
    assert updates.service == "integration-service-worker" and updates.kind == "consumer"
    assert updates.attributes["tenant_id"] == TENANT
    assert publish.parent_span_id == updates.span_id and publish.kind == "producer"
    assert publish.service == "integration-service-relay"
    assert delivery.parent_span_id == updates.span_id and delivery.kind == "client"
    assert delivery.attributes["http.response.status_code"] == 200
    # What went out carries the trace: the AMQP headers and the webhook request.
    received = [h for h in amqp_headers if h.get("type") == "message.received"]
    assert received and received[0]["traceparent"].split("-")[1] == trace_id
    assert received[0]["traceparent"].split("-")[2] == publish.span_id
    webhook_parent = calls[0]["headers"]["traceparent"]
    assert webhook_parent.split("-")[1] == trace_id
    assert webhook_parent.split("-")[2] == delivery.span_id
    assert calls[0]["valid"]  # the signature still verifies with the extra header
