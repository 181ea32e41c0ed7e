"""Webhook subscriptions (``/api/integrations/webhooks``): create, list, show, enable or
disable, rotate the secret, remove; a test ping; the delivery log and redelivery.

The secret is the caller's: it is given when a subscription is created or rotated
(``whsec_`` and base64, 24 to 64 bytes, as Standard Webhooks has it) and never returned,
so no answer of this API carries it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.errors import ResourceNotFound
from integration_service.api.models import Strict
from integration_service.api.problems import problem_responses
from integration_service.api.routes.common import answer, rate_limit_headers
from integration_service.webhooks.ping import ping

router = APIRouter(
    prefix="/api/integrations/webhooks", tags=["webhooks"], responses=problem_responses()
)
Context = Annotated[ApiContext, Depends(context)]
Reading = Annotated[Principal, Depends(caller("webhooks:read"))]
Writing = Annotated[Principal, Depends(caller("webhooks:write"))]
STATUS_PATTERN = "^(pending|in_flight|delivered|dead|cancelled)$"


class SubscriptionBody(Strict):
    url: str = Field(min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, description="omitted: every type")
    secret: str = Field(min_length=1, max_length=200, description="whsec_<base64>")
    max_in_flight: int | None = Field(default=None, ge=1, le=1000)


class EnabledBody(Strict):
    enabled: bool


class RotateBody(Strict):
    secret: str = Field(min_length=1, max_length=200)
    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)


class Subscription(BaseModel):
    id: str
    url: str
    event_types: list[str]
    max_in_flight: int
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubscriptionList(BaseModel):
    items: list[Subscription]


class Delivery(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    delivered_at: datetime | None
    dead_reason: str | None
    created_at: datetime


class DeliveryList(BaseModel):
    items: list[Delivery]


class PingResult(BaseModel):
    id: str
    delivered: bool
    status_code: int | None
    error: str | None
    latency_ms: float


def _subscription(found: Any) -> Subscription:
    document = found.as_dict()
    document.pop("tenant_id", None)
    return Subscription(**document)


def _delivery(found: Any) -> Delivery:
    document = found.as_dict()
    document.pop("tenant_id", None)
    document.pop("updated_at", None)
    return Delivery(**document)


def _id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ResourceNotFound(f"no {what} {value}") from None


@router.post("", status_code=201, response_model=Subscription)
def create(
    body: SubscriptionBody, request: Request, ctx: Context, principal: Writing
) -> JSONResponse:
    def add() -> Subscription:
        created = ctx.subscriptions.add(
            principal.tenant_id,
            body.url,
            body.event_types,
            secret=body.secret,
            max_in_flight=body.max_in_flight,
        )
        return _subscription(created.subscription)

    return answer(request, ctx, principal.tenant_id, body, add, status=201)


@router.get("", response_model=SubscriptionList)
def list_subscriptions(ctx: Context, principal: Reading) -> SubscriptionList:
    with ctx.tenant_engine.scoped(principal.tenant_id):
        found = ctx.subscriptions_read.list_subscriptions(principal.tenant_id)
    return SubscriptionList(items=[_subscription(s) for s in found])


@router.get("/{subscription_id}", response_model=Subscription)
def get_subscription(subscription_id: str, ctx: Context, principal: Reading) -> Subscription:
    wanted = _id(subscription_id, "webhook subscription")
    with ctx.tenant_engine.scoped(principal.tenant_id):
        return _subscription(ctx.subscriptions_read.get(principal.tenant_id, wanted))


@router.patch("/{subscription_id}", response_model=Subscription)
def set_enabled(
    subscription_id: str, body: EnabledBody, ctx: Context, principal: Writing
) -> Subscription:
    wanted = _id(subscription_id, "webhook subscription")
    reason = None if body.enabled else "disabled through the API"
    changed = ctx.subscriptions.set_enabled(
        principal.tenant_id, wanted, body.enabled, reason=reason
    )
    return _subscription(changed)


@router.delete("/{subscription_id}", status_code=204, response_class=Response)
def remove(subscription_id: str, request: Request, ctx: Context, principal: Writing) -> Response:
    ctx.subscriptions.remove(principal.tenant_id, _id(subscription_id, "webhook subscription"))
    return Response(status_code=204, headers=rate_limit_headers(request))


@router.post("/{subscription_id}/rotate-secret", response_model=Subscription)
def rotate_secret(
    subscription_id: str, body: RotateBody, ctx: Context, principal: Writing
) -> Subscription:
    grace = None if body.grace_seconds is None else timedelta(seconds=body.grace_seconds)
    rotated = ctx.subscriptions.rotate_secret(
        principal.tenant_id,
        _id(subscription_id, "webhook subscription"),
        secret=body.secret,
        grace=grace,
    )
    return _subscription(rotated.subscription)


@router.post("/{subscription_id}/test", response_model=PingResult)
async def test_ping(subscription_id: str, ctx: Context, principal: Writing) -> PingResult:
    wanted = _id(subscription_id, "webhook subscription")
    ping_id, result = await ping(ctx.settings, ctx.subscriptions, principal.tenant_id, wanted)
    return PingResult(
        id=ping_id,
        delivered=result.succeeded,
        status_code=result.status_code,
        error=result.error,
        latency_ms=round(result.latency_ms, 1),
    )


@router.get("/{subscription_id}/deliveries", response_model=DeliveryList)
def deliveries(
    subscription_id: str,
    ctx: Context,
    principal: Reading,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    wanted = _id(subscription_id, "webhook subscription")
    with ctx.tenant_engine.scoped(principal.tenant_id):
        ctx.subscriptions_read.get(principal.tenant_id, wanted)
        found = ctx.deliveries_read.deliveries(
            principal.tenant_id,
            subscription_id=wanted,
            statuses=[status] if status else None,
            limit=limit,
        )
    return DeliveryList(items=[_delivery(d) for d in found])


@router.post("/deliveries/{delivery_id}/redeliver", response_model=Delivery)
def redeliver(delivery_id: str, ctx: Context, principal: Writing) -> Delivery:
    wanted = _id(delivery_id, "webhook delivery")
    return _delivery(ctx.deliveries.redeliver(principal.tenant_id, wanted))
