"""Per-worker queues, and forwarding a job to the worker that holds its session.

Each worker consumes ``w_<worker_id>_<class>`` for every job class (high, mid, low), even
a worker that serves only ``high`` from the shared queues: the owner of a session must
run every job for it. The queues are durable, carry a message TTL, and dead-letter back
to the shared queue of their class, so a dead owner's jobs return to the pool and are
taken over once its lease expires; deleting or auto-deleting a queue would drop them.
"""

from __future__ import annotations

import re

from kombu import Queue

from integration_service.errors import PermanentError
from integration_service.queues import JOB_QUEUES, TASK_EXCHANGE

HOPS_HEADER = "x-forward-hops"
# No dots: a queue's name is also its routing key, and native delayed delivery binds
# the shared queues with patterns like "#.mid.#"; a dotted name ending in ".mid" (or a
# host name with a "mid" label) would be delivered to the shared queue as well.
_UNSAFE = re.compile(r"[^A-Za-z0-9_@-]")


class ForwardingLoop(PermanentError):
    """A job was forwarded more times than FORWARD_MAX_HOPS allows."""

    code = "forwarding_loop"


def worker_queue_prefix(worker_id: str) -> str:
    """``w_<worker_id>``: what a worker announces in its liveness key."""
    return f"w_{_UNSAFE.sub('_', worker_id)}"


def worker_queue(prefix: str, job_class: str, message_ttl_seconds: int) -> Queue:
    name = f"{prefix}_{job_class}"
    return Queue(
        name,
        # Bound to nothing but the default exchange: only forwarding publishes here.
        routing_key=name,
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": message_ttl_seconds * 1000,
            # A dead instance's queue goes away once unused for long after its messages
            # have all dead-lettered back (TTL), so instances leave no clutter behind.
            "x-expires": max(3600, 10 * message_ttl_seconds) * 1000,
            "x-dead-letter-exchange": TASK_EXCHANGE.name,
            "x-dead-letter-routing-key": f"{job_class}.forwarded",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def worker_queues(worker_id: str, message_ttl_seconds: int) -> list[Queue]:
    prefix = worker_queue_prefix(worker_id)
    return [worker_queue(prefix, c, message_ttl_seconds) for c in JOB_QUEUES]


def job_class_of(routing_key: str | None, default: str) -> str:
    """The job class (high/mid/low) from a delivery's routing key or queue name."""
    if routing_key:
        head = routing_key.split(".", 1)[0]
        if head in JOB_QUEUES:
            return head
        if routing_key.startswith("w_"):
            tail = routing_key.rsplit("_", 1)[-1]
            if tail in JOB_QUEUES:
                return tail
    return default


def next_hop_count(current: object, max_hops: int) -> int:
    """The hop count for one more forward; ForwardingLoop past the bound."""
    try:
        hops = int(current) if current is not None else 0  # type: ignore[call-overload]
    except (TypeError, ValueError):
        hops = 0
    if hops + 1 > max_hops:
        raise ForwardingLoop(f"job forwarded {hops} times already (limit {max_hops})")
    return hops + 1
