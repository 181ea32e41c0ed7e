"""What the routes that create work share: answering under an ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from integration_service.api.context import ApiContext
from integration_service.api.idempotency import Answer, parse_key, request_digest

TELEGRAM = "/api/integrations/telegram"


def idempotency_key_of(request: Request) -> str | None:
    return parse_key(request.headers.get("idempotency-key"))


def rate_limit_headers(request: Request) -> dict[str, str]:
    """The rate limit's headers (``deps.caller``), for answers built here rather than by
    FastAPI (which would add them itself)."""
    return dict(getattr(request.state, "rate_limit_headers", None) or {})


def answer(
    request: Request,
    ctx: ApiContext,
    tenant_id: str,
    body: BaseModel | None,
    produce: Callable[[], BaseModel],
    *,
    status: int = 202,
) -> JSONResponse:
    """``produce()``'s answer, or with an Idempotency-Key the first answer to that key."""

    def run() -> Answer:
        return status, produce().model_dump(mode="json")

    key = idempotency_key_of(request)
    replayed = False
    if key is None:
        code, content = run()
    else:
        seen: Any = None if body is None else body.model_dump(mode="json")
        digest = request_digest(request.method, request.url.path, seen)
        (code, content), replayed = ctx.idempotency.answer(tenant_id, key, digest, run)
    headers = rate_limit_headers(request)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(content, status_code=code, headers=headers)
