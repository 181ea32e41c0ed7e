"""How the dispatcher uses its connections: a busy subscription stays on warm keep-alive
connections (the body of a short answer is read to its end so the connection can be
reused), and a receiver answering a huge body is still a 2xx, delivered once: its body
is cut after 64 KiB, not read."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from integration_service.inbound.event_log import EventLog
from integration_service.store import SessionStore
from integration_service.webhooks import SubscriptionStore
from tests.support.webhook_receiver import Receiver
from tests.webhooks.harness import (
    add_session,
    append_messages,
    running_dispatcher,
    wait_delivered,
)


def test_a_busy_subscription_reuses_its_keep_alive_connections(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-warm")
    sub = subscriptions.add("tenant-warm", receiver.url("warm"), max_in_flight=4).subscription
    with running_dispatcher(dispatcher_env, tmp_path / "dispatcher.log"):
        append_messages(event_log, key, 200)
        wait_delivered(engine, sub.id, 200)
    calls = receiver.records("warm")
    assert len(calls) == 200
    ports = {call["peer_port"] for call in calls}
    assert None not in ports
    # At most max_in_flight calls at once, each connection reused: a handful of
    # connections, not one per call (before the fix: 200).
    assert len(ports) <= 8, len(ports)


def test_a_2xx_with_a_huge_body_is_delivered_once_with_its_body_cut(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-chatty")
    sub = subscriptions.add("tenant-chatty", receiver.url("chatty")).subscription
    receiver.configure("chatty", body_bytes=8 * 1024 * 1024)
    with running_dispatcher(dispatcher_env, tmp_path / "dispatcher.log"):
        append_messages(event_log, key, 5)
        wait_delivered(engine, sub.id, 5)
    calls = receiver.records("chatty")
    # Exactly once each: a cut body is not a failure to retry.
    assert sorted(c["id"] for c in calls) == sorted({c["id"] for c in calls})
    assert len(calls) == 5
