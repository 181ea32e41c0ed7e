"""Who drives a session: this worker (with a lease), another live worker, or nobody yet.

Exactly one worker may hold a session's Telegram client at a time (DESIGN.md, "Session
ownership"). A job either runs here under our lease, or learns which live worker holds
the session so it can be forwarded there.
"""

from __future__ import annotations

from dataclasses import dataclass

from integration_service.errors import RetryableError, ServiceError
from integration_service.leases import Lease, LeaseManager, WorkerLiveness
from integration_service.store import SessionKey


class OwnedElsewhere(ServiceError):
    """Another live worker holds the session; forward the job to ``queue``.

    Internal control flow (errors.py): SessionTask catches it and forwards the job; it
    fails a job only when raised outside one (neither branch: not retried).
    """

    code = "owned_elsewhere"

    def __init__(self, worker_id: str, queue: str) -> None:
        super().__init__(f"session held by live worker {worker_id}")
        self.worker_id = worker_id
        self.queue = queue


class OwnershipContended(RetryableError):
    """The lease changed hands while we looked (or is in quarantine); try again shortly."""

    code = "lease_contended"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)


@dataclass
class SessionOwnership:
    """Claims session leases for this worker, stealing only from dead holders."""

    leases: LeaseManager
    liveness: WorkerLiveness

    @property
    def worker_id(self) -> str:
        return self.leases.worker_id

    def claim(self, key: SessionKey, *, min_epoch: int = 0) -> Lease:
        """Our lease on ``key`` (new or already held), or OwnedElsewhere.

        ``min_epoch`` is the epoch stored in the database: after Redis lost its counters,
        new epochs still come out above every epoch the database has seen.
        """
        lease = self.leases.steal_if_dead(key.tenant_id, key.app_id, min_epoch=min_epoch)
        if lease is not None:
            return lease
        holder = self.leases.holder(key.tenant_id, key.app_id)
        if holder is None:
            raise OwnershipContended(f"lease of {key} was released while claiming it")
        worker_id, _epoch = holder
        queue = self.liveness.queue_of(worker_id)
        if queue is None:
            # Its liveness key expired between the two calls: next attempt steals it.
            raise OwnershipContended(f"holder of {key} stopped beating while claiming it")
        raise OwnedElsewhere(worker_id, queue)
