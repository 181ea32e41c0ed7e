"""The MTProto random_id of a send, derived from its idempotency key.

Telegram deduplicates sendMessage by (sender, random_id): the same random_id again is
answered RANDOM_ID_DUPLICATE and nothing is delivered twice. Deriving random_id from the
session and the idempotency key makes every re-run of a job (a crash, a redelivery, a
producer's retry) carry the same random_id, so exactly-once holds end to end.
"""

from __future__ import annotations

import hashlib

from integration_service.store import SessionKey


def random_id_for(key: SessionKey, idempotency_key: str) -> int:
    """A signed, non-zero 64-bit integer, stable for (session, idempotency key)."""
    digest = hashlib.sha256(
        f"{key.tenant_id}\x00{key.app_id}\x00{idempotency_key}".encode()
    ).digest()
    value = int.from_bytes(digest[:8], "big", signed=True)
    return value or 1


def payload_digest(peer: str, text: str) -> str:
    """What the outbox keeps instead of the text: enough to spot a reused key."""
    return hashlib.sha256(f"{peer}\x00{text}".encode()).hexdigest()
