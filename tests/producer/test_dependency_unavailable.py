"""Producer calls against an unreachable dependency: DependencyUnavailable, in time.

The error names the dependency and its address, never a password, and crosses Celery
(pickle) whole: a worker's DependencyUnavailable reaches a waiting producer intact.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from integration_service.client import IntegrationClient
from integration_service.dependencies import DependencyUnavailable, address_of
from integration_service.errors import RetryableError, ServiceError
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.support.unreachable import closed_port, silent_server

TENANT = "tenant-deps"
PASSWORD = "s3cret-pw"
REDIS_URL = "redis://127.0.0.1:6379/7"


@pytest.fixture
def session(store: SessionStore) -> Iterator[SessionKey]:
    key = SessionKey(TENANT, "live")
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(key, "user", "authorized", lease_epoch=0))
    yield key
    redis.Redis.from_url(REDIS_URL).flushdb()


def client_with(settings: Settings, good_broker: str, **dead: object) -> IntegrationClient:
    update = {"broker_url": good_broker, "redis_url": REDIS_URL, **dead}
    return IntegrationClient(settings=settings.model_copy(update=update))


Call = Callable[[IntegrationClient, SessionKey], object]
CALLS: dict[str, Call] = {
    "get_status": lambda c, k: c.get_status(k.tenant_id, k.app_id),
    "send_message": lambda c, k: c.send_message(k.tenant_id, k.app_id, "@someone", "hi"),
    "start_qr_login": lambda c, k: c.start_qr_login(k.tenant_id, "new"),
    "validate_session": lambda c, k: c.validate_session(k.tenant_id, k.app_id),
}


@pytest.mark.parametrize(
    ("dependency", "field", "url", "needs"),
    [
        (
            "postgresql",
            "database_url",
            "postgresql+psycopg://postgres:{pw}@127.0.0.1:{port}/gone",
            set(CALLS),
        ),
        ("redis", "redis_url", "redis://:{pw}@127.0.0.1:{port}/7", set(CALLS)),
        (
            "rabbitmq",
            "broker_url",
            "amqp://guest:{pw}@127.0.0.1:{port}//",
            set(CALLS) - {"get_status"},
        ),
    ],
)
def test_each_call_names_the_unreachable_dependency(
    settings: Settings,
    broker_url: str,
    session: SessionKey,
    dependency: str,
    field: str,
    url: str,
    needs: set[str],
) -> None:
    port = closed_port()
    dead = url.format(pw=PASSWORD, port=port)
    client = client_with(settings, broker_url, **{field: dead})
    try:
        for name in sorted(needs):
            started = time.monotonic()
            with pytest.raises(DependencyUnavailable) as raised:
                CALLS[name](client, session)
            assert time.monotonic() - started < settings.dependency_timeout, name
            error = raised.value
            assert (error.dependency, error.reason) == (dependency, "connection refused"), name
            assert error.address == address_of(dead) and str(port) in error.address
            assert PASSWORD not in str(error) + repr(error) + repr(error.args)
    finally:
        client.close()


def test_a_secret_whose_job_was_never_published_is_not_left_in_redis(
    settings: Settings, broker_url: str, session: SessionKey
) -> None:
    dead = f"amqp://guest:{PASSWORD}@127.0.0.1:{closed_port()}//"
    client = client_with(settings, broker_url, broker_url=dead)
    drops = redis.Redis.from_url(REDIS_URL)
    try:
        for submit in (
            lambda: client.submit_password(session.tenant_id, session.app_id, "pw-typed 42"),
            lambda: client.submit_code(session.tenant_id, session.app_id, "12345"),
            lambda: client.connect_bot(session.tenant_id, "bot", "123456:" + "A" * 30),
        ):
            with pytest.raises(DependencyUnavailable):
                submit()
            assert drops.keys("secret_drop:*") == []
    finally:
        client.close()


def test_a_silent_redis_fails_within_dependency_timeout(
    settings: Settings, broker_url: str, session: SessionKey
) -> None:
    with silent_server() as port:
        client = client_with(
            settings, broker_url, redis_url=f"redis://127.0.0.1:{port}/7", dependency_timeout=2.0
        )
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable) as raised:
            client.send_message(session.tenant_id, session.app_id, "@someone", "hi")
        elapsed = time.monotonic() - started
        client.close()
    assert raised.value.reason == "no answer within 2s"
    assert 1.5 < elapsed < 3.0, elapsed


def test_the_error_is_a_retryable_project_error_that_pickles_whole() -> None:
    error = DependencyUnavailable("redis", "127.0.0.1:6379/0", "connection refused")
    assert isinstance(error, RetryableError) and isinstance(error, ServiceError)
    assert error.code == "dependency_unavailable"
    assert str(error) == "redis unreachable at 127.0.0.1:6379/0: connection refused"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is DependencyUnavailable
    assert (copy.dependency, copy.address, copy.reason, str(copy), copy.code) == (
        "redis",
        "127.0.0.1:6379/0",
        "connection refused",
        str(error),
        "dependency_unavailable",
    )


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "127.0.0.1:6379/0"),
        ("redis://user:pw@cache.internal/3", "cache.internal:6379/3"),
        ("rediss://:pw@[::1]:6390/1?ssl_cert_reqs=required", "[::1]:6390/1"),
        ("unix:///run/redis.sock?db=2", "/run/redis.sock"),
        ("amqp://guest:guest@127.0.0.1:5672//", "127.0.0.1:5672//"),
        ("amqp://svc:pw@mq:5671/prod", "mq:5671/prod"),
        ("postgresql+psycopg://svc:pw@db.internal/app?password=pw", "db.internal:5432/app"),
    ],
)
def test_addresses_never_carry_credentials(url: str, address: str) -> None:
    assert address_of(url) == address
