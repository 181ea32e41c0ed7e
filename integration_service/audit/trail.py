"""Rows of ``integration_logs``: written, read page by page, pruned."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.store.batches import delete_in_batches
from integration_service.store.guard import DatabaseGuard

ACTION_LIMIT = 64
TARGET_LIMIT = 256
ACTOR_LIMIT = 128
COLUMNS = "id, tenant_id, app_id, actor, action, target, status, details, error_message, created_at"


# Parameters naming what an action is on (an API route's path parameters, a CLI
# command's arguments), in the order the target is taken from.
TARGET_PARAMS = (
    ("channel_id", "channel"),
    ("subscription_id", "subscription"),
    ("delivery_id", "delivery"),
    ("login_id", "login"),
    ("key_id", "api_key"),
    ("account_id", "account"),
    ("bot_id", "account"),
    ("app_id", "account"),
)


def target_of(params: dict[str, Any]) -> str | None:
    """``<kind>:<id>`` of the first parameter that names a target, or None."""
    for name, kind in TARGET_PARAMS:
        value = params.get(name)
        if value is not None:
            return f"{kind}:{value}"
    return None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    tenant_id: str
    app_id: str | None
    actor: str | None
    action: str
    target: str | None
    status: str  # success or error
    details: dict[str, Any] | None
    error: str | None
    created_at: datetime


def record(
    engine: Engine,
    *,
    tenant_id: str,
    actor: str,
    action: str,
    ok: bool,
    target: str | None = None,
    app_id: str | None = None,
    error: str | None = None,
    details: dict[str, Any] | None = None,
    guard: DatabaseGuard | None = None,
) -> None:
    """One row; ``details`` is small and secret-free (the callers' promise)."""
    with (guard or DatabaseGuard()).transaction(engine, "record audit entry") as conn:
        conn.execute(
            text(
                "INSERT INTO integration_logs (tenant_id, app_id, actor, action, target, "
                "status, details, error_message) VALUES (:t, :a, :actor, :action, :target, "
                ":status, CAST(:details AS jsonb), :error)"
            ),
            {
                "t": tenant_id,
                "a": app_id,
                "actor": actor[:ACTOR_LIMIT],
                "action": action[:ACTION_LIMIT],
                "target": None if target is None else target[:TARGET_LIMIT],
                "status": "success" if ok else "error",
                "details": json.dumps({"actor": actor, **(details or {})}),
                "error": error,
            },
        )


class AuditReader:
    """A tenant's rows, newest first. Under the tenant role row-level security keeps
    them to the tenant set on the connection; ``tenant_id`` narrows them for the service
    role too."""

    def __init__(self, engine: Engine, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    def page(
        self,
        tenant_id: str,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        account_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> tuple[list[AuditEntry], int | None]:
        """The rows and the cursor of the next (older) page, None on the last."""
        where = ["tenant_id = :tenant"]
        params: dict[str, Any] = {"tenant": tenant_id, "limit": limit + 1}
        for column, value in (
            ("actor", actor),
            ("target", target),
            ("app_id", account_id),
            ("status", status),
        ):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        if action is not None:
            # An action or its family: "message.sent", or "message" for message.*.
            where.append("(action = :action OR action LIKE :family)")
            params["action"], params["family"] = action, f"{_like_escaped(action)}.%"
        if since is not None:
            where.append("created_at >= :since")
            params["since"] = since
        if until is not None:
            where.append("created_at < :until")
            params["until"] = until
        if before is not None:
            where.append("id < :before")
            params["before"] = before
        clauses = " AND ".join(where)  # fixed fragments; every value is a bound parameter
        statement = f"SELECT {COLUMNS} FROM integration_logs WHERE {clauses} "  # noqa: S608
        with self._guard.transaction(self._engine, "read audit trail") as conn:
            rows = conn.execute(
                text(statement + "ORDER BY id DESC LIMIT :limit"),
                params,
            ).all()
        found = [_entry(row) for row in rows[:limit]]
        return found, (found[-1].id if len(rows) > limit else None)


def _like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _entry(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=int(m["id"]),
        tenant_id=m["tenant_id"],
        app_id=m["app_id"],
        actor=m["actor"],
        action=m["action"],
        target=m["target"],
        status=m["status"],
        details=m["details"],
        error=m["error_message"],
        created_at=m["created_at"],
    )


def prune(
    engine: Engine,
    older_than: timedelta,
    *,
    batch_size: int = 5000,
    guard: DatabaseGuard | None = None,
) -> int:
    """Delete rows older than ``older_than``, in batches; how many."""
    checked = guard or DatabaseGuard()
    statement = text(
        "DELETE FROM integration_logs WHERE id IN (SELECT id FROM integration_logs "
        "WHERE created_at < now() - :age ORDER BY id LIMIT :batch)"
    )

    def one_batch() -> int:
        with checked.transaction(engine, "prune audit trail") as conn:
            return int(conn.execute(statement, {"age": older_than, "batch": batch_size}).rowcount)

    return delete_in_batches(one_batch, batch_size)
