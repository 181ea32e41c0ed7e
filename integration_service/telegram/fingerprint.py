"""A stable, collision-safe identity for a Telegram auth key.

Why not Telegram's own auth key id (the low 64 bits of SHA-1 of the key): it is sent in
clear at the start of every encrypted MTProto message, so anyone on the wire learns it,
and 64 bits across many tenants' keys is a birthday-collision risk the unique index on
``telegram_sessions.fingerprint`` cannot afford (a false duplicate would refuse a real
session). The full SHA-256 of the 256-byte key is never transmitted, does not reveal the
key, and fits the VARCHAR(64) column as 64 hex characters.
"""

from __future__ import annotations

import hashlib

AUTH_KEY_BYTES = 256


def fingerprint_of(auth_key: bytes) -> str:
    """Hex SHA-256 of a 256-byte MTProto auth key (64 lowercase hex characters)."""
    if not isinstance(auth_key, bytes | bytearray) or len(auth_key) != AUTH_KEY_BYTES:
        # Never echo the value: it may be (part of) a key.
        raise ValueError(f"an auth key must be {AUTH_KEY_BYTES} bytes")
    return hashlib.sha256(bytes(auth_key)).hexdigest()
