"""One-time hand-over of a secret (login code, 2FA password, bot token) to a worker.

A job's arguments travel through RabbitMQ, Flower, the result backend and the dead-letter
queue; a secret must travel through none of them. The producer stores it in Redis under
a random reference with a short TTL and enqueues only the reference. The worker reads it
for the job and deletes it once the job has an outcome (``secret_for_job``): a job that
is retried, or redelivered after its worker died, still finds it; a finished job's later
deliveries are answered from the job journal without it. It lives at most its TTL.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

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


def _checked(reference: object) -> str:
    if not isinstance(reference, str) or not 16 <= len(reference) <= 64:
        raise SecretExpired("secret reference is malformed")
    return reference


@contextmanager
def secret_for_job(client: redis.Redis, reference: object) -> Iterator[str]:
    """The secret behind ``reference`` for the duration of one job run.

    Deleted when the run ends with an outcome (a result or a permanent error). Kept when
    it ends otherwise (a retryable error, a lost connection), so the retry can use it.
    """
    key = _PREFIX + _checked(reference)
    value = client.get(key)
    if value is None:
        raise SecretExpired("secret reference expired or was already used; submit it again")
    try:
        yield value.decode() if isinstance(value, bytes) else str(value)
    except PermanentError:
        client.delete(key)
        raise
    else:
        client.delete(key)


def take_secret(client: redis.Redis, reference: object) -> str:
    """The secret behind ``reference``, deleted in the same step."""
    value = client.getdel(_PREFIX + _checked(reference))
    if value is None:
        raise SecretExpired("secret reference expired or was already used; submit it again")
    return value.decode() if isinstance(value, bytes) else str(value)
