"""The job journal: each finished job's first outcome, by task id (migration 0006).

RabbitMQ redelivers a job whose acknowledgement it did not get, and with acks_late that
means running work that may be done already. A worker writes the outcome here before it
acknowledges; a later delivery of the same task id reads it back and finishes as a no-op
with that outcome (jobs/base.py). The first write wins: a second one never replaces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from integration_service.store.batches import delete_in_batches
from integration_service.store.errors import to_store_error
from integration_service.store.guard import DatabaseGuard

JournalStatus = Literal["succeeded", "dead_lettered"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    task_id: str
    task_name: str
    status: JournalStatus
    # The job's return value (JSON), or for a dead-lettered job {"reason", "code"}.
    outcome: Any


class JobJournal:
    """Record and read finished jobs; every call is one autocommitted statement."""

    def __init__(self, engine: Engine, *, guard: DatabaseGuard | None = None) -> None:
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._guard = guard or DatabaseGuard()

    def get(self, task_id: str) -> JournalEntry | None:
        try:
            with self._guard.call(), self._single.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT task_id, task_name, status, outcome FROM job_journal "
                        "WHERE task_id = :task_id"
                    ),
                    {"task_id": task_id},
                ).first()
        except SQLAlchemyError as error:
            raise to_store_error(error, "read job journal") from None
        if row is None:
            return None
        return JournalEntry(row.task_id, row.task_name, row.status, row.outcome)

    def record(
        self,
        task_id: str,
        task_name: str,
        status: JournalStatus,
        outcome: Any,
        *,
        tenant_id: str | None = None,
        app_id: str | None = None,
    ) -> JournalEntry:
        """Record a finished job; when it was recorded before, the first record stands
        and is returned."""
        try:
            with self._guard.call(), self._single.connect() as conn:
                row = conn.execute(
                    text(
                        "WITH added AS (INSERT INTO job_journal "
                        "(task_id, task_name, tenant_id, app_id, status, outcome) VALUES "
                        "(:task_id, :task_name, :tenant_id, :app_id, :status, "
                        "CAST(:outcome AS jsonb)) ON CONFLICT (task_id) DO NOTHING "
                        "RETURNING task_id, task_name, status, outcome) "
                        "SELECT * FROM added UNION ALL "
                        "SELECT task_id, task_name, status, outcome FROM job_journal "
                        "WHERE task_id = :task_id AND NOT EXISTS (SELECT 1 FROM added)"
                    ),
                    {
                        "task_id": task_id,
                        "task_name": task_name,
                        "tenant_id": tenant_id,
                        "app_id": app_id,
                        "status": status,
                        "outcome": json.dumps(outcome, default=str),
                    },
                ).first()
        except SQLAlchemyError as error:
            raise to_store_error(error, "record job journal") from None
        if row is None:  # the row vanished between the insert and the read: a prune
            return JournalEntry(task_id, task_name, status, outcome)
        return JournalEntry(row.task_id, row.task_name, row.status, row.outcome)

    def forget(self, task_id: str) -> None:
        """Drop a job's entry: it is to run again (an operator re-drove its dead letter)."""
        try:
            with self._guard.call(), self._single.connect() as conn:
                conn.execute(
                    text("DELETE FROM job_journal WHERE task_id = :task_id"), {"task_id": task_id}
                )
        except SQLAlchemyError as error:
            raise to_store_error(error, "forget job journal entry") from None

    def prune(self, older_than: timedelta, *, batch_size: int = 5000) -> int:
        """Delete entries finished longer ago than ``older_than``; the number deleted."""
        statement = text(
            "DELETE FROM job_journal WHERE task_id IN (SELECT task_id FROM "
            "job_journal WHERE completed_at < now() - :age LIMIT :n)"
        )
        try:
            with self._guard.call(), self._single.connect() as conn:
                return delete_in_batches(
                    lambda: int(
                        conn.execute(statement, {"age": older_than, "n": batch_size}).rowcount
                    ),
                    batch_size,
                )
        except SQLAlchemyError as error:
            raise to_store_error(error, "prune job journal") from None
