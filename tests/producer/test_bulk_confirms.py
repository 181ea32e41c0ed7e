"""A bulk enqueue returns only when the broker has confirmed every message it published:
the jobs and, with task events on, their task-sent events (two publishes per job). Counting
jobs instead waited for half the confirms, and a bulk send lost its last job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from integration_service.client import IntegrationClient, PublishUnconfirmed, _Confirms
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore

TENANT = "tenant-bulk-confirms"
REDIS_DB = 6


class _Channel:
    """What _Confirms touches of a channel."""

    def __init__(self) -> None:
        self.events: dict[str, set[Any]] = {"basic_ack": set(), "basic_nack": set()}

    def confirm_select(self) -> None:
        return None


def test_confirms_count_single_and_multiple_acks_once_each() -> None:
    confirms = _Confirms(_Channel())
    confirms._ack(2, False)
    confirms._ack(1, False)
    assert confirms.acked == 2
    confirms._ack(4, True)  # 3 and 4 too; 1 and 2 are not counted twice
    assert confirms.acked == 4
    confirms._ack(3, False)  # already covered by the multiple ack
    confirms._ack(6, False)
    assert confirms.acked == 5


class _Producer:
    def publish(self, body: object, **kwargs: object) -> None:
        return None


class _Connection:
    def drain_events(self, timeout: float) -> None:
        raise TimeoutError


def test_wait_needs_a_confirm_for_every_publish_not_every_job() -> None:
    confirms = _Confirms(_Channel())
    producer = confirms.counting(_Producer())
    producer.publish("the job")
    producer.publish("its task-sent event")
    confirms._ack(1, False)
    with pytest.raises(PublishUnconfirmed, match="confirmed 1 of 2"):
        confirms.wait(_Connection(), timeout=0.05)
    confirms._ack(2, False)
    confirms.wait(_Connection(), timeout=0.05)


@pytest.fixture
def cache() -> Iterator[redis.Redis]:
    client = redis.Redis(db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def _drained(broker_url: str, queue: str) -> int:
    """How many messages ``queue`` holds, taken off it one by one (a quorum queue's
    message count in declare-ok lags behind)."""
    taken = 0
    with Connection(broker_url) as conn:
        channel = conn.channel()
        try:
            while channel.basic_get(queue, no_ack=True) is not None:
                taken += 1
        finally:
            channel.close()
    return taken


def test_every_job_is_in_the_queue_when_send_messages_returns(
    broker_url: str, settings: Settings, engine: object, cache: redis.Redis, store: SessionStore
) -> None:
    key = SessionKey(TENANT, "app-bulk")
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(key, "user", "authorized", 1))
    app = Celery("bulk-confirms-test")
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker_url
    app.conf.result_backend = f"redis://127.0.0.1:6379/{REDIS_DB}"
    assert app.conf.task_send_sent_event  # the case that publishes twice per job
    client = IntegrationClient(
        # The bulk path opens a connection of its own from the settings' broker URL.
        settings=settings.model_copy(update={"broker_url": broker_url}),
        app=app,
        engine=engine,  # type: ignore[arg-type]
        redis_client=cache,
    )
    try:
        items = [{"peer": "@peer_bulk", "text": f"bulk {i}"} for i in range(400)]
        handles = client.send_messages(TENANT, key.app_id, items)
        assert len({h.job_id for h in handles}) == 400
        # Confirmed means enqueued: all 400 are there the moment the call returns.
        assert _drained(broker_url, "mid") == 400
    finally:
        app.close()
