"""``list``, ``status`` and ``tenant add``: what is stored, read without enqueueing.

Times are shown as ISO-8601 in UTC (``2026-12-02T13:00:05Z``), in text and JSON alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.output import emit, guarded, json_option, table
from integration_service.cli.wiring import DATABASE, DATABASE_AND_REDIS, open_client

if TYPE_CHECKING:
    from integration_service.client import SessionStatus
    from integration_service.store import SessionRow

# Ticket fields an operator may see, in this order; the phone, the QR URL (a login
# secret, shown only while the login waits for its scan) and anything added later stay
# hidden.
SHOWN_LOGIN_FIELDS = (
    "method",
    "status",
    "error",
    "started_at",
    "token_expires_at",
    "deadline",
    "finished_at",
)
TIME_FIELDS = frozenset({"started_at", "token_expires_at", "deadline", "finished_at"})
# Only a QR login waiting for its scan has a live token; afterwards its expiry means nothing.
QR_ONLY_FIELDS = frozenset({"token_expires_at", "deadline"})
QR_PENDING = "qr_pending"


def iso_utc(value: datetime | float | str | None) -> str | None:
    """``2026-12-02T13:00:05Z``: a datetime, or a Unix time as the login ticket keeps it."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    else:
        try:
            moment = datetime.fromtimestamp(float(value), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            return str(value)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _SessionStates(click.Choice[str]):
    """The session states as choices, imported only when an option is parsed or shown.

    ``--help`` of the whole CLI must not load the state machine (and the store behind it).
    """

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        from integration_service.sessions.state_machine import STATES

        return tuple(sorted(STATES))

    @choices.setter
    def choices(self, _value: Sequence[str]) -> None:
        pass


def _session_summary(row: SessionRow) -> dict[str, Any]:
    # Never the ciphertext, fingerprint or key id: a listing is for finding sessions.
    return {
        "tenant_id": row.key.tenant_id,
        "app_id": row.key.app_id,
        "kind": row.kind,
        "state": row.state,
        "last_activity_at": iso_utc(row.last_activity_at),
        "auth_error": row.auth_error,
    }


SESSION_COLUMNS = ("tenant_id", "app_id", "kind", "state", "last_activity_at")
SESSION_HEADERS = ("TENANT", "APP", "KIND", "STATE", "LAST ACTIVITY")


@click.command("list")
@click.argument("tenant_id", required=False)
@click.option(
    "--tenant",
    "tenant_option",
    metavar="TENANT_ID",
    help="The same as the TENANT_ID argument (the older spelling).",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=_SessionStates(),
    help="Only sessions in this state (repeatable).",
)
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@json_option
@guarded
def list_sessions(
    tenant_id: str | None,
    tenant_option: str | None,
    states: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """List tenant TENANT_ID's sessions: app, kind, state, last activity (never secrets)."""
    from integration_service import inputs

    if tenant_id is not None and tenant_option is not None and tenant_id != tenant_option:
        raise click.UsageError("give the tenant once: TENANT_ID or --tenant, not both")
    given = tenant_id if tenant_id is not None else tenant_option
    if given is None:
        raise click.UsageError("missing the tenant: integration-service list TENANT_ID")
    tenant = inputs.identifier("tenant_id", given)
    with open_client(needs=DATABASE) as client:
        # An unknown tenant is a typo far more often than an empty tenant: say so.
        client._require_tenant(tenant)
        rows = client.store.list_sessions(tenant_id=tenant, states=states or None, limit=limit)
    summaries = [_session_summary(row) for row in rows]
    emit(
        {"tenant_id": tenant, "count": len(summaries), "sessions": summaries},
        lambda: (
            table(summaries, SESSION_COLUMNS, SESSION_HEADERS)
            if summaries
            else f"no sessions for tenant {tenant}"
        ),
    )


def status_document(status: SessionStatus, qr_url: str | None = None) -> dict[str, Any]:
    """What ``status`` shows. ``qr_url`` only while a QR login waits for its scan."""
    pending = status.login.get("status") == QR_PENDING
    login: dict[str, Any] = {}
    for name in SHOWN_LOGIN_FIELDS:
        value = status.login.get(name)
        if not value or (name in QR_ONLY_FIELDS and not pending):
            continue
        login[name] = iso_utc(value) if name in TIME_FIELDS else value
    if qr_url and pending:
        login["qr_url"] = qr_url
    return {
        "tenant_id": status.tenant_id,
        "app_id": status.app_id,
        "state": status.state,
        "kind": status.kind,
        "auth_error": status.auth_error,
        "last_activity_at": iso_utc(status.last_activity_at),
        "updated_at": iso_utc(status.updated_at),
        "login": login,
    }


def status_text(document: dict[str, Any]) -> str:
    rows = [
        ("session", f"{document['tenant_id']}/{document['app_id']}"),
        ("state", document["state"]),
        ("kind", document["kind"]),
        ("auth error", document["auth_error"]),
        ("last activity", document.get("last_activity_at")),
        ("updated", document.get("updated_at")),
    ]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{name:<{width}}{value or '-'}" for name, value in rows]
    login = document["login"]
    if login:
        lines.append("login")
        inner = max(len(name) for name in login) + 2
        lines.extend(f"  {name:<{inner}}{value}" for name, value in login.items())
    return "\n".join(lines)


@click.command("status")
@click.argument("tenant_id")
@click.argument("app_id")
@json_option
@guarded
def status(tenant_id: str, app_id: str, as_json: bool) -> None:
    """Show a session's state, kind, login in progress and last auth error.

    Times are ISO-8601 UTC. The QR URL of a QR login is shown only while the login waits
    for its scan.
    """
    from integration_service.store import SessionNotFound

    with open_client(needs=DATABASE_AND_REDIS) as client:
        current = client.get_status(tenant_id, app_id)
        qr = None
        if current.login.get("status") == QR_PENDING:
            qr = client.qr_code(tenant_id, app_id)
    if current.state is None and not current.login:
        raise SessionNotFound(f"no session {current.tenant_id}/{current.app_id}")
    document = status_document(current, qr.url if qr is not None else None)
    emit(document, lambda: status_text(document))


@click.group("tenant")
def tenant() -> None:
    """Register tenants (sessions may only belong to a registered tenant)."""


@tenant.command("add")
@click.argument("tenant_id")
@click.option("--name", default=None, help="Display name (defaults to the id).")
@json_option
@audited("tenant add")
@guarded
def tenant_add(tenant_id: str, name: str | None, as_json: bool) -> None:
    """Register tenant TENANT_ID; running it again changes nothing."""
    from integration_service import inputs

    identifier = inputs.identifier("tenant_id", tenant_id)
    with open_client(needs=DATABASE) as client:
        client.store.ensure_tenant(identifier, name)
    emit({"tenant_id": identifier, "registered": True}, f"tenant {identifier} registered")


@click.command("listen")
@click.argument("tenant_id")
@click.argument("app_id")
@click.option(
    "--off", "turn_off", is_flag=True, help="Stop listening (placement lets the session go)."
)
@json_option
@audited("listen")
@guarded
def listen(tenant_id: str, app_id: str, turn_off: bool, as_json: bool) -> None:
    """Turn listening on (default) or off for a session.

    A listening session is held by one listening worker with updates on, and its inbound
    messages become events. Placement follows within one round (PLACEMENT_INTERVAL).
    """
    with open_client(needs=DATABASE) as client:
        client.set_listening(tenant_id, app_id, not turn_off)
    emit(
        {"tenant_id": tenant_id, "app_id": app_id, "listening": not turn_off},
        lambda: f"{tenant_id}/{app_id}: listening {'off' if turn_off else 'on'}",
    )
