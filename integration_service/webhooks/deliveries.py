"""The delivery log: what was delivered, how each attempt went, and redelivery on demand."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.store.guard import DatabaseGuard
from integration_service.webhooks.database import transaction
from integration_service.webhooks.errors import (
    DeliveryInFlight,
    DeliveryNotFound,
    SubscriptionNotFound,
)
from integration_service.webhooks.records import (
    DEAD,
    DELIVERY_COLUMNS,
    IN_FLIGHT,
    Attempt,
    Delivery,
    attempt_from,
    delivery_from,
)

# Redelivery puts a delivery back to pending now, as if new; its attempts keep counting.
REDELIVER = (
    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), "
    "claimed_until = NULL, dead_reason = NULL, updated_at = now() "
)


class DeliveryLog:
    def __init__(self, engine: Engine, *, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    def deliveries(
        self,
        tenant_id: str,
        *,
        subscription_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
        statuses: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """The tenant's deliveries, newest first."""
        where = ["tenant_id = :tenant_id"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit}
        if subscription_id is not None:
            where.append("subscription_id = :subscription_id")
            params["subscription_id"] = subscription_id
        if event_id is not None:
            where.append("event_id = :event_id")
            params["event_id"] = event_id
        if statuses:
            where.append("status = ANY(:statuses)")
            params["statuses"] = list(statuses)
        with transaction(self._engine, self._guard, "list webhook deliveries") as conn:
            rows = conn.execute(
                text(
                    f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "
                    f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id LIMIT :limit"
                ),
                params,
            ).mappings()
            return [delivery_from(row) for row in rows]

    def get(self, tenant_id: str, delivery_id: uuid.UUID) -> Delivery:
        with transaction(self._engine, self._guard, "read webhook delivery") as conn:
            row = (
                conn.execute(
                    text(
                        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "
                        "WHERE id = :id AND tenant_id = :tenant_id"
                    ),
                    {"id": delivery_id, "tenant_id": tenant_id},
                )
                .mappings()
                .first()
            )
        if row is None:
            raise DeliveryNotFound(f"no webhook delivery {delivery_id} for tenant {tenant_id}")
        return delivery_from(row)

    def attempts(self, tenant_id: str, delivery_ids: Collection[uuid.UUID]) -> list[Attempt]:
        """Every attempt of these deliveries, oldest first."""
        if not delivery_ids:
            return []
        with transaction(self._engine, self._guard, "list webhook attempts") as conn:
            rows = conn.execute(
                text(
                    "SELECT delivery_id, attempted_at, status_code, error, latency_ms "
                    "FROM webhook_attempts WHERE tenant_id = :tenant_id "
                    "AND delivery_id = ANY(:ids) ORDER BY attempted_at, id"
                ),
                {"tenant_id": tenant_id, "ids": list(delivery_ids)},
            ).mappings()
            return [attempt_from(row) for row in rows]

    def redeliver(self, tenant_id: str, delivery_id: uuid.UUID) -> Delivery:
        """A delivered, dead or cancelled delivery is attempted again now (a pending one
        is brought forward). One in flight is refused: its attempt is running."""
        with transaction(self._engine, self._guard, "redeliver webhook") as conn:
            row = (
                conn.execute(
                    text(
                        f"{REDELIVER} WHERE id = :id AND tenant_id = :tenant_id "
                        f"AND status <> '{IN_FLIGHT}' RETURNING {DELIVERY_COLUMNS}"
                    ),
                    {"id": delivery_id, "tenant_id": tenant_id},
                )
                .mappings()
                .first()
            )
        if row is None:
            current = self.get(tenant_id, delivery_id)  # DeliveryNotFound if none
            raise DeliveryInFlight(f"webhook delivery {current.id} is being attempted right now")
        return delivery_from(row)

    def redeliver_dead(self, tenant_id: str, subscription_id: uuid.UUID) -> int:
        """Every dead delivery of the subscription back to pending now; how many."""
        with transaction(self._engine, self._guard, "redeliver dead webhooks") as conn:
            found = conn.execute(
                text(
                    "SELECT 1 FROM webhook_subscriptions WHERE id = :id AND tenant_id = :tenant_id"
                ),
                {"id": subscription_id, "tenant_id": tenant_id},
            ).first()
            if found is None:
                raise SubscriptionNotFound(
                    f"no webhook subscription {subscription_id} for tenant {tenant_id}"
                )
            return int(
                conn.execute(
                    text(
                        f"{REDELIVER} WHERE subscription_id = :id AND tenant_id = :tenant_id "
                        f"AND status = '{DEAD}'"
                    ),
                    {"id": subscription_id, "tenant_id": tenant_id},
                ).rowcount
            )
