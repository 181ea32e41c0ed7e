"""log out: end a session at Telegram (auth.logOut) and wipe its material here.

What is wiped: the encrypted session string and its key id, the fingerprint, the entity
cache (other people's access hashes) and the update state; the session is no longer
listening. What stays: the row in state ``revoked`` (auth_error ``logged_out``), its
transitions, its events and sends (the audit trail). A session Telegram had already
ended is wiped all the same; a transient failure is raised, for the job to retry, before
anything is wiped (wiping first would leave a live authorisation nobody can end).
"""

from __future__ import annotations

from dataclasses import dataclass

from telethon import TelegramClient, functions

from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.sessions import state_machine as sm
from integration_service.store import SessionKey
from integration_service.telegram.error_mapping import to_service_error
from integration_service.telegram.errors import SessionTerminated

LOGGED_OUT = "logged_out"


@dataclass(frozen=True, slots=True)
class LogoutResult:
    tenant_id: str
    app_id: str
    state: str
    # False: there was no live authorisation to end (never signed in, or already ended).
    ended_at_telegram: bool


async def _log_out(client: TelegramClient) -> object:
    return await client(functions.auth.LogOutRequest())


def log_out_session(
    runtime: SessionRuntime, key: SessionKey, *, task_id: str | None = None
) -> LogoutResult:
    row = runtime.store.require(key)
    ended = False
    if row.session_string_enc is not None and row.state not in sm.TERMINAL:
        try:
            with runtime.session(key) as active:
                active.call(_log_out)
            ended = True
        except Exception as raw:
            if not isinstance(to_service_error(raw), SessionTerminated):
                raise
    with runtime.lease(key) as lease:
        current = runtime.store.require(key).state
        if current != sm.REVOKED:
            sm.transition(
                runtime.store,
                key,
                sm.REVOKED,
                reason="logged out on request",
                lease_epoch=lease.epoch,
                task_id=task_id,
                auth_error=LOGGED_OUT,
            )
        runtime.store.wipe_material(key, lease_epoch=lease.epoch)
        runtime.evict(key, LOGGED_OUT)
    return LogoutResult(key.tenant_id, key.app_id, sm.REVOKED, ended)
