"""QR login: export a token, show it, wait for the scan on the worker's loop.

The job returns at once with the login ticket's id: the QR URL is a secret, kept in the
ticket while it is pending and read through the producer API, never in the job's result.
The wait runs as a background coroutine on the worker's loop, holding the pinned client,
recreating the token as it expires until the ticket's QR_TICKET_TTL runs out. Approval
completes the login (or moves it to password_required for accounts with 2FA, finished by
a submit_password job).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from telethon import errors as tg
from telethon.tl.custom.qrlogin import QRLogin

from integration_service.runtime.client_pool import PooledClient
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.sessions import state_machine as sm
from integration_service.sessions.login_common import (
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


def start_qr_login(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    *,
    task_id: str | None = None,
) -> LoginStatus:
    pooled = begin_login(
        runtime, key, kind="user", target_state=sm.QR_PENDING, receive_updates=True
    )
    qr = runtime.loop.run(pooled.client.qr_login(), runtime.settings.task_timeout)
    sm.transition(
        runtime.store,
        key,
        sm.QR_PENDING,
        reason="QR login token exported",
        lease_epoch=pooled.lease.epoch,
        task_id=task_id,
    )
    deadline = time.time() + tickets.ttl
    ticket_id = tickets.start(
        key,
        "qr",
        status=sm.QR_PENDING,
        url=qr.url,
        token_expires_at=qr.expires.timestamp(),
        deadline=deadline,
        worker=runtime.worker_id,
    )
    runtime.spawn(
        _wait_for_scan(runtime, tickets, key, pooled, qr, deadline, task_id), name="qr_wait"
    )
    return status(
        key, "qr", sm.QR_PENDING, ticket_id=ticket_id, qr_expires_at=qr.expires.timestamp()
    )


async def _off_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # Database, Redis and cipher calls are blocking: keep them off the Telethon loop.
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def _wait_for_scan(
    runtime: SessionRuntime,
    tickets: LoginTickets,
    key: SessionKey,
    pooled: PooledClient,
    qr: QRLogin,
    deadline: float,
    task_id: str | None,
) -> None:
    lease = pooled.lease
    while True:
        left = deadline - time.time()
        if left <= 0:
            await _off_loop(
                fail_login,
                runtime,
                tickets,
                key,
                lease,
                method="qr",
                error="qr_expired",
                task_id=task_id,
            )
            return
        token_left = qr.expires.timestamp() - time.time()
        try:
            user = await qr.wait(timeout=max(0.5, min(token_left, left)))
        except TimeoutError:
            if time.time() < deadline:
                # The token expired unscanned: export a fresh one, as Telegram apps do.
                await qr.recreate()
                await _off_loop(
                    tickets.update, key, url=qr.url, token_expires_at=qr.expires.timestamp()
                )
            continue
        except tg.SessionPasswordNeededError:
            await _off_loop(
                stay,
                runtime,
                tickets,
                key,
                lease,
                method="qr",
                state=sm.PASSWORD_REQUIRED,
                error="",
                task_id=task_id,
            )
            return
        except Exception as error:  # noqa: BLE001 - any other end of the wait fails the login
            await _off_loop(
                fail_login,
                runtime,
                tickets,
                key,
                lease,
                method="qr",
                error=type(error).__name__,
                task_id=task_id,
            )
            return
        captured = capture(pooled.client, user)
        await _off_loop(
            persist_authorized,
            runtime,
            tickets,
            key,
            lease,
            captured,
            kind="user",
            method="qr",
            task_id=task_id,
        )
        return
