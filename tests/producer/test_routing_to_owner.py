"""Producers publish a warm session's jobs straight to the owner's queue, else to the
shared queue; routing is only a hint and never loses a job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from kombu import Connection

from integration_service.client import IntegrationClient
from integration_service.dependencies import DependencyUnavailable
from integration_service.leases.manager import liveness_key, lock_key
from integration_service.runtime.forwarding import worker_queue
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore

TENANT = "tenant-route"
OWNER = "w_owner-1"
REDIS_DB = 13


@pytest.fixture
def cache() -> Iterator[redis.Redis]:
    client = redis.Redis(db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def producer(
    broker_url: str, settings: Settings, engine: object, cache: redis.Redis, **overrides: object
) -> IntegrationClient:
    app = Celery("routing-test")
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker_url
    app.conf.result_backend = f"redis://127.0.0.1:6379/{REDIS_DB}"
    return IntegrationClient(
        settings=settings.model_copy(update=overrides),
        app=app,
        engine=engine,  # type: ignore[arg-type]
        redis_client=cache,
    )


@pytest.fixture
def session(store: SessionStore) -> SessionKey:
    key = SessionKey(TENANT, "app-1")
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(key, "user", "authorized", 1))
    return key


def hold(cache: redis.Redis, key: SessionKey, worker_id: str, *, alive: bool) -> None:
    cache.hset(lock_key(key.tenant_id, key.app_id), mapping={"worker": worker_id, "epoch": 1})
    if alive:
        cache.set(liveness_key(worker_id), OWNER)


def take_one(broker_url: str, queue: str) -> dict[str, object] | None:
    """Take one message off ``queue``; its headers (task id, name), or None if empty."""
    with Connection(broker_url) as conn:
        channel = conn.channel()
        try:
            message = channel.basic_get(queue, no_ack=True)
            return dict(message.headers) if message is not None else None
        finally:
            channel.close()


def owner_queue(settings: Settings) -> str:
    return worker_queue(OWNER, "mid", settings.worker_queue_message_ttl).name


def test_a_held_session_goes_to_its_live_owners_queue(
    broker_url: str, settings: Settings, engine: object, cache: redis.Redis, session: SessionKey
) -> None:
    hold(cache, session, "owner-1", alive=True)
    client = producer(broker_url, settings, engine, cache)
    handle = client.send_message(TENANT, session.app_id, "@peer", "hi", idempotency_key="r1")
    assert handle.queue == owner_queue(settings)
    headers = take_one(broker_url, owner_queue(settings))
    assert headers is not None and headers["id"] == handle.job_id
    assert take_one(broker_url, "mid") is None
    client.app.close()


@pytest.mark.parametrize("case", ["nobody holds it", "holder is dead", "routing off"])
def test_otherwise_the_job_goes_to_the_shared_queue(
    case: str,
    broker_url: str,
    settings: Settings,
    engine: object,
    cache: redis.Redis,
    session: SessionKey,
) -> None:
    if case == "holder is dead":
        hold(cache, session, "owner-1", alive=False)
    if case == "routing off":
        hold(cache, session, "owner-1", alive=True)
    client = producer(broker_url, settings, engine, cache, route_to_owner=case != "routing off")
    handle = client.send_message(TENANT, session.app_id, "@peer", "hi", idempotency_key="r2")
    assert handle.queue == "mid"
    headers = take_one(broker_url, "mid")
    assert headers is not None and headers["id"] == handle.job_id
    client.app.close()


@pytest.mark.parametrize("route_to_owner", [True, False], ids=["routing on", "routing off"])
def test_redis_unreachable_fails_the_call_and_publishes_nothing(
    broker_url: str,
    settings: Settings,
    engine: object,
    session: SessionKey,
    route_to_owner: bool,
) -> None:
    # Redis keeps the job's result too (REDIS_URL is also Celery's result backend): with
    # it down the job could not be waited for, and Celery's result consumer would retry
    # and log. The producer says so itself, at once, and publishes nothing.
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2)
    client = producer(broker_url, settings, engine, unreachable, route_to_owner=route_to_owner)
    with pytest.raises(DependencyUnavailable) as raised:
        client.send_message(TENANT, session.app_id, "@peer", "hi", idempotency_key="r3")
    assert raised.value.dependency == "redis"
    assert take_one(broker_url, "mid") is None
    client.app.close()


def test_a_failed_owner_lookup_is_only_a_hint(
    broker_url: str, settings: Settings, engine: object, cache: redis.Redis, session: SessionKey
) -> None:
    # The lock key holds something else than a lease hash: Redis answers with an error.
    cache.set(lock_key(session.tenant_id, session.app_id), "not a hash")
    client = producer(broker_url, settings, engine, cache)
    handle = client.send_message(TENANT, session.app_id, "@peer", "hi", idempotency_key="r4")
    assert handle.queue == "mid"
    headers = take_one(broker_url, "mid")
    assert headers is not None and headers["id"] == handle.job_id
    client.app.close()
