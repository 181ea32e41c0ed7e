"""Two real worker processes share 20 sessions: one client per auth key, every job once."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import text

from tests.support.system import Provisioned, SystemUnderTest, send_kwargs

SESSIONS = 20
JOBS = 400


@pytest.fixture(scope="module")
def sessions(system: SystemUnderTest) -> list[Provisioned]:
    return system.provision(SESSIONS, tenant_id="tenant-two-workers")


def connections_by_user(system: SystemUnderTest) -> dict[int, dict[str, int]]:
    return {int(k["user_id"]): k for k in system.control.stats()["auth_keys"] if k["user_id"]}


def test_400_interleaved_jobs_over_two_workers(
    system: SystemUnderTest, sessions: list[Provisioned]
) -> None:
    before = connections_by_user(system)
    workers = [system.start_worker("alpha"), system.start_worker("beta")]

    results = []
    for i in range(JOBS):
        sender = sessions[i % SESSIONS]
        recipient = sessions[(i + 1) % SESSIONS]
        kwargs = send_kwargs(sender, recipient.peer, f"message {i}", f"two-workers-{i}")
        results.append(system.producer.send_task("tasks.messages.send_message", kwargs=kwargs))
    outcomes = [r.get(timeout=120) for r in results]

    assert Counter(o["status"] for o in outcomes) == {"sent": JOBS}
    repeated = [o["idempotency_key"] for o in outcomes if o["repeated"]]
    assert not repeated, (
        repeated,
        [r.id for r, o in zip(results, outcomes, strict=True) if o["repeated"]],
    )
    delivered = [m for s in sessions for m in system.control.messages(sender_id=s.user_id)]
    assert len(delivered) == JOBS
    assert sorted(m["text"] for m in delivered) == sorted(f"message {i}" for i in range(JOBS))
    assert len({(m["sender_id"], m["random_id"]) for m in delivered}) == JOBS

    with system.engine.connect() as conn:
        attempts = conn.execute(
            text(
                "SELECT attempts, count(*) FROM message_outbox "
                "WHERE tenant_id = 'tenant-two-workers' GROUP BY attempts"
            )
        ).all()
    # Every send was tried exactly once: no job ran twice, none was lost.
    assert dict(attempts) == {1: JOBS}
    # Published to the shared queue (not through the producer API's owner routing), the
    # jobs that reached the worker not holding their session were forwarded to the owner.
    forwarded = [
        line
        for worker in workers
        for line in worker.metrics().splitlines()
        if line.startswith("celery_tasks_total") and 'status="forwarded"' in line
    ]
    assert forwarded and all(float(line.rsplit(" ", 1)[1]) > 0 for line in forwarded)

    after = connections_by_user(system)
    stats = system.control.stats()
    assert stats["auth_key_duplicated"] == 0
    for session in sessions:
        opened = after[session.user_id]["connections_opened"]
        opened -= before.get(session.user_id, {}).get("connections_opened", 0)
        # One connection per session for all its 20 jobs: warm clients were reused.
        assert opened == 1, (session, opened)
        assert after[session.user_id]["max_concurrent_connections"] == 1
