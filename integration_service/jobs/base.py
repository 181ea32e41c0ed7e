"""The one base Task: retry mapping, dead-lettering and task metrics.

Tasks stay thin shells over plain functions; everything a job needs to behave well
under failure lives here once: a RetryableError is retried as it declares (errors.py:
``retry_after``, ``exact``, ``retry_headers``, ``counts_against_limit``; exponential
backoff with jitter by default), a PermanentError, an unexpected exception (failed as
``UnexpectedError``) or exhausted retries end the job in the dead-letter queue with the
reason. Every exception that leaves a job is a project error with a code.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import TYPE_CHECKING, Any

import structlog
from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from prometheus_client import Counter, Histogram

from integration_service.errors import (
    PermanentError,
    RetryableError,
    ServiceError,
    UnexpectedError,
)
from integration_service.jobs.carried_headers import (
    carried_headers,
    carried_reprs,
    request_header,
)
from integration_service.jobs.dead_letter import (
    FAILED_AT_HEADER,
    failure_headers,
    publish_dead_letter,
)
from integration_service.observability.scrubbing import scrub_text
from integration_service.runtime.current import RuntimeNotStarted, get_runtime
from integration_service.runtime.forwarding import job_class_of
from integration_service.store.job_journal import JobJournal, JournalEntry
from integration_service.telegram.error_mapping import to_service_error

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
JOBS_REPEATED = Counter(
    "celery_jobs_repeated_total",
    "Deliveries of a job that had already finished (a redelivery after a lost ack, a "
    "duplicate publish), answered from the job journal without running again.",
    ["task", "first_outcome"],
)
logger = structlog.get_logger(__name__)


def backoff_delay(retries: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**retries)]."""
    return random.uniform(0, min(cap, base * (2**retries)))


def retry_countdown(error: RetryableError, retries: int) -> float:
    """Seconds until the retry ``error`` declares (errors.RetryableError), whole seconds."""
    if error.retry_after is None:
        countdown = backoff_delay(retries)
    elif error.exact:
        # A reserved slot: slots are already spread out, jitter would bunch them.
        countdown = error.retry_after
    else:
        # A little jitter so deferred jobs do not all come back in the same instant.
        delay = error.retry_after
        countdown = delay + random.uniform(0, min(1.0, 0.1 * delay + 0.2))
    # RabbitMQ-native delayed delivery counts whole seconds and refuses 0 < x < 1
    # (the retry would be rejected): round up, never early.
    return float(math.ceil(countdown)) if countdown > 0 else 0.0


def unexpected(raw: BaseException) -> UnexpectedError:
    """The project error for an exception nothing classified (scrubbed: it is stored)."""
    return UnexpectedError(type(raw).__name__, scrub_text(str(raw))[:500])


if TYPE_CHECKING:
    # Generic in celery-types; at run time only from Celery 5.7 (pyproject allows 5.4).
    _Task = Task[..., Any]
else:
    _Task = Task


class ServiceTask(_Task):
    """Base class of every job; see the module docstring."""

    abstract = True
    max_retries = 8
    max_deferrals = 50
    # Exceptions that must never be retried, declared per task on top of PermanentError.
    never_retry: tuple[type[BaseException], ...] = (PermanentError,)
    # Control-flow exceptions a subclass handles itself (not failures).
    passthrough: tuple[type[BaseException], ...] = ()
    # Expected outcomes (a classified error, retries exhausted): Celery logs them at INFO
    # without a traceback instead of "raised unexpected" at ERROR; the failure branch
    # logs one WARNING line with the code. UnexpectedError (a bug) stays at ERROR.
    throws: tuple[type[Exception], ...] = (PermanentError, RetryableError)
    # Record each finished run in the job journal, so a second delivery of the same job
    # finishes as a no-op with the first outcome. False only for jobs whose own store
    # already answers a repeat with the first outcome (sends: the outbox).
    journalled = True

    def _queue(self) -> str:
        """The job class (high/mid/low) for metric labels, also for per-worker queues."""
        delivery = self.request.delivery_info or {}
        return job_class_of(delivery.get("routing_key"), "unknown")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        status = "success"
        try:
            return self._run_once(args, kwargs)
        except (Retry, Reject, Ignore):
            status = "forwarded" if getattr(self.request, "forwarded_to", None) else "retry"
            raise
        except (Exception, asyncio.CancelledError) as raw:
            # CancelledError: a Telegram call cancelled with its dropped connection.
            if isinstance(raw, self.passthrough):
                status = "forwarded"
                raise
            # Whatever crosses Celery is a project error with a code (picklable, and
            # rebuilt whole by the producer: jobs/results.py).
            error = to_service_error(raw) or unexpected(raw)
            if isinstance(error, RetryableError) and not isinstance(error, self.never_retry):
                limit = self._retry_limit(error)
                if self.request.retries < limit:
                    status = "retry"
                    # Flower shows the retry as the producer chose to show the job: Celery
                    # passes these on to apply_async (its **options, which celery-types
                    # does not list).
                    reprs: dict[str, Any] = carried_reprs(self.request)
                    raise self.retry(
                        exc=error,
                        countdown=self._countdown(error),
                        headers=self._retry_headers(error),
                        # Celery checks its own limit too (and re-raises ``error`` past
                        # it, which would skip the dead letter): give it the one that
                        # applies, so a deferral past max_retries is still retried.
                        max_retries=limit,
                        **reprs,
                    ) from None
            status = "failure"
            if isinstance(error, self.throws):
                logger.warning(
                    "job_failed",
                    task=self.name,
                    code=error.code,
                    error=type(error).__name__,
                    reason=str(error),
                    retries=self.request.retries,
                )
            earlier = self._earlier_dead_letter()
            if earlier is not None:
                status = "repeated"
                self._repeat(earlier)  # raises Ignore: the first failure stays the outcome
            self._gave_up(error, args, kwargs)
            self._dead_letter(error, args, kwargs)
            self._journal_outcome(
                "dead_lettered",
                {"code": error.code, "reason": str(error)},
                kwargs,
            )
            if error is raw:
                raise
            # A bug keeps its traceback in the log (as the cause); a classified library
            # error is fully described by the project error.
            raise error from (raw if isinstance(error, UnexpectedError) else None)
        finally:
            TASKS_TOTAL.labels(queue=self._queue(), task=self.name, status=status).inc()
            TASK_DURATION.labels(task=self.name).observe(time.perf_counter() - started)

    def job_journal(self) -> JobJournal | None:
        """This worker's job journal; None outside a worker (eager calls in tests)."""
        try:
            return get_runtime().journal
        except RuntimeNotStarted:
            return None

    def _run_once(self, args: Any, kwargs: Any) -> Any:
        journal = self.job_journal()
        if journal is not None and self.request.id:
            if self._redriven():
                # An operator re-drove the dead letter: that is a request to run it again.
                journal.forget(self.request.id)
            elif self.journalled and (first := journal.get(self.request.id)) is not None:
                return self._repeat(first)
        result = super().__call__(*args, **kwargs)
        self._journal_outcome("succeeded", result, kwargs)
        return result

    def _earlier_dead_letter(self) -> JournalEntry | None:
        """The journal entry of an earlier delivery of this very job that already ended in
        the dead-letter queue, if any: then this failing repeat is acknowledged away and no
        second dead letter is published. Read only on failure, so jobs that journal no
        successes (sends) pay nothing for it on success."""
        journal = self.job_journal()
        if journal is None or not self.request.id:
            return None
        try:
            first = journal.get(self.request.id)
        except Exception:  # noqa: BLE001 - unknown: dead-letter (a duplicate beats a loss)
            return None
        return first if first is not None and first.status == "dead_lettered" else None

    def _redriven(self) -> bool:
        """Whether this delivery is a dead letter published back by an operator (it still
        carries the failure headers of its dead-lettering)."""
        return request_header(self.request, FAILED_AT_HEADER) is not None

    def _repeat(self, first: JournalEntry) -> Any:
        """A delivery of a job that already finished: its first outcome, nothing re-run."""
        JOBS_REPEATED.labels(task=self.name, first_outcome=first.status).inc()
        logger.info(
            "job_already_finished",
            task=self.name,
            task_id=self.request.id,
            first_outcome=first.status,
            redelivered=bool((self.request.delivery_info or {}).get("redelivered")),
        )
        if first.status == "dead_lettered":
            # Its copy is in the dead-letter queue already; acknowledge this one away.
            raise Ignore()
        return first.outcome

    def _journal_outcome(self, status: Any, outcome: Any, kwargs: Any) -> None:
        # Failures are journalled for every job (a repeat must not be dead-lettered twice);
        # successes only for jobs that have no store of their own answering repeats.
        journal = self.job_journal() if self.journalled or status != "succeeded" else None
        if journal is None or not self.request.id:
            return
        tenant_id, app_id = kwargs.get("tenant_id"), kwargs.get("app_id")
        try:
            journal.record(
                self.request.id,
                self.name,
                status,
                outcome,
                tenant_id=tenant_id if isinstance(tenant_id, str) else None,
                app_id=app_id if isinstance(app_id, str) else None,
            )
        except Exception as error:  # noqa: BLE001 - the work is done; never redo it for this
            # The job is finished and will be acknowledged; only a redelivery in the same
            # outage would miss the record (and meet the domain's own guards instead).
            logger.warning(
                "job_journal_write_failed",
                task=self.name,
                task_id=self.request.id,
                error=type(error).__name__,
            )

    def _retry_limit(self, error: RetryableError) -> int:
        # Deferrals Telegram or our pacing ask for (FloodWait, pacing) are waits, not
        # failures: they have their own, larger bound.
        return int(self.max_retries if error.counts_against_limit else self.max_deferrals)

    def _countdown(self, error: RetryableError) -> float:
        return retry_countdown(error, int(self.request.retries or 0))

    def _retry_headers(self, error: RetryableError) -> dict[str, Any]:
        # Headers travel with the job across retries; an error may add its own (a pacing
        # reservation the retry must honour instead of reserving again).
        return carried_headers(self.request, **error.retry_headers)

    def on_gave_up(self, error: ServiceError, args: Any, kwargs: Any) -> None:
        """Hook: the job failed for good; record it in the domain before dead-lettering."""

    def _gave_up(self, error: ServiceError, args: Any, kwargs: Any) -> None:
        # The dead letter must follow whatever the hook meets (its database down): an
        # exception escaping here would have the job acknowledged away without a copy.
        try:
            self.on_gave_up(error, args, kwargs)
        except Exception as hook_error:  # noqa: BLE001 - logged; the dead letter matters more
            logger.warning(
                "gave_up_hook_failed",
                task=self.name,
                task_id=self.request.id,
                code=error.code,
                error=type(hook_error).__name__,
            )

    def _dead_letter(self, error: ServiceError, args: Any, kwargs: Any) -> None:
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
                    code=error.code,
                    exception_type=(
                        error.exception_type
                        if isinstance(error, UnexpectedError)
                        else type(error).__name__
                    ),
                    original_queue=self._queue(),
                    retries=self.request.retries,
                ),
            )
        except Exception as publish_error:  # noqa: BLE001 - any failure means no copy
            raise Reject(f"dead-letter publish failed: {publish_error}", requeue=False) from error
