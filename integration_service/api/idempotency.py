"""``Idempotency-Key`` on the POSTs that create work: the first answer is stored per
(tenant, key) with a hash of the request; a repeat gets that answer again (same status,
same body, header ``Idempotent-Replayed: true``), the same key with another request a 409.

Two requests with one key at the same moment are serialised by a transaction-scoped
advisory lock on (tenant, key), so the work is done once. Kept for a day
(``RETENTION``): a client's retries come within seconds or minutes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service import inputs
from integration_service.api.errors import IdempotencyConflict
from integration_service.store.guard import DatabaseGuard

RETENTION_SECONDS = 24 * 3600
Answer = tuple[int, dict[str, Any]]


def request_digest(method: str, route: str, body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {route}\n{canonical}".encode()).hexdigest()


def parse_key(value: str | None) -> str | None:
    """The header's value, validated like every idempotency key (None: no header)."""
    if value is None:
        return None
    return inputs.idempotency_key(value)


class IdempotentRequests:
    def __init__(self, engine: Engine, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    def answer(
        self, tenant_id: str, key: str, digest: str, produce: Callable[[], Answer]
    ) -> tuple[Answer, bool]:
        """The stored answer for ``key`` (and True: a replay), or ``produce()``'s, stored."""
        with self._guard.transaction(self._engine, "idempotent request") as conn:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))"),
                {"lock": f"api-idempotency:{tenant_id}:{key}"},
            )
            found = conn.execute(
                text(
                    "SELECT request_sha256, status_code, response FROM api_idempotency "
                    "WHERE tenant_id = :t AND idempotency_key = :k "
                    f"AND created_at > now() - make_interval(secs => {RETENTION_SECONDS})"
                ),
                {"t": tenant_id, "k": key},
            ).first()
            if found is not None:
                if found[0] != digest:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was used with a different request"
                    )
                return (int(found[1]), dict(found[2])), True
            status, body = produce()
            if status < 500:
                # A 5xx is not an answer to keep: the client's retry should try again.
                conn.execute(
                    text(
                        "INSERT INTO api_idempotency (tenant_id, idempotency_key, "
                        "request_sha256, status_code, response) VALUES (:t, :k, :d, :s, "
                        "CAST(:r AS jsonb)) ON CONFLICT (tenant_id, idempotency_key) DO UPDATE "
                        "SET request_sha256 = EXCLUDED.request_sha256, status_code = "
                        "EXCLUDED.status_code, response = EXCLUDED.response, created_at = now()"
                    ),
                    {"t": tenant_id, "k": key, "d": digest, "s": status, "r": json.dumps(body)},
                )
            return (status, body), False

    def prune(self) -> int:
        with self._guard.transaction(self._engine, "prune idempotent requests") as conn:
            return int(
                conn.execute(
                    text(
                        "DELETE FROM api_idempotency WHERE created_at < "
                        f"now() - make_interval(secs => {RETENTION_SECONDS})"
                    )
                ).rowcount
            )
