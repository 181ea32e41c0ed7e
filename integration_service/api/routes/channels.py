"""Channels and groups (seed 004's ``/api/integrations/telegram/channels``): connect one to
an account or bot by @username, invite link or id, list, show, refresh, remove, and post
to it.

Every statement runs as the tenant (``TenantEngine``): row-level security keeps one
tenant's channels from another's, in reads and in writes. Connecting answers 202 with the
channel ``pending``: a worker resolves it with the account's own client and records what
Telegram says (the chat, and the account's rights in it); ``GET`` shows the outcome. A post
is refused before anything is sent when the account may not post there.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from integration_service.api import reads
from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.errors import ChannelNotReady, ChannelPostForbidden, ResourceNotFound
from integration_service.api.models import (
    ACCOUNT_ID_PATTERN,
    ChannelBody,
    ChannelErrorOut,
    ChannelOut,
    ChannelPage,
    ChannelRightsOut,
    ChannelSendBody,
    JobAccepted,
    MessageAccepted,
    SendBody,
)
from integration_service.api.problems import problem_responses
from integration_service.api.routes import messages
from integration_service.api.routes.accounts import job_accepted
from integration_service.api.routes.common import TELEGRAM, answer, rate_limit_headers
from integration_service.channels import Channel, ChannelStore, channel_target

router = APIRouter(prefix=f"{TELEGRAM}/channels", tags=["channels"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]


def _out(channel: Channel) -> ChannelOut:
    rights = channel.rights
    return ChannelOut(
        id=str(channel.id),
        account_id=channel.account_id,
        peer=channel.peer,
        status=channel.status,  # type: ignore[arg-type]  # the table's CHECK holds it
        telegram_id=channel.telegram_id,
        kind=channel.kind,  # type: ignore[arg-type]
        title=channel.title,
        username=channel.username,
        members_count=channel.members_count,
        rights=None if rights is None else ChannelRightsOut(**rights.as_dict()),
        error=(
            None
            if channel.error_code is None
            else ChannelErrorOut(code=channel.error_code, detail=channel.error_detail)
        ),
        checked_at=channel.checked_at,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _store(ctx: ApiContext) -> ChannelStore:
    return ChannelStore(ctx.tenant_engine.engine)


def _channel(ctx: ApiContext, tenant_id: str, channel_id: uuid.UUID) -> Channel:
    with ctx.tenant_engine.scoped(tenant_id):
        found = _store(ctx).get(channel_id)
    if found is None:
        raise ResourceNotFound(f"no channel {channel_id}")
    return found


@router.post("", status_code=202, response_model=ChannelOut)
def connect_channel(
    body: ChannelBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("channels:write"))],
) -> JSONResponse:
    # The account must be the caller's (404 otherwise, as for any other tenant's id).
    reads.get_account(ctx.reader, principal.tenant_id, body.account_id)
    target = channel_target(body.peer)

    def connect() -> ChannelOut:
        with ctx.tenant_engine.scoped(principal.tenant_id):
            channel = _store(ctx).connect_checked(
                principal.tenant_id,
                body.account_id,
                target,
                lambda made: ctx.client.check_channel(
                    principal.tenant_id, body.account_id, str(made.id)
                ),
            )
        return _out(channel)

    return answer(request, ctx, principal.tenant_id, body, connect, status=202)


@router.get("", response_model=ChannelPage)
def list_channels(
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("channels:read"))],
    account_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ChannelPage:
    with ctx.tenant_engine.scoped(principal.tenant_id):
        items, following = _store(ctx).page(account_id=account_id, after=after, limit=limit)
    return ChannelPage(
        items=[_out(item) for item in items], next=None if following is None else str(following)
    )


@router.get("/{channel_id}", response_model=ChannelOut)
def get_channel(
    channel_id: uuid.UUID,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("channels:read"))],
) -> ChannelOut:
    return _out(_channel(ctx, principal.tenant_id, channel_id))


@router.delete("/{channel_id}", status_code=204, response_class=Response)
def remove_channel(
    channel_id: uuid.UUID,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("channels:write"))],
) -> Response:
    with ctx.tenant_engine.scoped(principal.tenant_id):
        removed = _store(ctx).remove(channel_id)
    if not removed:
        raise ResourceNotFound(f"no channel {channel_id}")
    return Response(status_code=204, headers=rate_limit_headers(request))


@router.post("/{channel_id}/refresh", status_code=202, response_model=JobAccepted)
def refresh_channel(
    channel_id: uuid.UUID,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("channels:write"))],
) -> JSONResponse:
    """Check the channel with Telegram again now (the ``low`` refresh, out of turn)."""
    channel = _channel(ctx, principal.tenant_id, channel_id)

    def refresh() -> JobAccepted:
        handle = ctx.client.check_channel(
            principal.tenant_id, channel.account_id, str(channel.id), refresh=True
        )
        return job_accepted(handle)

    return answer(request, ctx, principal.tenant_id, None, refresh)


def _postable(channel: Channel) -> str:
    """The peer a post goes to; refused (nothing sent) when Telegram would refuse it."""
    if channel.status != "connected" or channel.telegram_id is None:
        if channel.status == "failed":
            raise ChannelNotReady(
                f"channel {channel.id} could not be connected ({channel.error_code}): "
                "connect it again"
            )
        raise ChannelNotReady(f"channel {channel.id} is still being checked with Telegram")
    rights = channel.rights
    if rights is None or not rights.can_post:
        if rights is None or not rights.member:
            why = "is not a member of it"
        elif channel.kind == "channel":
            why = "is no admin with the right to post (post_messages)"
        else:
            why = "may not send messages there"
        raise ChannelPostForbidden(
            f"account {channel.account_id} may not post in {channel.title!r}: it {why}"
        )
    return f"@{channel.username}" if channel.username else str(channel.telegram_id)


@router.post("/{channel_id}/send", status_code=202, response_model=MessageAccepted)
def send_to_channel(
    channel_id: uuid.UUID,
    body: ChannelSendBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("send"))],
) -> JSONResponse:
    channel = _channel(ctx, principal.tenant_id, channel_id)
    peer = _postable(channel)
    send = SendBody(peer=peer, text=body.text, idempotency_key=body.idempotency_key)
    return messages.send(channel.account_id, send, request, ctx, principal)
