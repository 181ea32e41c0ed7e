"""Low-priority maintenance jobs."""

from __future__ import annotations

import socket

from integration_service.celery_app import app
from integration_service.errors import PermanentError
from integration_service.jobs.base import ServiceTask


@app.task(name="tasks.maintenance.ping", base=ServiceTask, bind=True)
def ping(self: ServiceTask) -> dict[str, str]:
    """Round trip through the broker to a worker: proves consumption works end to end."""
    return {"worker": self.request.hostname or socket.gethostname(), "task_id": self.request.id}


@app.task(name="tasks.maintenance.dead_letter_probe", base=ServiceTask, bind=True)
def dead_letter_probe(self: ServiceTask, reason: str) -> None:
    """Fails for good with ``reason``: operators use it to check the dead-letter path."""
    raise PermanentError(reason)
