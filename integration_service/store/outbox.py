"""The message outbox: one row per (session, idempotency key), the record of a send.

A send is claimed by inserting its row (``queued``) before anything reaches Telegram and
finished by a compare-and-set to ``sent`` or ``failed``; a repeated request finds the
row and returns its outcome instead of sending again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from integration_service.store.errors import to_store_error
from integration_service.store.guard import DatabaseGuard
from integration_service.store.records import SessionKey
from integration_service.tracing.propagation import current_traceparent

_COLUMNS = (
    "id, tenant_id, app_id, idempotency_key, peer, payload_sha256, random_id, status, "
    "telegram_message_id, error_code, error_details, attempts, task_id, sent_at, created_at"
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: uuid.UUID
    key: SessionKey
    idempotency_key: str
    peer: str
    payload_sha256: str
    random_id: int
    status: str
    telegram_message_id: int | None
    error_code: str | None
    error_details: str | None
    attempts: int
    task_id: str | None
    sent_at: datetime | None
    created_at: datetime


def _entry(m: RowMapping) -> OutboxEntry:
    return OutboxEntry(
        id=m["id"],
        key=SessionKey(m["tenant_id"], m["app_id"]),
        idempotency_key=m["idempotency_key"],
        peer=m["peer"],
        payload_sha256=m["payload_sha256"],
        random_id=m["random_id"],
        status=m["status"],
        telegram_message_id=m["telegram_message_id"],
        error_code=m["error_code"],
        error_details=m["error_details"],
        attempts=m["attempts"],
        task_id=m["task_id"],
        sent_at=m["sent_at"],
        created_at=m["created_at"],
    )


class OutboxStore:
    """Claim, read and finish outbox rows."""

    def __init__(self, engine: Engine, *, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        # claim, note_attempt and finish are each one statement, atomic on its own: run
        # them in autocommit, one round trip instead of three (BEGIN, statement, COMMIT)
        # on every send. Same pool as ``engine``.
        self._single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._guard = guard or DatabaseGuard()

    def claim(
        self,
        key: SessionKey,
        *,
        idempotency_key: str,
        peer: str,
        payload_sha256: str,
        random_id: int,
        task_id: str | None,
    ) -> OutboxEntry:
        """The row for this send, created ``queued`` if it does not exist yet."""
        params = {
            "tenant_id": key.tenant_id,
            "app_id": key.app_id,
            "idempotency_key": idempotency_key,
            "peer": peer,
            "payload_sha256": payload_sha256,
            "random_id": random_id,
            "task_id": task_id,
        }
        try:
            with self._guard.call(), self._single.connect() as conn:
                row = (
                    conn.execute(
                        text(
                            "INSERT INTO message_outbox (tenant_id, app_id, idempotency_key, "
                            "peer, payload_sha256, random_id, task_id) VALUES "
                            "(:tenant_id, :app_id, :idempotency_key, :peer, :payload_sha256, "
                            ":random_id, :task_id) ON CONFLICT (tenant_id, app_id, "
                            "idempotency_key) DO UPDATE SET task_id = message_outbox.task_id "
                            f"RETURNING {_COLUMNS}"
                        ),
                        params,
                    )
                    .mappings()
                    .one()
                )
        except SQLAlchemyError as error:
            raise to_store_error(error, f"claim outbox row for {key}") from None
        return _entry(row)

    def note_attempt(self, entry_id: uuid.UUID) -> None:
        """Count one attempt to reach Telegram; made under the session's lease, so the
        count is the number of times the send was really tried (exactly-once audits)."""
        try:
            with self._guard.call(), self._single.connect() as conn:
                conn.execute(
                    text("UPDATE message_outbox SET attempts = attempts + 1 WHERE id = :id"),
                    {"id": entry_id},
                )
        except SQLAlchemyError as error:
            raise to_store_error(error, "count outbox attempt") from None

    def finish(
        self,
        entry_id: uuid.UUID,
        *,
        status: str,
        telegram_message_id: int | None = None,
        error_code: str | None = None,
        error_details: str | None = None,
    ) -> OutboxEntry:
        """Move a queued row to ``sent`` or ``failed``; a finished row is returned as is."""
        try:
            with self._guard.call(), self._single.connect() as conn:
                # One statement: the compare-and-set, or (when the row had already left
                # ``queued``) the row as it is. The fallback reads the statement's snapshot;
                # finishes of one row never race, they run under the session's lease.
                # ``trace`` runs first (the update's condition reads it): the event the
                # trigger appends takes the job's traceparent, no extra round trip.
                row = (
                    conn.execute(
                        text(
                            "WITH trace AS MATERIALIZED (SELECT "
                            "set_config('app.traceparent', :traceparent, true) AS value), "
                            "finished AS (UPDATE message_outbox SET status = :status, "
                            "telegram_message_id = :message_id, error_code = :error_code, "
                            "error_details = :details, "
                            "sent_at = CASE WHEN :is_sent THEN now() ELSE NULL END "
                            "WHERE id = :id AND status = 'queued' "
                            "AND (SELECT value FROM trace) IS NOT NULL "
                            f"RETURNING {_COLUMNS}) "
                            "SELECT * FROM finished UNION ALL "
                            f"SELECT {_COLUMNS} FROM message_outbox WHERE id = :id "
                            "AND NOT EXISTS (SELECT 1 FROM finished)"
                        ),
                        {
                            "status": status,
                            "is_sent": status == "sent",
                            "message_id": telegram_message_id,
                            "error_code": error_code,
                            "details": error_details,
                            "id": entry_id,
                            "traceparent": current_traceparent() or "",
                        },
                    )
                    .mappings()
                    .one()
                )
        except SQLAlchemyError as error:
            raise to_store_error(error, "finish outbox row") from None
        return _entry(row)

    def get(self, key: SessionKey, idempotency_key: str) -> OutboxEntry | None:
        try:
            with self._guard.call(), self._engine.connect() as conn:
                row = (
                    conn.execute(
                        text(
                            f"SELECT {_COLUMNS} FROM message_outbox "
                            "WHERE tenant_id = :t AND app_id = :a AND idempotency_key = :k"
                        ),
                        {"t": key.tenant_id, "a": key.app_id, "k": idempotency_key},
                    )
                    .mappings()
                    .first()
                )
        except SQLAlchemyError as error:
            raise to_store_error(error, "read outbox row") from None
        return _entry(row) if row is not None else None

    def count_by_status(self, tenant_id: str | None = None) -> dict[str, int]:
        where = "WHERE tenant_id = :t" if tenant_id is not None else ""
        try:
            with self._guard.call(), self._engine.connect() as conn:
                rows = conn.execute(
                    text(f"SELECT status, count(*) FROM message_outbox {where} GROUP BY status"),
                    {"t": tenant_id},
                )
                return {status: int(n) for status, n in rows}
        except SQLAlchemyError as error:
            raise to_store_error(error, "count outbox rows") from None
