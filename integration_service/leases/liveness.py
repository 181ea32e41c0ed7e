"""Worker liveness: `worker_alive:{worker_id}` = the worker's own queue, with a TTL.

A lease held by a worker whose liveness key has expired may be stolen at once instead of
waiting out the (longer) lease TTL; a live holder's queue name is where jobs for its
sessions are forwarded.
"""

from __future__ import annotations

from typing import Any

import redis

from integration_service.leases.manager import LeaseUnavailable, liveness_key


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WorkerLiveness:
    """Beats this worker's liveness key and answers whether other workers are alive."""

    def __init__(
        self,
        redis_client: redis.Redis,
        worker_id: str,
        ttl: float,
        *,
        queue: str | None = None,
        key_prefix: str = "",
    ):
        if ttl <= 0:
            raise ValueError("liveness ttl must be positive")
        self._redis = redis_client
        self.worker_id = worker_id
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self.queue = queue or worker_id
        self.key_prefix = key_prefix

    def key(self, worker_id: str) -> str:
        return liveness_key(worker_id, self.key_prefix)

    def beat(self) -> None:
        """Announce this worker alive for another `ttl` seconds; beat well inside the TTL."""
        try:
            self._redis.set(self.key(self.worker_id), self.queue, px=self._ttl_ms)
        except redis.RedisError as error:
            raise LeaseUnavailable("Redis failed during a liveness beat") from error

    def is_alive(self, worker_id: str) -> bool:
        try:
            return bool(self._redis.exists(self.key(worker_id)))
        except redis.RedisError as error:
            raise LeaseUnavailable("Redis failed during a liveness check") from error

    def queue_of(self, worker_id: str) -> str | None:
        """The live worker's own queue (forwarding target), or None if it is not alive."""
        try:
            value = self._redis.get(self.key(worker_id))
        except redis.RedisError as error:
            raise LeaseUnavailable("Redis failed during a liveness check") from error
        return _text(value) if value is not None else None

    def retire(self) -> None:
        """Delete our key on clean shutdown, so our leases can be taken without waiting."""
        try:
            self._redis.delete(self.key(self.worker_id))
        except redis.RedisError as error:
            raise LeaseUnavailable("Redis failed while retiring a worker") from error
