"""Bots (seed 004's ``/api/integrations/telegram/bots``): a bot is an account of kind
``bot``, connected with its token. Until bots are resources of their own (issue 14), these
routes map onto the session model: the bot's id is its app_id, ``POST`` starts a bot login,
``DELETE`` logs it out, ``POST /{id}/send`` sends as it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from integration_service.api import reads
from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.errors import ResourceNotFound
from integration_service.api.logins import Logins
from integration_service.api.models import (
    ACCOUNT_ID_PATTERN,
    Account,
    AccountId,
    AccountPage,
    JobAccepted,
    MessageAccepted,
    SendBody,
    Strict,
)
from integration_service.api.problems import problem_responses
from integration_service.api.routes import messages
from integration_service.api.routes.common import TELEGRAM, answer
from integration_service.api.routes.logins import LoginStarted

router = APIRouter(prefix=f"{TELEGRAM}/bots", tags=["bots"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]


class BotBody(Strict):
    app_id: str = Field(pattern=ACCOUNT_ID_PATTERN)
    bot_token: str = Field(min_length=1, max_length=128)


def _bot(ctx: ApiContext, tenant_id: str, bot_id: str) -> Account:
    found = reads.get_account(ctx.reader, tenant_id, bot_id)
    if found.kind != "bot":
        raise ResourceNotFound(f"no bot {bot_id}")
    return found


@router.post("", status_code=202, response_model=LoginStarted)
def connect_bot(
    body: BotBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("connect"))],
) -> JSONResponse:
    def start() -> LoginStarted:
        handle = ctx.client.connect_bot(principal.tenant_id, body.app_id, body.bot_token)
        record = Logins(ctx.client).record("bot", handle)
        return LoginStarted(
            id=record.id, account_id=body.app_id, method="bot", job_id=handle.job_id
        )

    return answer(request, ctx, principal.tenant_id, body, start)


@router.get("", response_model=AccountPage)
def list_bots(
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("accounts:read"))],
    after: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccountPage:
    items, following = reads.list_accounts(
        ctx.reader,
        principal.tenant_id,
        state=None,
        after=after,
        limit=limit,
        only=principal.app_id,
        kind="bot",
    )
    return AccountPage(items=items, next=following)


@router.get("/{bot_id}", response_model=Account)
def get_bot(
    bot_id: AccountId,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("accounts:read"))],
) -> Account:
    return _bot(ctx, principal.tenant_id, bot_id)


@router.delete("/{bot_id}", status_code=202, response_model=JobAccepted)
def log_out_bot(
    bot_id: AccountId,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("accounts:write"))],
) -> JSONResponse:
    _bot(ctx, principal.tenant_id, bot_id)

    def log_out() -> JobAccepted:
        handle = ctx.client.log_out(principal.tenant_id, bot_id)
        return JobAccepted(job_id=handle.job_id, account_id=bot_id, task=handle.task)

    return answer(request, ctx, principal.tenant_id, None, log_out)


@router.post("/{bot_id}/send", status_code=202, response_model=MessageAccepted)
def send_as_bot(
    bot_id: AccountId,
    body: SendBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("send"))],
) -> JSONResponse:
    _bot(ctx, principal.tenant_id, bot_id)
    return messages.send(bot_id, body, request, ctx, principal)
