"""Session validation jobs (queue ``low``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from integration_service import inputs
from integration_service.celery_app import app
from integration_service.jobs.base import ServiceTask
from integration_service.jobs.session_task import SessionTask
from integration_service.runtime.current import get_runtime
from integration_service.sessions.sweep import clear_pending, sweep_stale_sessions
from integration_service.sessions.validation import validate_session
from integration_service.store import SessionKey


class ValidationTask(SessionTask):
    abstract = True
    default_job_class = "low"


@app.task(name="tasks.validation.validate_session", base=ValidationTask, bind=True)
def validate_session_task(self: ValidationTask, *, tenant_id: str, app_id: str) -> dict[str, Any]:
    key = SessionKey(inputs.identifier("tenant_id", tenant_id), inputs.identifier("app_id", app_id))
    try:
        return asdict(validate_session(self.runtime, key, task_id=self.request.id))
    finally:
        clear_pending(self.runtime.redis, key)


@app.task(name="tasks.validation.sweep", base=ServiceTask, bind=True)
def sweep(self: ServiceTask, *, stale_after: float | None = None) -> dict[str, Any]:
    """Enqueue validation of every session idle past SESSION_STALE_THRESHOLD.

    ``stale_after`` overrides the threshold for one sweep (an operator's "check all now").
    """
    runtime = get_runtime()
    settings = runtime.settings

    def enqueue(key: SessionKey) -> None:
        validate_session_task.apply_async(kwargs={"tenant_id": key.tenant_id, "app_id": key.app_id})

    report = sweep_stale_sessions(
        runtime.engine,
        runtime.redis,
        enqueue,
        stale_after=settings.session_stale_threshold if stale_after is None else stale_after,
        batch_size=settings.validation_batch_size,
        pending_ttl=settings.session_validation_interval,
    )
    return {**asdict(report), "scheduled_by": self.request.origin}
