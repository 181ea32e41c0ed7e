"""Session leases against the real Redis on 127.0.0.1:6379, each test in its own key prefix."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from integration_service.leases import Lease, LeaseManager, LeaseUnavailable, WorkerLiveness
from tests.support.openbao import free_port

MakeManager = Callable[..., LeaseManager]


@pytest.fixture
def make_manager(redis_client: redis.Redis, key_prefix: str) -> MakeManager:
    def make(worker_id: str, ttl: float = 30.0) -> LeaseManager:
        return LeaseManager(redis_client, worker_id, ttl, key_prefix=key_prefix)

    return make


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_acquire_renew_release(make_manager: MakeManager) -> None:
    acquired_before = counter("session_lock_acquired_total")
    released_before = counter("session_lock_released_total")
    manager = make_manager("worker-a")
    lease = manager.acquire("tenant-1", "app-1")
    assert lease == Lease("tenant-1", "app-1", "worker-a", 1)
    assert manager.holder("tenant-1", "app-1") == ("worker-a", 1)
    # Re-entry keeps the epoch: the fencing token moves only when the holder changes.
    assert manager.acquire("tenant-1", "app-1") == lease
    assert manager.renew(lease)
    assert manager.release(lease)
    assert manager.holder("tenant-1", "app-1") is None
    assert not manager.release(lease)
    assert not manager.renew(lease)
    assert counter("session_lock_acquired_total") - acquired_before == 1
    assert counter("session_lock_released_total") - released_before == 1
    assert counter("session_lock_operation_seconds_count", operation="acquire") > 0


def test_lease_sets_a_ttl_and_the_epoch_counter_never_expires(
    make_manager: MakeManager, redis_client: redis.Redis
) -> None:
    manager = make_manager("worker-a", ttl=30)
    manager.acquire("t", "a")
    lock_ttl = redis_client.pttl(manager.lock_key("t", "a"))
    assert 0 < lock_ttl <= 30_000
    assert redis_client.pttl(manager.epoch_key("t", "a")) == -1


def test_another_worker_cannot_take_a_held_lease(make_manager: MakeManager) -> None:
    first, second = make_manager("worker-a"), make_manager("worker-b")
    lease = first.acquire("t", "a")
    assert lease is not None
    assert second.acquire("t", "a") is None
    assert not second.release(Lease("t", "a", "worker-b", lease.epoch))
    assert first.holder("t", "a") == ("worker-a", lease.epoch)


def test_twenty_threads_of_two_workers_race_for_one_session(make_manager: MakeManager) -> None:
    managers = [make_manager("worker-a"), make_manager("worker-b")]
    for round_number in range(5):
        session = ("tenant-race", f"app-{round_number}")
        start = threading.Barrier(20)

        def contend(
            index: int, session: tuple[str, str] = session, start: threading.Barrier = start
        ) -> Lease | None:
            start.wait(timeout=10)
            return managers[index % 2].acquire(*session)

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(contend, range(20)))
        winners = {(lease.worker_id, lease.epoch) for lease in results if lease is not None}
        assert len(winners) == 1, winners
        (worker, epoch) = winners.pop()
        assert epoch == 1
        assert managers[0].holder(*session) == (worker, 1)
        # Every thread of the winning worker re-entered; every other thread was refused.
        successes = sum(lease is not None for lease in results)
        assert successes == 10


def test_epoch_strictly_increases_across_holders(make_manager: MakeManager) -> None:
    managers = [make_manager("worker-a"), make_manager("worker-b")]
    epochs = []
    for turn in range(6):
        lease = managers[turn % 2].acquire("t", "a")
        assert lease is not None
        epochs.append(lease.epoch)
        assert managers[turn % 2].release(lease)
    assert epochs == sorted(set(epochs))
    assert managers[0].last_epoch("t", "a") == epochs[-1]


def test_min_epoch_floor_from_the_database(make_manager: MakeManager) -> None:
    manager = make_manager("worker-a")
    # Redis lost its counter but the database has seen epoch 41: the next must exceed it.
    lease = manager.acquire("t", "a", min_epoch=41)
    assert lease is not None and lease.epoch == 42
    assert manager.release(lease)
    # A floor below the counter changes nothing.
    again = manager.acquire("t", "a", min_epoch=10)
    assert again is not None and again.epoch == 43
    # Re-entry with a floor above our epoch: someone newer wrote to the database, so we
    # must not keep fencing with the old epoch.
    bumped = manager.acquire("t", "a", min_epoch=50)
    assert bumped is not None and bumped.epoch == 51
    assert not manager.renew(again)
    assert manager.renew(bumped)


def test_renew_fails_once_another_worker_took_over(
    make_manager: MakeManager, redis_client: redis.Redis
) -> None:
    lost_before = counter("session_lock_lost_total", reason="taken_over")
    first, second = make_manager("worker-a"), make_manager("worker-b")
    old = first.acquire("t", "a")
    assert old is not None
    redis_client.delete(first.lock_key("t", "a"))  # as if the TTL ran out
    new = second.acquire("t", "a")
    assert new is not None and new.epoch > old.epoch
    assert first.renew_many([old]) == [False]
    assert not first.release(old)
    assert second.holder("t", "a") == ("worker-b", new.epoch)
    assert counter("session_lock_lost_total", reason="taken_over") - lost_before == 1


def test_ttl_expiry_lets_another_worker_acquire(make_manager: MakeManager) -> None:
    first, second = make_manager("worker-a", ttl=1.0), make_manager("worker-b", ttl=1.0)
    started = time.monotonic()
    old = first.acquire("t", "a")
    assert old is not None
    assert second.acquire("t", "a") is None
    taken: list[Lease] = []

    def second_takes_it() -> bool:
        lease = second.acquire("t", "a")
        if lease is not None:
            taken.append(lease)
        return lease is not None

    assert wait_until(second_takes_it, timeout=5)
    assert time.monotonic() - started >= 0.9
    assert taken[0].epoch == old.epoch + 1
    assert not first.renew(old)


def test_liveness_key_expires_without_beats(redis_client: redis.Redis, key_prefix: str) -> None:
    liveness = WorkerLiveness(
        redis_client, "worker-a", ttl=1.0, queue="worker.worker-a", key_prefix=key_prefix
    )
    observer = WorkerLiveness(redis_client, "worker-b", ttl=1.0, key_prefix=key_prefix)
    assert not observer.is_alive("worker-a")
    liveness.beat()
    assert observer.is_alive("worker-a")
    assert observer.queue_of("worker-a") == "worker.worker-a"
    assert wait_until(lambda: not observer.is_alive("worker-a"), timeout=5)
    assert observer.queue_of("worker-a") is None


def test_steal_only_from_a_dead_holder(
    make_manager: MakeManager, redis_client: redis.Redis, key_prefix: str
) -> None:
    steals_before = counter("session_lock_steal_total")
    first, second = make_manager("worker-a"), make_manager("worker-b")
    first_alive = WorkerLiveness(redis_client, "worker-a", ttl=30, key_prefix=key_prefix)
    first_alive.beat()
    old = first.acquire("t", "a")
    assert old is not None
    assert second.steal_if_dead("t", "a") is None  # alive holder: forward, don't steal
    first_alive.retire()  # the worker died (or shut down) before its lease expired
    stolen = second.steal_if_dead("t", "a", min_epoch=5)
    assert stolen is not None and stolen.stolen
    assert stolen.epoch == 6
    assert not first.renew(old)
    assert counter("session_lock_steal_total") - steals_before == 1
    # A free session is simply acquired by steal_if_dead, not counted as a steal.
    assert second.release(stolen)
    plain = second.steal_if_dead("t", "a")
    assert plain is not None and not plain.stolen
    assert counter("session_lock_steal_total") - steals_before == 1


def test_session_ids_with_a_colon_are_refused(make_manager: MakeManager) -> None:
    with pytest.raises(ValueError, match="':'"):
        make_manager("worker-a").acquire("tenant:1", "app")


def test_unreachable_redis_raises_a_retryable_error() -> None:
    # No client-side retries: redis-py's default backoff would only slow the test down.
    closed = redis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    manager = LeaseManager(closed, "worker-a", 30)
    with pytest.raises(LeaseUnavailable) as caught:
        manager.acquire("t", "a")
    assert caught.value.retryable
    with pytest.raises(LeaseUnavailable):
        manager.renew(Lease("t", "a", "worker-a", 1))
    with pytest.raises(LeaseUnavailable):
        WorkerLiveness(closed, "worker-a", 30).beat()
