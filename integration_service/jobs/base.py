"""The one base Task: retry mapping, dead-lettering and task metrics.

Tasks stay thin shells over plain functions; everything a job needs to behave well
under failure lives here once: a RetryableError is retried with exponential backoff and
jitter (or at the time the error names), a PermanentError, an unexpected exception or
exhausted retries end the job in the dead-letter queue with the reason.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from prometheus_client import Counter, Histogram

from integration_service.errors import PermanentError, RetryableError
from integration_service.jobs.carried_headers import carried_headers
from integration_service.jobs.dead_letter import failure_headers, publish_dead_letter
from integration_service.jobs.error_mapping import to_service_error
from integration_service.runtime.forwarding import job_class_of

TASKS_TOTAL = Counter(
    "celery_tasks_total",
    "Finished task runs, by queue, task and status.",
    ["queue", "task", "status"],
)
TASKS_ERRORS = Counter(
    "celery_tasks_error_total", "Task runs that raised, by queue and task.", ["queue", "task"]
)
TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Wall time of one task run, by task.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def backoff_delay(retries: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**retries)]."""
    return random.uniform(0, min(cap, base * (2**retries)))


class ServiceTask(Task):
    """Base class of every job; see the module docstring."""

    abstract = True
    max_retries = 8
    max_deferrals = 50
    # Exceptions that must never be retried, declared per task on top of PermanentError.
    never_retry: tuple[type[BaseException], ...] = (PermanentError,)
    # Control-flow exceptions a subclass handles itself (not failures).
    passthrough: tuple[type[BaseException], ...] = ()

    def _queue(self) -> str:
        """The job class (high/mid/low) for metric labels, also for per-worker queues."""
        delivery = getattr(self.request, "delivery_info", None) or {}
        return job_class_of(delivery.get("routing_key"), "unknown")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        status = "success"
        try:
            return super().__call__(*args, **kwargs)
        except (Retry, Reject, Ignore):
            status = "retry"
            raise
        except (Exception, asyncio.CancelledError) as raw:
            # CancelledError: a Telegram call cancelled with its dropped connection.
            if isinstance(raw, self.passthrough):
                status = "forwarded"
                raise
            error = to_service_error(raw) or raw
            if isinstance(error, RetryableError) and not isinstance(error, self.never_retry):
                if self._may_retry(error):
                    status = "retry"
                    raise self.retry(
                        exc=error,
                        countdown=self._countdown(error),
                        headers=self._retry_headers(error),
                    ) from None
            status = "failure"
            self.on_gave_up(error, args, kwargs)
            self._dead_letter(error, args, kwargs)
            if error is raw:
                raise
            raise error from None
        finally:
            TASKS_TOTAL.labels(queue=self._queue(), task=self.name, status=status).inc()
            TASK_DURATION.labels(task=self.name).observe(time.perf_counter() - started)

    def _may_retry(self, error: RetryableError) -> bool:
        # Deferrals Telegram or our pacing ask for (FloodWait, pacing) are waits, not
        # failures: they have their own, larger bound.
        if getattr(error, "counts_against_limit", True):
            return bool(self.request.retries < self.max_retries)
        return bool(self.request.retries < self.max_deferrals)

    def _countdown(self, error: RetryableError) -> float:
        delay = getattr(error, "retry_after", None)
        if delay is None:
            countdown = backoff_delay(self.request.retries)
        elif getattr(error, "exact", False):
            # A reserved slot: slots are already spread out, jitter would bunch them.
            countdown = float(delay)
        else:
            # A little jitter so deferred jobs do not all come back in the same instant.
            countdown = float(delay) + random.uniform(0, min(1.0, 0.1 * float(delay) + 0.2))
        # RabbitMQ-native delayed delivery counts whole seconds and refuses 0 < x < 1
        # (the retry would be rejected): round up, never early.
        return float(math.ceil(countdown)) if countdown > 0 else 0.0

    def _retry_headers(self, error: RetryableError) -> dict[str, Any]:
        # Headers travel with the job across retries; an error may add its own (a pacing
        # reservation the retry must honour instead of reserving again).
        return carried_headers(self.request, **(getattr(error, "retry_headers", None) or {}))

    def on_gave_up(self, error: BaseException, args: Any, kwargs: Any) -> None:
        """Hook: the job failed for good; record it in the domain before dead-lettering."""

    def _dead_letter(self, error: BaseException, args: Any, kwargs: Any) -> None:
        """Publish the failed job with its reason; the message is acked only after this.

        If even the confirmed publish fails, the job is rejected without requeue so the
        broker dead-letters the original message itself (x-death reason "rejected"):
        a job is never acked away without a copy in the dead-letter queue.
        """
        TASKS_ERRORS.labels(queue=self._queue(), task=self.name).inc()
        try:
            publish_dead_letter(
                self.app,
                task_id=self.request.id,
                task_name=self.name,
                args=list(args),
                kwargs=dict(kwargs),
                headers=failure_headers(
                    reason=str(error) or type(error).__name__,
                    exception_type=type(error).__name__,
                    original_queue=self._queue(),
                    retries=self.request.retries,
                ),
            )
        except Exception as publish_error:  # noqa: BLE001 - any failure means no copy
            raise Reject(f"dead-letter publish failed: {publish_error}", requeue=False) from error
