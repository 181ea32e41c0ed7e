"""The base of every job bound to one session: runs it here or forwards it to the owner.

A job names its session with ``tenant_id`` and ``app_id`` keyword arguments. When the
plain function behind the task finds the session held by another live worker
(``OwnedElsewhere``), the job is re-published, same id and arguments, to that worker's
own queue with one more hop, and this delivery is acknowledged without a result.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import Ignore

from integration_service.jobs.base import ServiceTask
from integration_service.jobs.carried_headers import (
    carried_headers,
    carried_reprs,
    request_header,
)
from integration_service.runtime.current import get_runtime
from integration_service.runtime.forwarding import (
    HOPS_HEADER,
    job_class_of,
    next_hop_count,
    worker_queue,
)
from integration_service.runtime.ownership import OwnedElsewhere
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.store import SessionKey


class SessionTask(ServiceTask):
    """Base class of session-bound jobs; see the module docstring."""

    abstract = True
    default_job_class = "mid"

    @property
    def runtime(self) -> SessionRuntime:
        return get_runtime()

    def session_key(self, kwargs: dict[str, Any]) -> SessionKey:
        return SessionKey(str(kwargs["tenant_id"]), str(kwargs["app_id"]))

    def _run_once(self, args: Any, kwargs: Any) -> Any:
        # Inside the base task's error handling (not around it): a ForwardingLoop raised
        # by the forward is a retryable error like any other, so the job is deferred and
        # dead-lettered only past its limit, never dropped. (Raised outside it, it ended
        # the job with no retry and no dead letter: sends lost in the reliability suite.)
        try:
            return super()._run_once(args, kwargs)
        except OwnedElsewhere as owner:
            self._forward(owner, args, kwargs)
            # For the base task's metrics: this Ignore is a forward, not a retry.
            self.request.update(forwarded_to=owner.worker_id)
            raise Ignore() from None

    def _forward(self, owner: OwnedElsewhere, args: Any, kwargs: Any) -> None:
        runtime = self.runtime
        hops = next_hop_count(self._current_hops(), runtime.settings.forward_max_hops)
        delivery = self.request.delivery_info or {}
        job_class = job_class_of(delivery.get("routing_key"), self.default_job_class)
        queue = worker_queue(owner.queue, job_class, runtime.settings.worker_queue_message_ttl)
        # Options Celery's apply_async passes on in its **options (celery-types does not
        # list them): the queue to declare, the retry count so far, and the argument reprs
        # (Flower shows the forwarded copy as the producer chose to show the job).
        options: dict[str, Any] = {
            "declare": [queue],
            "retries": self.request.retries,
            **carried_reprs(self.request),
        }
        # Confirmed publish before this delivery is acked: a crash in between re-runs the
        # job (idempotent by design), it never loses it.
        self.apply_async(
            args=args,
            kwargs=kwargs,
            task_id=self.request.id,
            queue=queue,
            # Explicit destination: the family router would otherwise send it back to the
            # shared queue. The default exchange routes by queue name.
            exchange="",
            routing_key=queue.name,
            headers=carried_headers(self.request, **{HOPS_HEADER: hops}),
            **options,
        )

    def _current_hops(self) -> object:
        return request_header(self.request, HOPS_HEADER)
