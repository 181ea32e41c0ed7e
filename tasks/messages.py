"""send-message jobs (queue ``mid``).

The payload is parsed once, here, into an ``inputs.SendRequest``; ``messaging.send``
takes the typed request and does not validate it again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from integration_service.celery_app import app
from integration_service.errors import ServiceError
from integration_service.inputs import SendRequest
from integration_service.jobs.session_task import SessionTask
from integration_service.messaging.pacing import PACE_RESERVED_HEADER
from integration_service.messaging.send import mark_given_up, send_message

# The delivery context's field holding the parsed request (Celery's Context is per call).
PARSED_REQUEST = "send_request"


class SendMessageTask(SessionTask):
    abstract = True
    default_job_class = "mid"
    # The outbox row is this job's journal: a repeat returns its outcome, sends nothing.
    journalled = False

    def on_gave_up(self, error: ServiceError, args: Any, kwargs: Any) -> None:
        # Retries exhausted or a permanent error: the outbox row must not stay queued. The
        # request parsed at the boundary travels with this delivery's context; a payload
        # that never parsed claimed no row.
        request = vars(self.request).get(PARSED_REQUEST)
        if isinstance(request, SendRequest):
            mark_given_up(self.runtime.outbox, request, error)


@app.task(name="tasks.messages.send_message", base=SendMessageTask, bind=True)
def send_message_task(self: SendMessageTask, /, **payload: object) -> dict[str, Any]:
    # A missing or malformed field is InvalidInput (dead-lettered with its name).
    request = SendRequest.from_job(payload)
    vars(self.request)[PARSED_REQUEST] = request
    runtime = self.runtime
    # A retry at its reserved pacing slot sends without reserving another.
    reserved = bool((self.request.headers or {}).get(PACE_RESERVED_HEADER))
    pacer = None if reserved else runtime.pacer
    outcome = send_message(runtime, runtime.outbox, request, pacer=pacer, task_id=self.request.id)
    return asdict(outcome)
