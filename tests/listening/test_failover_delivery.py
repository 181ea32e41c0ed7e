"""20 listening accounts get 2,000 messages at about 50/s while the worker holding half of
them is killed with kill -9, twice. The log holds each message exactly once, a RabbitMQ
consumer and a signature-checking webhook receiver get every event, and no session's
sequence has a hole."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from integration_service.webhooks import SubscriptionStore
from tests.listening.inbound_support import (
    events,
    listening_held,
    running_relay,
    send_batch,
    started_feeds,
)
from tests.support.events_consumer import EventsConsumer
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest
from tests.support.webhook_receiver import Receiver, running_receiver

TENANT = "tenant-failover"
ACCOUNTS = 20
MESSAGES = 2000
RATE = 50.0  # messages per second
BATCH = 10


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return {
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_BACKOFF_BASE": "0.2",
        "WEBHOOK_BACKOFF_MAX": "2",
        "RELAY_POLL_INTERVAL": "0.05",
    }


def received_ids(system: SystemUnderTest) -> dict[str, set[int]]:
    """app id -> Telegram message ids of its message.received events."""
    found: dict[str, set[int]] = {}
    for row in events(system, TENANT, "message.received"):
        found.setdefault(row.app_id, set()).add(int(row.data["message_id"]))
    return found


def all_event_ids(system: SystemUnderTest) -> set[str]:
    with system.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM inbound_events WHERE tenant_id = :t"), {"t": TENANT}
        ).all()
    return {str(r.id) for r in rows}


def unpublished(system: SystemUnderTest) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM inbound_events WHERE tenant_id = :t "
                    "AND published_at IS NULL"
                ),
                {"t": TENANT},
            ).scalar_one()
        )


def webhook_ids(receiver: Receiver) -> tuple[set[str], list[dict[str, Any]]]:
    records = receiver.records("failover")
    return {str(r["id"]) for r in records}, records


class TakeoverClock:
    """From a kill until every session is held by a worker that was alive at the kill (or
    started after it): how long the dead worker's sessions were unowned."""

    def __init__(self, system: SystemUnderTest, survivors: set[str]) -> None:
        self._system = system
        self._dead_before = set(listening_held(system)) - survivors
        self._started = time.monotonic()
        self._took: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while time.monotonic() - self._started < 120:
            held = listening_held(self._system)
            if sum(held.values()) == ACCOUNTS and not set(held) & self._dead_before:
                self._took = time.monotonic() - self._started
                return
            time.sleep(0.2)

    def wait(self, limit: float) -> float:
        self._thread.join(timeout=limit + 5)
        assert self._took is not None, f"sessions not taken over within {limit} s"
        return self._took


def holder_of_half(system: SystemUnderTest, candidates: dict[str, Any]) -> Any:
    """The live worker holding the most sessions (about half of them once balanced)."""
    held = listening_held(system)
    worker_id = max((w for w in held if w in candidates), key=lambda w: held[w])
    assert held[worker_id] >= ACCOUNTS // 2 - 2, held  # the kill must hit about half
    return candidates[worker_id]


def test_kill9_twice_while_2000_messages_arrive(system: SystemUnderTest) -> None:
    accounts: list[Provisioned] = system.provision_minted(ACCOUNTS, TENANT)
    senders = [
        int(system.control.create_user(f"+7977200000{i}", f"Sender {i}")["user_id"])
        for i in range(5)
    ]
    store = SubscriptionStore(system.settings, system.engine, system.cipher)
    # Event id -> deliveries to a RabbitMQ consumer of the tenant's events.
    consumed: Counter[str] = Counter()
    with (
        running_receiver(system.state_dir / "receiver.log") as receiver,
        EventsConsumer(
            system.env["CELERY_BROKER_URL"],
            "test-failover-events",
            f"{TENANT}.#",
            lambda _body, message: consumed.update([message.properties["message_id"]]),
        ),
        running_relay(system),
    ):
        subscription = store.add(TENANT, receiver.url("failover"), "*")
        receiver.configure("failover", secrets=[subscription.secret])
        workers = {
            w.worker_id: w
            for w in (system.start_worker(f"fo-{n}", concurrency=2) for n in ("a", "b"))
        }
        wait_for(
            lambda: (
                sum(listening_held(system).values()) == ACCOUNTS
                and all(8 <= n <= 12 for n in listening_held(system).values())
            ),
            timeout=60,
            what="20 sessions placed over two workers",
        )
        wait_for(
            lambda: started_feeds(system, TENANT) == ACCOUNTS, timeout=60, what="every feed started"
        )

        sent: dict[str, set[int]] = {a.key.app_id: set() for a in accounts}
        by_user = {a.user_id: a.key.app_id for a in accounts}
        messages = [
            {
                "sender": senders[i % len(senders)],
                "peer": {"type": "user", "id": accounts[i % ACCOUNTS].user_id},
                "text": f"failover {i}",
            }
            for i in range(MESSAGES)
        ]
        batches = [messages[i : i + BATCH] for i in range(0, MESSAGES, BATCH)]
        kills_at = {len(batches) // 4, (2 * len(batches)) // 3}
        takeovers: list[TakeoverClock] = []
        start = time.monotonic()
        pause = threading.Event()
        for index, batch in enumerate(batches):
            answers = send_batch(system, batch)
            for message, answer in zip(batch, answers, strict=True):
                recipient = message["peer"]["id"]  # type: ignore[index]
                sent[by_user[recipient]].add(int(answer["recipients"][str(recipient)]))
            if index in kills_at:
                victim = holder_of_half(system, workers)
                victim.kill9()
                del workers[victim.worker_id]
                takeovers.append(TakeoverClock(system, set(workers)))
                replacement = system.start_worker(f"fo-r{index}", concurrency=2)
                workers[replacement.worker_id] = replacement
            due = start + (index + 1) * BATCH / RATE
            pause.wait(max(0.0, due - time.monotonic()))

        wait_for(
            lambda: received_ids(system) == sent,
            timeout=120,
            interval=0.5,
            what="every message in the log",
        )
        # A dead worker's sessions are taken over within SESSION_LOCK_TTL + 30 s.
        limit = system.settings.session_lock_ttl + 30
        for clock in takeovers:
            assert clock.wait(limit) <= limit
        rows = events(system, TENANT, "message.received")
        # Exactly once, counted by Telegram's ids: no loss, no duplicate.
        assert len(rows) == MESSAGES
        assert len({(r.app_id, r.data["message_id"]) for r in rows}) == MESSAGES
        for account in accounts:
            sequences = [
                r.sequence for r in events(system, TENANT) if r.app_id == account.key.app_id
            ]
            assert sequences == list(range(1, len(sequences) + 1)), account.key

        ids = all_event_ids(system)
        wait_for(lambda: unpublished(system) == 0, timeout=60, what="every event published")
        wait_for(lambda: ids <= set(consumed), timeout=60, what="RabbitMQ got every event")
        wait_for(
            lambda: ids <= webhook_ids(receiver)[0],
            timeout=120,
            interval=1.0,
            what="the webhook receiver got every event",
        )
        _, records = webhook_ids(receiver)
        assert all(r["valid"] for r in records), [r for r in records if not r["valid"]][:3]
        for record in records:
            assert json.loads(record["body"])["id"] == record["id"]
    assert system.control.stats()["auth_key_duplicated"] == 0
