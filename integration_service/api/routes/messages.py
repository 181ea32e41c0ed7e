"""Sends: ``POST .../accounts/{id}/send`` accepts one (202 with its message id),
``GET .../messages/{id}`` tells how it went."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from integration_service.api import reads
from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.models import (
    AccountId,
    BulkAccepted,
    BulkBody,
    Message,
    MessageAccepted,
    SendBody,
)
from integration_service.api.problems import problem_responses
from integration_service.api.routes.common import TELEGRAM, answer, idempotency_key_of
from integration_service.client import JobHandle

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


def item_key(request_key: str | None, index: int) -> str | None:
    """An item's idempotency key derived from the request's, so a retried bulk request
    (same Idempotency-Key) gives each item the key it had the first time."""
    if request_key is None:
        return None
    derived = f"{request_key}:{index}"
    if len(derived) <= 128:
        return derived
    return "bulk-" + hashlib.sha256(derived.encode()).hexdigest()[:48]


@router.post("/accounts/{account_id}/send/bulk", status_code=202, response_model=BulkAccepted)
def send_bulk(
    account_id: AccountId,
    body: BulkBody,
    request: Request,
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("send"))],
) -> JSONResponse:
    """Up to 1,000 messages, accepted all or none: one invalid item refuses the request
    and enqueues nothing (a 422 listing every bad item)."""
    reads.get_account(ctx.reader, principal.tenant_id, account_id)
    header_key = idempotency_key_of(request)
    items = [
        {
            "peer": item.peer,
            "text": item.text,
            "idempotency_key": item.idempotency_key or item_key(header_key, index),
        }
        for index, item in enumerate(body.messages)
    ]

    def accept() -> BulkAccepted:
        handles = ctx.client.send_messages(principal.tenant_id, account_id, items)
        ids = record_many_accepted(ctx, principal.tenant_id, account_id, handles)
        accepted = [
            MessageAccepted(
                id=ids[h.idempotency_key or ""],
                account_id=account_id,
                status="accepted",
                idempotency_key=h.idempotency_key or "",
            )
            for h in handles
        ]
        return BulkAccepted(count=len(accepted), messages=accepted)

    return answer(request, ctx, principal.tenant_id, body, accept)


def record_many_accepted(
    ctx: ApiContext, tenant_id: str, app_id: str, handles: list[JobHandle]
) -> dict[str, str]:
    """Message ids by idempotency key: new ones, or those repeats of them were given."""
    keys = [h.idempotency_key or "" for h in handles]
    with ctx.client.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_messages (id, tenant_id, app_id, idempotency_key, job_id) "
                "SELECT gen_random_uuid(), :t, :a, k, j FROM unnest(CAST(:keys AS text[]), "
                "CAST(:jobs AS text[])) AS u(k, j) "
                "ON CONFLICT (tenant_id, app_id, idempotency_key) DO NOTHING"
            ),
            {"t": tenant_id, "a": app_id, "keys": keys, "jobs": [h.job_id for h in handles]},
        )
        rows = conn.execute(
            text(
                "SELECT idempotency_key, id FROM api_messages WHERE tenant_id = :t "
                "AND app_id = :a AND idempotency_key = ANY(:keys)"
            ),
            {"t": tenant_id, "a": app_id, "keys": keys},
        ).all()
    return {row[0]: str(row[1]) for row in rows}


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
