"""Session validation jobs (queue ``low``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from integration_service import inputs
from integration_service.celery_app import app
from integration_service.jobs.session_task import SessionTask
from integration_service.sessions.validation import validate_session
from integration_service.store import SessionKey


class ValidationTask(SessionTask):
    abstract = True
    default_job_class = "low"


@app.task(name="tasks.validation.validate_session", base=ValidationTask, bind=True)
def validate_session_task(self: ValidationTask, *, tenant_id: str, app_id: str) -> dict[str, Any]:
    key = SessionKey(inputs.identifier("tenant_id", tenant_id), inputs.identifier("app_id", app_id))
    return asdict(validate_session(self.runtime, key, task_id=self.request.id))
