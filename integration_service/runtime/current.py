"""The worker process's SessionRuntime, installed at worker start for tasks to use."""

from __future__ import annotations

from integration_service.errors import RetryableError
from integration_service.runtime.session_runtime import SessionRuntime

_runtime: SessionRuntime | None = None


class RuntimeNotStarted(RetryableError):
    """This process has no running session runtime (not a worker, or shutting down)."""

    code = "runtime_not_started"


def install(runtime: SessionRuntime) -> None:
    global _runtime
    _runtime = runtime


def uninstall() -> SessionRuntime | None:
    global _runtime
    runtime, _runtime = _runtime, None
    return runtime


def get_runtime() -> SessionRuntime:
    if _runtime is None:
        raise RuntimeNotStarted("no session runtime in this process")
    return _runtime
