"""reconnect: bring a session's client back (fresh connection, checked with GetState).

Backoff with jitter comes from the job layer's retries; the pool's circuit breaker and
bounded concurrent handshakes keep a mass disconnect from becoming a reconnect storm.
"""

from __future__ import annotations

from dataclasses import dataclass

from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.sessions import state_machine as sm
from integration_service.sessions.validation import confirm_with_telegram
from integration_service.store import SessionKey
from integration_service.telegram.errors import SessionTerminated


@dataclass(frozen=True, slots=True)
class ReconnectResult:
    tenant_id: str
    app_id: str
    state: str
    reconnected: bool


def reconnect_session(
    runtime: SessionRuntime, key: SessionKey, *, task_id: str | None = None
) -> ReconnectResult:
    row = runtime.store.require(key)
    if row.state in sm.TERMINAL:
        raise SessionTerminated(row.state, "stored state")
    # Drop whatever connection we hold (it may be half-dead) and build a fresh one.
    warm = runtime.pool.peek(key)
    if warm is not None and runtime.holds(warm.lease):
        runtime.evict(key, "reconnect")
    confirm_with_telegram(runtime, key, row.state, reason="reconnected", task_id=task_id)
    runtime.note_activity(key)
    return ReconnectResult(key.tenant_id, key.app_id, sm.AUTHORIZED, True)
