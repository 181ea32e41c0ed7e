"""Events (``/api/integrations/events``): a page after a cursor, or a Server-Sent Events
stream that follows the log.

Both read the event log as the tenant (row-level security) with the library's one
readability rule (``EventLog.read``), so paging or following never skips an event, even
one committed late. The stream sends each event as ``id: <event id>``, ``event: <type>``
and ``data: <envelope>``; a client that reconnects with ``Last-Event-ID`` (browsers do it
on their own) continues right after the last event it got, across an API restart too: the
cursor is the client's, not the server's. A comment line every ``HEARTBEAT_SECONDS`` keeps
proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context, own_account
from integration_service.api.models import ACCOUNT_ID_PATTERN
from integration_service.api.problems import problem_responses
from integration_service.api.routes.common import rate_limit_headers
from integration_service.inbound.event_log import EventLog
from integration_service.inbound.query import EventQuery
from integration_service.inputs import InvalidInput

router = APIRouter(
    prefix="/api/integrations/events", tags=["events"], responses=problem_responses()
)
Context = Annotated[ApiContext, Depends(context)]
Reading = Annotated[Principal, Depends(caller("events:read"))]
POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
STREAM_BATCH = 200


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


def _query(
    principal: Principal, app_id: str | None, after: str | None, types: str | None, limit: int
) -> EventQuery:
    if principal.app_id is not None:
        own_account(principal, app_id or principal.app_id)
        app_id = principal.app_id
    wanted = [t for t in (types or "").split(",") if t] or None
    return EventQuery.parse(
        principal.tenant_id, app_id=app_id, after=after, types=wanted, limit=limit
    )


def _read(ctx: ApiContext, query: EventQuery, *, check_cursor: bool = True) -> list[dict[str, Any]]:
    log = EventLog(ctx.tenant_engine.engine)
    with ctx.tenant_engine.scoped(query.tenant_id):
        if check_cursor and isinstance(query.after, uuid.UUID):
            if log.get(query.tenant_id, query.after) is None:
                raise InvalidInput(
                    "after", "names no event of this tenant (or older than EVENT_RETENTION_DAYS)"
                )
        found = log.read(
            query.tenant_id,
            app_id=query.app_id,
            after=query.after,
            types=query.types,
            limit=query.limit,
        )
    return [event.envelope() for event in found]


@router.get("", response_model=EventPage)
def events(
    ctx: Context,
    principal: Reading,
    after: Annotated[
        str | None, Query(description="an event id, or with app_id a sequence")
    ] = None,
    types: Annotated[str | None, Query(description="comma-separated event types")] = None,
    app_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    query = _query(principal, app_id, after, types, limit)
    items = _read(ctx, query)
    following = query.next_cursor(items[-1]) if items else after
    return EventPage(items=items, next=following)


def _frame(envelope: dict[str, Any]) -> bytes:
    data = json.dumps(envelope, separators=(",", ":"), default=str)
    return f"id: {envelope['id']}\nevent: {envelope['type']}\ndata: {data}\n\n".encode()


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    ctx: Context,
    principal: Reading,
    after: Annotated[str | None, Query()] = None,
    types: Annotated[str | None, Query()] = None,
    app_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Follow the log: from ``Last-Event-ID`` (a reconnect), else ``after``, else now."""
    start = last_event_id or after
    if start is None:
        start = await run_in_threadpool(
            ctx.client.latest_event_id, principal.tenant_id, app_id=principal.app_id or app_id
        )
    query = _query(principal, app_id, start, types, STREAM_BATCH)
    # The first read here, so a bad cursor is a 422 before the stream starts.
    first = await run_in_threadpool(_read, ctx, query)

    async def frames() -> AsyncIterator[bytes]:
        nonlocal query
        batch = first
        quiet_since = time.monotonic()
        yield b": connected\n\n"
        while not await request.is_disconnected():
            for envelope in batch:
                yield _frame(envelope)
            if batch:
                query = EventQuery.parse(
                    query.tenant_id,
                    app_id=query.app_id,
                    after=str(batch[-1]["id"]),
                    types=query.types,
                    limit=STREAM_BATCH,
                )
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                yield b": heartbeat\n\n"
                quiet_since = time.monotonic()
            if len(batch) < STREAM_BATCH:
                await asyncio.sleep(POLL_SECONDS)
            batch = await run_in_threadpool(partial(_read, check_cursor=False), ctx, query)

    headers = {
        **rate_limit_headers(request),
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
