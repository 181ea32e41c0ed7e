"""Operations: ``/health/live``, ``/health/ready`` (PostgreSQL, Redis, the broker and,
with Vault, Vault: the same checks as a worker's) and ``/metrics`` for Prometheus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from integration_service.api.context import ApiContext
from integration_service.api.deps import context
from integration_service.observability.health import run_checks

router = APIRouter(tags=["operations"])


@router.get("/health/live")
def live() -> dict[str, Any]:
    return {"status": "ok", "checks": {"process": {"ok": True, "detail": "answering"}}}


@router.get(
    "/health/ready",
    responses={503: {"description": "a dependency is failing (the body says which)"}},
)
def ready(ctx: Annotated[ApiContext, Depends(context)]) -> JSONResponse:
    report = run_checks(ctx.settings, timeout=2.0)
    return JSONResponse(report.to_dict(), status_code=200 if report.ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
