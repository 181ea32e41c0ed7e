"""Session leases in Redis: exactly one worker holds a session's Telegram client.

A lease is `(worker_id, epoch)` stored at `session_lock:{tenant_id}:{app_id}` with a TTL.
The epoch is a fencing token from `session_epoch:{tenant_id}:{app_id}`, a counter that
never expires, so epochs only grow while Redis keeps its data. After a Redis restart
without persistence the counter starts again from zero; that is why the database fences
too (it refuses a write with an epoch older than the newest it stored) and why `acquire`
takes `min_epoch`: the caller passes the newest epoch the database holds, and the new
epoch is max(counter, min_epoch) + 1.

The manager is synchronous and thread-safe (redis-py's pool), so Celery task threads and
the asyncio heartbeat (through an executor) share one implementation of the scripts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT

from integration_service.errors import RetryableError
from integration_service.leases import scripts
from integration_service.leases.metrics import (
    PROMETHEUS_LEASE_METRICS,
    LeaseMetrics,
    Operation,
)


class LeaseError(RetryableError):
    """Root of lease failures: the lease store misbehaved, so the job retries."""

    code = "lease_error"


class LeaseUnavailable(LeaseError):
    """Redis could not be reached or failed; retry later (a held lease may be lost)."""

    code = "lease_unavailable"


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that `worker_id` held the session at `epoch`; the epoch fences DB writes."""

    tenant_id: str
    app_id: str
    worker_id: str
    epoch: int
    # True when this call took the lease away from a worker presumed dead.
    stolen: bool = False

    @property
    def session(self) -> tuple[str, str]:
        return (self.tenant_id, self.app_id)


def lock_key(tenant_id: str, app_id: str, key_prefix: str = "") -> str:
    """The session's lease hash (``worker``, ``epoch``)."""
    for part in (tenant_id, app_id):
        if not part or ":" in str(part):
            # A colon would let ("a:b", "c") and ("a", "b:c") share one lease.
            raise ValueError("tenant_id and app_id must be non-empty and free of ':'")
    return f"{key_prefix}session_lock:{tenant_id}:{app_id}"


def liveness_key(worker_id: str, key_prefix: str = "") -> str:
    """The worker's liveness key; its value is the worker's own queue prefix."""
    return f"{key_prefix}worker_alive:{worker_id}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class LeaseManager:
    """Acquire, renew and release session leases for one worker."""

    def __init__(
        self,
        redis_client: redis.Redis,
        worker_id: str,
        ttl: float,
        metrics: LeaseMetrics | None = None,
        *,
        key_prefix: str = "",
    ):
        if ttl <= 0:
            raise ValueError("lease ttl must be positive")
        self._redis = redis_client
        self.worker_id = worker_id
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self.metrics = metrics if metrics is not None else PROMETHEUS_LEASE_METRICS
        # A prefix lets tests and benchmarks share one Redis without touching real leases.
        self.key_prefix = key_prefix
        self._acquire = redis_client.register_script(scripts.ACQUIRE)
        self._steal = redis_client.register_script(scripts.STEAL)
        self._renew = redis_client.register_script(scripts.RENEW)
        self._release = redis_client.register_script(scripts.RELEASE)

    def lock_key(self, tenant_id: str, app_id: str) -> str:
        return lock_key(tenant_id, app_id, self.key_prefix)

    def epoch_key(self, tenant_id: str, app_id: str) -> str:
        self.lock_key(tenant_id, app_id)
        return f"{self.key_prefix}session_epoch:{tenant_id}:{app_id}"

    def liveness_key(self, worker_id: str) -> str:
        return liveness_key(worker_id, self.key_prefix)

    @contextmanager
    def _timed(self, operation: Operation) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except redis.RedisError as error:
            raise LeaseUnavailable(f"Redis failed during lease {operation}") from error
        finally:
            self.metrics.observe(operation, time.perf_counter() - started)

    def acquire(self, tenant_id: str, app_id: str, *, min_epoch: int = 0) -> Lease | None:
        """Take the lease if free (new epoch) or already ours (same epoch, TTL refreshed).

        `min_epoch` is the newest epoch the database stored for the session: the epoch
        counter survives lease expiry but not a Redis restart without persistence, so the
        new epoch is max(counter, min_epoch) + 1 and a re-entrant lease below the floor is
        replaced by a fresh epoch. None when another worker holds it; see `steal_if_dead`.
        """
        keys = [self.lock_key(tenant_id, app_id), self.epoch_key(tenant_id, app_id)]
        with self._timed("acquire"):
            epoch, status = self._acquire(keys=keys, args=[self.worker_id, self._ttl_ms, min_epoch])
        if status == scripts.STATUS_HELD_BY_OTHER:
            return None
        if status == scripts.STATUS_ACQUIRED:
            self.metrics.acquired()
        return Lease(str(tenant_id), str(app_id), self.worker_id, int(epoch))

    def steal_if_dead(self, tenant_id: str, app_id: str, *, min_epoch: int = 0) -> Lease | None:
        """Acquire, or take over a lease whose holder's liveness key has expired.

        None only while the holder is alive (its `worker_alive:` key exists): forward the
        job to that worker's queue. Workers must therefore beat `WorkerLiveness`.
        """
        lease = self.acquire(tenant_id, app_id, min_epoch=min_epoch)
        if lease is not None:
            return lease
        seen = self.holder(tenant_id, app_id)
        if seen is None:
            return self.acquire(tenant_id, app_id, min_epoch=min_epoch)
        holder_id, holder_epoch = seen
        keys = [
            self.lock_key(tenant_id, app_id),
            self.epoch_key(tenant_id, app_id),
            self.liveness_key(holder_id),
        ]
        args: list[EncodableT] = [self.worker_id, self._ttl_ms, min_epoch, holder_id, holder_epoch]
        with self._timed("steal"):
            epoch, status = self._steal(keys=keys, args=args)
        if status == scripts.STATUS_HELD_BY_OTHER:
            return None
        self.metrics.acquired()
        stolen = status == scripts.STATUS_STOLEN
        if stolen:
            self.metrics.stolen()
        return Lease(str(tenant_id), str(app_id), self.worker_id, int(epoch), stolen=stolen)

    def renew(self, lease: Lease) -> bool:
        """Refresh the TTL if the lease is still ours at the same epoch; False means lost."""
        # One script call, not a one-item pipeline: a pipeline costs a second round of work.
        with self._timed("renew"):
            answer = self._renew(
                keys=[self.lock_key(lease.tenant_id, lease.app_id)],
                args=[lease.worker_id, lease.epoch, self._ttl_ms],
            )
        if int(answer) != 1:
            self.metrics.lost("taken_over")
            return False
        return True

    def renew_many(self, leases: Sequence[Lease]) -> list[bool]:
        """Renew many leases in one round trip; result i answers lease i."""
        if not leases:
            return []
        with self._timed("renew"):
            pipeline = self._redis.pipeline(transaction=False)
            for lease in leases:
                self._renew(
                    keys=[self.lock_key(lease.tenant_id, lease.app_id)],
                    args=[lease.worker_id, lease.epoch, self._ttl_ms],
                    client=pipeline,
                )
            answers = pipeline.execute()
        renewed = [int(answer) == 1 for answer in answers]
        for ok in renewed:
            if not ok:
                self.metrics.lost("taken_over")
        return renewed

    def release(self, lease: Lease) -> bool:
        """Delete the lease if still ours at the same epoch; False if it was already gone."""
        with self._timed("release"):
            answer = self._release(
                keys=[self.lock_key(lease.tenant_id, lease.app_id)],
                args=[lease.worker_id, lease.epoch],
            )
        if int(answer) == 1:
            self.metrics.released()
            return True
        return False

    def release_many(self, leases: Sequence[Lease]) -> list[bool]:
        """Release many leases in one round trip (worker shutdown); result i answers lease i."""
        if not leases:
            return []
        with self._timed("release"):
            pipeline = self._redis.pipeline(transaction=False)
            for lease in leases:
                self._release(
                    keys=[self.lock_key(lease.tenant_id, lease.app_id)],
                    args=[lease.worker_id, lease.epoch],
                    client=pipeline,
                )
            answers = pipeline.execute()
        released = [int(answer) == 1 for answer in answers]
        for ok in released:
            if ok:
                self.metrics.released()
        return released

    def holder(self, tenant_id: str, app_id: str) -> tuple[str, int] | None:
        """(worker_id, epoch) of the current holder, or None when nobody holds the lease."""
        with self._timed("holder"):
            worker, epoch = self._redis.hmget(self.lock_key(tenant_id, app_id), "worker", "epoch")
        if worker is None or epoch is None:
            return None
        return _text(worker), int(_text(epoch))

    def last_epoch(self, tenant_id: str, app_id: str) -> int:
        """The newest epoch ever issued for the session (0 if none)."""
        try:
            value = self._redis.get(self.epoch_key(tenant_id, app_id))
        except redis.RedisError as error:
            raise LeaseUnavailable("Redis failed while reading an epoch") from error
        return int(_text(value)) if value is not None else 0
