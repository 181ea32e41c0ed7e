"""Accounts (``/api/integrations/telegram/accounts``): list, show, reconnect, validate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from integration_service.api import reads
from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context, own_account
from integration_service.api.models import (
    ACCOUNT_ID_PATTERN,
    Account,
    AccountId,
    AccountPage,
    JobAccepted,
)
from integration_service.api.problems import problem_responses
from integration_service.api.routes.common import TELEGRAM, answer
from integration_service.client import JobHandle
from integration_service.sessions.state_machine import STATES

# Validated with the other query parameters, so a 422 lists every problem at once.
STATE_PATTERN = f"^({'|'.join(sorted(STATES))})$"
router = APIRouter(prefix=f"{TELEGRAM}/accounts", tags=["accounts"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]


def job_accepted(handle: JobHandle) -> JobAccepted:
    return JobAccepted(job_id=handle.job_id, account_id=handle.app_id, task=handle.task)


@router.get("", response_model=AccountPage)
def list_accounts(
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("accounts:read"))],
    state: Annotated[
        str | None,
        Query(pattern=STATE_PATTERN, description="only accounts in this state"),
    ] = None,
    after: Annotated[
        str | None, Query(pattern=ACCOUNT_ID_PATTERN, description="the `next` cursor")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccountPage:
    items, following = reads.list_accounts(
        ctx.reader,
        principal.tenant_id,
        state=state,
        after=after,
        limit=limit,
        only=principal.app_id,
    )
    return AccountPage(items=items, next=following)


@router.get("/{account_id}", response_model=Account)
def get_account(
    account_id: AccountId,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("accounts:read"))],
) -> Account:
    own_account(principal, account_id)
    return reads.get_account(ctx.reader, principal.tenant_id, account_id)


Writing = Annotated[Principal, Depends(caller("accounts:write"))]


def _job_on_account(
    request: Request,
    ctx: ApiContext,
    principal: Principal,
    account_id: str,
    enqueue: Callable[[str, str], JobHandle],
) -> JSONResponse:
    """A job on one of the caller's accounts (404 for any other), 202 with the job."""
    reads.get_account(ctx.reader, principal.tenant_id, account_id)
    return answer(
        request,
        ctx,
        principal.tenant_id,
        None,
        lambda: job_accepted(enqueue(principal.tenant_id, account_id)),
    )


@router.post("/{account_id}/reconnect", status_code=202, response_model=JobAccepted)
def reconnect(
    account_id: AccountId, request: Request, ctx: Context, principal: Writing
) -> JSONResponse:
    return _job_on_account(request, ctx, principal, account_id, ctx.client.reconnect)


@router.post("/{account_id}/validate", status_code=202, response_model=JobAccepted)
def validate(
    account_id: AccountId, request: Request, ctx: Context, principal: Writing
) -> JSONResponse:
    return _job_on_account(request, ctx, principal, account_id, ctx.client.validate_session)


@router.delete("/{account_id}", status_code=202, response_model=JobAccepted)
def log_out(
    account_id: AccountId, request: Request, ctx: Context, principal: Writing
) -> JSONResponse:
    """Log out at Telegram and wipe the session material (a job: 202 with it). The
    account stays listed, ``revoked`` with auth_error ``logged_out``; its transitions,
    events and sends (the audit trail) stay."""
    return _job_on_account(request, ctx, principal, account_id, ctx.client.log_out)
