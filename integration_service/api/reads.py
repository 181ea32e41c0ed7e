"""The API's reads, each as the tenant (``TenantReader``): accounts, accepted messages."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from integration_service.api.errors import ResourceNotFound
from integration_service.api.models import Account, Message, MessageError
from integration_service.api.tenant_db import TenantReader

ACCOUNT_COLUMNS = (
    "app_id, kind, state, listening, telegram_user_id, auth_error, last_activity_at, "
    "created_at, updated_at"
)


def _account(row: Any) -> Account:
    m = row._mapping
    return Account(
        id=m["app_id"],
        kind=m["kind"],
        state=m["state"],
        listening=m["listening"],
        telegram_user_id=m["telegram_user_id"],
        auth_error=m["auth_error"],
        last_activity_at=m["last_activity_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def list_accounts(
    reader: TenantReader,
    tenant_id: str,
    *,
    state: str | None,
    after: str | None,
    limit: int,
    only: str | None = None,
    kind: str | None = None,
) -> tuple[list[Account], str | None]:
    """A page in app_id order, and the cursor of the next (None: this was the last)."""
    where = ["true"]
    params: dict[str, object] = {"limit": limit + 1}
    if state is not None:
        where.append("state = :state")
        params["state"] = state
    if after is not None:
        where.append("app_id > :after")
        params["after"] = after
    if kind is not None:
        where.append("kind = :kind")
        params["kind"] = kind
    if only is not None:
        where.append("app_id = :only")
        params["only"] = only
    # No tenant filter in the query on purpose: row-level security is the filter.
    with reader.reading(tenant_id, "list accounts") as conn:
        rows = conn.execute(
            text(
                f"SELECT {ACCOUNT_COLUMNS} FROM telegram_sessions WHERE {' AND '.join(where)} "
                "ORDER BY app_id LIMIT :limit"
            ),
            params,
        ).all()
    accounts = [_account(row) for row in rows[:limit]]
    return accounts, (accounts[-1].id if len(rows) > limit else None)


def get_account(reader: TenantReader, tenant_id: str, account_id: str) -> Account:
    with reader.reading(tenant_id, "read account") as conn:
        row = conn.execute(
            text(f"SELECT {ACCOUNT_COLUMNS} FROM telegram_sessions WHERE app_id = :app"),
            {"app": account_id},
        ).first()
    if row is None:
        raise ResourceNotFound(f"no account {account_id}")
    return _account(row)


def get_message(reader: TenantReader, tenant_id: str, message_id: str) -> Message:
    try:
        wanted = uuid.UUID(message_id)
    except ValueError:
        raise ResourceNotFound(f"no message {message_id}") from None
    with reader.reading(tenant_id, "read message") as conn:
        row = conn.execute(
            text(
                "SELECT m.id, m.app_id, m.idempotency_key, m.created_at, o.status, o.peer, "
                "o.telegram_message_id, o.attempts, o.error_code, o.error_details, o.sent_at "
                "FROM api_messages m LEFT JOIN message_outbox o ON o.tenant_id = m.tenant_id "
                "AND o.app_id = m.app_id AND o.idempotency_key = m.idempotency_key "
                "WHERE m.id = :id"
            ),
            {"id": wanted},
        ).first()
    if row is None:
        raise ResourceNotFound(f"no message {message_id}")
    m = row._mapping
    failed = m["status"] == "failed"
    return Message(
        id=str(m["id"]),
        account_id=m["app_id"],
        idempotency_key=m["idempotency_key"],
        status=m["status"] or "accepted",
        peer=m["peer"],
        telegram_message_id=m["telegram_message_id"],
        attempts=m["attempts"] or 0,
        error=MessageError(code=m["error_code"], detail=m["error_details"]) if failed else None,
        created_at=m["created_at"],
        sent_at=m["sent_at"],
    )
