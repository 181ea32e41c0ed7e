"""Webhook secrets as Standard Webhooks writes them: ``whsec_`` + base64 of the key bytes.

The key bytes are what signs; the text form is what a receiver is given once. Neither is
ever logged: ``repr`` hides both.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from integration_service.webhooks.errors import WebhookSecretInvalid, WebhookSecretTooShort

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
# Standard Webhooks: secrets are 24 to 64 random bytes; we generate 32.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
GENERATED_SECRET_BYTES = 32


class WebhookSecret:
    """The key bytes of one secret."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key

    @property
    def text(self) -> str:
        """``whsec_<base64>``: the form receivers configure."""
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookSecret) and secrets.compare_digest(self.key, other.key)

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"WebhookSecret(<{len(self.key)} bytes hidden>)"


def generate_secret() -> WebhookSecret:
    return WebhookSecret(secrets.token_bytes(GENERATED_SECRET_BYTES))


def parse_secret(text: str) -> WebhookSecret:
    """A secret given by a caller, refused with a reason (never echoed) unless usable."""
    if not isinstance(text, str):
        raise WebhookSecretInvalid(f"must be a string, not {type(text).__name__}")
    encoded = text.strip()
    if encoded.startswith(SECRET_PREFIX):
        encoded = encoded[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretInvalid(
            "must be whsec_ followed by standard base64 (the form this service generates)"
        ) from None
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookSecretTooShort(
            f"must decode to at least {MIN_SECRET_BYTES} bytes, got {len(key)}"
        )
    if len(key) > MAX_SECRET_BYTES:
        raise WebhookSecretInvalid(f"must decode to at most {MAX_SECRET_BYTES} bytes")
    return WebhookSecret(key)
