"""The session store: the only code that reads or writes session rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from integration_service.errors import PermanentError
from integration_service.store.errors import to_store_error
from integration_service.store.guard import DatabaseGuard
from integration_service.store.metrics import SAVE_ATTEMPTS, SAVE_DURATION, SAVE_ERRORS
from integration_service.store.records import (
    SessionEvent,
    SessionKey,
    SessionMaterial,
    SessionRow,
)

_UPSERT = text(
    """
    SELECT upsert_telegram_session(
        :tenant_id, :app_id, :kind, :state, :lease_epoch, :session_string_enc, :key_id,
        :api_key_alias, :telegram_user_id, :dc_id, :fingerprint, :auth_error, :error_details
    )
    """
)
_SESSION_COLUMNS = (
    "id, tenant_id, app_id, kind, state, session_string_enc, key_id, api_key_alias, "
    "telegram_user_id, dc_id, lease_epoch, fingerprint, auth_error, error_details, "
    "last_activity_at, created_at, updated_at, lease_generation, listening"
)


class SessionNotFound(PermanentError):
    """No session is stored under this key."""

    code = "unknown_session"


class TransitionConflict(PermanentError):
    """The stored state or epoch moved on; the transition was not applied."""

    code = "transition_conflict"


def _row(mapping: RowMapping) -> SessionRow:
    return SessionRow(
        id=mapping["id"],
        key=SessionKey(mapping["tenant_id"], mapping["app_id"]),
        kind=mapping["kind"],
        state=mapping["state"],
        session_string_enc=mapping["session_string_enc"],
        key_id=mapping["key_id"],
        api_key_alias=mapping["api_key_alias"],
        telegram_user_id=mapping["telegram_user_id"],
        dc_id=mapping["dc_id"],
        lease_epoch=mapping["lease_epoch"],
        fingerprint=mapping["fingerprint"],
        auth_error=mapping["auth_error"],
        error_details=mapping["error_details"],
        last_activity_at=mapping["last_activity_at"],
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
        lease_generation=mapping["lease_generation"],
        listening=mapping["listening"],
    )


class SessionStore:
    """Save, read and list sessions; record their state transitions."""

    def __init__(self, engine: Engine, *, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[Connection]:
        with self._guard.transaction(self._engine, operation) as conn:
            yield conn

    def ensure_tenant(self, tenant_id: str, name: str | None = None) -> None:
        """Register a tenant (idempotent); sessions may only belong to known tenants."""
        with self._transaction("ensure_tenant") as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, name) VALUES (:id, :name) ON CONFLICT (id) DO NOTHING"
                ),
                {"id": tenant_id, "name": name or tenant_id},
            )

    def save(self, material: SessionMaterial) -> uuid.UUID:
        """Write session material through upsert_telegram_session; returns the row id."""
        params = {
            "tenant_id": material.key.tenant_id,
            "app_id": material.key.app_id,
            "kind": material.kind,
            "state": material.state,
            "lease_epoch": material.lease_epoch,
            "session_string_enc": material.session_string_enc,
            "key_id": material.key_id,
            "api_key_alias": material.api_key_alias,
            "telegram_user_id": material.telegram_user_id,
            "dc_id": material.dc_id,
            "fingerprint": material.fingerprint,
            "auth_error": material.auth_error,
            "error_details": material.error_details,
        }
        started = time.perf_counter()
        with self._guard.call():
            try:
                with self._engine.begin() as conn:
                    session_id = conn.execute(_UPSERT, params).scalar_one()
            except SQLAlchemyError as error:
                wrapped = to_store_error(error, f"save session {material.key}")
                SAVE_ATTEMPTS.labels(status="failed").inc()
                SAVE_DURATION.labels(status="failed").observe(time.perf_counter() - started)
                SAVE_ERRORS.labels(error_type=wrapped.error_code.value).inc()
                raise wrapped from None
        SAVE_ATTEMPTS.labels(status="success").inc()
        SAVE_DURATION.labels(status="success").observe(time.perf_counter() - started)
        return uuid.UUID(str(session_id))

    def get(self, key: SessionKey) -> SessionRow | None:
        with self._transaction("get session") as conn:
            found = (
                conn.execute(
                    text(
                        f"SELECT {_SESSION_COLUMNS} FROM telegram_sessions "
                        "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                    ),
                    {"tenant_id": key.tenant_id, "app_id": key.app_id},
                )
                .mappings()
                .first()
            )
        return _row(found) if found is not None else None

    def require(self, key: SessionKey) -> SessionRow:
        row = self.get(key)
        if row is None:
            raise SessionNotFound(f"no session {key}")
        return row

    def list_sessions(
        self,
        *,
        tenant_id: str | None = None,
        states: tuple[str, ...] | None = None,
        after_app_id: str | None = None,
        limit: int = 100,
    ) -> list[SessionRow]:
        """Sessions ordered by (tenant_id, app_id), keyset-paginated after ``after_app_id``."""
        clauses = []
        params: dict[str, Any] = {"limit": limit}
        if tenant_id is not None:
            clauses.append("tenant_id = :tenant_id")
            params["tenant_id"] = tenant_id
        if states:
            clauses.append("state = ANY(:states)")
            params["states"] = list(states)
        if after_app_id is not None:
            clauses.append("app_id > :after")
            params["after"] = after_app_id
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = text(
            f"SELECT {_SESSION_COLUMNS} FROM telegram_sessions {where} "
            "ORDER BY tenant_id, app_id LIMIT :limit"
        )
        with self._transaction("list sessions") as conn:
            return [_row(m) for m in conn.execute(query, params).mappings()]

    def record_transition(
        self,
        key: SessionKey,
        *,
        from_state: str,
        to_state: str,
        reason: str,
        lease_epoch: int,
        task_id: str | None = None,
        auth_error: str | None = None,
    ) -> SessionEvent:
        """Move a session from ``from_state`` to ``to_state`` and log the event, atomically.

        Compare-and-set on both state and epoch: a concurrent transition or a newer lease
        owner makes this one fail with TransitionConflict and change nothing.
        ``auth_error`` (why Telegram ended the authorisation) is stored with the new state;
        None keeps the stored one (a new login's save clears it).
        """
        with self._transaction(f"transition {key}") as conn:
            moved = conn.execute(
                text(
                    "UPDATE telegram_sessions SET state = :to_state, lease_epoch = :epoch, "
                    "auth_error = COALESCE(:auth_error, auth_error) "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id "
                    "AND state = :from_state AND lease_epoch <= :epoch RETURNING id"
                ),
                {
                    "to_state": to_state,
                    "from_state": from_state,
                    "epoch": lease_epoch,
                    "auth_error": auth_error,
                    "tenant_id": key.tenant_id,
                    "app_id": key.app_id,
                },
            ).first()
            if moved is None:
                current = conn.execute(
                    text(
                        "SELECT state, lease_epoch FROM telegram_sessions "
                        "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                    ),
                    {"tenant_id": key.tenant_id, "app_id": key.app_id},
                ).first()
                if current is None:
                    raise SessionNotFound(f"no session {key}")
                raise TransitionConflict(
                    f"session {key} is {current.state} at epoch {current.lease_epoch}; "
                    f"expected {from_state} at epoch <= {lease_epoch}"
                )
            event = (
                conn.execute(
                    text(
                        "INSERT INTO session_events (session_id, tenant_id, app_id, from_state, "
                        "to_state, reason, lease_epoch, task_id) VALUES (:sid, :tenant_id, "
                        ":app_id, :from_state, :to_state, :reason, :epoch, :task_id) "
                        "RETURNING id, session_id, from_state, to_state, reason, lease_epoch, "
                        "task_id, created_at"
                    ),
                    {
                        "sid": moved.id,
                        "tenant_id": key.tenant_id,
                        "app_id": key.app_id,
                        "from_state": from_state,
                        "to_state": to_state,
                        "reason": reason,
                        "epoch": lease_epoch,
                        "task_id": task_id,
                    },
                )
                .mappings()
                .one()
            )
        return SessionEvent(**event)

    def wipe_material(self, key: SessionKey, *, lease_epoch: int) -> None:
        """Forget what signs in as the account (session string, key id, fingerprint), the
        peers it learnt and its update state; it stops listening. Fenced by the epoch like
        every write of a lease holder. The row, its transitions and its events stay."""
        params = {"tenant_id": key.tenant_id, "app_id": key.app_id, "epoch": lease_epoch}
        with self._transaction(f"wipe {key}") as conn:
            wiped = conn.execute(
                text(
                    "UPDATE telegram_sessions SET session_string_enc = NULL, key_id = NULL, "
                    "fingerprint = NULL, listening = false "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id "
                    "AND lease_epoch <= :epoch RETURNING id"
                ),
                params,
            ).first()
            if wiped is None:
                raise TransitionConflict(f"session {key} has a newer lease than {lease_epoch}")
            for table in ("telegram_entities", "inbound_channel_state"):
                conn.execute(
                    text(f"DELETE FROM {table} WHERE tenant_id = :tenant_id AND app_id = :app_id"),
                    params,
                )
            # The row stays (it allocates the log's sequences); the state it held goes.
            conn.execute(
                text(
                    "UPDATE inbound_state SET pts = NULL, qts = NULL, date = NULL, seq = NULL "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                params,
            )

    def listening_keys(self) -> list[SessionKey]:
        """Every session placement must keep connected: authorised and listening."""
        with self._transaction("list listening sessions") as conn:
            rows = conn.execute(
                text(
                    "SELECT tenant_id, app_id FROM telegram_sessions "
                    "WHERE listening AND state = 'authorized' ORDER BY tenant_id, app_id"
                )
            ).all()
        return [SessionKey(r.tenant_id, r.app_id) for r in rows]

    def set_listening(self, key: SessionKey, listening: bool) -> None:
        """Turn a session's listening on or off (placement follows within a round)."""
        with self._transaction(f"set listening of {key}") as conn:
            found = conn.execute(
                text(
                    "UPDATE telegram_sessions SET listening = :listening "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id RETURNING id"
                ),
                {"listening": listening, "tenant_id": key.tenant_id, "app_id": key.app_id},
            ).first()
        if found is None:
            raise SessionNotFound(f"no session {key}")

    def touch(self, key: SessionKey) -> None:
        """Record activity: the validation sweep skips sessions used recently."""
        with self._transaction(f"touch {key}") as conn:
            conn.execute(
                text(
                    "UPDATE telegram_sessions SET last_activity_at = now() "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                {"tenant_id": key.tenant_id, "app_id": key.app_id},
            )

    def claim_epoch(self, key: SessionKey, lease_epoch: int, generation: str | None = None) -> bool:
        """Raise the stored epoch to a newly acquired lease's epoch (the fence), and record
        the Redis data set (``generation``) the lease lives in.

        From this commit on, every write of an older owner is refused, even one the new
        owner never overwrites. False when the stored epoch is newer (we are stale).
        """
        with self._transaction(f"claim epoch {key}") as conn:
            moved = conn.execute(
                text(
                    "UPDATE telegram_sessions SET lease_epoch = :epoch, "
                    "lease_generation = COALESCE(:generation, lease_generation) "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id AND lease_epoch <= :epoch"
                ),
                {
                    "epoch": lease_epoch,
                    "generation": generation,
                    "tenant_id": key.tenant_id,
                    "app_id": key.app_id,
                },
            )
        return bool(moved.rowcount)

    def events(self, key: SessionKey) -> list[SessionEvent]:
        with self._transaction("list session events") as conn:
            rows = conn.execute(
                text(
                    "SELECT id, session_id, from_state, to_state, reason, lease_epoch, task_id, "
                    "created_at FROM session_events WHERE tenant_id = :tenant_id "
                    "AND app_id = :app_id ORDER BY id"
                ),
                {"tenant_id": key.tenant_id, "app_id": key.app_id},
            ).mappings()
            return [SessionEvent(**r) for r in rows]
