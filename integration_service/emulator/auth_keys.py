"""Auth keys the data centre knows, with what Telegram remembers per key.

Keys live in memory, in a store object the world can read; every change is noted in the
store's journal, and a persisting emulator saves it at once (world/persistence.py), so a
restarted data centre still knows every key it issued, as Telegram does. A record never
appears in logs: ``__repr__`` hides the key material.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from telethon.crypto import AuthKey

from .journal import Journal

# Telegram rotates server salts about every 30 minutes and accepts the previous one for a
# while; a salt is therefore valid for two periods.
SALT_PERIOD_SECONDS = 1800


@dataclass(eq=False)
class AuthKeyRecord:
    """One auth key and the per-key facts Telegram keeps (layer, initConnection, salts)."""

    key_id: int
    key: bytes = field(repr=False)
    created_at: float
    layer: int | None = None
    client_info: dict[str, Any] = field(default_factory=dict)
    connection_inited: bool = False
    duplicated: bool = False
    # MTProto sessions of this key: session_id -> session object (see session.py).
    sessions: dict[int, Any] = field(default_factory=dict, repr=False)
    _salt_secret: bytes = field(default=b"", repr=False)
    _salt_cache: tuple[int, int, int] = (-1, 0, 0)

    def __post_init__(self) -> None:
        # Slices used by every message's msg_key and AES key derivation, cut once.
        self.client_msg_key_part = self.key[88:120]
        self.server_msg_key_part = self.key[96:128]

    def salt_for_period(self, period: int) -> int:
        digest = hmac.new(self._salt_secret, struct.pack("<q", period), hashlib.sha256).digest()
        return int(struct.unpack("<q", digest[:8])[0])

    def current_salts(self, now: float | None = None) -> tuple[int, int]:
        """(current salt, previous salt); both are accepted from the client."""
        period = int((time.time() if now is None else now) // SALT_PERIOD_SECONDS)
        cached_period, current, previous = self._salt_cache
        if cached_period != period:
            current = self.salt_for_period(period)
            previous = self.salt_for_period(period - 1)
            self._salt_cache = (period, current, previous)
        return current, previous

    def salt_is_valid(self, salt: int) -> bool:
        current, previous = self.current_salts()
        return salt in (current, previous)


AUTH_KEYS_TABLE = "auth_keys"


class AuthKeyStore:
    """All auth keys of this data centre, by key id."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._keys: dict[int, AuthKeyRecord] = {}
        self._salt_secret = os.urandom(32)
        self.journal = journal or Journal()

    @property
    def salt_secret(self) -> bytes:
        return self._salt_secret

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def get(self, key_id: int) -> AuthKeyRecord | None:
        return self._keys.get(key_id)

    def add(self, key: bytes) -> AuthKeyRecord | None:
        """Store a new key; None when its id collides with a known key (client retries)."""
        key_id = int(AuthKey(key).key_id)
        if key_id in self._keys:
            return None
        record = AuthKeyRecord(
            key_id=key_id, key=key, created_at=time.time(), _salt_secret=self._salt_secret
        )
        self._keys[key_id] = record
        self.changed(record)
        return record

    def changed(self, record: AuthKeyRecord) -> None:
        """Note a new or changed record (layer, initConnection, burnt) and save it now:
        key changes are rare (one per new client), and a key a client holds must not be
        lost by a restart."""
        self.journal.changed(AUTH_KEYS_TABLE, record.key_id)
        self.journal.save()

    def remove(self, key_id: int) -> bool:
        removed = self._keys.pop(key_id, None) is not None
        if removed:
            self.changed_id(key_id)
        return removed

    def changed_id(self, key_id: int) -> None:
        self.journal.changed(AUTH_KEYS_TABLE, key_id)
        self.journal.save()

    def key_ids(self) -> list[int]:
        return list(self._keys)

    def records(self) -> list[AuthKeyRecord]:
        return list(self._keys.values())

    def clear(self) -> None:
        """Forget every key (a fresh data centre); the caller wipes what was saved."""
        self._keys.clear()
        self._salt_secret = os.urandom(32)

    def restore(self, salt_secret: bytes, records: list[dict[str, Any]]) -> None:
        """Load saved keys (``AuthKeyRecord`` fields) and the salt secret; nothing is noted."""
        self._salt_secret = salt_secret
        self._keys = {
            int(fields["key_id"]): AuthKeyRecord(**fields, _salt_secret=salt_secret)
            for fields in records
        }
