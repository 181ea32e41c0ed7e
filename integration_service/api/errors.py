"""The HTTP API's errors: each a ``ServiceError`` with a stable code and the HTTP status
it is answered with (``problems.py`` renders every error as RFC 9457 problem+json)."""

from __future__ import annotations

from integration_service.errors import PermanentError


class ApiError(PermanentError):
    """An error the API answers with ``status``; ``field`` names the input at fault."""

    code = "api_error"
    status = 400
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class Unauthenticated(ApiError):
    """No credentials, or credentials that prove nothing (bad, expired, revoked)."""

    code = "unauthenticated"
    status = 401


class ScopeMissing(ApiError):
    """The credentials are good but do not carry the scope this route needs."""

    code = "scope_missing"
    status = 403

    def __init__(self, scope: str) -> None:
        super().__init__(f"this route needs the scope {scope!r}")
        self.scope = scope


class ResourceNotFound(ApiError):
    """Nothing with this id is visible to the caller (another tenant's is not either)."""

    code = "not_found"
    status = 404


class IdempotencyConflict(ApiError):
    """The Idempotency-Key was used before with a different request."""

    code = "idempotency_key_reused"
    status = 409
    field = "Idempotency-Key"


class RateLimited(ApiError):
    """Too many requests for this key or tenant; retry after ``retry_after`` seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float, limit: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status = 413


class TokenServiceUnavailable(ApiError):
    """The JWKS endpoint could not be read, so no JWT can be checked now."""

    code = "jwks_unavailable"
    status = 503


class ChannelNotReady(ApiError):
    """The channel is not connected (still being checked, or its connect failed)."""

    code = "channel_not_ready"
    status = 409


class ChannelPostForbidden(ApiError):
    """Telegram would refuse the post: the account may not post in this chat."""

    code = "channel_post_forbidden"
    status = 403
