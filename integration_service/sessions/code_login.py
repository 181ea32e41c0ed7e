"""Login by phone code (with the 2FA password branch) and by bot token.

The code request and the sign-in must run on the same auth key (Telegram binds the code
to it), so the client that asked for the code stays pinned to its worker: the later
steps are forwarded there by the job layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from telethon import errors as tg

from integration_service.runtime.client_pool import PooledClient
from integration_service.runtime.session_runtime import (
    ActiveSession,
    SessionNotUsable,
    SessionRuntime,
)
from integration_service.sessions import state_machine as sm
from integration_service.sessions.login_common import (
    CapturedSession,
    LoginExpired,
    LoginStatus,
    begin_login,
    capture,
    fail_login,
    persist_authorized,
    status,
    stay,
)
from integration_service.sessions.tickets import LoginTickets
from integration_service.store import SessionKey

# Telegram's answers that end a code login for good, and their codes for the caller.
_FATAL_PHONE = {
    tg.PhoneNumberInvalidError: "phone_number_invalid",
    tg.PhoneNumberBannedError: "phone_number_banned",
    tg.PhoneNumberUnoccupiedError: "phone_number_unoccupied",
}


def request_code(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    phone: str,
    *,
    task_id: str | None = None,
) -> LoginStatus:
    pooled = begin_login(runtime, key, kind="user", target_state=sm.CODE_SENT)
    try:
        runtime.loop.run(pooled.client.send_code_request(phone), runtime.settings.task_timeout)
    except tuple(_FATAL_PHONE) as error:
        return fail_login(
            runtime,
            tickets,
            key,
            pooled.lease,
            method="code",
            error=_FATAL_PHONE[type(error)],
            task_id=task_id,
        )
    sm.transition(
        runtime.store,
        key,
        sm.CODE_SENT,
        reason="login code sent",
        lease_epoch=pooled.lease.epoch,
        task_id=task_id,
    )
    tickets.start(key, "code", status=sm.CODE_SENT, phone=phone, worker=runtime.worker_id)
    return status(key, "code", sm.CODE_SENT)


def submit_code(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    code: str,
    *,
    task_id: str | None = None,
) -> LoginStatus:
    phone = tickets.get(key).get("phone")
    if not phone:
        raise LoginExpired(f"no code login in progress for {key}; request a code first")
    gone = f"the client that requested the code for {key} is gone; request a new code"
    with _login_client(runtime, key, gone) as active:
        lease = active.lease
        try:
            user = active.call(lambda client: client.sign_in(phone=phone, code=code))
        except tg.SessionPasswordNeededError:
            return stay(
                runtime,
                tickets,
                key,
                lease,
                method="code",
                state=sm.PASSWORD_REQUIRED,
                error="",
                task_id=task_id,
            )
        except (tg.PhoneCodeInvalidError, tg.PhoneCodeEmptyError, tg.PhoneCodeExpiredError) as e:
            # The code step stays open: the user may type the code again or ask for a new one.
            expired = isinstance(e, tg.PhoneCodeExpiredError)
            return stay(
                runtime,
                tickets,
                key,
                lease,
                method="code",
                state=sm.CODE_SENT,
                error="phone_code_expired" if expired else "phone_code_invalid",
                task_id=task_id,
            )
        except tuple(_FATAL_PHONE) as error:
            return fail_login(
                runtime,
                tickets,
                key,
                lease,
                method="code",
                error=_FATAL_PHONE[type(error)],
                task_id=task_id,
            )
        return _authorized(runtime, tickets, key, active, user, method="code", task_id=task_id)


def submit_password(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    password: str,
    *,
    task_id: str | None = None,
) -> LoginStatus:
    method = tickets.get(key).get("method") or "code"
    row = runtime.store.require(key)
    if row.state != sm.PASSWORD_REQUIRED:
        raise LoginExpired(f"session {key} is {row.state}, not waiting for a password")
    gone = f"the login client for {key} is gone; start the login again"
    with _login_client(runtime, key, gone) as active:
        try:
            user = active.call(lambda client: client.sign_in(password=password))
        except tg.PasswordHashInvalidError:
            return stay(
                runtime,
                tickets,
                key,
                active.lease,
                method=method,
                state=sm.PASSWORD_REQUIRED,
                error="password_invalid",
                task_id=task_id,
            )
        return _authorized(runtime, tickets, key, active, user, method=method, task_id=task_id)


def connect_bot(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    token: str,
    *,
    task_id: str | None = None,
) -> LoginStatus:
    pooled = begin_login(runtime, key, kind="bot", target_state=sm.AUTHORIZED)
    tickets.start(key, "bot", status="connecting", worker=runtime.worker_id)
    try:
        user = runtime.loop.run(
            pooled.client.sign_in(bot_token=token), runtime.settings.task_timeout
        )
    except (tg.AccessTokenInvalidError, tg.AccessTokenExpiredError):
        return fail_login(
            runtime,
            tickets,
            key,
            pooled.lease,
            method="bot",
            error="access_token_invalid",
            task_id=task_id,
        )
    captured = runtime.loop.run(_capture(pooled, user), 10)
    return persist_authorized(
        runtime, tickets, key, pooled.lease, captured, kind="bot", method="bot", task_id=task_id
    )


@contextmanager
def _login_client(runtime: SessionRuntime, key: SessionKey, gone: str) -> Iterator[ActiveSession]:
    """The client pinned to this login; LoginExpired (saying ``gone``) if it is no more."""
    try:
        with runtime.session(key) as active:
            yield active
    except SessionNotUsable:
        raise LoginExpired(gone) from None


def _authorized(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    active: ActiveSession,
    user: Any,
    *,
    method: str,
    task_id: str | None,
) -> LoginStatus:
    """Signed in: capture the session string on the loop and persist it as authorized."""
    captured = runtime.loop.run(_capture(active.pooled, user), 10)
    return persist_authorized(
        runtime, tickets, key, active.lease, captured, kind="user", method=method, task_id=task_id
    )


async def _capture(pooled: PooledClient, user: Any) -> CapturedSession:
    # On the loop: the client's session object belongs to it.
    return capture(pooled.client, user)
