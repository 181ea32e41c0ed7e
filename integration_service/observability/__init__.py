"""Logs, health checks and metrics endpoints: what operators see of a worker.

Nothing here starts at import time; the worker hooks call ``configure_logging`` and start
an ``ObservabilityServer`` once the worker process exists.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Loaded on first use: the CLI imports ``observability.logging`` and ``.scrubbing`` to
# start, and must not pay for the health checks' broker and database clients.
_HOME = {
    "CheckResult": "health",
    "HealthReport": "health",
    "run_checks": "health",
    "ObservabilityServer": "http_server",
    "bind_job_context": "logging",
    "clear_job_context": "logging",
    "configure_logging": "logging",
    "set_worker_name": "logging",
    "register_queue_depth_collector": "queue_metrics",
    "register_runtime_collector": "queue_metrics",
    "scrub_secrets": "scrubbing",
    "scrub_text": "scrubbing",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
