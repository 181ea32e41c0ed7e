"""Per-worker queues, and forwarding a job to the worker that holds its session.

Each worker consumes ``w_<worker_id>_<class>`` for every job class (high, mid, low), even
a worker that serves only ``high`` from the shared queues: the owner of a session must
run every job for it. The queues are durable, carry a message TTL, and dead-letter back
to the shared queue of their class, so a dead owner's jobs return to the pool and are
taken over once its lease expires; deleting or auto-deleting a queue would drop them.
"""

from __future__ import annotations

from integration_service.errors import RetryableError
from integration_service.queues import JOB_QUEUES

# Declared with the rest of the topology (the producer routes to them without importing
# the worker runtime); re-exported for the runtime.
from integration_service.queues import worker_queue as worker_queue
from integration_service.queues import worker_queue_prefix as worker_queue_prefix
from integration_service.queues import worker_queues as worker_queues

HOPS_HEADER = "x-forward-hops"
# A job that bounced FORWARD_MAX_HOPS times waits this long, then starts over.
FORWARD_DEFER_SECONDS = 5.0


class ForwardingLoop(RetryableError):
    """A job was forwarded more times than FORWARD_MAX_HOPS allows.

    Usually its owner is alive but not consuming (every thread busy with calls that hang
    after dropped connections), so the forwarded copy expired back (WORKER_QUEUE_MESSAGE_TTL)
    again and again. Failing it would lose the job (seen in the reliability suite: four
    sends dead-lettered), so it is deferred and starts over with no hops: by then the
    owner has caught up, or its lease has expired and whoever runs it claims the session.
    A true loop is still bounded, by the task's max_deferrals, then dead-lettered.
    """

    code = "forwarding_loop"

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            retry_after=FORWARD_DEFER_SECONDS,
            counts_against_limit=False,
            retry_headers={HOPS_HEADER: 0},
        )


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
