"""``channels connect|list|get|refresh|delete``: a tenant's channels and groups.

``connect`` enqueues the check with Telegram and prints the channel ``pending`` (``get``
shows the outcome, or pass ``--wait``). Bad input exits 2 naming the field; an unknown
tenant, account or channel exits 3, like every other command.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.output import CommandFailure, ExitCode, emit, guarded, json_option
from integration_service.cli.sessions import iso_utc
from integration_service.cli.wiring import DATABASE, EVERYTHING, open_client

if TYPE_CHECKING:
    from integration_service.channels import Channel, ChannelStore
    from integration_service.client import IntegrationClient


def _document(channel: Channel) -> dict[str, Any]:
    rights = channel.rights
    return {
        "id": str(channel.id),
        "tenant_id": channel.tenant_id,
        "account_id": channel.account_id,
        "peer": channel.peer,
        "status": channel.status,
        "telegram_id": channel.telegram_id,
        "kind": channel.kind,
        "title": channel.title,
        "username": channel.username,
        "members_count": channel.members_count,
        "rights": None if rights is None else rights.as_dict(),
        "error_code": channel.error_code,
        "error_detail": channel.error_detail,
        "checked_at": iso_utc(channel.checked_at) if channel.checked_at else None,
        "created_at": iso_utc(channel.created_at),
    }


def _rights_text(channel: Channel) -> str:
    rights = channel.rights
    if rights is None:
        return "-"
    if not rights.member:
        return "not a member"
    role = "creator" if rights.creator else "admin" if rights.admin else "member"
    return f"{role}, {'may post' if rights.can_post else 'may not post'}"


def _store(client: IntegrationClient) -> ChannelStore:
    from integration_service.channels import ChannelStore

    return ChannelStore(client.engine)


def _tenant(value: str) -> str:
    from integration_service import inputs

    return inputs.identifier("tenant_id", value)


def _found(client: IntegrationClient, tenant: str, channel_id: uuid.UUID) -> Channel:
    channel = _store(client).get(channel_id, tenant_id=tenant)
    if channel is None:
        raise CommandFailure(
            ExitCode.NOT_FOUND, f"no channel {channel_id} of tenant {tenant}", error="not_found"
        )
    return channel


def _describe(channel: Channel) -> str:
    lines = [
        f"channel {channel.id} ({channel.status})",
        f"account  {channel.account_id}",
        f"peer     {channel.peer}",
    ]
    if channel.status == "connected":
        lines += [
            f"chat     {channel.title} ({channel.kind}, id {channel.telegram_id})",
            f"members  {channel.members_count}",
            f"rights   {_rights_text(channel)}",
        ]
    if channel.error_code is not None:
        lines.append(f"error    {channel.error_code}: {channel.error_detail}")
    return "\n".join(lines)


@click.group("channels")
def channels() -> None:
    """Channels and groups the tenant's accounts and bots post to."""


@channels.command("connect")
@click.argument("tenant_id")
@click.argument("account_id")
@click.argument("peer")
@click.option("--wait", "wait_seconds", type=float, default=None, help="Wait for the check.")
@json_option
@audited("channels connect")
@guarded
def connect(
    tenant_id: str, account_id: str, peer: str, wait_seconds: float | None, as_json: bool
) -> None:
    """Connect PEER (@username, t.me link, invite link or -100... id) to ACCOUNT_ID."""
    from integration_service import inputs
    from integration_service.channels import channel_target
    from integration_service.store import SessionKey, SessionNotFound

    tenant = _tenant(tenant_id)
    account = inputs.identifier("app_id", account_id)
    target = channel_target(peer)
    with open_client(needs=EVERYTHING) as client:
        if client.store.get(SessionKey(tenant, account)) is None:
            raise SessionNotFound(f"no session {tenant}/{account}")
        channel = _store(client).connect_checked(
            tenant,
            account,
            target,
            lambda made: client.check_channel(tenant, account, str(made.id)),
        )
        if wait_seconds is not None:
            deadline = time.monotonic() + wait_seconds
            while channel.status == "pending" and time.monotonic() < deadline:
                time.sleep(0.2)
                channel = _found(client, tenant, channel.id)
    emit(_document(channel), lambda: _describe(channel))


@channels.command("list")
@click.argument("tenant_id")
@click.option("--account", "account_id", default=None, help="Only this account's channels.")
@json_option
@guarded
def list_channels(tenant_id: str, account_id: str | None, as_json: bool) -> None:
    """List tenant TENANT_ID's channels."""
    from integration_service.cli.output import table

    tenant = _tenant(tenant_id)
    found: list[Channel] = []
    with open_client(needs=DATABASE) as client:
        after = None
        while True:
            page, after = _store(client).page(
                account_id=account_id, after=after, limit=500, tenant_id=tenant
            )
            found += page
            if after is None:
                break
    rows = [{**_document(c), "rights_text": _rights_text(c)} for c in found]
    emit(
        {"tenant_id": tenant, "count": len(rows), "channels": rows},
        lambda: (
            table(
                rows,
                ("id", "account_id", "peer", "status", "title", "rights_text"),
                ("ID", "ACCOUNT", "PEER", "STATUS", "TITLE", "RIGHTS"),
            )
            if rows
            else f"no channels for tenant {tenant}"
        ),
    )


@channels.command("get")
@click.argument("tenant_id")
@click.argument("channel_id", type=click.UUID)
@json_option
@guarded
def get(tenant_id: str, channel_id: uuid.UUID, as_json: bool) -> None:
    """Show one channel: the chat, the account's rights, or why it failed."""
    tenant = _tenant(tenant_id)
    with open_client(needs=DATABASE) as client:
        channel = _found(client, tenant, channel_id)
    emit(_document(channel), lambda: _describe(channel))


@channels.command("refresh")
@click.argument("tenant_id")
@click.argument("channel_id", type=click.UUID)
@json_option
@audited("channels refresh")
@guarded
def refresh(tenant_id: str, channel_id: uuid.UUID, as_json: bool) -> None:
    """Check a channel with Telegram again now (the low refresh, out of turn)."""
    tenant = _tenant(tenant_id)
    with open_client(needs=EVERYTHING) as client:
        channel = _found(client, tenant, channel_id)
        handle = client.check_channel(tenant, channel.account_id, str(channel.id), refresh=True)
    emit(
        {"tenant_id": tenant, "id": str(channel_id), "job_id": handle.job_id},
        f"refresh of channel {channel_id} enqueued (job {handle.job_id})",
    )


@channels.command("delete")
@click.argument("tenant_id")
@click.argument("channel_id", type=click.UUID)
@json_option
@audited("channels delete")
@guarded
def delete(tenant_id: str, channel_id: uuid.UUID, as_json: bool) -> None:
    """Remove a channel (the account stays in the chat at Telegram)."""
    tenant = _tenant(tenant_id)
    with open_client(needs=DATABASE) as client:
        if not _store(client).remove(channel_id, tenant_id=tenant):
            raise CommandFailure(
                ExitCode.NOT_FOUND, f"no channel {channel_id} of tenant {tenant}", error="not_found"
            )
    emit(
        {"tenant_id": tenant, "id": str(channel_id), "removed": True},
        f"channel {channel_id} removed",
    )
