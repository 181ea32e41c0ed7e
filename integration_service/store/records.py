"""Plain records the store reads and writes; no ORM state leaks out of the store."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SessionKind = Literal["user", "bot"]

# Identifiers are chosen by tenants' systems; keep them boring so they are safe in
# Redis keys, queue names, log fields and metric-free labels alike.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A session's identity: one Telegram account or bot of one tenant's app."""

    tenant_id: str
    app_id: str

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.app_id}"


@dataclass(frozen=True, slots=True)
class SessionMaterial:
    """What one call of upsert_telegram_session writes.

    ``None`` for a material field keeps the stored value (see migration 0002).
    """

    key: SessionKey
    kind: SessionKind
    state: str
    lease_epoch: int
    session_string_enc: str | None = None
    key_id: str | None = None
    api_key_alias: str | None = None
    telegram_user_id: int | None = None
    dc_id: int | None = None
    fingerprint: str | None = None
    auth_error: str | None = None
    error_details: str | None = None

    def __repr__(self) -> str:
        # The ciphertext is not secret on its own, but it has no place in logs either.
        return (
            f"SessionMaterial(key={self.key}, kind={self.kind}, state={self.state}, "
            f"lease_epoch={self.lease_epoch}, key_id={self.key_id})"
        )


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A stored session as read back."""

    id: uuid.UUID
    key: SessionKey
    kind: SessionKind
    state: str
    session_string_enc: str | None
    key_id: str | None
    api_key_alias: str | None
    telegram_user_id: int | None
    dc_id: int | None
    lease_epoch: int
    fingerprint: str | None
    auth_error: str | None
    error_details: str | None
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # The Redis data set the last lease was taken in (see leases/generation.py).
    lease_generation: str | None = None
    # Placement keeps a live connection with updates on (inbound/placement.py).
    listening: bool = True

    def __repr__(self) -> str:
        return (
            f"SessionRow(id={self.id}, key={self.key}, kind={self.kind}, state={self.state}, "
            f"lease_epoch={self.lease_epoch})"
        )


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One persisted state transition."""

    id: int
    session_id: uuid.UUID
    from_state: str | None
    to_state: str
    reason: str
    lease_epoch: int
    task_id: str | None
    created_at: datetime
