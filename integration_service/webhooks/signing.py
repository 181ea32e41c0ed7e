"""Standard Webhooks signing (standardwebhooks.com), written here from the spec.

``webhook-signature`` is ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``; while
a secret is rotated, one signature per valid secret, space-separated: a receiver that
knows either secret accepts the call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from integration_service.webhooks.secret_keys import WebhookSecret

SIGNATURE_VERSION = "v1"


def body_of(envelope: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def signature(secret: WebhookSecret, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(
    current: WebhookSecret,
    previous: Sequence[WebhookSecret],
    message_id: str,
    timestamp: int,
    body: bytes,
) -> dict[str, str]:
    """The three Standard Webhooks headers: signed with the current secret, then with
    each previous one still in its grace period."""
    secrets = [current, *previous]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }
