"""A restarted emulator keeps its world (users, keys, passwords, messages), as Telegram does.

The emulator runs as the CLI runs it (a subprocess with ``--state-dir``). It is killed with
SIGKILL right after a login and a send: what it answered must already be on disk. ``POST
/reset`` wipes memory and disk, and a forgotten key gets transport error -404.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from telethon import TelegramClient, errors, functions, types
from telethon.sessions import StringSession

from integration_service.emulator.testing import EmulatorProcess
from integration_service.emulator.world.client_helper import emulator_client, random_phone
from integration_service.emulator.world.persistence import WORLD_DB
from integration_service.telegram.client_factory import settle_disconnection
from integration_service.telegram.endpoint import TelegramEndpoint
from tests.support.emulator_control import EmulatorControl

T = TypeVar("T")
PASSWORD = "correct horse"
FIXED_RANDOM_ID = 424242


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def _control(emulator: EmulatorProcess) -> EmulatorControl:
    assert emulator.control_url is not None
    return EmulatorControl(emulator.control_url)


def _client(endpoint: TelegramEndpoint, session: str | None = None) -> TelegramClient:
    return emulator_client(endpoint, session, retry_delay=0.1, raise_last_call_error=True)


async def _sign_in_with_2fa(
    endpoint: TelegramEndpoint, control: EmulatorControl, phone: str
) -> TelegramClient:
    client = _client(endpoint)
    await client.connect()
    await client.send_code_request(phone)
    with pytest.raises(errors.SessionPasswordNeededError):
        await client.sign_in(phone, control.login_code(phone))
    await client.sign_in(password=PASSWORD)
    return client


def _kill(emulator: EmulatorProcess) -> None:
    """A crash, not a clean stop: nothing gets a chance to flush."""
    assert emulator.process is not None
    emulator.process.kill()
    emulator.process.wait(10)
    emulator.stop()


def test_a_restarted_emulator_keeps_keys_users_passwords_and_messages(tmp_path: Path) -> None:
    state_dir = tmp_path / "emulator"
    phone, friend_phone = random_phone(), random_phone()
    friend_name = f"friend{friend_phone[-6:]}"

    first = EmulatorProcess(state_dir).start()
    try:
        control = _control(first)
        user = control.create_user(phone, "Анна", password=PASSWORD)
        friend = control.create_user(friend_phone, "Друг", username=friend_name)

        async def before() -> tuple[str, int, int]:
            client = await _sign_in_with_2fa(first.endpoint, control, phone)
            try:
                await client.send_message(friend_name, "before the restart")
                await client(
                    functions.messages.SendMessageRequest(
                        types.InputPeerSelf(), "saved", random_id=FIXED_RANDOM_ID
                    )
                )
                state = await client(functions.updates.GetStateRequest())
                return StringSession.save(client.session), state.pts, (await client.get_me()).id
            finally:
                await client.disconnect()

        session, pts_before, me_id = run(before())
        assert me_id == user["user_id"]
        assert stat.S_IMODE((state_dir / WORLD_DB).stat().st_mode) == 0o600
    finally:
        _kill(first)

    second = EmulatorProcess(state_dir).start()
    try:
        control = _control(second)
        # The user, their 2FA password and the messages are still there.
        assert control.call("GET", f"/users/{user['user_id']}")["has_password"] is True
        assert [m["text"] for m in control.messages(sender_id=user["user_id"])] == [
            "before the restart",
            "saved",
        ]

        async def after() -> tuple[int, int, int, int]:
            # Same auth key, new address: still signed in, no login.
            client = _client(second.endpoint, session)
            await client.connect()
            try:
                me = await client.get_me()
                state = await client(functions.updates.GetStateRequest())
                # The random_id used before the restart is still used (never more lenient).
                with pytest.raises(errors.RandomIdDuplicateError):
                    await client(
                        functions.messages.SendMessageRequest(
                            types.InputPeerSelf(), "again", random_id=FIXED_RANDOM_ID
                        )
                    )
                sent = await client.send_message(friend_name, "after the restart")
                later = await client(functions.updates.GetStateRequest())
                return me.id, state.pts, later.pts, sent.id
            finally:
                await client.disconnect()

        me_after, pts_after, pts_later, _ = run(after())
        assert me_after == user["user_id"]
        assert pts_after == pts_before and pts_later == pts_before + 1
        texts = [m["text"] for m in control.messages(peer_type="user", peer_id=friend["user_id"])]
        assert texts == ["before the restart", "after the restart"]

        # A new device still needs the same 2FA password (the verifier survived).
        async def new_device() -> int:
            client = await _sign_in_with_2fa(second.endpoint, control, phone)
            try:
                return int((await client.get_me()).id)
            finally:
                await client.disconnect()

        assert run(new_device()) == user["user_id"]

        # Reset wipes memory and disk: the key is unknown (-404), the user gone.
        assert control.call("POST", "/reset") == {"reset": True}

        async def after_reset() -> None:
            client = _client(second.endpoint, session)
            try:
                with pytest.raises(errors.AuthKeyNotFound):
                    await client.connect()
            finally:
                await client.disconnect()
                settle_disconnection(client)

        run(after_reset())
    finally:
        second.stop()

    with EmulatorProcess(state_dir) as third:
        control = _control(third)
        assert control.messages() == []
        assert control.call("GET", "/stats")["auth_keys"] == []
        with pytest.raises(Exception, match="404"):
            control.call("GET", f"/users/{user['user_id']}")


def test_a_forgotten_key_gets_transport_error_404_and_others_keep_working(
    tmp_path: Path,
) -> None:
    with EmulatorProcess(tmp_path / "emulator") as emulator:
        control = _control(emulator)
        phones = [random_phone(), random_phone()]
        users = [control.create_user(p, "Ключ") for p in phones]

        async def sign_in(phone: str) -> TelegramClient:
            client = _client(emulator.endpoint)
            await client.connect()
            await client.send_code_request(phone)
            await client.sign_in(phone, control.login_code(phone))
            return client

        async def scenario() -> dict[str, Any]:
            forgotten, kept = [await sign_in(p) for p in phones]
            try:
                answer = control.call("POST", "/auth_keys/forget", {"user_id": users[0]["user_id"]})
                # A warm connection learns it with its next request ...
                with pytest.raises(errors.AuthKeyNotFound):
                    await forgotten(functions.updates.GetStateRequest())
                # ... and so does a new one with the same key.
                again = _client(emulator.endpoint, StringSession.save(forgotten.session))
                with pytest.raises(errors.AuthKeyNotFound):
                    await again.connect()
                await again.disconnect()
                settle_disconnection(again)
                assert (await kept.get_me()).id == users[1]["user_id"]
                return dict(answer)
            finally:
                await forgotten.disconnect()
                settle_disconnection(forgotten)
                await kept.disconnect()

        assert run(scenario()) == {"user_id": users[0]["user_id"], "forgotten_keys": 1}
        user = control.call("GET", f"/users/{users[0]['user_id']}")
        assert user["signed_in_keys"] == 0
