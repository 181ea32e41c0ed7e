"""The audit trail (``/api/integrations/audit``): who did what to which target and how it
ended, newest first, filtered; read as the tenant under row-level security."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.deps import caller, context
from integration_service.api.models import ACCOUNT_ID_PATTERN
from integration_service.api.problems import problem_responses
from integration_service.audit import AuditEntry, AuditReader

router = APIRouter(prefix="/api/integrations/audit", tags=["audit"], responses=problem_responses())
Context = Annotated[ApiContext, Depends(context)]


class AuditRecord(BaseModel):
    id: int
    account_id: str | None
    actor: str | None = Field(description="api_key:<id>, jwt:<sub>, cli:<user>, job:<id>...")
    action: str = Field(description="the route or command, or the outcome (message.sent...)")
    target: str | None = Field(description="account:<id>, channel:<id>, peer:<peer>...")
    status: Literal["success", "error"]
    error: str | None
    details: dict[str, Any] | None
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next: str | None = Field(description="pass as ?before= for older rows; null: the last")


def _out(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=entry.id,
        account_id=entry.app_id,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        status=entry.status,  # type: ignore[arg-type]  # the table's CHECK holds it
        error=entry.error,
        details=entry.details,
        created_at=entry.created_at,
    )


@router.get("", response_model=AuditPage)
def audit_trail(
    ctx: Context,
    principal: Annotated[Principal, Depends(caller("audit:read"))],
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64, description="or its family")] = None,
    target: Annotated[str | None, Query(max_length=256)] = None,
    account_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN)] = None,
    status: Literal["success", "error"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    with ctx.tenant_engine.scoped(principal.tenant_id):
        items, following = AuditReader(ctx.tenant_engine.engine).page(
            principal.tenant_id,
            actor=actor,
            action=action,
            target=target,
            account_id=account_id,
            status=status,
            since=since,
            until=until,
            before=before,
            limit=limit,
        )
    return AuditPage(
        items=[_out(item) for item in items], next=None if following is None else str(following)
    )
