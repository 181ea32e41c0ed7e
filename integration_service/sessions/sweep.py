"""The validation sweep: enqueue validation for sessions idle past the stale threshold.

Run by beat every SESSION_VALIDATION_INTERVAL. Sessions are walked in keyset-paginated
batches (no OFFSET, no long transaction); a Redis marker per session (SET NX with the
interval as TTL) keeps a backed-up queue from receiving the same session twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.sessions import state_machine as sm
from integration_service.store import SessionKey

SWEPT = Counter(
    "session_validation_sweep_sessions_total",
    "Sessions the validation sweep looked at, by what it did.",
    ["action"],
)
VALIDATABLE = (sm.AUTHORIZED, sm.DISCONNECTED)

_BATCH = text(
    """
    SELECT tenant_id, app_id FROM telegram_sessions
    WHERE state = ANY(:states)
      AND (last_activity_at IS NULL OR last_activity_at < now() - make_interval(secs => :stale))
      AND (tenant_id, app_id) > (:after_tenant, :after_app)
    ORDER BY tenant_id, app_id
    LIMIT :limit
    """
)


def pending_key(key: SessionKey) -> str:
    return f"validation_pending:{key.tenant_id}:{key.app_id}"


@dataclass(frozen=True, slots=True)
class SweepReport:
    examined: int
    enqueued: int
    already_pending: int
    batches: int


def sweep_stale_sessions(
    engine: Engine,
    client: redis.Redis,
    enqueue: Callable[[SessionKey], None],
    *,
    stale_after: float,
    batch_size: int,
    pending_ttl: int,
) -> SweepReport:
    examined = enqueued = pending = batches = 0
    after = ("", "")
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                _BATCH,
                {
                    "states": list(VALIDATABLE),
                    "stale": stale_after,
                    "after_tenant": after[0],
                    "after_app": after[1],
                    "limit": batch_size,
                },
            ).all()
        if not rows:
            break
        batches += 1
        keys = [SessionKey(r.tenant_id, r.app_id) for r in rows]
        pipeline = client.pipeline(transaction=False)
        for key in keys:
            pipeline.set(pending_key(key), "1", nx=True, ex=max(1, pending_ttl))
        for key, fresh in zip(keys, pipeline.execute(), strict=True):
            if fresh:
                enqueue(key)
                enqueued += 1
            else:
                pending += 1
        examined += len(keys)
        after = (keys[-1].tenant_id, keys[-1].app_id)
    SWEPT.labels(action="enqueued").inc(enqueued)
    SWEPT.labels(action="already_pending").inc(pending)
    return SweepReport(examined, enqueued, pending, batches)


def clear_pending(client: redis.Redis, key: SessionKey) -> None:
    client.delete(pending_key(key))
