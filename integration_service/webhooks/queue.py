"""The delivery queue in PostgreSQL: fan-out, claims, outcomes.

- Fan-out turns each event not yet fanned out into one delivery per matching enabled
  subscription and marks the event, in one transaction; the unique (subscription,
  event) pair makes a repeat a no-op. ``FOR UPDATE SKIP LOCKED``: several dispatchers
  share the work.
- A claim takes due deliveries (pending and due, or in flight with an expired claim: a
  crashed dispatcher's) and marks them in flight until ``claimed_until``. The
  subscriptions are locked first (SKIP LOCKED) and their in-flight count read after the
  lock, so two dispatchers never exceed a subscription's ``max_in_flight`` together.
- Outcomes are recorded with their attempts in one transaction (a batch of them: the
  dispatcher groups the outcomes that finish together), each only while its claim is
  still ours (``claimed_until`` is the claim's token): a dispatcher that lost its claim
  records the attempt but does not overwrite the delivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

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
        traceparent=row["traceparent"],
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
                    "e.traceparent, "
                    "e.created_at AS event_created_at "
                    "FROM claimed c JOIN webhook_subscriptions s ON s.id = c.subscription_id "
                    "JOIN inbound_events e ON e.id = c.event_id"
                ),
                {"subs": locked, "capacity": capacity, "lease": lease_seconds},
            ).mappings()
            return [_claimed_from(row) for row in rows]

    def record(self, claimed: ClaimedDelivery, result: AttemptResult, outcome: Outcome) -> bool:
        """Store one attempt and its delivery's outcome (see ``record_many``)."""
        return self.record_many([Recorded(claimed, result, outcome)])[0]

    def record_many(self, recorded: Sequence[Recorded]) -> list[bool]:
        """Store the attempts and their deliveries' outcomes in one transaction: one
        statement for every attempt row, one for every delivery (a busy dispatcher's
        outcomes share a commit). For each, False if its claim was lost (the attempt is
        stored all the same)."""
        if not recorded:
            return []
        attempts = {
            "ids": [r.claimed.id for r in recorded],
            "tenants": [r.claimed.tenant_id for r in recorded],
            "codes": [r.result.status_code for r in recorded],
            "errors": [
                None if r.result.error is None else r.result.error[:ERROR_LIMIT] for r in recorded
            ],
            "latencies": [r.result.latency_ms for r in recorded],
        }
        outcomes = {
            "ids": attempts["ids"],
            "tokens": [r.claimed.claimed_until for r in recorded],
            "statuses": [r.outcome.status for r in recorded],
            "delivered": [r.outcome.status == DELIVERED for r in recorded],
            "codes": attempts["codes"],
            "errors": [
                None if r.result.succeeded else r.result.summary[:ERROR_LIMIT] for r in recorded
            ],
            "latencies": attempts["latencies"],
            "next_ats": [r.outcome.next_attempt_at for r in recorded],
            "reasons": [r.outcome.reason for r in recorded],
        }
        with transaction(self._engine, self._guard, "record webhook attempts") as conn:
            conn.execute(
                text(
                    "INSERT INTO webhook_attempts (delivery_id, tenant_id, status_code, error, "
                    "latency_ms) SELECT * FROM unnest(CAST(:ids AS uuid[]), "
                    "CAST(:tenants AS text[]), CAST(:codes AS int[]), CAST(:errors AS text[]), "
                    "CAST(:latencies AS float8[]))"
                ),
                attempts,
            )
            kept = set(
                conn.execute(
                    text(
                        "UPDATE webhook_deliveries d SET status = v.status, "
                        "attempts = d.attempts + 1, last_status_code = v.code, "
                        "last_error = v.error, last_latency_ms = v.latency, "
                        "next_attempt_at = COALESCE(v.next_at, d.next_attempt_at), "
                        "claimed_until = NULL, "
                        "delivered_at = CASE WHEN v.delivered THEN now() ELSE d.delivered_at END, "
                        "dead_reason = v.reason, updated_at = now() "
                        "FROM unnest(CAST(:ids AS uuid[]), CAST(:tokens AS timestamptz[]), "
                        "CAST(:statuses AS text[]), CAST(:delivered AS bool[]), "
                        "CAST(:codes AS int[]), CAST(:errors AS text[]), "
                        "CAST(:latencies AS float8[]), CAST(:next_ats AS timestamptz[]), "
                        "CAST(:reasons AS text[])) "
                        "AS v(id, token, status, delivered, code, error, latency, next_at, reason) "
                        "WHERE d.id = v.id AND d.status = 'in_flight' "
                        "AND d.claimed_until = v.token RETURNING d.id"
                    ),
                    outcomes,
                ).scalars()
            )
            for item in recorded:
                if item.outcome.disables_subscription:
                    _disable(conn, item)
        return [item.claimed.id in kept for item in recorded]

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


@dataclass(frozen=True, slots=True)
class Recorded:
    """One finished attempt to store: the claim it ran under, what happened, what next."""

    claimed: ClaimedDelivery
    result: AttemptResult
    outcome: Outcome


def _disable(conn: Connection, item: Recorded) -> None:
    """A 410: the subscription is off, and its pending deliveries are cancelled."""
    subscription_id = item.claimed.subscription_id
    conn.execute(
        text(
            "UPDATE webhook_subscriptions SET enabled = false, "
            "disabled_reason = :why, updated_at = now() WHERE id = :id"
        ),
        {
            "id": subscription_id,
            "why": f"the receiver answered 410 Gone (event {item.claimed.event.id})",
        },
    )
    conn.execute(
        text(
            f"UPDATE webhook_deliveries SET status = '{CANCELLED}', "
            "dead_reason = :why, updated_at = now() "
            f"WHERE subscription_id = :id AND status = '{PENDING}'"
        ),
        {"id": subscription_id, "why": item.outcome.reason},
    )
