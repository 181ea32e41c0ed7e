"""Fixtures for the runtime suites: a real OpenBao dev server, ciphers, a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from integration_service.crypto import SessionCipher

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["local", "vault"])
def cipher(request: pytest.FixtureRequest) -> SessionCipher:
    """Each cipher test runs against both backends."""
    name = "local_cipher" if request.param == "local" else "vault_cipher"
    cipher: SessionCipher = request.getfixturevalue(name)
    return cipher


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    client.ping()  # a missing Redis fails the test, never skips it
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key namespace of this test alone; everything under it is deleted afterwards."""
    prefix = f"test:runtime:{uuid.uuid4().hex}:"
    yield prefix
    stale = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if stale:
        redis_client.delete(*stale)
