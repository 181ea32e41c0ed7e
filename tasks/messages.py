"""send-message jobs (queue ``mid``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from integration_service.celery_app import app
from integration_service.jobs.session_task import SessionTask
from integration_service.messaging.pacing import PACE_RESERVED_HEADER
from integration_service.messaging.send import SendRequest, mark_given_up, send_message


class SendMessageTask(SessionTask):
    abstract = True
    default_job_class = "mid"
    # The outbox row is this job's journal: a repeat returns its outcome, sends nothing.
    journalled = False

    def on_gave_up(self, error: BaseException, args: Any, kwargs: Any) -> None:
        # Retries exhausted or a permanent error: the outbox row must not stay queued.
        mark_given_up(self.runtime.outbox, kwargs, error)


@app.task(name="tasks.messages.send_message", base=SendMessageTask, bind=True)
def send_message_task(
    self: SendMessageTask,
    *,
    tenant_id: str,
    app_id: str,
    peer: str | int,
    text: str,
    idempotency_key: str,
) -> dict[str, Any]:
    request = SendRequest(tenant_id, app_id, peer, text, idempotency_key)
    runtime = self.runtime
    # A retry at its reserved pacing slot sends without reserving another.
    reserved = bool((getattr(self.request, "headers", None) or {}).get(PACE_RESERVED_HEADER))
    pacer = None if reserved else runtime.pacer
    outcome = send_message(runtime, runtime.outbox, request, pacer=pacer, task_id=self.request.id)
    return asdict(outcome)
