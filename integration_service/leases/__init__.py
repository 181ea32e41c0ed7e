"""Session ownership in Redis: leases with fencing epochs, worker liveness, heartbeat."""

from integration_service.leases.heartbeat import LeaseHeartbeat, OnLost
from integration_service.leases.liveness import WorkerLiveness
from integration_service.leases.manager import Lease, LeaseError, LeaseManager, LeaseUnavailable
from integration_service.leases.metrics import LeaseMetrics, PrometheusLeaseMetrics

__all__ = [
    "Lease",
    "LeaseError",
    "LeaseHeartbeat",
    "LeaseManager",
    "LeaseMetrics",
    "LeaseUnavailable",
    "OnLost",
    "PrometheusLeaseMetrics",
    "WorkerLiveness",
]
