"""Validating a session with updates.GetState and classifying what Telegram says.

GetState rather than get_me: get_me hides why it failed (Telethon returns None for some
failures), while GetState surfaces the exact RPC error of a dead authorisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter
from telethon import TelegramClient, functions

from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.sessions import state_machine as sm
from integration_service.store import SessionKey
from integration_service.telegram.error_mapping import to_service_error
from integration_service.telegram.errors import SessionTerminated

VALIDATIONS = Counter("session_validations_total", "Session validations, by outcome.", ["outcome"])


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """``outcome``: authorized, revoked, expired, banned, deactivated, duplicated, transient.
    ``auth_error``: the stable reason of a terminal outcome (``auth_key_unknown``, ...)."""

    tenant_id: str
    app_id: str
    outcome: str
    state: str
    detail: str = ""
    auth_error: str | None = None


async def get_state(client: TelegramClient) -> object:
    return await client(functions.updates.GetStateRequest())


def record_terminal(
    runtime: SessionRuntime, key: SessionKey, error: SessionTerminated, task_id: str | None
) -> None:
    """Persist a terminal state under our lease, then drop the client."""
    row = runtime.store.require(key)
    with runtime.lease(key, row=row) as lease:
        if row.state != error.state:
            sm.transition(
                runtime.store,
                key,
                error.state,
                reason=f"telegram: {error.rpc_message}",
                lease_epoch=lease.epoch,
                task_id=task_id,
                auth_error=error.auth_error,
            )
        runtime.evict(key, f"session_{error.state}")


def confirm_with_telegram(
    runtime: SessionRuntime, key: SessionKey, stored_state: str, *, reason: str, task_id: str | None
) -> None:
    """GetState on the session's client. An answer makes the session ``authorized`` (recorded
    with ``reason`` if it was not); a terminal refusal is recorded (state, client dropped)
    and the original exception re-raised; any other failure is raised untouched."""
    try:
        with runtime.session(key) as active:
            active.call(get_state)
            epoch = active.lease.epoch
    except Exception as raw:
        error = to_service_error(raw)
        if isinstance(error, SessionTerminated):
            record_terminal(runtime, key, error, task_id)
        raise
    if stored_state != sm.AUTHORIZED:
        sm.transition(
            runtime.store, key, sm.AUTHORIZED, reason=reason, lease_epoch=epoch, task_id=task_id
        )


def validate_session(
    runtime: SessionRuntime, key: SessionKey, *, task_id: str | None = None
) -> ValidationResult:
    """Ask Telegram whether the session still works and persist what it says.

    A transient failure (network, Telegram 5xx, FloodWait) is raised for the job layer
    to retry; a terminal answer is recorded and returned, not raised: it is the result.
    """
    row = runtime.store.require(key)
    if row.state in sm.TERMINAL:
        VALIDATIONS.labels(outcome=row.state).inc()
        return ValidationResult(
            key.tenant_id, key.app_id, row.state, row.state, "already", row.auth_error
        )
    was_warm = runtime.pool.peek(key) is not None
    try:
        confirm_with_telegram(
            runtime,
            key,
            row.state,
            reason="validated: updates.getState answered",
            task_id=task_id,
        )
    except Exception as raw:
        error = to_service_error(raw)
        if not isinstance(error, SessionTerminated):
            raise
        VALIDATIONS.labels(outcome=error.state).inc()
        return ValidationResult(
            key.tenant_id, key.app_id, error.state, error.state, error.rpc_message, error.auth_error
        )
    runtime.store.touch(key)
    if not was_warm:
        # A sweep validates thousands of idle sessions: do not leave them all connected.
        runtime.evict(key, "validated_idle")
    VALIDATIONS.labels(outcome="authorized").inc()
    return ValidationResult(key.tenant_id, key.app_id, "authorized", sm.AUTHORIZED)
