"""Tenant API keys: created once (the key is shown then and never again), stored as a
hash, scoped, revocable, with the time each was last used.

A key is ``isk_`` and 43 characters of URL-safe base64 (256 random bits). Looking one up
hashes it with SHA-256 and finds the row by that hash; a revoked key, or one whose tenant
is gone, proves nothing. Verified keys are cached for ``CACHE_SECONDS`` per process, so a
revocation takes effect within that time everywhere; ``last_used_at`` is written at most
once a minute per key.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service import inputs
from integration_service.api.auth.principal import ALL_SCOPES, API_KEY, SCOPES, Principal
from integration_service.api.errors import ApiError, ResourceNotFound, Unauthenticated
from integration_service.store.guard import DatabaseGuard

PREFIX = "isk_"
CACHE_SECONDS = 5.0
CACHE_SIZE = 10_000
NAME_LIMIT = 128


class ScopeInvalid(ApiError):
    code = "scope_invalid"
    status = 422
    field = "scopes"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A key as listed: never the key itself."""

    id: uuid.UUID
    tenant_id: str
    name: str
    hint: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """What ``create`` returns: the record and, this once, the key."""

    record: ApiKeyRecord
    key: str

    def __repr__(self) -> str:
        return f"CreatedKey(record={self.record!r}, key=<hidden>)"


def looks_like_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(values: Iterable[object]) -> tuple[str, ...]:
    scopes: list[str] = []
    for value in values:
        if not isinstance(value, str) or (value not in SCOPES and value != ALL_SCOPES):
            known = ", ".join(sorted(SCOPES))
            raise ScopeInvalid(f"unknown scope {value!r} (known: {known}, or * for all)")
        if value not in scopes:
            scopes.append(value)
    if not scopes:
        raise ScopeInvalid("a key needs at least one scope")
    return tuple(scopes)


_RECORD_COLUMNS = "id, tenant_id, name, hint, scopes, created_at, last_used_at, revoked_at"


def _record(row: object) -> ApiKeyRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return ApiKeyRecord(
        id=m["id"],
        tenant_id=m["tenant_id"],
        name=m["name"],
        hint=m["hint"],
        scopes=tuple(m["scopes"]),
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


class ApiKeyStore:
    def __init__(self, engine: Engine, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._touched: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def create(self, tenant_id: str, name: str, scopes: Iterable[object]) -> CreatedKey:
        tenant = inputs.identifier("tenant_id", tenant_id)
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_LIMIT:
            raise ApiError(f"name must be 1 to {NAME_LIMIT} characters", field="name")
        chosen = parse_scopes(scopes)
        key = PREFIX + secrets.token_urlsafe(32)
        with self._guard.transaction(self._engine, "create API key") as conn:
            if conn.execute(text("SELECT 1 FROM tenants WHERE id = :t"), {"t": tenant}).first():
                row = conn.execute(
                    text(
                        "INSERT INTO api_keys (tenant_id, name, key_sha256, hint, scopes) "
                        "VALUES (:t, :name, :digest, :hint, :scopes) "
                        f"RETURNING {_RECORD_COLUMNS}"
                    ),
                    {
                        "t": tenant,
                        "name": name.strip(),
                        "digest": _digest(key),
                        "hint": key[-4:],
                        "scopes": list(chosen),
                    },
                ).one()
            else:
                row = None
        if row is None:
            raise ResourceNotFound(f"tenant {tenant!r} is not registered", field="tenant_id")
        return CreatedKey(_record(row), key)

    def list(self, tenant_id: str) -> list[ApiKeyRecord]:
        with self._guard.transaction(self._engine, "list API keys") as conn:
            rows = conn.execute(
                text(
                    f"SELECT {_RECORD_COLUMNS} FROM api_keys WHERE tenant_id = :t "
                    "ORDER BY created_at, id"
                ),
                {"t": tenant_id},
            ).all()
        return [_record(row) for row in rows]

    def revoke(self, tenant_id: str, key_id: uuid.UUID) -> ApiKeyRecord:
        """Revoke (idempotent); ResourceNotFound if the tenant has no such key."""
        with self._guard.transaction(self._engine, "revoke API key") as conn:
            row = conn.execute(
                text(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) "
                    f"WHERE tenant_id = :t AND id = :id RETURNING {_RECORD_COLUMNS}"
                ),
                {"t": tenant_id, "id": key_id},
            ).first()
        if row is None:
            raise ResourceNotFound(f"tenant {tenant_id!r} has no API key {key_id}")
        with self._lock:
            self._cache.clear()  # this process at once; the others within CACHE_SECONDS
        return _record(row)

    def verify(self, key: str) -> Principal:
        """The principal a key stands for; Unauthenticated for an unknown or revoked key."""
        digest = _digest(key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            principal = cached[1]
        else:
            principal = self._lookup(digest)
            with self._lock:
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                self._cache[digest] = (now, principal)
        self._touch(uuid.UUID(principal.subject), now)
        return principal

    def _lookup(self, digest: str) -> Principal:
        with self._guard.transaction(self._engine, "verify API key") as conn:
            row = conn.execute(
                text(
                    "SELECT k.id, k.tenant_id, k.scopes FROM api_keys k "
                    "JOIN tenants t ON t.id = k.tenant_id "
                    "WHERE k.key_sha256 = :digest AND k.revoked_at IS NULL"
                ),
                {"digest": digest},
            ).first()
        if row is None:
            raise Unauthenticated("unknown or revoked API key")
        return Principal(
            tenant_id=row[1], scopes=frozenset(row[2]), kind=API_KEY, subject=str(row[0])
        )

    def _touch(self, key_id: uuid.UUID, now: float) -> None:
        with self._lock:
            if now - self._touched.get(key_id, -1e9) < 60.0:
                return
            self._touched[key_id] = now
        with self._guard.transaction(self._engine, "note API key use") as conn:
            conn.execute(
                text(
                    "UPDATE api_keys SET last_used_at = now() WHERE id = :id "
                    "AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
                ),
                {"id": key_id},
            )
