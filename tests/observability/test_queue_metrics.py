"""Queue depth collector against real RabbitMQ (a private vhost) and the runtime collector."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
import redis
from kombu import Connection, Consumer, Producer
from prometheus_client import CollectorRegistry, generate_latest

from integration_service.observability.queue_metrics import (
    QueueDepthCollector,
    register_queue_depth_collector,
    register_runtime_collector,
    unregister_collector,
)
from integration_service.queues import TASK_EXCHANGE, declare_topology, job_queue
from integration_service.runtime.forwarding import worker_queue_prefix, worker_queues
from tests.support.openbao import free_port
from tests.support.rabbitmq import private_vhost

REDIS_URL = "redis://127.0.0.1:6379/0"
WORKER_ID = "celery@obs-test-host"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """A private vhost with the service's topology and one live worker's own queues."""
    with private_vhost() as url, Connection(url) as connection:
        declare_topology(connection)
        with connection.channel() as channel:
            for queue in worker_queues(WORKER_ID, message_ttl_seconds=600):
                queue(channel).declare()
        yield url


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A Redis key namespace of our own, announcing one live worker in it."""
    prefix = f"obs-test-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{prefix}worker_alive:{WORKER_ID}", worker_queue_prefix(WORKER_ID), ex=60)
    yield prefix
    client.delete(f"{prefix}worker_alive:{WORKER_ID}")
    client.close()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def publish(url: str, count: int, *, exchange: str, routing_key: str) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection)
        for number in range(count):
            producer.publish({"n": number}, exchange=exchange, routing_key=routing_key)


def purge(url: str, *names: str) -> None:
    with Connection(url) as connection, connection.channel() as channel:
        for name in names:
            channel.queue_purge(name)


def test_depths_of_shared_and_per_worker_queues(
    broker_url: str, key_prefix: str, registry: CollectorRegistry
) -> None:
    own_high = f"{worker_queue_prefix(WORKER_ID)}_high"
    purge(broker_url, "mid", own_high)
    publish(broker_url, 7, exchange=TASK_EXCHANGE.name, routing_key="mid.tasks.messages.send")
    publish(broker_url, 3, exchange="", routing_key=own_high)

    collector = register_queue_depth_collector(
        broker_url, REDIS_URL, registry=registry, cache_seconds=0, key_prefix=key_prefix
    )
    try:

        def depth(queue: str) -> float | None:
            return registry.get_sample_value("rabbitmq_queue_messages", {"queue": queue})

        wait_for(lambda: depth("mid") == 7 and depth(own_high) == 3)
        assert depth("high") == 0 and depth("low") == 0 and depth("dead_letter") == 0
        assert depth(f"{worker_queue_prefix(WORKER_ID)}_low") == 0
        assert registry.get_sample_value("rabbitmq_queue_scrape_errors_total") == 0
        labels = generate_latest(registry).decode()
        assert f'queue="{own_high}"' in labels
        assert "tenant" not in labels
    finally:
        unregister_collector(collector, registry)
        purge(broker_url, "mid", own_high)


def test_consumers_are_counted(
    broker_url: str, key_prefix: str, registry: CollectorRegistry
) -> None:
    register_queue_depth_collector(
        broker_url, REDIS_URL, registry=registry, cache_seconds=0, key_prefix=key_prefix
    )
    with Connection(broker_url) as connection:
        consumer = Consumer(connection.channel(), queues=[job_queue("low")], accept=["json"])
        consumer.consume()
        wait_for(
            lambda: registry.get_sample_value("rabbitmq_queue_consumers", {"queue": "low"}) == 1
        )
        consumer.cancel()
    assert registry.get_sample_value("rabbitmq_queue_consumers", {"queue": "high"}) == 0


def test_scrapes_are_cached(broker_url: str, key_prefix: str, registry: CollectorRegistry) -> None:
    purge(broker_url, "high")
    register_queue_depth_collector(
        broker_url, REDIS_URL, registry=registry, cache_seconds=600, key_prefix=key_prefix
    )
    assert registry.get_sample_value("rabbitmq_queue_messages", {"queue": "high"}) == 0
    publish(broker_url, 2, exchange=TASK_EXCHANGE.name, routing_key="high.tasks.connect.qr")
    try:
        # Within the cache period a scrape costs the broker nothing and shows the old value.
        assert registry.get_sample_value("rabbitmq_queue_messages", {"queue": "high"}) == 0
        fresh = QueueDepthCollector(broker_url, REDIS_URL, cache_seconds=0, key_prefix=key_prefix)
        wait_for(lambda: ("high", 2, 0) in fresh._scrape())
        fresh.close()
    finally:
        purge(broker_url, "high")


def test_re_registering_replaces_the_collector(
    broker_url: str, key_prefix: str, registry: CollectorRegistry
) -> None:
    for _ in range(2):
        register_queue_depth_collector(
            broker_url, REDIS_URL, registry=registry, key_prefix=key_prefix
        )
    assert registry.get_sample_value("rabbitmq_queue_messages", {"queue": "low"}) is not None


def test_broker_outage_never_raises_and_counts_errors(registry: CollectorRegistry) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    register_queue_depth_collector(url, REDIS_URL, registry=registry, cache_seconds=0, timeout=1)
    started = time.monotonic()
    body = generate_latest(registry).decode()
    assert time.monotonic() - started < 3, "one attempt per scrape, bounded by the timeout"
    assert "rabbitmq_queue_scrape_errors_total 1.0" in body
    assert "rabbitmq_queue_messages{" not in body
    # Every failed scrape (this read is one) counts.
    assert registry.get_sample_value("rabbitmq_queue_scrape_errors_total") == 2


def test_redis_outage_still_reports_shared_queues(
    broker_url: str, registry: CollectorRegistry
) -> None:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    register_queue_depth_collector(
        broker_url, redis_url, registry=registry, cache_seconds=0, timeout=1
    )
    assert registry.get_sample_value("rabbitmq_queue_messages", {"queue": "mid"}) is not None
    # The second read is the second scrape, each failing to discover workers.
    assert registry.get_sample_value("rabbitmq_queue_scrape_errors_total") == 2


class _Heartbeat:
    """Our own interface (LeaseHeartbeat.leases) with a list we control."""

    def __init__(self) -> None:
        self.held: list[str] = []

    def leases(self) -> list[str]:
        return list(self.held)


def test_runtime_collector_reads_leases_at_scrape_time(registry: CollectorRegistry) -> None:
    heartbeat = _Heartbeat()
    register_runtime_collector(SimpleNamespace(heartbeat=heartbeat), registry=registry)
    assert registry.get_sample_value("session_leases_held") == 0
    heartbeat.held = ["lease-a", "lease-b"]
    assert registry.get_sample_value("session_leases_held") == 2


def test_runtime_collector_never_raises(registry: CollectorRegistry) -> None:
    register_runtime_collector(SimpleNamespace(heartbeat=None), registry=registry)
    body = generate_latest(registry).decode()
    assert "# TYPE session_leases_held gauge" in body
    assert registry.get_sample_value("session_leases_held") is None
