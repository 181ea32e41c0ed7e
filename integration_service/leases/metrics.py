"""Prometheus metrics of session leases; labels never name a tenant or a session.

The lease code talks to a `LeaseMetrics` sink rather than to these objects directly, so a
benchmark or a second registry can swap it; the default sink feeds the module-level
metrics below, which the worker's /metrics endpoint exports.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter, Histogram

LostReason = Literal["taken_over", "unreachable"]
Operation = Literal["acquire", "steal", "renew", "release", "holder"]

SESSION_LOCK_ACQUIRED = Counter(
    "session_lock_acquired_total",
    "Session leases newly acquired (a fresh epoch), steals included.",
)
SESSION_LOCK_STEAL = Counter(
    "session_lock_steal_total",
    "Session leases taken over from a worker whose liveness key had expired.",
)
SESSION_LOCK_LOST = Counter(
    "session_lock_lost_total",
    "Session leases a worker held and lost: taken over, expired, or Redis unreachable.",
    ["reason"],
)
SESSION_LOCK_RELEASED = Counter(
    "session_lock_released_total",
    "Session leases released by their holder.",
)
SESSION_LOCK_OPERATION_SECONDS = Histogram(
    "session_lock_operation_seconds",
    "Latency of one lease operation against Redis (a batch renew counts once).",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class LeaseMetrics:
    """Sink for lease events; this base class records nothing (benchmarks, tools)."""

    def acquired(self) -> None:
        """A lease was newly acquired with a fresh epoch."""

    def stolen(self) -> None:
        """A lease was taken from a dead worker."""

    def lost(self, reason: LostReason) -> None:
        """A lease we held is gone."""

    def released(self) -> None:
        """A lease we held was released by us."""

    def observe(self, operation: Operation, seconds: float) -> None:
        """One Redis round trip for `operation` took `seconds`."""


class PrometheusLeaseMetrics(LeaseMetrics):
    """Feeds the module-level Prometheus metrics."""

    def acquired(self) -> None:
        SESSION_LOCK_ACQUIRED.inc()

    def stolen(self) -> None:
        SESSION_LOCK_STEAL.inc()

    def lost(self, reason: LostReason) -> None:
        SESSION_LOCK_LOST.labels(reason=reason).inc()

    def released(self) -> None:
        SESSION_LOCK_RELEASED.inc()

    def observe(self, operation: Operation, seconds: float) -> None:
        SESSION_LOCK_OPERATION_SECONDS.labels(operation=operation).observe(seconds)


PROMETHEUS_LEASE_METRICS = PrometheusLeaseMetrics()
