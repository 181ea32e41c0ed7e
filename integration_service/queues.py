"""Queue topology: one topic exchange, three job classes, one dead-letter queue.

Choices (explained in docs/ARCHITECTURE.md): quorum queues, because they survive a
broker restart with publisher confirms, and their ``x-delivery-limit`` dead-letters a
poison message that keeps killing workers instead of redelivering it forever; no
priorities (classic-queue priorities do not exist on quorum queues before RabbitMQ 4.0,
and separate queues with their own consumers serve interactive logins first anyway).
"""

from __future__ import annotations

import re

from kombu import Connection, Exchange, Queue

TASK_EXCHANGE = Exchange("tasks", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("dead_letter", type="fanout", durable=True)

HIGH, MID, LOW = "high", "mid", "low"
JOB_QUEUES = (HIGH, MID, LOW)
DEAD_LETTER_QUEUE = "dead_letter"

# Redeliveries of one message before the broker dead-letters it (worker crashes count).
DELIVERY_LIMIT = 5

# Which queue each job family goes to (task name prefix -> queue).
ROUTES_BY_FAMILY: dict[str, str] = {
    "tasks.connect.": HIGH,
    "tasks.messages.": MID,
    "tasks.reconnect.": MID,
    "tasks.validation.": LOW,
    "tasks.maintenance.": LOW,
    # First match wins: a tenant waits for a connect; refreshes and their sweep are low.
    "tasks.channels.connect": MID,
    "tasks.channels.": LOW,
}


def job_queue(name: str) -> Queue:
    """A durable quorum queue bound to the topic exchange under ``<name>.#``."""
    return Queue(
        name,
        exchange=TASK_EXCHANGE,
        routing_key=f"{name}.#",
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            # at-least-once dead-lettering (RabbitMQ >= 3.10) never drops a message
            # between the source queue and the dead-letter queue.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_letter_queue() -> Queue:
    """Jobs that failed for good, with the reason in their headers; never consumed by workers."""
    return Queue(
        DEAD_LETTER_QUEUE,
        exchange=DEAD_LETTER_EXCHANGE,
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def consumed_queues() -> tuple[Queue, ...]:
    """The queues workers consume (Celery's ``task_queues``)."""
    return tuple(job_queue(name) for name in JOB_QUEUES)


def declare_topology(connection: Connection) -> None:
    """Declare every exchange and queue, dead-letter ones first.

    The job queues dead-letter into ``dead_letter``; if that exchange did not exist, the
    broker would drop what it dead-letters, so workers and producers declare it before
    anything is consumed or published.
    """
    with connection.channel() as channel:
        DEAD_LETTER_EXCHANGE(channel).declare()
        dead_letter_queue()(channel).declare()
        TASK_EXCHANGE(channel).declare()
        for queue in consumed_queues():
            queue(channel).declare()


def route_for(task_name: str) -> dict[str, str] | None:
    """Celery router: the queue and routing key for a task, by its family prefix."""
    for prefix, queue in ROUTES_BY_FAMILY.items():
        if task_name.startswith(prefix):
            return {
                "queue": queue,
                "exchange": TASK_EXCHANGE.name,
                "routing_key": f"{queue}.{task_name}",
            }
    return None


# No dots: a queue's name is also its routing key, and native delayed delivery binds
# the shared queues with patterns like "#.mid.#"; a dotted name ending in ".mid" (or a
# host name with a "mid" label) would be delivered to the shared queue as well.
_UNSAFE = re.compile(r"[^A-Za-z0-9_@-]")


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
