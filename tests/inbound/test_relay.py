"""The relay: every committed row reaches the ``events`` exchange, confirmed, then marked.

Real PostgreSQL (the session's scratch database) and real RabbitMQ on a private vhost;
the broker outage is a proxy that cuts every connection and refuses new ones.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.inbound.relay import EventPublishFailed, EventRelay
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionStore
from tests.inbound.conftest import TENANT, add_session
from tests.inbound.support import (
    EventConsumer,
    SwitchableLink,
    append_events,
    append_in,
    relay_process,
    unpublished,
    vhost_url,
)
from tests.support.processes import wait_for
from tests.support.system import free_port, http_get


def drain(relay: EventRelay) -> int:
    total = 0
    while published := relay.run_once():
        total += published
    return total


def published_at_set(engine: Engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM inbound_events WHERE id = ANY(CAST(:ids AS uuid[])) "
                    "AND published_at IS NOT NULL"
                ),
                {"ids": ids},
            ).scalar_one()
        )


def test_each_committed_row_is_published_once_with_its_envelope_then_marked(
    engine: Engine,
    relay_settings: Settings,
    session_key: SessionKey,
    consumer: EventConsumer,
) -> None:
    ids = append_events(engine, session_key, range(1, 121))
    relay = EventRelay(relay_settings, engine)
    try:
        # 120 rows in batches of 50: three rounds, then nothing left.
        assert [relay.run_once() for _ in range(4)] == [50, 50, 20, 0]
    finally:
        relay.stop()
    seen = consumer.wait_for_ids(set(ids))
    assert seen == Counter({event_id: 1 for event_id in ids})
    assert unpublished(engine, TENANT) == 0
    assert published_at_set(engine, ids) == len(ids)

    by_id = {str(m.properties["message_id"]): m for m in consumer.messages}
    first = by_id[ids[0]]
    assert first.properties["content_type"] == "application/json"
    assert first.properties["delivery_mode"] == 2
    assert first.delivery_info["routing_key"] == f"{TENANT}.main.message.received"
    assert first.headers["sequence"] == 1
    assert first.headers["type"] == "message.received"
    body = json.loads(first.body)
    assert set(body) == {"id", "type", "tenant_id", "app_id", "sequence", "occurred_at", "data"}
    assert (body["id"], body["sequence"], body["app_id"]) == (ids[0], 1, "main")
    assert sorted(json.loads(m.body)["sequence"] for m in consumer.messages) == list(range(1, 121))


def test_a_row_is_published_only_once_its_transaction_commits(
    engine: Engine,
    relay_settings: Settings,
    session_key: SessionKey,
    consumer: EventConsumer,
) -> None:
    relay = EventRelay(relay_settings, engine)
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            ids = [str(i) for i in append_in(conn, session_key, range(1, 4))]
            assert relay.run_once() == 0  # not committed: not visible to the relay
            transaction.commit()
        assert drain(relay) == 3
    finally:
        relay.stop()
    assert consumer.wait_for_ids(set(ids)) == Counter({i: 1 for i in ids})


def test_routing_keys_let_a_consumer_bind_one_tenant_and_type(
    engine: Engine,
    relay_settings: Settings,
    store: SessionStore,
    broker_url: str,
) -> None:
    ours = add_session(store, "main")
    other = add_session(store, "main", tenant_id="inbound-other")
    narrow = EventConsumer(broker_url, binding=f"{TENANT}.*.message.received")
    try:
        wanted = append_events(engine, ours, range(1, 4))
        unwanted = append_events(engine, other, range(1, 4))
        relay = EventRelay(relay_settings, engine)
        try:
            assert drain(relay) >= 6
        finally:
            relay.stop()
        seen = narrow.wait_for_ids(set(wanted))
        assert not set(seen) & set(unwanted)
    finally:
        narrow.close()


def test_broker_unreachable_rows_stay_unpublished_then_are_published(
    engine: Engine,
    relay_settings: Settings,
    session_key: SessionKey,
    consumer: EventConsumer,
    broker_url: str,
) -> None:
    link = SwitchableLink()
    with link.serving() as port:
        settings = relay_settings.model_copy(update={"broker_url": vhost_url(broker_url, port)})
        link.cut()
        relay = EventRelay(settings, engine)
        ids = append_events(engine, session_key, range(1, 31))
        try:
            # One round by hand: the failure is an EventPublishFailed, nothing marked.
            try:
                relay.run_once()
            except EventPublishFailed as error:
                assert "0 of 30 confirmed" in str(error)
            else:
                raise AssertionError("a round with the broker down must fail")
            assert unpublished(engine, TENANT) == 30

            relay.start()
            wait_for(lambda: relay.outage, timeout=10, what="the relay to notice the outage")
            assert relay.running and unpublished(engine, TENANT) == 30

            link.restore()
            wait_for(
                lambda: unpublished(engine, TENANT) == 0,
                timeout=30,
                interval=0.1,
                what="every row published after the broker came back",
            )
            wait_for(lambda: relay.outage is None, timeout=10, what="recovery noticed")
        finally:
            relay.stop()
    assert set(consumer.wait_for_ids(set(ids))) >= set(ids)


def test_the_link_cut_mid_stream_loses_nothing(
    engine: Engine,
    relay_settings: Settings,
    session_key: SessionKey,
    consumer: EventConsumer,
    broker_url: str,
) -> None:
    link = SwitchableLink()
    with link.serving() as port:
        settings = relay_settings.model_copy(
            update={"broker_url": vhost_url(broker_url, port), "relay_batch": 20}
        )
        relay = EventRelay(settings, engine).start()
        ids: list[str] = []
        try:
            for chunk in range(10):
                ids += append_events(engine, session_key, range(chunk * 100 + 1, chunk * 100 + 101))
                if chunk == 3:
                    link.cut()
                if chunk == 6:
                    link.restore()
            wait_for(
                lambda: unpublished(engine, TENANT) == 0,
                timeout=60,
                interval=0.1,
                what="every row published",
            )
        finally:
            relay.stop()
    seen = consumer.wait_for_ids(set(ids), timeout=30)
    assert set(seen) >= set(ids)


def test_two_relays_share_the_log_and_no_row_goes_out_twice(
    engine: Engine,
    relay_settings: Settings,
    session_key: SessionKey,
    consumer: EventConsumer,
) -> None:
    ids = append_events(engine, session_key, range(1, 2001))
    relays = [EventRelay(relay_settings, engine) for _ in range(2)]
    try:
        for relay in relays:
            relay.start()
        wait_for(
            lambda: unpublished(engine, TENANT) == 0,
            timeout=60,
            interval=0.1,
            what="2,000 rows published by two relays",
        )
    finally:
        for relay in relays:
            relay.stop()
    seen = consumer.wait_for_ids(set(ids), timeout=30)
    # SKIP LOCKED: a row locked by one relay is invisible to the other's round.
    assert seen == Counter({event_id: 1 for event_id in ids})
    assert sum(relay.published for relay in relays) == len(ids)
    assert all(relay.published > 0 for relay in relays), [r.published for r in relays]


def test_a_relay_process_killed_mid_stream_loses_nothing(
    database_url: str,
    broker_url: str,
    engine: Engine,
    session_key: SessionKey,
    consumer: EventConsumer,
    tmp_path: Path,
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "RELAY_BATCH": "20",
        "RELAY_POLL_INTERVAL": "0.05",
        "LOG_LEVEL": "INFO",
    }
    # A backlog far larger than what the relay publishes between the check and the kill.
    ids = append_events(engine, session_key, range(1, 5001))
    with relay_process(env, tmp_path / "relay-1.log", metrics_port=free_port()) as first:
        # Progress read from the log (one cheap query), not from the consumer: draining the
        # consumer one basic_get at a time could lag the relay so far that it had published
        # everything by the time the consumer counted 500, and nothing was left to kill.
        wait_for(
            lambda: unpublished(engine, TENANT) < 4500,
            timeout=30,
            interval=0.02,
            what="the relay under way",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert unpublished(engine, TENANT) > 0  # killed mid-stream: work left behind
    ids += append_events(engine, session_key, range(5001, 5301))
    with relay_process(env, tmp_path / "relay-2.log", metrics_port=free_port()):
        wait_for(
            lambda: unpublished(engine, TENANT) == 0,
            timeout=60,
            interval=0.1,
            what="the second relay to publish the rest",
        )
    seen = consumer.wait_for_ids(set(ids), timeout=30)
    assert set(seen) >= set(ids)
    assert published_at_set(engine, ids) == len(ids)


def test_relay_command_serves_metrics_and_health_and_stops_on_sigterm(
    database_url: str,
    broker_url: str,
    engine: Engine,
    session_key: SessionKey,
    consumer: EventConsumer,
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, "LOG_LEVEL": "INFO"}
    port = free_port()
    log_path = tmp_path / "relay.log"
    with relay_process(env, log_path, metrics_port=port) as process:
        ids = append_events(engine, session_key, range(1, 11))
        consumer.wait_for_ids(set(ids))

        def published_metric() -> bool:
            status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            return status == 200 and 'events_published_total{type="message.received"}' in body

        wait_for(published_metric, timeout=10, what="events_published_total on /metrics")
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
        assert "event_relay_backlog" in body and "event_publish_seconds_bucket" in body
        status, body = http_get(f"http://127.0.0.1:{port}/health/live")
        assert status == 200 and json.loads(body)["checks"]["relay"]["ok"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    events = [record["event"] for record in records]
    assert "relay_ready" in events and events[-1] == "relay_stopped"
    assert not [r for r in records if r.get("level") in {"error", "critical"}]


def test_relay_process_also_delivers_signed_webhooks(
    database_url: str,
    broker_url: str,
    engine: Engine,
    session_key: SessionKey,
    consumer: EventConsumer,
    tmp_path: Path,
) -> None:
    """One relay process: the events exchange and the webhook dispatcher it hosts."""
    from integration_service.crypto import LocalKeyring
    from integration_service.settings import load_settings
    from integration_service.webhooks import SubscriptionStore
    from tests.support.webhook_receiver import running_receiver

    keyring = "k1:" + base64.b64encode(os.urandom(32)).decode()
    env = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "LOCAL_KEYRING": keyring,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "LOG_LEVEL": "INFO",
    }
    settings = load_settings(
        database_url=database_url, local_keyring=keyring, webhook_allow_private=True
    )
    with running_receiver(tmp_path / "receiver.log") as receiver:
        subscriptions = SubscriptionStore(settings, engine, LocalKeyring.from_spec(keyring))
        created = subscriptions.add(TENANT, receiver.url("relay"), ["message.received"])
        receiver.configure("relay", secrets=[created.secret])
        port = free_port()
        with relay_process(env, tmp_path / "relay.log", metrics_port=port):
            status, body = http_get(f"http://127.0.0.1:{port}/health/live")
            assert status == 200 and json.loads(body)["checks"]["webhooks"]["ok"] is True
            ids = append_events(engine, session_key, range(1, 21))
            consumer.wait_for_ids(set(ids))
            calls = receiver.wait_for_calls("relay", len(ids), timeout=60)
    assert {call["id"] for call in calls} >= set(ids)
    assert all(call["valid"] for call in calls)
