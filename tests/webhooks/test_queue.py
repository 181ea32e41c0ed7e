"""The delivery queue's group commit, on the real database: several outcomes stored in one
transaction, each only while its own claim still holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.inbound.event_log import EventLog
from integration_service.store import SessionStore
from integration_service.webhooks import SubscriptionStore
from integration_service.webhooks.queue import DeliveryQueue, Recorded
from integration_service.webhooks.records import DELIVERED, PENDING
from integration_service.webhooks.retry_policy import AttemptResult, Outcome
from tests.webhooks.harness import add_session, append_messages, attempts, deliveries


def test_outcomes_share_a_commit_and_a_lost_claim_keeps_the_new_owners_row(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
) -> None:
    key = add_session(store, "tenant-queue")
    sub = subscriptions.add("tenant-queue", "http://127.0.0.1:9/hook").subscription
    append_messages(event_log, key, 3)
    queue = DeliveryQueue(engine)
    assert queue.fan_out(10) == (3, 3)
    first, second, third = sorted(queue.claim(10, 30.0), key=lambda c: c.event.sequence)
    # The second claim expired and another dispatcher claimed it again (a new token).
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE webhook_deliveries SET claimed_until = clock_timestamp() + "
                "interval '1 minute' WHERE id = :id"
            ),
            {"id": second.id},
        )
    retry_at = datetime.now(UTC) + timedelta(seconds=30)
    kept = queue.record_many(
        [
            Recorded(first, AttemptResult(200, None, 5.0), Outcome(DELIVERED)),
            Recorded(second, AttemptResult(200, None, 6.0), Outcome(DELIVERED)),
            Recorded(third, AttemptResult(503, None, 7.0), Outcome(PENDING, retry_at)),
        ]
    )
    assert kept == [True, False, True]
    rows = {row["id"]: row for row in deliveries(engine, sub.id)}
    assert rows[first.id]["status"] == "delivered" and rows[first.id]["attempts"] == 1
    # The new owner's claim is untouched: still in flight, no attempt counted by us.
    assert rows[second.id]["status"] == "in_flight" and rows[second.id]["attempts"] == 0
    assert rows[third.id]["status"] == "pending"
    assert rows[third.id]["last_status_code"] == 503
    assert abs((rows[third.id]["next_attempt_at"] - retry_at).total_seconds()) < 0.01
    # Every attempt is in the log, the lost claim's too.
    assert [a["status_code"] for a in attempts(engine, first.id)] == [200]
    assert [a["status_code"] for a in attempts(engine, second.id)] == [200]
    assert [a["latency_ms"] for a in attempts(engine, third.id)] == [7.0]
    assert queue.record_many([]) == []
