"""Logs, health checks and metrics endpoints: what operators see of a worker.

Nothing here starts at import time; the worker hooks call ``configure_logging`` and start
an ``ObservabilityServer`` once the worker process exists.
"""

from integration_service.observability.health import CheckResult, HealthReport, run_checks
from integration_service.observability.http_server import ObservabilityServer
from integration_service.observability.logging import (
    bind_job_context,
    clear_job_context,
    configure_logging,
    set_worker_name,
)
from integration_service.observability.queue_metrics import (
    register_queue_depth_collector,
    register_runtime_collector,
)
from integration_service.observability.scrubbing import scrub_secrets, scrub_text

__all__ = [
    "CheckResult",
    "HealthReport",
    "ObservabilityServer",
    "bind_job_context",
    "clear_job_context",
    "configure_logging",
    "register_queue_depth_collector",
    "register_runtime_collector",
    "run_checks",
    "scrub_secrets",
    "scrub_text",
    "set_worker_name",
]
