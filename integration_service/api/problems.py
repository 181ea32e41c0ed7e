"""Every error as RFC 9457 problem+json, with the project's stable error code.

``{"type", "title", "status", "detail", "code", "field"?, "errors"?}``: ``type`` is
``urn:integration-service:error:<code>``, ``code`` the same stable code the library and the
CLI use, ``field`` the input at fault. A 422 from request validation lists every problem
in ``errors``, each with its ``field`` (``body.peer``, ``query.limit``), ``code`` and
``detail``. An error nobody classified is a 500 whose body says only that: its message
could hold anything, so it goes to the log, never to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from integration_service.api.errors import ApiError, RateLimited, Unauthenticated
from integration_service.dependencies import DependencyUnavailable
from integration_service.errors import RetryableError, ServiceError
from integration_service.inputs import InvalidInput
from integration_service.store import SessionNotFound, StoreUnavailable
from integration_service.telegram.terminated import SessionTerminated

PROBLEM_JSON = "application/problem+json"
logger = structlog.get_logger(__name__)


class Problem(BaseModel):
    """An error answer (RFC 9457), as OpenAPI documents it."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    # A 422 from request validation: every problem, each {field, code, detail}.
    errors: list[dict[str, str]] | None = None
    retry_after: float | None = None


PROBLEM_STATUSES = {
    400: "the body could not be read as JSON (not UTF-8, or not JSON at all)",
    401: "no token, or a bad, expired or revoked one",
    403: "the token lacks the route's scope",
    404: "no such resource for this tenant",
    409: "a conflict: the Idempotency-Key was used for another request, or the session has ended",
    413: "the request body is too large",
    422: "the request is invalid; every problem is listed",
    429: "rate limited: retry after Retry-After seconds",
    503: "a dependency (PostgreSQL, Redis, the broker, the JWKS) is unreachable",
}


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """The error answers every authenticated route can give, for OpenAPI."""
    schema = Problem.model_json_schema()
    return {
        status: {"description": why, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status, why in PROBLEM_STATUSES.items()
    }


def problem(
    status: int, code: str, detail: str, *, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:integration-service:error:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return body


def status_of(error: ServiceError) -> int:
    from integration_service.channels import ChannelExists
    from integration_service.client import UnknownTenant
    from integration_service.webhooks.errors import (
        DeliveryInFlight,
        DeliveryNotFound,
        SubscriptionNotFound,
        WebhookInputInvalid,
        WebhookTenantUnknown,
    )

    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, InvalidInput | WebhookInputInvalid):
        return 422
    if isinstance(
        error,
        SessionNotFound
        | UnknownTenant
        | SubscriptionNotFound
        | DeliveryNotFound
        | WebhookTenantUnknown,
    ):
        return 404
    if isinstance(error, SessionTerminated | DeliveryInFlight | ChannelExists):
        return 409
    if isinstance(error, DependencyUnavailable | StoreUnavailable | RetryableError):
        return 503
    return 400


def field_of(error: ServiceError) -> str | None:
    value = getattr(error, "field", None) or getattr(error, "field_name", None)
    return value if isinstance(value, str) and value else None


def response_for(error: ServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    status = status_of(error)
    extra: dict[str, Any] = {}
    if isinstance(error, RateLimited):
        extra["retry_after"] = error.retry_after
    problems = getattr(error, "problems", None)
    if isinstance(problems, list):
        # A bulk send's items: each problem where it is, as request validation names them.
        extra["errors"] = [
            {
                "field": f"body.messages.{item.get('index')}.{item.get('field')}",
                "code": f"invalid_{item.get('field')}",
                "detail": str(item.get("detail")),
            }
            for item in problems
        ]
    return JSONResponse(
        problem(status, error.code, error.detail, field=field_of(error), **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _code(item: Mapping[str, Any]) -> str:
    """pydantic's type, except the library's own rules (``models._library_rule``), which
    keep the library's code: ``invalid_peer``, ``invalid_idempotency_key``."""
    kind = str(item.get("type", "invalid"))
    location = item.get("loc", ())
    if kind == "value_error" and location:
        return f"invalid_{location[-1]}"
    return kind


def _location(parts: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in parts)


def install(app: FastAPI) -> None:
    """The handlers that turn every exception into a problem response."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        # The rate limit's headers go on every answer after the check, refusals too.
        headers = dict(getattr(request.state, "rate_limit_headers", None) or {})
        if isinstance(error, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="integration-service"'
        return response_for(error, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _location(item.get("loc", ())),
                "code": _code(item),
                # pydantic's message; the input value itself is left out (it may be a
                # password or a token).
                "detail": str(item.get("msg", "invalid")),
            }
            for item in error.errors()
        ]
        first = errors[0]["field"] if errors else None
        return JSONResponse(
            problem(
                422,
                "invalid_request",
                f"{len(errors)} problem(s) with the request",
                field=first,
                errors=errors,
            ),
            status_code=422,
            media_type=PROBLEM_JSON,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}
        code = codes.get(error.status_code, "http_error")
        return JSONResponse(
            problem(error.status_code, code, str(error.detail)),
            status_code=error.status_code,
            media_type=PROBLEM_JSON,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.error(
            "api_unexpected_error",
            path=getattr(request.scope.get("route"), "path", None),
            error=type(error).__name__,
            exc_info=error,
        )
        return JSONResponse(
            problem(500, "internal_error", "an unexpected error; it has been logged"),
            status_code=500,
            media_type=PROBLEM_JSON,
        )
