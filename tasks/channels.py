"""Channel jobs: the check of a newly connected channel (``mid``, a tenant waits for it)
and the refresh of connected ones (``low``), enqueued by a periodic sweep."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from integration_service import inputs
from integration_service.celery_app import app
from integration_service.channels import ChannelStore
from integration_service.channels.check import check_channel
from integration_service.jobs.base import ServiceTask
from integration_service.jobs.session_task import SessionTask
from integration_service.runtime.current import get_runtime
from integration_service.store import SessionKey


class ConnectChannelTask(SessionTask):
    abstract = True
    default_job_class = "mid"


class RefreshChannelTask(SessionTask):
    abstract = True
    default_job_class = "low"


def _check(task: SessionTask, tenant_id: str, app_id: str, channel_id: str) -> dict[str, Any]:
    key = SessionKey(inputs.identifier("tenant_id", tenant_id), inputs.identifier("app_id", app_id))
    try:
        channel = uuid.UUID(str(channel_id))
    except ValueError:
        raise inputs.InvalidInput("channel_id", "is not a UUID") from None
    actor = f"job:{task.request.id}"
    return asdict(check_channel(task.runtime, key, channel, actor=actor))


@app.task(name="tasks.channels.connect", base=ConnectChannelTask, bind=True)
def connect_channel(
    self: ConnectChannelTask, *, tenant_id: str, app_id: str, channel_id: str
) -> dict[str, Any]:
    return _check(self, tenant_id, app_id, channel_id)


@app.task(name="tasks.channels.refresh", base=RefreshChannelTask, bind=True)
def refresh_channel(
    self: RefreshChannelTask, *, tenant_id: str, app_id: str, channel_id: str
) -> dict[str, Any]:
    return _check(self, tenant_id, app_id, channel_id)


@app.task(name="tasks.channels.sweep", base=ServiceTask, bind=True)
def sweep(self: ServiceTask, *, stale_after: float | None = None) -> dict[str, Any]:
    """Enqueue a refresh of every channel not checked for CHANNEL_REFRESH_INTERVAL (or
    ``stale_after`` seconds: an operator's "check all now")."""
    runtime = get_runtime()
    settings = runtime.settings
    age = settings.channel_refresh_interval if stale_after is None else stale_after
    due = ChannelStore(runtime.engine).due(
        datetime.now(UTC) - timedelta(seconds=age), limit=settings.channel_refresh_batch
    )
    for channel in due:
        refresh_channel.apply_async(
            kwargs={
                "tenant_id": channel.tenant_id,
                "app_id": channel.account_id,
                "channel_id": str(channel.id),
            }
        )
    return {"enqueued": len(due), "scheduled_by": self.request.origin}
