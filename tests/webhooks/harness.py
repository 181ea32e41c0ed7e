"""The webhook tests' pieces: tenants with sessions, events in the log, dispatcher
processes (``python -m integration_service.webhooks``), and reads of the delivery log."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.inbound.event_log import EventLog
from integration_service.inbound.events import MESSAGE_RECEIVED, EventDraft
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.support.processes import running, wait_for

STARTED_LINE = "webhook_dispatcher_started"


def keyring_spec() -> str:
    return "k1:" + base64.b64encode(os.urandom(32)).decode()


def add_session(store: SessionStore, tenant_id: str, app_id: str = "app-1") -> SessionKey:
    """A registered tenant with one authorised session (events belong to a session)."""
    key = SessionKey(tenant_id, app_id)
    store.ensure_tenant(tenant_id)
    store.save(SessionMaterial(key=key, kind="user", state="authorized", lease_epoch=1))
    return key


def append_messages(
    log: EventLog, key: SessionKey, count: int, *, prefix: str | None = None
) -> list[uuid.UUID]:
    """``count`` message.received events, each a distinct update; their ids in order."""
    tag = prefix or uuid.uuid4().hex[:8]
    drafts = [
        EventDraft(
            type=MESSAGE_RECEIVED,
            dedup_key=f"msg:{tag}:{n}",
            occurred_at=datetime.now(UTC),
            data={"text": f"hello {n}", "message_id": n},
        )
        for n in range(count)
    ]
    return log.append(key, drafts)


class DispatcherProcess:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_dispatcher(
    env: dict[str, str], log_path: Path, **overrides: str
) -> Iterator[DispatcherProcess]:
    """A dispatcher process with ``env`` (plus ``overrides``), up once it logs so."""
    args = [sys.executable, "-m", "integration_service.webhooks"]
    with running(args, env={**env, **overrides}, log_path=log_path, stop_timeout=30) as process:
        dispatcher = DispatcherProcess(process, log_path)

        def started() -> bool:
            assert process.poll() is None, dispatcher.log()
            return STARTED_LINE in dispatcher.log()

        wait_for(started, timeout=30, interval=0.1, what="the webhook dispatcher to start")
        yield dispatcher


def deliveries(engine: Engine, subscription_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, event_id, status, attempts, last_status_code, last_error, "
                "dead_reason, next_attempt_at FROM webhook_deliveries "
                "WHERE subscription_id = :id"
            ),
            {"id": subscription_id},
        ).mappings()
        return [dict(row) for row in rows]


def attempts(engine: Engine, delivery_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT attempted_at, status_code, error, latency_ms FROM webhook_attempts "
                "WHERE delivery_id = :id ORDER BY attempted_at, id"
            ),
            {"id": delivery_id},
        ).mappings()
        return [dict(row) for row in rows]


def statuses(engine: Engine, subscription_id: uuid.UUID) -> dict[str, int]:
    counted: dict[str, int] = {}
    for row in deliveries(engine, subscription_id):
        counted[row["status"]] = counted.get(row["status"], 0) + 1
    return counted


def all_fanned_out(engine: Engine) -> bool:
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM inbound_events WHERE fanned_out_at IS NULL")
        ).scalar_one()
    return int(left) == 0


def wait_delivered(engine: Engine, subscription_id: uuid.UUID, count: int) -> None:
    """Until exactly ``count`` deliveries of the subscription are delivered (and no other)."""
    wait_for(
        lambda: statuses(engine, subscription_id) == {"delivered": count},
        timeout=60,
        interval=0.2,
        what=f"{count} delivered",
    )
