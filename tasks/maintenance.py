"""Low-priority maintenance jobs (queue ``low``)."""

from __future__ import annotations

import socket
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from integration_service.celery_app import app
from integration_service.errors import PermanentError
from integration_service.jobs.base import ServiceTask
from integration_service.maintenance import rotate_session_keys
from integration_service.runtime.current import get_runtime


@app.task(name="tasks.maintenance.ping", base=ServiceTask, bind=True)
def ping(self: ServiceTask) -> dict[str, str | None]:
    """Round trip through the broker to a worker: proves consumption works end to end."""
    return {"worker": self.request.hostname or socket.gethostname(), "task_id": self.request.id}


@app.task(name="tasks.maintenance.dead_letter_probe", base=ServiceTask, bind=True)
def dead_letter_probe(self: ServiceTask, reason: str) -> None:
    """Fails for good with ``reason``: operators use it to check the dead-letter path."""
    raise PermanentError(reason)


@app.task(name="tasks.maintenance.rotate_keys", base=ServiceTask, bind=True, max_retries=5)
def rotate_keys(
    self: ServiceTask, *, rotate_key: bool = True, batch_size: int = 500
) -> dict[str, Any]:
    """Create a new key version (optionally) and re-wrap every stored session under it.

    Sessions stay online: rows are re-wrapped one compare-and-set at a time, and a row a
    live owner saves meanwhile keeps the owner's write (the next run picks it up).
    """
    runtime = get_runtime()
    report = rotate_session_keys(
        runtime.engine, runtime.cipher, batch_size=batch_size, rotate_key=rotate_key
    )
    result = asdict(report)
    result["failures"] = [
        {"tenant_id": f.key.tenant_id, "app_id": f.key.app_id, "reason": f.reason}
        for f in report.failures
    ]
    return result


@app.task(name="tasks.maintenance.prune_job_journal", base=ServiceTask, bind=True)
def prune_job_journal(self: ServiceTask) -> dict[str, int]:
    """Forget finished jobs older than JOB_JOURNAL_RETENTION (beat runs it hourly)."""
    runtime = get_runtime()
    retention = timedelta(seconds=runtime.settings.job_journal_retention)
    return {"deleted": runtime.journal.prune(retention)}


@app.task(name="tasks.maintenance.prune_audit", base=ServiceTask, bind=True)
def prune_audit(self: ServiceTask) -> dict[str, int]:
    """Delete audit rows older than AUDIT_RETENTION_DAYS (beat runs it hourly)."""
    from integration_service import audit

    runtime = get_runtime()
    retention = timedelta(days=runtime.settings.audit_retention_days)
    return {"deleted": audit.prune(runtime.engine, retention)}


@app.task(name="tasks.maintenance.prune_events", base=ServiceTask, bind=True)
def prune_events(self: ServiceTask) -> dict[str, int]:
    """Delete events older than EVENT_RETENTION_DAYS from the log (beat runs it hourly)."""
    from integration_service.inbound.event_log import EventLog

    runtime = get_runtime()
    retention = timedelta(days=runtime.settings.event_retention_days)
    return {"deleted": EventLog(runtime.engine).prune(retention)}
