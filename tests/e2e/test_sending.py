"""send-message end to end: 1,000 sends exactly once, repeats send nothing, FloodWait."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import pytest
from sqlalchemy import text

from integration_service.client import IntegrationClient, JobHandle
from integration_service.inputs import InvalidInput
from integration_service.messaging.send import PeerNotFound
from tests.support.system import Provisioned, SystemUnderTest

TENANT = "tenant-sending"
RECIPIENTS = 100


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    # Pacing is exercised on its own; here the account limit must not stretch the run.
    return {"PACE_PER_ACCOUNT_PER_SECOND": "1000"}


@pytest.fixture(scope="module")
def sessions(system: SystemUnderTest) -> list[Provisioned]:
    made = system.provision(10, tenant_id=TENANT)
    system.start_worker("send-a")
    system.start_worker("send-b")
    return made


@pytest.fixture(scope="module")
def recipients(system: SystemUnderTest) -> list[str]:
    names = []
    for i in range(RECIPIENTS):
        username = f"rcpt{i:03d}x{int(time.time()) % 100000}"
        system.control.create_user(f"+7988{i:07d}", "Rcpt", username=username)
        names.append(f"@{username}")
    return names


def delivered(system: SystemUnderTest, sessions: list[Provisioned]) -> list[dict[str, object]]:
    return [m for s in sessions for m in system.control.messages(sender_id=s.user_id)]


def attempts_of(system: SystemUnderTest, idempotency_key: str) -> int:
    """How many times the outbox says the send was tried against Telegram."""
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT attempts FROM message_outbox WHERE tenant_id = :t "
                    "AND idempotency_key = :k"
                ),
                {"t": TENANT, "k": idempotency_key},
            ).scalar_one()
        )


def test_1000_sends_exactly_once_and_repeats_send_nothing(
    system: SystemUnderTest, sessions: list[Provisioned], recipients: list[str]
) -> None:
    client = system.client()
    jobs = [
        (sessions[i % 10], recipients[(i // 10) % RECIPIENTS], f"bulk {i}", f"bulk-{i}")
        for i in range(1000)
    ]
    handles = [
        client.send_message(TENANT, s.key.app_id, peer, body, idempotency_key=key)
        for s, peer, body, key in jobs
    ]
    results = [client.wait(h, timeout=180) for h in handles]
    assert Counter(r["status"] for r in results) == {"sent": 1000}
    messages = delivered(system, sessions)
    assert len(messages) == 1000
    assert len({m["text"] for m in messages}) == 1000

    again = [
        client.send_message(TENANT, s.key.app_id, peer, body, idempotency_key=key)
        for s, peer, body, key in jobs
    ]
    repeats = [client.wait(h, timeout=180) for h in again]
    assert all(r["repeated"] and r["status"] == "sent" for r in repeats)
    first_ids = {r["idempotency_key"]: r["telegram_message_id"] for r in results}
    assert all(first_ids[r["idempotency_key"]] == r["telegram_message_id"] for r in repeats)
    assert len(delivered(system, sessions)) == 1000
    with system.engine.connect() as conn:
        attempts = dict(
            conn.execute(
                text(
                    "SELECT attempts, count(*) FROM message_outbox WHERE tenant_id = :t "
                    "AND idempotency_key LIKE 'bulk-%' GROUP BY attempts"
                ),
                {"t": TENANT},
            ).all()
        )
    assert attempts == {1: 1000}


def test_flood_wait_is_retried_when_telegram_says_and_others_keep_flowing(
    system: SystemUnderTest, sessions: list[Provisioned], recipients: list[str]
) -> None:
    client: IntegrationClient = system.client()
    flooded, others = sessions[0], sessions[1:]
    system.control.inject_fault(
        user_id=flooded.user_id,
        kind="flood_wait",
        method="messages.sendMessage",
        seconds=3,
        count=1,
    )
    started = time.time()
    slow = client.send_message(
        TENANT, flooded.key.app_id, recipients[0], "after the flood", idempotency_key="flood-1"
    )
    quick = [
        client.send_message(
            TENANT,
            s.key.app_id,
            recipients[1 + i],
            f"meanwhile {i}",
            idempotency_key=f"meanwhile-{i}",
        )
        for i, s in enumerate(others)
    ]
    assert {client.wait(h, timeout=30)["status"] for h in quick} == {"sent"}
    quick_done = time.time()
    assert client.wait(slow, timeout=60)["status"] == "sent"

    (flood_message,) = [
        m
        for m in system.control.messages(sender_id=flooded.user_id)
        if m["text"] == "after the flood"
    ]
    # Not before Telegram allowed it, and the other sessions did not wait for it.
    assert float(flood_message["date"]) - started >= 3.0
    assert quick_done - started < 3.0
    tries = attempts_of(system, "flood-1")
    # The outbox counts both tries: the flooded one and the one that went through.
    assert tries == 2


def test_a_send_deferred_again_and_again_through_the_same_delay_queues_arrives(
    system: SystemUnderTest, sessions: list[Provisioned], recipients: list[str]
) -> None:
    """Regression: retries used to carry RabbitMQ's ``x-death`` history with them.

    FLOOD_WAIT_2 gives a 3 s countdown (2 s plus jitter, rounded up): delayed delivery's
    2 s queue dead-letters into its 1 s queue. On the second deferral the copy reached
    the 1 s queue again with that history, the broker took it for a dead-letter cycle
    and dropped it, although the publish had been confirmed.
    """
    client: IntegrationClient = system.client()
    flooded = sessions[2]
    system.control.inject_fault(
        user_id=flooded.user_id,
        kind="flood_wait",
        method="messages.sendMessage",
        seconds=2,
        count=3,
    )
    handle = client.send_message(
        TENANT, flooded.key.app_id, recipients[50], "deferred thrice", idempotency_key="flood-3x"
    )
    assert client.wait(handle, timeout=90)["status"] == "sent"
    texts = [m["text"] for m in system.control.messages(sender_id=flooded.user_id)]
    assert texts.count("deferred thrice") == 1
    tries = attempts_of(system, "flood-3x")
    assert tries == 4


def test_pacing_spaces_sends_to_one_chat(
    system: SystemUnderTest, sessions: list[Provisioned], recipients: list[str]
) -> None:
    """Six sends to one chat at once go out about a second apart, not in a burst."""
    client = system.client()
    sender = sessions[3]
    handles = [
        client.send_message(
            TENANT, sender.key.app_id, recipients[-1], f"paced {i}", idempotency_key=f"paced-{i}"
        )
        for i in range(6)
    ]
    assert {client.wait(h, timeout=60)["status"] for h in handles} == {"sent"}
    times = sorted(
        float(m["date"])
        for m in system.control.messages(sender_id=sender.user_id)
        if str(m["text"]).startswith("paced ")
    )
    assert len(times) == 6
    # Telegram's limit is one message per second per chat (emulator times have 1 ms grain).
    # The pacer reserves slots a second apart and a send never goes before its slot, but
    # one send may leave a little after its slot (a worker busy for a moment) and the next
    # on time: so the i-th send comes at least i seconds after the first one's slot. The
    # first send itself may be late by its processing time (well under 0.25 s here).
    since_first = [t - times[0] for t in times]
    assert all(since >= i - 0.25 for i, since in enumerate(since_first)), since_first
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5, gaps  # never a burst


def test_a_send_that_fails_for_good_reaches_the_producer_as_its_project_error(
    system: SystemUnderTest, sessions: list[Provisioned]
) -> None:
    # Through a real worker and the JSON result backend: the producer's app is a plain
    # Celery app, and still gets the class, code and message, not a wrapper.
    client = system.client()
    key = "unknown-peer-1"
    handle = client.send_message(
        TENANT, sessions[0].key.app_id, "@nobody0knows0this", "never", idempotency_key=key
    )
    with pytest.raises(PeerNotFound) as caught:
        client.wait(handle, timeout=60)
    assert caught.value.code == "peer_unknown"
    assert "@nobody0knows0this" in str(caught.value)
    with system.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT status, error_code FROM message_outbox WHERE tenant_id = :t "
                "AND idempotency_key = :k"
            ),
            {"t": TENANT, "k": key},
        ).one()
    assert (row.status, row.error_code) == ("failed", "peer_unknown")

    # A payload published past the producer fails with InvalidInput(field, message):
    # Celery's own JSON reading would call InvalidInput(message) and lose it.
    published = system.producer.send_task(
        "tasks.messages.send_message",
        kwargs={"tenant_id": TENANT, "app_id": sessions[0].key.app_id, "peer": "@x0000"},
    )
    handle = JobHandle(published.id, published.name or "", "mid", TENANT, "")
    with pytest.raises(InvalidInput) as invalid:
        client.wait(handle, timeout=60)
    assert (invalid.value.field, invalid.value.code) == ("text", "invalid_text")
