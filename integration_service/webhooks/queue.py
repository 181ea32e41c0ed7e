"""The delivery queue in PostgreSQL: fan-out, claims, outcomes.

- Fan-out turns each event not yet fanned out into one delivery per matching enabled
  subscription and marks the event, in one transaction; the unique (subscription,
  event) pair makes a repeat a no-op. ``FOR UPDATE SKIP LOCKED``: several dispatchers
  share the work.
- A claim takes due deliveries (pending and due, or in flight with an expired claim: a
  crashed dispatcher's) and marks them in flight until ``claimed_until``. The
  subscriptions are locked first (SKIP LOCKED) and their in-flight count read after the
  lock, so two dispatchers never exceed a subscription's ``max_in_flight`` together.
- An outcome is recorded with its attempt in one transaction, only while the claim is
  still ours (``claimed_until`` is the claim's token): a dispatcher that lost its claim
  records the attempt but does not overwrite the delivery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.inbound.events import Event
from integration_service.store.guard import DatabaseGuard
from integration_service.webhooks.database import transaction
from integration_service.webhooks.records import CANCELLED, DELIVERED, PENDING
from integration_service.webhooks.retry_policy import AttemptResult, Outcome

DUE = (
    "((d.status = 'pending' AND d.next_attempt_at <= now()) "
    "OR (d.status = 'in_flight' AND d.claimed_until < now()))"
)
LIVE_IN_FLIGHT = (
    "(SELECT count(*) FROM webhook_deliveries f WHERE f.subscription_id = s.id "
    "AND f.status = 'in_flight' AND f.claimed_until >= now())"
)
ERROR_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this dispatcher holds until ``claimed_until``, with all it needs."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    tenant_id: str
    url: str
    attempts: int
    claimed_until: datetime
    event: Event
    event_created_at: datetime
    secret_enc: str
    # The rotated-out secret, only while it still signs.
    previous_secret_enc: str | None

    def __repr__(self) -> str:
        return (
            f"ClaimedDelivery(id={self.id}, subscription_id={self.subscription_id}, "
            f"tenant_id={self.tenant_id!r}, attempts={self.attempts})"
        )


def _claimed_from(row: Any) -> ClaimedDelivery:
    event = Event(
        id=row["event_id"],
        type=row["type"],
        tenant_id=row["tenant_id"],
        app_id=row["app_id"],
        sequence=int(row["sequence"]),
        occurred_at=row["occurred_at"],
        data=row["data"],
        position=int(row["position"]),
    )
    return ClaimedDelivery(
        id=row["id"],
        subscription_id=row["subscription_id"],
        tenant_id=row["tenant_id"],
        url=row["url"],
        attempts=int(row["attempts"]),
        claimed_until=row["claimed_until"],
        event=event,
        event_created_at=row["event_created_at"],
        secret_enc=row["secret_enc"],
        previous_secret_enc=row["previous_secret_enc"],
    )


class DeliveryQueue:
    def __init__(self, engine: Engine, *, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    def fan_out(self, batch: int) -> tuple[int, int]:
        """Fan out up to ``batch`` events; (events marked, deliveries created)."""
        with transaction(self._engine, self._guard, "fan out webhook events") as conn:
            ids = list(
                conn.execute(
                    text(
                        "SELECT id FROM inbound_events WHERE fanned_out_at IS NULL "
                        "ORDER BY position LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"n": batch},
                ).scalars()
            )
            if not ids:
                return 0, 0
            created = conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (subscription_id, event_id, tenant_id) "
                    "SELECT s.id, e.id, e.tenant_id FROM inbound_events e "
                    "JOIN webhook_subscriptions s ON s.tenant_id = e.tenant_id AND s.enabled "
                    "AND (e.type = ANY(s.event_types) OR '*' = ANY(s.event_types)) "
                    "WHERE e.id = ANY(:ids) "
                    "ON CONFLICT (subscription_id, event_id) DO NOTHING"
                ),
                {"ids": ids},
            ).rowcount
            conn.execute(
                text("UPDATE inbound_events SET fanned_out_at = now() WHERE id = ANY(:ids)"),
                {"ids": ids},
            )
        return len(ids), int(created)

    def claim(
        self, capacity: int, lease_seconds: float, subscriptions: int = 100
    ) -> list[ClaimedDelivery]:
        """Claim up to ``capacity`` due deliveries, none beyond a subscription's bound."""
        if capacity <= 0:
            return []
        with transaction(self._engine, self._guard, "claim webhook deliveries") as conn:
            locked = list(
                conn.execute(
                    text(
                        "SELECT s.id FROM webhook_subscriptions s WHERE s.enabled "
                        f"AND {LIVE_IN_FLIGHT} < s.max_in_flight "
                        "AND EXISTS (SELECT 1 FROM webhook_deliveries d "
                        f"WHERE d.subscription_id = s.id AND {DUE}) "
                        "ORDER BY random() LIMIT :n FOR UPDATE OF s SKIP LOCKED"
                    ),
                    {"n": subscriptions},
                ).scalars()
            )
            if not locked:
                return []
            # A new statement, so a new snapshot: every claim committed by another
            # dispatcher before we got the locks is counted here.
            rows = conn.execute(
                text(
                    "WITH room AS ("
                    f"  SELECT s.id, s.max_in_flight - {LIVE_IN_FLIGHT} AS free "
                    "   FROM webhook_subscriptions s WHERE s.id = ANY(:subs)"
                    "), picked AS ("
                    "  SELECT p.id, p.next_attempt_at FROM room, LATERAL ("
                    "    SELECT d.id, d.next_attempt_at FROM webhook_deliveries d "
                    f"   WHERE d.subscription_id = room.id AND {DUE} "
                    "    ORDER BY d.next_attempt_at LIMIT greatest(room.free, 0) "
                    "    FOR UPDATE OF d SKIP LOCKED) p "
                    "  ORDER BY p.next_attempt_at LIMIT :capacity"
                    "), claimed AS ("
                    "  UPDATE webhook_deliveries d SET status = 'in_flight', "
                    "  claimed_until = clock_timestamp() + make_interval(secs => :lease), "
                    "  updated_at = now() FROM picked WHERE d.id = picked.id "
                    "  RETURNING d.id, d.subscription_id, d.event_id, d.attempts, d.claimed_until"
                    ") "
                    "SELECT c.id, c.subscription_id, c.event_id, c.attempts, c.claimed_until, "
                    "s.tenant_id, s.url, s.secret_enc, "
                    "CASE WHEN s.previous_secret_expires_at > now() "
                    "  THEN s.previous_secret_enc END AS previous_secret_enc, "
                    "e.type, e.app_id, e.sequence, e.occurred_at, e.data, e.position, "
                    "e.created_at AS event_created_at "
                    "FROM claimed c JOIN webhook_subscriptions s ON s.id = c.subscription_id "
                    "JOIN inbound_events e ON e.id = c.event_id"
                ),
                {"subs": locked, "capacity": capacity, "lease": lease_seconds},
            ).mappings()
            return [_claimed_from(row) for row in rows]

    def record(self, claimed: ClaimedDelivery, result: AttemptResult, outcome: Outcome) -> bool:
        """Store the attempt and the delivery's outcome; False if the claim was lost
        (the attempt is stored all the same)."""
        error = None if result.error is None else result.error[:ERROR_LIMIT]
        last_error = None if result.succeeded else result.summary[:ERROR_LIMIT]
        with transaction(self._engine, self._guard, "record webhook attempt") as conn:
            conn.execute(
                text(
                    "INSERT INTO webhook_attempts (delivery_id, tenant_id, status_code, error, "
                    "latency_ms) VALUES (:id, :tenant_id, :code, :error, :latency)"
                ),
                {
                    "id": claimed.id,
                    "tenant_id": claimed.tenant_id,
                    "code": result.status_code,
                    "error": error,
                    "latency": result.latency_ms,
                },
            )
            updated = conn.execute(
                text(
                    "UPDATE webhook_deliveries SET status = :status, attempts = attempts + 1, "
                    "last_status_code = :code, last_error = :error, last_latency_ms = :latency, "
                    "next_attempt_at = COALESCE(:next_at, next_attempt_at), claimed_until = NULL, "
                    "delivered_at = CASE WHEN :delivered THEN now() "
                    "  ELSE delivered_at END, "
                    "dead_reason = :reason, updated_at = now() "
                    "WHERE id = :id AND status = 'in_flight' AND claimed_until = :token"
                ),
                {
                    "id": claimed.id,
                    "token": claimed.claimed_until,
                    "status": outcome.status,
                    "delivered": outcome.status == DELIVERED,
                    "code": result.status_code,
                    "error": last_error,
                    "latency": result.latency_ms,
                    "next_at": outcome.next_attempt_at,
                    "reason": outcome.reason,
                },
            ).rowcount
            if outcome.disables_subscription:
                conn.execute(
                    text(
                        "UPDATE webhook_subscriptions SET enabled = false, "
                        "disabled_reason = :why, updated_at = now() WHERE id = :id"
                    ),
                    {
                        "id": claimed.subscription_id,
                        "why": f"the receiver answered 410 Gone (event {claimed.event.id})",
                    },
                )
                conn.execute(
                    text(
                        f"UPDATE webhook_deliveries SET status = '{CANCELLED}', "
                        "dead_reason = :why, updated_at = now() "
                        f"WHERE subscription_id = :id AND status = '{PENDING}'"
                    ),
                    {"id": claimed.subscription_id, "why": outcome.reason},
                )
        return bool(updated)

    def release(self, claims: list[ClaimedDelivery]) -> None:
        """Give back claims whose attempt never finished (a stop): due again at once."""
        if not claims:
            return
        with transaction(self._engine, self._guard, "release webhook claims") as conn:
            for claimed in claims:
                conn.execute(
                    text(
                        f"UPDATE webhook_deliveries SET status = '{PENDING}', "
                        "claimed_until = NULL, next_attempt_at = now(), updated_at = now() "
                        "WHERE id = :id AND status = 'in_flight' AND claimed_until = :token"
                    ),
                    {"id": claimed.id, "token": claimed.claimed_until},
                )

    def pending_count(self) -> int:
        with transaction(self._engine, self._guard, "count pending webhooks") as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
                ).scalar_one()
            )
