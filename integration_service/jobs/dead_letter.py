"""Publishing a job that failed for good to the dead-letter queue, with its reason.

The message re-uses the job's own id, task name, args and kwargs, so an operator can
inspect it and re-drive it to its original queue unchanged; the reason travels in
headers (``x-failure-*``) beside RabbitMQ's own ``x-death`` for broker-side dead-letters.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from integration_service.queues import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, dead_letter_queue

# A delivery carrying it is a dead letter an operator published back (re-drove).
FAILED_AT_HEADER = "x-failure-at"
# Reasons are bounded so a huge exception text cannot bloat the queue.
MAX_REASON_LENGTH = 2000


def failure_headers(
    *,
    reason: str,
    exception_type: str,
    original_queue: str | None,
    retries: int,
    code: str | None = None,
) -> dict[str, Any]:
    return {
        "x-failure-reason": reason[:MAX_REASON_LENGTH],
        "x-failure-code": code or "",
        "x-failure-exception": exception_type,
        "x-failure-original-queue": original_queue or "",
        "x-failure-retries": retries,
        FAILED_AT_HEADER: time.time(),
    }


def publish_dead_letter(
    app: Celery,
    *,
    task_id: str | None,
    task_name: str,
    args: Any,
    kwargs: Any,
    headers: dict[str, Any],
) -> None:
    """Publish (with confirms) the failed job to the dead-letter queue."""
    app.send_task(
        task_name,
        args=args,
        kwargs=kwargs,
        task_id=task_id,
        # The Exchange object, not its name: a bare name would be declared as "direct".
        # (Celery's router takes either; celery-types types send_task's as a name.)
        exchange=DEAD_LETTER_EXCHANGE,  # type: ignore[arg-type]
        routing_key=DEAD_LETTER_QUEUE,
        declare=[dead_letter_queue()],
        headers=headers,
        retry=True,
    )
