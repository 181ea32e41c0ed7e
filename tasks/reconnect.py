"""reconnect jobs (queue ``mid``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from integration_service import inputs
from integration_service.celery_app import app
from integration_service.jobs.session_task import SessionTask
from integration_service.sessions.logout import log_out_session
from integration_service.sessions.reconnect import reconnect_session
from integration_service.store import SessionKey


class ReconnectTask(SessionTask):
    abstract = True
    default_job_class = "mid"


@app.task(name="tasks.reconnect.reconnect", base=ReconnectTask, bind=True)
def reconnect(self: ReconnectTask, *, tenant_id: str, app_id: str) -> dict[str, Any]:
    key = SessionKey(inputs.identifier("tenant_id", tenant_id), inputs.identifier("app_id", app_id))
    return asdict(reconnect_session(self.runtime, key, task_id=self.request.id))


@app.task(name="tasks.reconnect.log_out", base=ReconnectTask, bind=True)
def log_out(self: ReconnectTask, *, tenant_id: str, app_id: str) -> dict[str, Any]:
    key = SessionKey(inputs.identifier("tenant_id", tenant_id), inputs.identifier("app_id", app_id))
    return asdict(log_out_session(self.runtime, key, task_id=self.request.id))
