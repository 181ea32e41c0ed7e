"""What the webhook tables hold, as typed values (never a secret: see ``NewSecret``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

# Delivery statuses (the table's check constraint).
PENDING = "pending"
IN_FLIGHT = "in_flight"
DELIVERED = "delivered"
DEAD = "dead"
CANCELLED = "cancelled"
DELIVERY_STATUSES = (PENDING, IN_FLIGHT, DELIVERED, DEAD, CANCELLED)

SUBSCRIPTION_COLUMNS = (
    "id, tenant_id, url, event_types, max_in_flight, enabled, disabled_reason, "
    "previous_secret_expires_at, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "id, subscription_id, event_id, tenant_id, status, attempts, next_attempt_at, "
    "claimed_until, last_status_code, last_error, last_latency_ms, delivered_at, dead_reason, "
    "created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: uuid.UUID
    tenant_id: str
    url: str
    event_types: tuple[str, ...]
    max_in_flight: int
    enabled: bool
    disabled_reason: str | None
    # Set while a rotated-out secret still signs.
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "tenant_id": self.tenant_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "max_in_flight": self.max_in_flight,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "previous_secret_expires_at": self.previous_secret_expires_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A subscription and its secret in text form: shown once, to whoever created it."""

    subscription: Subscription
    secret: str

    def __repr__(self) -> str:
        return f"NewSecret(subscription={self.subscription!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    tenant_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    delivered_at: datetime | None
    dead_reason: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "subscription_id": str(self.subscription_id),
            "event_id": str(self.event_id),
            "tenant_id": self.tenant_id,
            "status": self.status,
            "attempts": self.attempts,
            # A pending delivery's next try; for the others it means nothing.
            "next_attempt_at": self.next_attempt_at if self.status == PENDING else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "last_latency_ms": self.last_latency_ms,
            "delivered_at": self.delivered_at,
            "dead_reason": self.dead_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: uuid.UUID
    attempted_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": str(self.delivery_id),
            "attempted_at": self.attempted_at,
            "status_code": self.status_code,
            "error": self.error,
            "latency_ms": self.latency_ms,
        }


def subscription_from(row: RowMapping) -> Subscription:
    return Subscription(
        id=row["id"],
        tenant_id=row["tenant_id"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        max_in_flight=int(row["max_in_flight"]),
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def delivery_from(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        subscription_id=row["subscription_id"],
        event_id=row["event_id"],
        tenant_id=row["tenant_id"],
        status=row["status"],
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        claimed_until=row["claimed_until"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        last_latency_ms=row["last_latency_ms"],
        delivered_at=row["delivered_at"],
        dead_reason=row["dead_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def attempt_from(row: RowMapping) -> Attempt:
    return Attempt(
        delivery_id=row["delivery_id"],
        attempted_at=row["attempted_at"],
        status_code=row["status_code"],
        error=row["error"],
        latency_ms=float(row["latency_ms"]),
    )
