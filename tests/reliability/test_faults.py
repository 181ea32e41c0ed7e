"""Faults under a steady stream of sends and logins: nothing lost, nothing doubled.

Each case ends with the emulator's delivery log compared with what producers were told
(`harness.Workload.settle`): every confirmed send delivered exactly once, no session
driven by two workers (the emulator counts AUTH_KEY_DUPLICATED), every session authorized.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from integration_service.queues import job_queue
from tests.reliability import services
from tests.reliability.harness import Outcome, Workload
from tests.support.processes import wait_for
from tests.support.rabbitmq import peek_dead_letters
from tests.support.system import SystemUnderTest, WorkerProcess, send_kwargs

# The bad-payload case's own poison messages: the one case whose dead letters are expected.
BAD_PAYLOAD_IDS = frozenset({"undecodable", "bad-unknown", "bad-types", "bad-big"})


def record(results: list[dict[str, Any]], case: str, load: str, faults: str, o: Outcome) -> None:
    results.append(
        {
            "case": case,
            "load": load,
            "faults": faults,
            "accepted": o.accepted,
            "refused": o.refused,
            "delivered": o.delivered,
            "lost": o.lost,
            "duplicated": o.duplicated,
            "logins": o.logins,
        }
    )


def progressed(load: Workload, count: int, timeout: float = 60) -> None:
    target = len(load.ledger.accepted) + count
    wait_for(lambda: len(load.ledger.accepted) >= target, timeout=timeout, what="workload")


def assert_clean(system: SystemUnderTest, load: Workload, outcome: Outcome) -> None:
    """Nothing lost or doubled, no key on two connections, every session authorized, no
    dead letter; a failure prints the case's own evidence."""
    problems = []
    if outcome.lost:
        problems.append(f"{outcome.lost} accepted sends lost")
    if outcome.duplicated:
        problems.append(f"{outcome.duplicated} sends delivered twice")
    if not outcome.accepted:
        problems.append("no send was accepted")
    if load.auth_key_duplicated():
        problems.append("an auth key was used on two connections at once")
    if not load.sessions_authorized():
        problems.append("a session is no longer authorized")
    dead = peek_dead_letters(system.env["CELERY_BROKER_URL"])
    if any(d.task_id not in BAD_PAYLOAD_IDS for d in dead):
        problems.append("a job was dead-lettered")
    assert not problems, "; ".join(problems) + "\n" + load.evidence(outcome)


@pytest.fixture
def fleet(system: SystemUnderTest) -> Iterator[list[WorkerProcess]]:
    """The case's workers; stopped when the case ends, whether it passed or not."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        system.stop_worker(worker)


def test_worker_killed_twice(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-kill"
    sessions = system.provision(8, tenant_id=tenant)
    workers = fleet
    workers += [system.start_worker("kill-a"), system.start_worker("kill-b")]
    with Workload(system, tenant, sessions, rate=30) as load:
        for round_ in range(2):
            progressed(load, random.randint(40, 90))
            victim = random.choice([w for w in workers if w.process.poll() is None])
            victim.kill9()
            workers.append(system.start_worker(f"kill-r{round_}"))
        progressed(load, 60)
    outcome = load.settle()
    record(
        results,
        "kill -9 of a worker, twice",
        "30 sends/s + QR logins, 8 sessions",
        "2 x SIGKILL at random moments",
        outcome,
    )
    assert_clean(system, load, outcome)


def test_rabbitmq_restarted(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-amqp"
    sessions = system.provision(6, tenant_id=tenant)
    workers = fleet
    workers += [system.start_worker("amqp-a"), system.start_worker("amqp-b")]
    with Workload(system, tenant, sessions, rate=30) as load:
        progressed(load, 80)
        try:
            services.rabbitmq_stop()
            time.sleep(3)  # the outage itself; producers must see errors meanwhile
        finally:
            services.rabbitmq_start()
        progressed(load, 90, timeout=120)
    outcome = load.settle()
    record(
        results,
        "RabbitMQ restarted",
        "30 sends/s + QR logins, 6 sessions",
        "stop_app / start_app mid-run",
        outcome,
    )
    assert_clean(system, load, outcome)


def test_redis_restarted(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-redis"
    sessions = system.provision(6, tenant_id=tenant)
    workers = fleet
    workers += [system.start_worker("redis-a"), system.start_worker("redis-b")]
    with Workload(system, tenant, sessions, rate=30, logins=False) as load:
        progressed(load, 80)
        try:
            services.redis_stop()
            time.sleep(2)
        finally:
            services.redis_start()
        progressed(load, 120, timeout=120)
    outcome = load.settle()
    record(
        results,
        "Redis restarted (leases lost)",
        "30 sends/s, 6 sessions",
        "shutdown nosave + start",
        outcome,
    )
    assert_clean(system, load, outcome)
    # The lease generation changed, and the new owners' epochs fenced the old ones.
    for session in sessions:
        row = system.store.require(session.key)
        assert row.lease_generation == system.redis.hget("lease_generation", "id").decode()


def test_postgres_down_for_20_seconds(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-pg"
    sessions = system.provision(6, tenant_id=tenant)
    workers = fleet
    workers += [system.start_worker("pg-a"), system.start_worker("pg-b")]
    with Workload(system, tenant, sessions, rate=20, logins=False) as load:
        progressed(load, 60)
        queued_before = len(load.ledger.accepted)
        try:
            services.postgres_stop()
            # Jobs published while the database is away (straight to the queue: the
            # producer API itself needs the database) must retry, not fail.
            held = [
                system.producer.send_task(
                    "tasks.messages.send_message",
                    kwargs=send_kwargs(
                        s, load.recipients[-1 - i], f"{tenant}-held{i}", f"{tenant}-held{i}"
                    ),
                )
                for i, s in enumerate(sessions * 5)
            ]
            time.sleep(20)  # the outage itself
        finally:
            services.postgres_start()
        progressed(load, 60, timeout=120)
    outcome = load.settle(timeout=60)
    record(
        results,
        "PostgreSQL unavailable for 20 s",
        "20 sends/s, 6 sessions",
        "cluster stopped 20 s",
        outcome,
    )
    assert_clean(system, load, outcome)
    assert queued_before > 0 and len(held) == 5 * len(sessions)
    held_texts = [f"{tenant}-held{i}" for i in range(5 * len(sessions))]

    def held_delivered() -> bool:
        delivered = load.delivered_texts()
        return all(delivered[text] >= 1 for text in held_texts)

    # The held jobs retry on the worker's database circuit, whose cool-down grows to 30 s
    # over a 20 s outage: the last of them may come back that long after the database.
    try:
        wait_for(held_delivered, timeout=90, interval=0.5, what="held jobs delivered")
    except TimeoutError:
        pass  # the assertion below says which
    delivered = load.delivered_texts()
    wrong = {text: delivered[text] for text in held_texts if delivered[text] != 1}
    assert not wrong, f"held jobs not delivered exactly once: {wrong}\n{load.evidence(outcome)}"
    metrics = "".join(w.metrics() for w in workers)
    assert 'circuit_trips_total{circuit="database"}' in metrics
    assert 'circuit_open{circuit="database"} 0.0' in metrics


def test_connections_dropped_and_slow_responses(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-net"
    sessions = system.provision(6, tenant_id=tenant)
    workers = fleet
    workers += [system.start_worker("net-a"), system.start_worker("net-b")]
    with Workload(system, tenant, sessions, rate=20) as load:
        progressed(load, 60)
        system.control.call("POST", "/connections/drop")
        for s in sessions:
            system.control.inject_fault(user_id=s.user_id, kind="slow", delay=0.5, count=None)
        progressed(load, 60)
        system.control.call("POST", "/connections/drop")
        progressed(load, 60)
        system.control.call("DELETE", "/faults")
    outcome = load.settle()
    record(
        results,
        "emulator connections dropped, 500 ms latency",
        "20 sends/s + QR logins",
        "2 x drop all connections, +500 ms per call",
        outcome,
    )
    assert_clean(system, load, outcome)


def test_flood_on_one_session_does_not_slow_the_others(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-flood"
    sessions = system.provision(6, tenant_id=tenant)
    flooded = sessions[0]
    workers = fleet
    workers += [system.start_worker("flood-a"), system.start_worker("flood-b")]
    system.control.inject_fault(
        user_id=flooded.user_id,
        kind="flood_wait",
        method="messages.sendMessage",
        seconds=5,
        count=None,
    )
    with Workload(system, tenant, sessions, rate=20, logins=False) as load:
        progressed(load, 80)
        flood_window_end = time.time()
    others = {s.user_id for s in sessions[1:]}

    # While the flood lasted, the other sessions' sends went out as they came.
    def others_caught_up() -> bool:
        sent = [m for uid in others for m in system.control.messages(sender_id=uid)]
        return (
            len(sent)
            >= len([k for i, k in enumerate(load.ledger.accepted) if i % len(sessions) != 0]) - 5
        )

    wait_for(others_caught_up, timeout=30, what="other sessions unaffected")
    assert time.time() - flood_window_end < 30
    system.control.call("DELETE", "/faults")
    outcome = load.settle(timeout=60)
    record(
        results,
        "FloodWait flood on one session",
        "20 sends/s, 6 sessions",
        "FLOOD_WAIT_5 on every send of one account",
        outcome,
    )
    assert_clean(system, load, outcome)


def test_bad_payloads_are_dead_lettered_and_crash_nothing(
    system: SystemUnderTest, results: list[dict[str, Any]], fleet: list[WorkerProcess]
) -> None:
    tenant = "rel-bad"
    sessions = system.provision(3, tenant_id=tenant)
    workers = fleet
    workers += [system.start_worker("bad-a")]
    broker = system.env["CELERY_BROKER_URL"]
    bad = {
        "not-json": (b"\xff\x00 this is not json", "application/json", {}),
        "unknown-task": (
            json.dumps([[], {}, {}]).encode(),
            "application/json",
            {"task": "tasks.nope", "id": "bad-unknown", "lang": "py"},
        ),
        "wrong-types": (
            json.dumps(
                [
                    [],
                    {"tenant_id": 12, "app_id": [], "peer": None, "text": 5, "idempotency_key": {}},
                    {},
                ]
            ).encode(),
            "application/json",
            {"task": "tasks.messages.send_message", "id": "bad-types", "lang": "py"},
        ),
        "oversized": (
            json.dumps(
                [
                    [],
                    {
                        "tenant_id": tenant,
                        "app_id": sessions[0].key.app_id,
                        "peer": "@someone",
                        "text": "x" * 5_000_000,
                        "idempotency_key": "big",
                    },
                    {},
                ]
            ).encode(),
            "application/json",
            {"task": "tasks.messages.send_message", "id": "bad-big", "lang": "py"},
        ),
    }
    with Connection(broker) as conn:
        producer = conn.Producer()
        for body, content_type, headers in bad.values():
            producer.publish(
                body,
                exchange="tasks",
                routing_key="mid.bad",
                content_type=content_type,
                content_encoding="utf-8",
                headers=headers,
                declare=[job_queue("mid")],
            )
    with Workload(system, tenant, sessions, rate=10, logins=False) as load:
        progressed(load, 40)
    outcome = load.settle()
    found: dict[str, Any] = {}

    def all_dead_lettered() -> bool:
        found.clear()
        found.update({d.task_id: d.reason for d in peek_dead_letters(broker)})
        return len(found) >= len(bad)

    wait_for(all_dead_lettered, timeout=30, interval=0.5, what="bad messages dead-lettered")
    record(
        results,
        "malformed and oversized payloads",
        "10 sends/s, 3 sessions",
        "4 bad messages published past the producer",
        outcome,
    )
    assert set(found) == BAD_PAYLOAD_IDS, f"{found}\n{load.evidence(outcome)}"
    assert found["undecodable"] == "rejected" and found["bad-unknown"] == "rejected", found
    assert "tenant_id" in str(found["bad-types"]) and "text" in str(found["bad-big"]), found
    assert workers[0].process.poll() is None, f"the worker crashed\n{load.evidence(outcome)}"
    assert_clean(system, load, outcome)
