"""The session runtime in this process, against the emulator, real Redis and PostgreSQL.

Two runtimes stand for two workers; they share nothing but the real services.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from integration_service.runtime.ownership import OwnedElsewhere
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.sessions.validation import get_state
from integration_service.store import SessionMaterial, StoreError
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return {"SESSION_LOCK_TTL": "3", "SESSION_LOCK_HEARTBEAT": "1", "WORKER_LIVENESS_TTL": "2"}


@pytest.fixture
def runtimes(system: SystemUnderTest) -> Iterator[tuple[SessionRuntime, SessionRuntime]]:
    started = []
    for name in ("rt-a", "rt-b"):
        runtime = SessionRuntime(system.settings, worker_id=name, cipher=system.cipher)
        runtime.start()
        started.append(runtime)
    try:
        yield started[0], started[1]
    finally:
        for runtime in started:
            runtime.stop()


def test_second_runtime_is_told_who_owns_the_session(
    system: SystemUnderTest, runtimes: tuple[SessionRuntime, SessionRuntime]
) -> None:
    a, b = runtimes
    (session,) = system.provision(1)
    with a.session(session.key) as active:
        active.call(get_state)
    with pytest.raises(OwnedElsewhere) as caught, b.session(session.key):
        pass
    assert caught.value.worker_id == "rt-a"
    assert caught.value.queue == "w_rt-a"


def test_stale_owner_write_is_refused_by_the_database(
    system: SystemUnderTest, runtimes: tuple[SessionRuntime, SessionRuntime]
) -> None:
    a, b = runtimes
    (session,) = system.provision(1)
    with a.session(session.key) as active:
        active.call(get_state)
        stale_epoch = active.lease.epoch
    # a's worker "dies": it stops beating, its lease and liveness expire, b takes over.
    a.stop()
    with b.session(session.key) as active:
        active.call(get_state)
        assert active.lease.epoch > stale_epoch
    assert system.store.require(session.key).lease_epoch > stale_epoch
    with pytest.raises(StoreError) as caught:
        system.store.save(
            SessionMaterial(session.key, "user", "failed", stale_epoch, auth_error="stale")
        )
    assert caught.value.code == "stale_epoch"
    assert system.store.require(session.key).state == "authorized"


def test_heartbeat_keeps_a_long_job_lease(
    system: SystemUnderTest, runtimes: tuple[SessionRuntime, SessionRuntime]
) -> None:
    a, _ = runtimes
    (session,) = system.provision(1)
    ttl = system.settings.session_lock_ttl
    with a.session(session.key) as active:
        epoch = active.lease.epoch
        # A job holding the client for over twice the lease TTL.
        active.call(lambda client: _hold(client, seconds=2.5 * ttl), timeout=3 * ttl + 5)
        holder = a.leases.holder(session.key.tenant_id, session.key.app_id)
        assert holder == ("rt-a", epoch)
        active.call(get_state)


async def _hold(client: object, *, seconds: float) -> None:
    # Stands for a slow Telegram call; the heartbeat runs on the same loop meanwhile.
    await asyncio.sleep(seconds)


def test_lost_lease_disconnects_the_client_at_once(
    system: SystemUnderTest, runtimes: tuple[SessionRuntime, SessionRuntime]
) -> None:
    a, _ = runtimes
    (session,) = system.provision(1)
    with a.session(session.key) as active:
        active.call(get_state)
        lease = active.lease
    client = a.pool.peek(session.key)
    assert client is not None and client.client.is_connected()
    # Another worker takes the session over (as after a partition): the epoch moves on.
    lock_key = a.leases.lock_key(session.key.tenant_id, session.key.app_id)
    system.redis.hset(lock_key, mapping={"worker": "intruder", "epoch": lease.epoch + 1})
    wait_for(lambda: a.pool.peek(session.key) is None, timeout=10, what="client evicted")
    assert not client.client.is_connected()
