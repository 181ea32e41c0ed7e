"""Login tickets in Redis: where a login stands, for pollers and for the next step.

``login_ticket:{tenant_id}:{app_id}`` is a hash living QR_TICKET_TTL seconds: its id,
the login method, its status, the QR URL and token expiry for QR logins, the phone for
code logins (the next step signs in with it), the last error. The database keeps the
session state; the ticket keeps what only matters while a login is in progress.

The QR URL is a login secret (whoever scans it signs in): it is kept only while the
status is ``qr_pending`` and removed the moment the status moves on (scanned, failed,
expired). Job results carry the ticket id, never the URL; callers read the QR from here
through the producer API (``IntegrationClient.qr_code``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from integration_service.sessions.state_machine import QR_PENDING
from integration_service.store import SessionKey

# The QR's own fields: present only while the ticket's status is QR_PENDING.
QR_FIELDS = ("url", "token_expires_at")


def ticket_key(key: SessionKey) -> str:
    return f"login_ticket:{key.tenant_id}:{key.app_id}"


@dataclass(frozen=True, slots=True)
class PendingQr:
    """The QR of a login waiting for its scan. ``url`` is a secret: never log or return it."""

    ticket_id: str
    url: str
    token_expires_at: float | None

    def __repr__(self) -> str:
        return f"PendingQr(ticket_id={self.ticket_id!r}, url=<hidden>)"


class LoginTickets:
    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self._redis = client
        self.ttl = ttl

    def start(self, key: SessionKey, method: str, **fields: Any) -> str:
        """A new ticket (replacing any earlier one) for a login by ``method``; its id."""
        ticket_id = secrets.token_hex(8)
        values = {"ticket_id": ticket_id, "method": method, "started_at": time.time(), **fields}
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.delete(ticket_key(key))
        pipeline.hset(ticket_key(key), mapping=_encode(values))
        pipeline.expire(ticket_key(key), self.ttl)
        pipeline.execute()
        return ticket_id

    def update(self, key: SessionKey, **fields: Any) -> None:
        """Change fields; a status other than ``qr_pending`` also removes the QR.

        The ticket then lives QR_TICKET_TTL from this change (a write to a ticket that had
        expired must not leave a hash without a TTL behind).
        """
        if not fields:
            return
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.hset(ticket_key(key), mapping=_encode({**fields, "updated_at": time.time()}))
        if "status" in fields and fields["status"] != QR_PENDING:
            pipeline.hdel(ticket_key(key), *QR_FIELDS)
        pipeline.expire(ticket_key(key), self.ttl)
        pipeline.execute()

    def pending_qr(self, key: SessionKey, ticket_id: str | None = None) -> PendingQr | None:
        """The QR while the login waits for its scan (of ticket ``ticket_id``, if given)."""
        ticket = self.get(key)
        if ticket.get("status") != QR_PENDING or not ticket.get("url"):
            return None
        if ticket_id is not None and ticket.get("ticket_id") != ticket_id:
            return None
        expires = ticket.get("token_expires_at")
        return PendingQr(ticket["ticket_id"], ticket["url"], float(expires) if expires else None)

    def get(self, key: SessionKey) -> dict[str, str]:
        raw = self._redis.hgetall(ticket_key(key))
        return {_text(k): _text(v) for k, v in raw.items()}

    def finish(self, key: SessionKey, **fields: Any) -> None:
        """Record the final status (the QR goes); the ticket stays readable for its TTL."""
        self.update(key, finished_at=time.time(), **fields)


def _encode(values: dict[str, Any]) -> dict[FieldT, EncodableT]:
    return {k: "" if v is None else str(v) for k, v in values.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
