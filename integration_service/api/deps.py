"""FastAPI dependencies: the context, and the caller of a route with its scope checked
after authentication and rate limiting (so a refused scope still counts as a request)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from integration_service.api.auth import Principal
from integration_service.api.context import ApiContext
from integration_service.api.errors import ResourceNotFound
from integration_service.api.ratelimit import enforce, headers
from integration_service.dependencies import REDIS

# Declares the scheme in OpenAPI; the header itself is read whole below, because Mini
# App initData may also come as ``Authorization: tma ...``.
bearer = HTTPBearer(auto_error=False, description="API key, JWT or Mini App initData")


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.context
    return found


def caller(scope: str) -> Callable[..., Principal]:
    def dependency(
        request: Request,
        response: Response,
        _declared: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        ctx = context(request)
        principal = ctx.authenticator.authenticate(request.headers.get("authorization"))
        # For the audit trail (audit.py), which runs after the answer.
        request.state.principal = principal
        with ctx.client.dependencies.reaching(REDIS):
            decision = ctx.limiter.check(
                [(ctx.key_limit, principal.actor), (ctx.tenant_limit, principal.tenant_id)]
            )
        limit_headers = headers(decision)
        response.headers.update(limit_headers)
        request.state.rate_limit_headers = limit_headers
        enforce(decision)
        principal.require(scope)
        return principal

    return dependency


def own_account(principal: Principal, account_id: str) -> None:
    """A Mini App user sees their own account only: any other is not found."""
    if principal.app_id is not None and principal.app_id != account_id:
        raise ResourceNotFound(f"no account {account_id}")
