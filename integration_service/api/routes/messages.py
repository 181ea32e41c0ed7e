"""Sends: ``POST .../accounts/{id}/send`` accepts one (202 with its message id),
``GET .../messages/{id}`` tells how it went."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from integration_service.api import reads
from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.models import AccountId, Message, MessageAccepted, SendBody
from integration_service.api.problems import problem_responses
from integration_service.api.routes.common import TELEGRAM, answer, idempotency_key_of

router = APIRouter(prefix=TELEGRAM, tags=["messages"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]


def record_accepted(ctx: ApiContext, tenant_id: str, app_id: str, key: str, job_id: str) -> str:
    """The message id of this send: a new one, or the one a repeat of it was given."""
    with ctx.client.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_messages (id, tenant_id, app_id, idempotency_key, job_id) "
                "VALUES (:id, :t, :a, :k, :job) "
                "ON CONFLICT (tenant_id, app_id, idempotency_key) DO NOTHING"
            ),
            {"id": uuid.uuid4(), "t": tenant_id, "a": app_id, "k": key, "job": job_id},
        )
        found = conn.execute(
            text(
                "SELECT id FROM api_messages WHERE tenant_id = :t AND app_id = :a "
                "AND idempotency_key = :k"
            ),
            {"t": tenant_id, "a": app_id, "k": key},
        ).scalar_one()
    return str(found)


@router.post("/accounts/{account_id}/send", status_code=202, response_model=MessageAccepted)
def send(
    account_id: AccountId,
    body: SendBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("send"))],
) -> JSONResponse:
    reads.get_account(ctx.reader, principal.tenant_id, account_id)
    key = body.idempotency_key or idempotency_key_of(request) or str(uuid.uuid4())

    def accept() -> MessageAccepted:
        # Enqueued first, recorded second: a failed enqueue leaves no message that will
        # never be sent; a failed record is healed by the caller's retry (the same key
        # never sends twice, and the record is made then).
        handle = ctx.client.send_message(
            principal.tenant_id, account_id, body.peer, body.text, idempotency_key=key
        )
        message_id = record_accepted(ctx, principal.tenant_id, account_id, key, handle.job_id)
        return MessageAccepted(
            id=message_id, account_id=account_id, status="accepted", idempotency_key=key
        )

    return answer(request, ctx, principal.tenant_id, body, accept)


@router.get("/messages/{message_id}", response_model=Message)
def get_message(
    message_id: str,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("messages:read"))],
) -> Message:
    found = reads.get_message(ctx.reader, principal.tenant_id, message_id)
    if principal.app_id is not None and found.account_id != principal.app_id:
        from integration_service.api.errors import ResourceNotFound

        raise ResourceNotFound(f"no message {message_id}")
    return found
