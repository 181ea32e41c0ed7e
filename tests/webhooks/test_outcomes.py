"""What a receiver's answer does: 410 disables, a hang is cut at the timeout, the maximum
age dead-letters with the reason, redelivery on demand, and 500s for 60 s are retried
with growing backoff until everything is delivered."""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

from sqlalchemy.engine import Engine

from integration_service.inbound.event_log import EventLog
from integration_service.store import SessionStore
from integration_service.webhooks import DeliveryLog, SubscriptionStore
from tests.support.processes import wait_for
from tests.support.webhook_receiver import Receiver
from tests.webhooks.harness import (
    add_session,
    all_fanned_out,
    append_messages,
    attempts,
    deliveries,
    running_dispatcher,
    statuses,
)


def test_a_410_disables_the_subscription(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-gone")
    sub = subscriptions.add("tenant-gone", receiver.url("gone"), max_in_flight=1).subscription
    receiver.configure("gone", status=410)
    append_messages(event_log, key, 5)
    with running_dispatcher(dispatcher_env, tmp_path / "dispatcher.log") as dispatcher:
        wait_for(
            lambda: not subscriptions.get("tenant-gone", sub.id).enabled,
            timeout=30,
            what="the subscription disabled",
        )
        wait_for(
            lambda: statuses(engine, sub.id) == {"cancelled": 5},
            timeout=10,
            what="every delivery cancelled",
        )
        # Nothing more is sent to a receiver that said it is gone, even for new events.
        append_messages(event_log, key, 2)
        wait_for(lambda: all_fanned_out(engine), timeout=10, what="the new events fanned out")
        assert "webhook_subscription_disabled" in dispatcher.log()
    disabled = subscriptions.get("tenant-gone", sub.id)
    assert disabled.disabled_reason is not None and "410" in disabled.disabled_reason
    assert len(receiver.records("gone")) == 1
    rows = deliveries(engine, sub.id)
    assert len(rows) == 5  # the two new events found no enabled subscription
    assert all("410" in (row["dead_reason"] or "") for row in rows)


def test_a_hanging_receiver_is_cut_at_the_timeout(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-hang")
    sub = subscriptions.add("tenant-hang", receiver.url("hang")).subscription
    receiver.configure("hang", hang=True)
    append_messages(event_log, key, 1)
    with running_dispatcher(
        dispatcher_env,
        tmp_path / "dispatcher.log",
        WEBHOOK_TIMEOUT="2",
        WEBHOOK_BACKOFF_BASE="60",
    ):
        row = wait_for(
            lambda: (rows := deliveries(engine, sub.id)) and rows[0]["attempts"] >= 1 and rows[0],
            timeout=20,
            what="the first attempt recorded",
        )
    assert row["status"] == "pending" and row["last_status_code"] is None
    (attempt,) = attempts(engine, row["id"])
    assert attempt["status_code"] is None
    assert attempt["error"] == "timed out after 2s"
    # Cut at the timeout: not before it, and not much after.
    assert 1900 <= attempt["latency_ms"] <= 2600, attempt["latency_ms"]


def test_past_the_maximum_age_a_delivery_is_dead_with_the_reason_and_can_be_redelivered(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    delivery_log: DeliveryLog,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-old")
    sub = subscriptions.add("tenant-old", receiver.url("old")).subscription
    receiver.configure("old", status=503)
    append_messages(event_log, key, 2)
    with running_dispatcher(
        dispatcher_env,
        tmp_path / "dispatcher.log",
        WEBHOOK_MAX_AGE="3",
        WEBHOOK_BACKOFF_BASE="0.2",
        WEBHOOK_BACKOFF_MAX="1",
    ):
        wait_for(lambda: statuses(engine, sub.id) == {"dead": 2}, timeout=30, what="both dead")
        dead = delivery_log.deliveries("tenant-old", subscription_id=sub.id)
        for delivery in dead:
            assert delivery.dead_reason is not None
            assert "WEBHOOK_MAX_AGE" in delivery.dead_reason and "HTTP 503" in delivery.dead_reason
            assert delivery.attempts >= 2
            assert delivery.last_status_code == 503
            logged = delivery_log.attempts("tenant-old", [delivery.id])
            assert len(logged) == delivery.attempts
            assert all(a.status_code == 503 for a in logged)
        calls_before = len(receiver.records("old"))

        # The receiver is fixed: one delivery redelivered alone, then all dead ones.
        receiver.configure("old", status=200)
        first, second = dead
        again = delivery_log.redeliver("tenant-old", first.id)
        assert again.status == "pending" and again.dead_reason is None
        wait_for(
            lambda: delivery_log.get("tenant-old", first.id).status == "delivered",
            timeout=20,
            what="the redelivered delivery delivered",
        )
        assert delivery_log.get("tenant-old", second.id).status == "dead"
        assert delivery_log.redeliver_dead("tenant-old", sub.id) == 1
        wait_for(
            lambda: statuses(engine, sub.id) == {"delivered": 2},
            timeout=20,
            what="both delivered",
        )
        # A delivered one can be sent once more on demand too.
        delivery_log.redeliver("tenant-old", first.id)
        wait_for(
            lambda: len(receiver.records("old")) == calls_before + 3,
            timeout=20,
            what="the third redelivery",
        )
    calls = receiver.records("old")[calls_before:]
    assert sorted(c["id"] for c in calls) == sorted(
        [str(first.event_id), str(second.event_id), str(first.event_id)]
    )
    assert all(c["valid"] is False for c in calls)  # no secret configured: unchecked here


def test_500s_for_60_seconds_then_everything_is_delivered_with_growing_backoff(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-flaky")
    created = subscriptions.add("tenant-flaky", receiver.url("flaky"), max_in_flight=8)
    sub = created.subscription
    outage_ends = time.time() + 60
    receiver.configure("flaky", secrets=[created.secret], fail_until=outage_ends)
    ids = append_messages(event_log, key, 20)
    with running_dispatcher(
        dispatcher_env,
        tmp_path / "dispatcher.log",
        WEBHOOK_BACKOFF_BASE="0.5",
        WEBHOOK_BACKOFF_MAX="8",
    ):
        wait_for(
            lambda: statuses(engine, sub.id) == {"delivered": 20},
            timeout=90,
            interval=0.5,
            what="all 20 delivered after the outage",
        )
    calls = receiver.records("flaky")
    delivered = [c for c in calls if c["answered"] == 200]
    assert sorted(c["id"] for c in delivered) == sorted(str(i) for i in ids)
    assert all(c["received_at"] >= outage_ends for c in delivered)
    assert all(c["valid"] for c in calls)

    # The delivery log shows the backoff: gap k (after the k-th failure) is drawn from
    # [0, min(8, 0.5 * 2**k)], so on average the gaps double until the cap.
    gaps_by_index: dict[int, list[float]] = {}
    for row in deliveries(engine, sub.id):
        logged = attempts(engine, row["id"])
        assert logged[-1]["status_code"] == 200
        assert all(a["status_code"] == 500 for a in logged[:-1])
        assert len(logged) >= 5, len(logged)
        times = [a["attempted_at"].timestamp() for a in logged]
        for index, (before, after) in enumerate(itertools.pairwise(times)):
            gap = after - before
            cap = min(8.0, 0.5 * 2**index)
            assert gap <= cap + 0.5, (index, gap)
            gaps_by_index.setdefault(index, []).append(gap)
    means = [statistics.mean(gaps_by_index[k]) for k in range(5)]
    assert means == sorted(means), means
    assert means[4] > 3 * means[1], means
