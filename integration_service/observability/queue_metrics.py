"""Queue depths from RabbitMQ and runtime gauges, computed when Prometheus scrapes.

Depths come from passive ``queue_declare`` (message and consumer counts, no management
plugin needed) over one short connection per scrape, cached for a few seconds so several
scrapers or a fast interval cost the broker nothing more. Per-worker queues are found
through the live workers' ``worker_alive:*`` keys; their names carry a worker id, never a
tenant or a session, so the label stays bounded and safe.

``collect()`` never raises: a broker outage shows as ``rabbitmq_queue_scrape_errors_total``
and missing depth series, while the rest of /metrics keeps working.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
import structlog
from kombu import Connection
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from integration_service.queues import DEAD_LETTER_QUEUE, JOB_QUEUES

logger = structlog.get_logger(__name__)

# What a liveness key may hold: the `w_<worker_id>` prefix from runtime.forwarding.
_WORKER_PREFIX = re.compile(r"w_[A-Za-z0-9_@-]{1,200}")

QueueDepth = tuple[str, int, int]  # queue, messages, consumers


class QueueDepthCollector(Collector):
    """``rabbitmq_queue_messages{queue}`` and ``rabbitmq_queue_consumers{queue}``."""

    def __init__(
        self,
        broker_url: str,
        redis_url: str,
        *,
        cache_seconds: float = 5.0,
        timeout: float = 2.0,
        key_prefix: str = "",
    ) -> None:
        self._broker_url = broker_url
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._key_prefix = key_prefix
        self._lock = threading.Lock()
        self._cached: list[QueueDepth] = []
        self._cached_at: float | None = None
        self._errors = 0

    def describe(self) -> Iterable[Metric]:
        # Lets the registry learn our names without a broker round trip at registration.
        return self._families([])

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached_at is None or now - self._cached_at >= self._cache_seconds:
                self._cached = self._scrape()
                self._cached_at = time.monotonic()
            depths = list(self._cached)
        return self._families(depths)

    def queue_names(self) -> list[str]:
        """Shared queues plus every live worker's own queues."""
        names = [*JOB_QUEUES, DEAD_LETTER_QUEUE]
        try:
            keys = list(self._redis.scan_iter(match=f"{self._key_prefix}worker_alive:*", count=200))
            prefixes = self._redis.mget(keys) if keys else []
        except redis.RedisError as error:
            self._errors += 1
            logger.warning("queue_metrics_worker_discovery_failed", error=type(error).__name__)
            return names
        for raw in sorted({_text(p) for p in prefixes if p is not None}):
            if _WORKER_PREFIX.fullmatch(raw):
                names.extend(f"{raw}_{job_class}" for job_class in JOB_QUEUES)
        return names

    def _scrape(self) -> list[QueueDepth]:
        names = self.queue_names()
        depths: list[QueueDepth] = []
        try:
            with Connection(self._broker_url, connect_timeout=self._timeout) as connection:
                # kombu documents the timeout as int seconds; it only adds it to the clock.
                connection.ensure_connection(max_retries=0, timeout=self._timeout)  # type: ignore[arg-type]
                channel: Any = connection.channel()
                try:
                    for name in names:
                        try:
                            ok = channel.queue_declare(queue=name, passive=True)
                        except connection.channel_errors:
                            # NOT_FOUND closes the channel; the queue just does not exist yet.
                            channel = connection.channel()
                            continue
                        depths.append((name, int(ok.message_count), int(ok.consumer_count)))
                finally:
                    channel.close()
        except Exception as error:  # noqa: BLE001 - collect() must never raise
            self._errors += 1
            logger.warning("queue_metrics_scrape_failed", error=type(error).__name__)
            return []
        return depths

    def _families(self, depths: list[QueueDepth]) -> Iterator[Metric]:
        messages = GaugeMetricFamily(
            "rabbitmq_queue_messages", "Messages ready in a queue.", labels=["queue"]
        )
        consumers = GaugeMetricFamily(
            "rabbitmq_queue_consumers", "Consumers attached to a queue.", labels=["queue"]
        )
        for name, ready, attached in depths:
            messages.add_metric([name], ready)
            consumers.add_metric([name], attached)
        yield messages
        yield consumers
        yield CounterMetricFamily(
            "rabbitmq_queue_scrape_errors",
            "Queue depth scrapes that failed (broker or Redis unreachable).",
            value=self._errors,
        )

    def close(self) -> None:
        self._redis.close()


class RuntimeCollector(Collector):
    """Gauges read from a worker's runtime at scrape time: ``session_leases_held``."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def describe(self) -> Iterable[Metric]:
        return [self._leases_family()]

    def collect(self) -> Iterable[Metric]:
        family = self._leases_family()
        try:
            family.add_metric([], len(self._runtime.heartbeat.leases()))
        except Exception as error:  # noqa: BLE001 - collect() must never raise
            logger.warning("runtime_collector_failed", error=type(error).__name__)
        return [family]

    @staticmethod
    def _leases_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "session_leases_held", "Session leases this worker holds and heart-beats."
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_registered: dict[tuple[int, str], Collector] = {}
_registered_lock = threading.Lock()


def _register(kind: str, collector: Collector, registry: CollectorRegistry) -> None:
    """Register ``collector``, replacing one of the same kind registered before."""
    with _registered_lock:
        previous = _registered.pop((id(registry), kind), None)
        if previous is not None:
            unregister_collector(previous, registry)
        registry.register(collector)
        _registered[(id(registry), kind)] = collector


def unregister_collector(collector: Collector, registry: CollectorRegistry = REGISTRY) -> None:
    """Remove a collector (a no-op when it is not registered)."""
    try:
        registry.unregister(collector)
    except KeyError:
        return
    if isinstance(collector, QueueDepthCollector):
        collector.close()


def register_queue_depth_collector(
    broker_url: str,
    redis_url: str,
    *,
    registry: CollectorRegistry = REGISTRY,
    cache_seconds: float = 5.0,
    timeout: float = 2.0,
    key_prefix: str = "",
) -> QueueDepthCollector:
    """Expose queue depths on ``registry``; calling again replaces the earlier collector."""
    collector = QueueDepthCollector(
        broker_url, redis_url, cache_seconds=cache_seconds, timeout=timeout, key_prefix=key_prefix
    )
    _register("queue_depth", collector, registry)
    return collector


def register_runtime_collector(
    runtime: Any, *, registry: CollectorRegistry = REGISTRY
) -> RuntimeCollector:
    """Expose ``runtime``'s gauges; calling again (a new runtime) replaces the earlier one."""
    collector = RuntimeCollector(runtime)
    _register("runtime", collector, registry)
    return collector
