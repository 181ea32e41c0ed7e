"""Login tickets in Redis: where a login stands, for pollers and for the next step.

``login_ticket:{tenant_id}:{app_id}`` is a hash living QR_TICKET_TTL seconds: the login
method, its status, the QR URL and token expiry for QR logins, the phone for code logins
(the next step signs in with it), the last error. The database keeps the session state;
the ticket keeps what only matters while a login is in progress.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from integration_service.store import SessionKey


def ticket_key(key: SessionKey) -> str:
    return f"login_ticket:{key.tenant_id}:{key.app_id}"


class LoginTickets:
    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self._redis = client
        self.ttl = ttl

    def start(self, key: SessionKey, method: str, **fields: Any) -> None:
        """A new ticket (replacing any earlier one) for a login by ``method``."""
        values = {"method": method, "started_at": time.time(), **fields}
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.delete(ticket_key(key))
        pipeline.hset(ticket_key(key), mapping=_encode(values))
        pipeline.expire(ticket_key(key), self.ttl)
        pipeline.execute()

    def update(self, key: SessionKey, **fields: Any) -> None:
        if fields:
            self._redis.hset(
                ticket_key(key), mapping=_encode({**fields, "updated_at": time.time()})
            )

    def get(self, key: SessionKey) -> dict[str, str]:
        raw = self._redis.hgetall(ticket_key(key))
        return {_text(k): _text(v) for k, v in raw.items()}

    def finish(self, key: SessionKey, **fields: Any) -> None:
        """Record the final status; the ticket stays readable until its TTL ends."""
        self.update(key, finished_at=time.time(), **fields)


def _encode(values: dict[str, Any]) -> dict[str | bytes, bytes | float | int | str]:
    return {k: "" if v is None else str(v) for k, v in values.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
