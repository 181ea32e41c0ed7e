"""kill -9 of the worker holding 10 sessions in the middle of 500 sends: none lost, none doubled."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import text

from tests.support.processes import wait_for
from tests.support.system import FAST_TAKEOVER, Provisioned, SystemUnderTest, send_kwargs

TENANT = "tenant-killed"


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return dict(FAST_TAKEOVER)


def create_recipients(system: SystemUnderTest, count: int) -> list[str]:
    names = []
    for i in range(count):
        username = f"killrcpt{i:02d}x{i * 7 + 11}"
        system.control.create_user(f"+7977{i:07d}", "Rcpt", username=username)
        names.append(f"@{username}")
    return names


def delivered_count(system: SystemUnderTest, sessions: list[Provisioned]) -> int:
    return sum(len(system.control.messages(sender_id=s.user_id)) for s in sessions)


def test_kill_9_of_the_owner_loses_nothing(system: SystemUnderTest) -> None:
    sessions = system.provision(10, tenant_id=TENANT)
    recipient = sessions[0]
    owner = system.start_worker("owner")
    warmups = [
        system.producer.send_task(
            "tasks.messages.send_message",
            kwargs=send_kwargs(s, recipient.peer, f"warm {i}", f"warm-{i}"),
        )
        for i, s in enumerate(sessions)
    ]
    assert {r.get(timeout=60)["status"] for r in warmups} == {"sent"}
    for s in sessions:
        holder = system.redis.hget(f"session_lock:{s.key.tenant_id}:{s.key.app_id}", "worker")
        assert holder is not None and holder.decode() == owner.worker_id

    survivor = system.start_worker("survivor")
    recipients = create_recipients(system, 50)
    jobs = 500
    results = [
        system.producer.send_task(
            "tasks.messages.send_message",
            # Every (sender, chat) pair once: pacing never defers this run.
            kwargs=send_kwargs(
                sessions[i % 10], recipients[(i // 10) % 50], f"run {i}", f"run-{i}"
            ),
        )
        for i in range(jobs)
    ]
    # Kill the owner in the middle of the run, with jobs queued and in flight.
    wait_for(
        lambda: delivered_count(system, sessions) >= 10 + jobs // 4,
        timeout=60,
        what="a quarter of the run delivered",
    )
    owner.kill9()
    assert delivered_count(system, sessions) < 10 + jobs, "the run ended before the kill"

    outcomes = [r.get(timeout=180) for r in results]
    assert Counter(o["status"] for o in outcomes) == {"sent": jobs}
    texts = [m["text"] for s in sessions for m in system.control.messages(sender_id=s.user_id)]
    assert len(texts) == 10 + jobs
    assert sorted(t for t in texts if t.startswith("run ")) == sorted(
        f"run {i}" for i in range(jobs)
    )
    with system.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text(
                    "SELECT status, count(*) FROM message_outbox WHERE tenant_id = :t "
                    "GROUP BY status"
                ),
                {"t": TENANT},
            ).all()
        )
    assert statuses == {"sent": 10 + jobs}
    survivor_id = survivor.worker_id
    for s in sessions:
        holder = system.redis.hget(f"session_lock:{s.key.tenant_id}:{s.key.app_id}", "worker")
        assert holder is not None and holder.decode() == survivor_id
