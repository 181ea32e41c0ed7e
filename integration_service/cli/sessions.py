"""``list``, ``status`` and ``tenant add``: what is stored, read without enqueueing."""

from __future__ import annotations

from typing import Any

import click

from integration_service import inputs
from integration_service.cli.output import emit, guarded, json_option
from integration_service.cli.wiring import open_client
from integration_service.client import SessionStatus
from integration_service.sessions.state_machine import STATES
from integration_service.store import SessionNotFound, SessionRow

# Ticket fields an operator may see; the phone (and anything added later) stays hidden.
SHOWN_LOGIN_FIELDS = ("method", "status", "url", "error", "token_expires_at", "deadline")


def _session_summary(row: SessionRow) -> dict[str, Any]:
    # Never the ciphertext, fingerprint or key id: a listing is for finding sessions.
    return {
        "tenant_id": row.key.tenant_id,
        "app_id": row.key.app_id,
        "kind": row.kind,
        "state": row.state,
        "last_activity_at": row.last_activity_at.isoformat() if row.last_activity_at else None,
        "auth_error": row.auth_error,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ("tenant_id", "app_id", "kind", "state", "last_activity_at")
    headers = ("TENANT", "APP", "KIND", "STATE", "LAST ACTIVITY")
    cells = [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in lines
    )


@click.command("list")
@click.option("--tenant", "tenant_id", required=True, help="Tenant whose sessions to list.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(sorted(STATES)),
    help="Only sessions in this state (repeatable).",
)
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@json_option
@guarded
def list_sessions(tenant_id: str, states: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List a tenant's sessions: app, kind, state and last activity (never secrets)."""
    tenant = inputs.identifier("tenant_id", tenant_id)
    with open_client() as client:
        # An unknown tenant is a typo far more often than an empty tenant: say so.
        client._require_tenant(tenant)
        rows = client.store.list_sessions(tenant_id=tenant, states=states or None, limit=limit)
    summaries = [_session_summary(row) for row in rows]
    emit(
        {"tenant_id": tenant, "count": len(summaries), "sessions": summaries},
        lambda: _table(summaries) if summaries else f"no sessions for tenant {tenant}",
    )


def status_document(status: SessionStatus) -> dict[str, Any]:
    login = {k: status.login[k] for k in SHOWN_LOGIN_FIELDS if status.login.get(k)}
    return {
        "tenant_id": status.tenant_id,
        "app_id": status.app_id,
        "state": status.state,
        "kind": status.kind,
        "auth_error": status.auth_error,
        "login": login,
    }


def status_text(document: dict[str, Any]) -> str:
    lines = [
        f"session     {document['tenant_id']}/{document['app_id']}",
        f"state       {document['state'] or '-'}",
        f"kind        {document['kind'] or '-'}",
        f"auth error  {document['auth_error'] or '-'}",
    ]
    login = document["login"]
    if login:
        lines.append("login")
        lines.extend(f"  {name:<16}{value}" for name, value in login.items())
    return "\n".join(lines)


@click.command("status")
@click.argument("tenant_id")
@click.argument("app_id")
@json_option
@guarded
def status(tenant_id: str, app_id: str, as_json: bool) -> None:
    """Show a session's state, kind, login in progress and last auth error."""
    with open_client() as client:
        current = client.get_status(tenant_id, app_id)
    if current.state is None and not current.login:
        raise SessionNotFound(f"no session {current.tenant_id}/{current.app_id}")
    document = status_document(current)
    emit(document, lambda: status_text(document))


@click.group("tenant")
def tenant() -> None:
    """Register tenants (sessions may only belong to a registered tenant)."""


@tenant.command("add")
@click.argument("tenant_id")
@click.option("--name", default=None, help="Display name (defaults to the id).")
@json_option
@guarded
def tenant_add(tenant_id: str, name: str | None, as_json: bool) -> None:
    """Register tenant TENANT_ID; running it again changes nothing."""
    identifier = inputs.identifier("tenant_id", tenant_id)
    with open_client() as client:
        client.store.ensure_tenant(identifier, name)
    emit({"tenant_id": identifier, "registered": True}, f"tenant {identifier} registered")
