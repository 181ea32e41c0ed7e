"""One place that turns any library's exception into the service's error tree.

Our own errors (cipher, leases, store: all ``ServiceError``) pass through as they are;
Telethon's and the network's are classified by ``telegram.errors.classify_telethon``;
Redis errors (pacing, login tickets, secret drops, met beside Telegram calls) are
transient. Domain code and the base task both use it; it imports no Celery plumbing.
"""

from __future__ import annotations

import redis

from integration_service.errors import RetryableError, ServiceError
from integration_service.telegram.errors import classify_telethon


def to_service_error(error: BaseException) -> ServiceError | None:
    """The ServiceError ``error`` means, or None when it is unexpected (a bug)."""
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, redis.RedisError):
        # Pacing, tickets, secret drops: Redis being away is transient by nature.
        return RetryableError(f"redis: {type(error).__name__}", code="redis_unavailable")
    return classify_telethon(error)
