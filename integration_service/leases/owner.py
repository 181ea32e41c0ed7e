"""Where a session's jobs should go: the live lease holder's own queue, if it has one.

Producers ask before publishing, so a job for a warm session goes straight to the worker
that holds it instead of through a shared queue and a forwarding hop (a whole extra
Celery task run). The answer is only a hint, read without a lease: if the holder dies or
the lease moves before the job runs, the per-worker queue's message TTL returns the job
to its shared queue, and a worker that is not the owner forwards it
(runtime/forwarding.py).
"""

from __future__ import annotations

import redis

from integration_service.leases.manager import liveness_key, lock_key


def owner_queue_prefix(
    redis_client: redis.Redis, tenant_id: str, app_id: str, *, key_prefix: str = ""
) -> str | None:
    """``w_<worker_id>`` of the live worker holding the session's lease, else None.

    Two reads, the second named by the first: no script, so it stays valid on a Redis
    Cluster (a script must declare every key it touches).
    """
    worker = redis_client.hget(lock_key(tenant_id, app_id, key_prefix), "worker")
    if worker is None:
        return None
    worker_id = worker.decode() if isinstance(worker, bytes) else str(worker)
    queue = redis_client.get(liveness_key(worker_id, key_prefix))
    if queue is None:
        return None
    return queue.decode() if isinstance(queue, bytes) else str(queue)
