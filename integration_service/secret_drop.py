"""One-time hand-over of a secret (login code, 2FA password, bot token) to a worker.

A job's arguments travel through RabbitMQ, Flower, the result backend and the dead-letter
queue; a secret must travel through none of them. The producer stores it in Redis under
a random reference with a short TTL and enqueues only the reference; the worker takes it
with GETDEL, so it exists once, briefly, and is gone after use.
"""

from __future__ import annotations

import secrets

import redis

from integration_service.errors import PermanentError

SECRET_TTL_SECONDS = 300
_PREFIX = "secret_drop:"


class SecretExpired(PermanentError):
    """The secret's reference is unknown: used already, or older than its TTL."""

    code = "secret_expired"


def put_secret(client: redis.Redis, value: str, *, ttl: int = SECRET_TTL_SECONDS) -> str:
    """Store ``value`` once; returns the reference to put in the job's arguments."""
    reference = secrets.token_urlsafe(24)
    client.set(_PREFIX + reference, value.encode(), ex=ttl, nx=True)
    return reference


def take_secret(client: redis.Redis, reference: object) -> str:
    """The secret behind ``reference``, deleted in the same step."""
    if not isinstance(reference, str) or not 16 <= len(reference) <= 64:
        raise SecretExpired("secret reference is malformed")
    value = client.getdel(_PREFIX + reference)
    if value is None:
        raise SecretExpired("secret reference expired or was already used; submit it again")
    return value.decode() if isinstance(value, bytes) else str(value)
