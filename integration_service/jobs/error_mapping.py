"""One place that turns any library's exception into the service's error tree."""

from __future__ import annotations

import redis

from integration_service.crypto import CipherError
from integration_service.errors import PermanentError, RetryableError, ServiceError
from integration_service.leases import LeaseError
from integration_service.telegram.errors import classify_telethon


def to_service_error(error: BaseException) -> ServiceError | None:
    """The ServiceError ``error`` means, or None when it is unexpected (a bug)."""
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, CipherError):
        cls = RetryableError if error.retryable else PermanentError
        return cls(f"session cipher: {type(error).__name__}: {error}", code="cipher_error")
    if isinstance(error, LeaseError):
        return RetryableError(f"lease store: {error}", code="lease_unavailable")
    if isinstance(error, redis.RedisError):
        # Pacing, tickets, secret drops: Redis being away is transient by nature.
        return RetryableError(f"redis: {type(error).__name__}", code="redis_unavailable")
    return classify_telethon(error)
