"""Connecting an account: ``POST .../connect`` starts a QR, code or bot login (202 with a
login id); ``GET .../logins/{id}`` says where it stands (with the QR while it waits for
its scan); ``POST .../logins/{id}/code`` and ``/password`` take the user's next step."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context, own_account
from integration_service.api.logins import Logins
from integration_service.api.models import (
    CodeBody,
    ConnectBody,
    JobAccepted,
    Login,
    PasswordBody,
)
from integration_service.api.problems import problem_responses
from integration_service.api.routes.common import TELEGRAM, answer
from integration_service.inputs import InvalidInput

router = APIRouter(prefix=TELEGRAM, tags=["logins"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]
Connecting = Annotated[Principal, Depends(caller("connect"))]


class LoginStarted(BaseModel):
    id: str
    account_id: str
    method: str
    job_id: str


@router.post("/connect", status_code=202, response_model=LoginStarted)
def connect(
    body: ConnectBody, request: Request, ctx: Context, principal: Connecting
) -> JSONResponse:
    own_account(principal, body.app_id)
    tenant = principal.tenant_id

    def start() -> LoginStarted:
        client = ctx.client
        if body.method == "qr":
            handle = client.start_qr_login(tenant, body.app_id)
        elif body.method == "code":
            if body.phone is None:
                raise InvalidInput("phone", "is required for method code")
            handle = client.request_code(tenant, body.app_id, body.phone)
        else:
            if body.bot_token is None:
                raise InvalidInput("bot_token", "is required for method bot")
            handle = client.connect_bot(tenant, body.app_id, body.bot_token)
        record = Logins(client).record(body.method, handle)
        return LoginStarted(
            id=record.id, account_id=record.app_id, method=body.method, job_id=handle.job_id
        )

    return answer(request, ctx, tenant, body, start)


@router.get("/logins/{login_id}", response_model=Login)
def get_login(login_id: str, ctx: Context, principal: Connecting) -> Login:
    logins = Logins(ctx.client)
    record = logins.find(principal.tenant_id, login_id)
    own_account(principal, record.app_id)
    return logins.state(record)


def _next_step(
    request: Request, ctx: Context, principal: Principal, login_id: str, body: BaseModel
) -> JSONResponse:
    record = Logins(ctx.client).find(principal.tenant_id, login_id)
    own_account(principal, record.app_id)

    def submit() -> JobAccepted:
        client = ctx.client
        if isinstance(body, CodeBody):
            handle = client.submit_code(principal.tenant_id, record.app_id, body.code)
        else:
            assert isinstance(body, PasswordBody)
            handle = client.submit_password(principal.tenant_id, record.app_id, body.password)
        return JobAccepted(job_id=handle.job_id, account_id=record.app_id, task=handle.task)

    return answer(request, ctx, principal.tenant_id, body, submit)


@router.post("/logins/{login_id}/code", status_code=202, response_model=JobAccepted)
def submit_code(
    login_id: str, body: CodeBody, request: Request, ctx: Context, principal: Connecting
) -> JSONResponse:
    return _next_step(request, ctx, principal, login_id, body)


@router.post("/logins/{login_id}/password", status_code=202, response_model=JobAccepted)
def submit_password(
    login_id: str, body: PasswordBody, request: Request, ctx: Context, principal: Connecting
) -> JSONResponse:
    return _next_step(request, ctx, principal, login_id, body)
