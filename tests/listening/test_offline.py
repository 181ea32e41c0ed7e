"""Every worker stopped for two minutes: what was sent meanwhile arrives through
getDifference, none lost; a gap past Telegram's difference limit is a ``gap`` event."""

from __future__ import annotations

import os
import threading
import time

from tests.listening.inbound_support import count_events, events, send_batch, started_feeds
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest

TENANT = "tenant-offline"
ACCOUNTS = 10
MESSAGES = 300
# The issue asks for two minutes; OFFLINE_SECONDS shortens it while developing.
OFFLINE_SECONDS = float(os.environ.get("OFFLINE_SECONDS", "120"))


def spread_over(seconds: float, batches: list[list[dict[str, object]]], send: object) -> None:
    """Send ``batches`` evenly over ``seconds`` (a workload schedule, not a wait)."""
    assert callable(send)
    start = time.monotonic()
    pause = threading.Event()
    for index, batch in enumerate(batches):
        send(batch)
        due = start + seconds * (index + 1) / len(batches)
        pause.wait(max(0.0, due - time.monotonic()))


def test_two_minutes_offline_then_getdifference_and_a_gap(system: SystemUnderTest) -> None:
    accounts: list[Provisioned] = system.provision_minted(ACCOUNTS + 1, TENANT)
    regular, lagging = accounts[:ACCOUNTS], accounts[ACCOUNTS]
    sender = int(system.control.create_user("+79771000001", "Offline sender")["user_id"])
    worker = system.start_worker("offline-a", concurrency=2)
    wait_for(
        lambda: started_feeds(system, TENANT) >= len(accounts), timeout=60, what="feeds started"
    )
    system.stop_worker(worker)

    # Telegram keeps only so much for a client that was away: past this, differenceTooLong.
    system.control.call("POST", "/settings", {"difference_limit": 50})
    messages = [
        {"sender": sender, "peer": {"type": "user", "id": a.user_id}, "text": f"away {i}"}
        for i in range(MESSAGES // ACCOUNTS)
        for a in regular
    ]
    batches = [messages[i : i + 10] for i in range(0, len(messages), 10)]
    too_many = [
        {"sender": sender, "peer": {"type": "user", "id": lagging.user_id}, "text": f"lost {i}"}
        for i in range(80)
    ]
    spread_over(OFFLINE_SECONDS, [*batches, too_many], lambda batch: send_batch(system, batch))

    system.start_worker("offline-b", concurrency=2)
    wait_for(
        lambda: count_events(system, TENANT, "message.received") == MESSAGES,
        timeout=60,
        what=f"{MESSAGES} received events after the restart",
    )
    wait_for(lambda: count_events(system, TENANT, "gap") == 1, timeout=30, what="a gap event")
    received = events(system, TENANT, "message.received")
    assert {r.app_id for r in received} == {a.key.app_id for a in regular}
    for account in regular:
        texts = [r.data["text"] for r in received if r.app_id == account.key.app_id]
        assert texts == [f"away {i}" for i in range(MESSAGES // ACCOUNTS)]
    (gap,) = events(system, TENANT, "gap")
    assert gap.app_id == lagging.key.app_id
    assert gap.data["box"] == "common"
    assert gap.data["to_pts"] - gap.data["from_pts"] == 80
    assert gap.data["reason"] == "differenceTooLong"
    for account in accounts:
        sequences = [r.sequence for r in events(system, TENANT) if r.app_id == account.key.app_id]
        assert sequences == list(range(1, len(sequences) + 1))
