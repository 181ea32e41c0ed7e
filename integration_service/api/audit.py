"""The audit trail (seed 004's ``integration_logs``): one row per state-changing call
(POST, PATCH, DELETE) that got past authentication, with who made it (``api_key:<id>``,
``jwt:<sub>``, ``miniapp:<user id>``), what (method and route template), the account it
named, and how it ended (the status; the error code when it failed). Never a body: bodies
carry texts, codes and passwords."""

from __future__ import annotations

import json
from typing import Any

import structlog
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integration_service import audit
from integration_service.api.auth import Principal

CHANGES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
logger = structlog.get_logger(__name__)


def record(
    engine: Engine,
    principal: Principal,
    action: str,
    path_params: dict[str, Any],
    status_code: int,
    error_code: str | None,
) -> None:
    account = path_params.get("account_id") or path_params.get("bot_id")
    audit.record(
        engine,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        action=action,
        ok=status_code < 400,
        target=audit.target_of(path_params),
        app_id=None if account is None else str(account),
        error=error_code,
        details={"status_code": status_code},
    )


class AuditTrail:
    def __init__(self, app: ASGIApp, engine_of: Any) -> None:
        self.app = app
        # Resolved per call: the context (and its engine) is built at start-up.
        self.engine_of = engine_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        status = 500
        error_code: str | None = None

        async def sending(message: Message) -> None:
            nonlocal status, error_code
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400 and error_code is None:
                error_code = _code_of(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            principal = scope.get("state", {}).get("principal")
            if isinstance(principal, Principal):
                route = scope.get("route")
                action = f"{scope['method']} {getattr(route, 'path', scope['path'])}"
                params = dict(scope.get("path_params", {}))
                try:
                    await run_in_threadpool(
                        record, self.engine_of(), principal, action, params, status, error_code
                    )
                except Exception as error:  # noqa: BLE001 - the answer is sent already
                    logger.error("api_audit_failed", action=action, error=type(error).__name__)


def _code_of(body: bytes) -> str | None:
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None
