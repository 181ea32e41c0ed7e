"""What every login method shares: starting one, and saving its result encrypted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from telethon import TelegramClient
from telethon.sessions import StringSession

from integration_service.errors import PermanentError
from integration_service.leases import Lease
from integration_service.runtime.client_pool import PooledClient
from integration_service.runtime.session_runtime import SessionRuntime, session_context
from integration_service.sessions import state_machine as sm
from integration_service.sessions.tickets import LoginTickets
from integration_service.store import SessionKey, SessionMaterial
from integration_service.telegram.errors import SessionTerminated
from integration_service.telegram.fingerprint import fingerprint_of

logger = structlog.get_logger(__name__)


class AlreadyAuthorized(PermanentError):
    """The session is authorised already; log it out (or revoke it) before a new login."""

    code = "already_authorized"


class LoginExpired(PermanentError):
    """No login is in progress for this session (or its client is gone); start again."""

    code = "login_expired"


@dataclass(frozen=True, slots=True)
class LoginStatus:
    """A login step's outcome: the job's result. Never a secret: results are shown by Flower
    and kept in the result backend. A QR login names its ticket (``ticket_id``); the QR
    itself is read through the producer API while it is pending (``sessions.tickets``)."""

    tenant_id: str
    app_id: str
    method: str
    state: str
    error: str | None = None
    ticket_id: str | None = None
    qr_expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class CapturedSession:
    """What a signed-in client leaves behind; captured on the loop, saved off it."""

    session_string: str
    auth_key: bytes
    dc_id: int
    user_id: int

    def __repr__(self) -> str:
        return f"CapturedSession(dc_id={self.dc_id}, user_id={self.user_id})"


def status(key: SessionKey, method: str, state: str, **extra: Any) -> LoginStatus:
    return LoginStatus(key.tenant_id, key.app_id, method, state, **extra)


def begin_login(
    runtime: SessionRuntime,
    key: SessionKey,
    *,
    kind: str,
    target_state: str,
    receive_updates: bool = False,
) -> PooledClient:
    """Claim the session, create its row if new, connect a fresh client and pin it here."""
    row = runtime.store.get(key)
    if row is not None:
        if row.state == sm.AUTHORIZED:
            raise AlreadyAuthorized(f"session {key} is authorized already")
        if row.state in sm.FINAL:
            raise SessionTerminated(row.state, "stored state")
        sm.check(row.state, target_state)
    with runtime.lease(key, row=row, keep=True) as lease:
        if row is None:
            runtime.store.save(SessionMaterial(key, kind, sm.NEW, lease.epoch))  # type: ignore[arg-type]
            runtime.record_claim(key, lease)
        return runtime.open_login_client(key, lease, receive_updates=receive_updates)


def capture(client: TelegramClient, user: Any) -> CapturedSession:
    """Read the signed-in client's session (call on the loop that owns the client)."""
    session = client.session
    return CapturedSession(
        session_string=StringSession.save(session),
        auth_key=session.auth_key.key,
        dc_id=int(session.dc_id),
        user_id=int(user.id),
    )


def persist_authorized(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    lease: Lease,
    captured: CapturedSession,
    *,
    kind: str,
    method: str,
    task_id: str | None,
) -> LoginStatus:
    """Encrypt and save the session material, then move the session to ``authorized``."""
    ciphertext = runtime.cipher.encrypt(captured.session_string, context=session_context(key))
    row = runtime.store.require(key)
    runtime.store.save(
        SessionMaterial(
            key=key,
            kind=kind,  # type: ignore[arg-type]
            state=row.state,
            lease_epoch=lease.epoch,
            session_string_enc=ciphertext.text,
            key_id=ciphertext.key_id,
            telegram_user_id=captured.user_id,
            dc_id=captured.dc_id,
            fingerprint=fingerprint_of(captured.auth_key),
        )
    )
    sm.transition(
        runtime.store,
        key,
        sm.AUTHORIZED,
        reason=f"{method} login completed",
        lease_epoch=lease.epoch,
        task_id=task_id,
    )
    tickets.finish(key, status=sm.AUTHORIZED, error="")
    # Hand the session to placement: the login worker keeps its interactive role, and a
    # listening worker holds the connection from now on (its log starts at this login).
    runtime.hand_off(key, fresh_login=True)
    return status(key, method, sm.AUTHORIZED)


def fail_login(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    lease: Lease,
    *,
    method: str,
    error: str,
    task_id: str | None,
) -> LoginStatus:
    """The login cannot go on (bad phone, bad token, expired QR): record it, drop the client.

    An expected outcome, not a failure of the job: one WARNING line with its code.
    """
    sm.transition(
        runtime.store,
        key,
        sm.FAILED,
        reason=f"{method} login: {error}",
        lease_epoch=lease.epoch,
        task_id=task_id,
    )
    tickets.finish(key, status=sm.FAILED, error=error)
    runtime.evict(key, "login_failed")
    logger.warning(
        "login_failed",
        tenant_id=key.tenant_id,
        app_id=key.app_id,
        method=method,
        code=error,
    )
    return status(key, method, sm.FAILED, error=error)


def stay(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    lease: Lease,
    *,
    method: str,
    state: str,
    error: str,
    task_id: str | None,
) -> LoginStatus:
    """A wrong code or password: the login goes on in the same state, the try is logged."""
    sm.transition(
        runtime.store,
        key,
        state,
        reason=f"{method} login: {error}",
        lease_epoch=lease.epoch,
        task_id=task_id,
    )
    tickets.update(key, status=state, error=error)
    return status(key, method, state, error=error)
