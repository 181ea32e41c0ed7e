"""Channels and groups (seed 004's ``/api/integrations/telegram/channels``): connect one to
an account or bot by its peer, list, show, remove, and post to it.

Every statement runs as the tenant (``TenantEngine``): row-level security keeps one
tenant's channels from another's, in reads and in writes. Until channels are resolved and
their rights checked (the resources issue), connecting records the account and peer; a
post goes out as a send of that account to that peer, with its outcome at
``GET .../messages/{id}``.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from integration_service import inputs
from integration_service.api import reads
from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.errors import ResourceNotFound
from integration_service.api.models import (
    ACCOUNT_ID_PATTERN,
    ChannelBody,
    ChannelOut,
    ChannelPage,
    ChannelSendBody,
    MessageAccepted,
    SendBody,
)
from integration_service.api.problems import problem_responses
from integration_service.api.routes import messages
from integration_service.api.routes.common import TELEGRAM, answer, rate_limit_headers
from integration_service.channels import Channel, ChannelStore

router = APIRouter(prefix=f"{TELEGRAM}/channels", tags=["channels"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]


def _out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=str(channel.id),
        account_id=channel.account_id,
        peer=channel.peer,
        created_at=channel.created_at,
    )


def _store(ctx: ApiContext) -> ChannelStore:
    return ChannelStore(ctx.tenant_engine.engine)


def _channel(ctx: ApiContext, tenant_id: str, channel_id: uuid.UUID) -> Channel:
    with ctx.tenant_engine.scoped(tenant_id):
        found = _store(ctx).get(channel_id)
    if found is None:
        raise ResourceNotFound(f"no channel {channel_id}")
    return found


@router.post("", status_code=201, response_model=ChannelOut)
def connect_channel(
    body: ChannelBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("channels:write"))],
) -> JSONResponse:
    # The account must be the caller's (404 otherwise, as for any other tenant's id).
    reads.get_account(ctx.reader, principal.tenant_id, body.account_id)
    peer = inputs.peer(body.peer)

    def connect() -> ChannelOut:
        with ctx.tenant_engine.scoped(principal.tenant_id):
            return _out(_store(ctx).connect(principal.tenant_id, body.account_id, peer))

    return answer(request, ctx, principal.tenant_id, body, connect, status=201)


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


@router.post("/{channel_id}/send", status_code=202, response_model=MessageAccepted)
def send_to_channel(
    channel_id: uuid.UUID,
    body: ChannelSendBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("send"))],
) -> JSONResponse:
    channel = _channel(ctx, principal.tenant_id, channel_id)
    send = SendBody(peer=channel.peer, text=body.text, idempotency_key=body.idempotency_key)
    return messages.send(channel.account_id, send, request, ctx, principal)
