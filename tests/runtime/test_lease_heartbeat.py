"""LeaseHeartbeat on an asyncio loop against the real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from integration_service.leases import Lease, LeaseHeartbeat, LeaseManager, WorkerLiveness
from tests.support.openbao import free_port


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def manager(redis_client: redis.Redis, key_prefix: str, worker: str, ttl: float) -> LeaseManager:
    return LeaseManager(redis_client, worker, ttl, key_prefix=key_prefix)


def test_heartbeat_keeps_a_lease_alive_past_several_ttls(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=1.0)
    rival = manager(redis_client, key_prefix, "worker-b", ttl=1.0)
    lost: list[Lease] = []

    async def scenario() -> None:
        lease = owner.acquire("t", "a")
        assert lease is not None
        heartbeat = LeaseHeartbeat(owner, interval=0.25, on_lost=lost.append)
        heartbeat.track(lease)
        heartbeat.start()
        try:
            # Watch for 3.5 TTLs: the rival must be refused the whole time.
            deadline = time.monotonic() + 3.5
            while time.monotonic() < deadline:
                assert rival.acquire("t", "a") is None
                assert owner.holder("t", "a") == ("worker-a", lease.epoch)
                await asyncio.sleep(0.1)
        finally:
            await heartbeat.stop(release=True)
        assert owner.holder("t", "a") is None  # stop(release=True) let go of it

    asyncio.run(scenario())
    assert lost == []


def test_takeover_fires_on_lost_and_drops_the_lease(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=30)
    rival = manager(redis_client, key_prefix, "worker-b", ttl=30)
    lost: list[Lease] = []

    async def on_lost(lease: Lease) -> None:
        lost.append(lease)

    async def scenario() -> None:
        kept = owner.acquire("t", "kept")
        taken = owner.acquire("t", "taken")
        assert kept is not None and taken is not None
        heartbeat = LeaseHeartbeat(owner, interval=5, on_lost=on_lost)
        heartbeat.track(kept)
        heartbeat.track(taken)
        redis_client.delete(owner.lock_key("t", "taken"))  # as if it expired
        assert rival.acquire("t", "taken") is not None
        assert await heartbeat.beat_once()
        await heartbeat.stop()
        assert heartbeat.leases() == [kept]

    asyncio.run(scenario())
    assert [lease.app_id for lease in lost] == ["taken"]


def test_running_heartbeat_notices_a_takeover_within_one_interval(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=2)
    rival = manager(redis_client, key_prefix, "worker-b", ttl=2)

    async def scenario() -> float:
        noticed = asyncio.Event()
        lease = owner.acquire("t", "a")
        assert lease is not None
        heartbeat = LeaseHeartbeat(owner, interval=0.2, on_lost=lambda _: noticed.set())
        heartbeat.track(lease)
        heartbeat.start()
        redis_client.delete(owner.lock_key("t", "a"))
        assert rival.acquire("t", "a") is not None
        started = time.monotonic()
        await asyncio.wait_for(noticed.wait(), timeout=3)
        await heartbeat.stop()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_untracked_lease_is_never_reported_lost(redis_client: redis.Redis, key_prefix: str) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=30)
    lost: list[Lease] = []

    async def scenario() -> None:
        lease = owner.acquire("t", "a")
        assert lease is not None
        heartbeat = LeaseHeartbeat(owner, interval=5, on_lost=lost.append)
        heartbeat.track(lease)
        assert heartbeat.untrack(lease)
        assert owner.release(lease)
        assert await heartbeat.beat_once()
        assert not heartbeat.untrack(lease)

    asyncio.run(scenario())
    assert lost == []


def test_unreachable_redis_loses_leases_only_when_they_may_have_expired() -> None:
    # No client-side retries: redis-py's default backoff would only slow the test down.
    closed = redis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    cut_off = LeaseManager(closed, "worker-a", ttl=10)
    lost: list[Lease] = []
    before = counter("session_lock_lost_total", reason="unreachable")

    async def scenario() -> None:
        heartbeat = LeaseHeartbeat(cut_off, interval=2, retry_interval=0.5, on_lost=lost.append)
        fresh = Lease("t", "fresh", "worker-a", 1)
        expiring = Lease("t", "expiring", "worker-a", 1)
        heartbeat.track(fresh)
        heartbeat.track(expiring, acquired_at=time.monotonic() - 9.8)
        assert not await heartbeat.beat_once()
        assert heartbeat.leases() == [fresh]

    asyncio.run(scenario())
    assert [lease.app_id for lease in lost] == ["expiring"]
    assert counter("session_lock_lost_total", reason="unreachable") - before == 1


def test_heartbeat_beats_liveness_and_survives_a_failing_callback(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=30)
    rival = manager(redis_client, key_prefix, "worker-b", ttl=30)
    liveness = WorkerLiveness(redis_client, "worker-a", ttl=5, key_prefix=key_prefix)

    def broken(_: Lease) -> None:
        raise RuntimeError("callback bug")

    async def scenario() -> None:
        first = owner.acquire("t", "one")
        second = owner.acquire("t", "two")
        assert first is not None and second is not None
        heartbeat = LeaseHeartbeat(owner, interval=5, on_lost=broken, liveness=liveness)
        heartbeat.track(first)
        heartbeat.track(second)
        for app in ("one", "two"):
            redis_client.delete(owner.lock_key("t", app))
            assert rival.acquire("t", app) is not None
        assert await heartbeat.beat_once()
        assert heartbeat.leases() == []
        assert liveness.is_alive("worker-a")

    asyncio.run(scenario())


def test_interval_must_fit_twice_in_the_ttl(redis_client: redis.Redis, key_prefix: str) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=10)
    with pytest.raises(ValueError, match="half"):
        LeaseHeartbeat(owner, interval=6, on_lost=lambda _: None)


def test_holds_is_true_only_for_the_tracked_lease_of_its_session(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    owner = manager(redis_client, key_prefix, "worker-a", ttl=5.0)
    lease = owner.acquire("t", "held")
    other = owner.acquire("t", "other")
    assert lease is not None and other is not None
    heartbeat = LeaseHeartbeat(owner, interval=1.0, on_lost=lambda _lease: None)
    heartbeat.track(lease)
    assert heartbeat.holds(lease)
    assert not heartbeat.holds(other)  # never tracked
    older = Lease(lease.tenant_id, lease.app_id, lease.worker_id, lease.epoch - 1)
    assert not heartbeat.holds(older)  # same session, another epoch
    heartbeat.untrack(lease)
    assert not heartbeat.holds(lease)
    owner.release(lease)
    owner.release(other)
