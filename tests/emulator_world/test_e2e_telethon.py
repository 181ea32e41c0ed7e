"""The unmodified Telethon client over TCP against the emulator (core + this world)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from telethon import TelegramClient, errors
from telethon.tl import functions, types

from integration_service.emulator.runner import default_control_starter
from integration_service.emulator.testing import InProcessEmulator
from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.client_helper import (
    ControlApiError,
    authorized_client,
    control_call,
    emulator_client,
    minted_session,
    random_phone,
)
from integration_service.telegram.endpoint import TelegramEndpoint

QR_TTL = 3.0
CODE_TTL = 2.0


@dataclass
class Emu:
    control_url: str
    endpoint: TelegramEndpoint

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await control_call(self.control_url, method, path, body)

    async def client(self, phone: str | None = None, **options: Any) -> TelegramClient:
        return await authorized_client(self.control_url, self.endpoint, phone, **options)


@contextlib.contextmanager
def _emulator(**world_options: Any) -> Iterator[Emu]:
    with (
        tempfile.TemporaryDirectory() as state_dir,
        InProcessEmulator(
            state_dir, TelegramWorld(**world_options), start_control=default_control_starter()
        ) as emulator,
    ):
        assert emulator.running is not None and emulator.running.control_url is not None
        yield Emu(emulator.running.control_url, emulator.endpoint)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with _emulator(login_token_ttl=QR_TTL, code_ttl=CODE_TTL) as running:
        yield running


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


@contextlib.asynccontextmanager
async def _connected(client: TelegramClient) -> Any:
    try:
        yield client
    finally:
        await client.disconnect()


def _token(qr: Any) -> str:
    return base64.urlsafe_b64encode(qr.token).decode().rstrip("=")


async def _wait_for_approval(qr: Any, emu: Emu, phone: str) -> Any:
    """Run qr.wait() (it must be listening before the scan) while approving the token."""
    waiter = asyncio.create_task(qr.wait(10))
    await asyncio.sleep(0)  # let wait() register its update handler
    await emu.api("POST", "/qr/approve", {"token": _token(qr), "phone": phone})
    return await waiter


def test_code_login_get_me_and_get_state(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        async with _connected(await emu.client(phone, username="code_login_e2e")) as client:
            me = await client.get_me()
            assert me.phone == phone and me.username == "code_login_e2e"
            state = await client(functions.updates.GetStateRequest())
            assert isinstance(state, types.updates.State) and state.pts == 0

    _run(scenario)


def test_wrong_and_expired_codes(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        await emu.api("POST", "/users", {"phone": phone, "first_name": "Код"})
        async with _connected(emulator_client(emu.endpoint)) as client:
            await client.connect()
            await client.send_code_request(phone)
            code = await emu.api("GET", f"/codes/{phone}")
            wrong = "00000" if code["code"] != "00000" else "11111"
            with pytest.raises(errors.PhoneCodeInvalidError):
                await client.sign_in(phone, wrong)
            # the code lives CODE_TTL seconds; wait out exactly that
            await asyncio.sleep(max(0.0, code["expires_at"] - time.time()) + 0.05)
            with pytest.raises(errors.PhoneCodeExpiredError):
                await client.sign_in(phone, code["code"])
            assert not await client.is_user_authorized()

    _run(scenario)


def test_two_factor_wrong_then_right(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        await emu.api(
            "POST", "/users", {"phone": phone, "first_name": "Пароль", "password": "s3cret"}
        )
        async with _connected(emulator_client(emu.endpoint)) as client:
            await client.connect()
            await client.send_code_request(phone)
            code = await emu.api("GET", f"/codes/{phone}")
            with pytest.raises(errors.SessionPasswordNeededError):
                await client.sign_in(phone, code["code"])
            with pytest.raises(errors.PasswordHashInvalidError):
                await client.sign_in(password="wrong")
            me = await client.sign_in(password="s3cret")
            assert me.phone == phone and await client.is_user_authorized()

    _run(scenario)


def test_qr_login_with_and_without_2fa(emu: Emu) -> None:
    async def scenario() -> None:
        plain, guarded = random_phone(), random_phone()
        await emu.api("POST", "/users", {"phone": plain, "first_name": "QR"})
        await emu.api("POST", "/users", {"phone": guarded, "first_name": "QR2", "password": "pw"})
        async with _connected(emulator_client(emu.endpoint)) as client:
            await client.connect()
            qr = await client.qr_login()
            assert qr.url.startswith("tg://login?token=")
            user = await _wait_for_approval(qr, emu, plain)
            assert user.phone == plain and await client.is_user_authorized()
        async with _connected(emulator_client(emu.endpoint)) as client:
            await client.connect()
            qr = await client.qr_login()
            with pytest.raises(errors.SessionPasswordNeededError):
                await _wait_for_approval(qr, emu, guarded)
            me = await client.sign_in(password="pw")
            assert me.phone == guarded

    _run(scenario)


def test_qr_expiry_and_recreate(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        await emu.api("POST", "/users", {"phone": phone, "first_name": "Истёк"})
        async with _connected(emulator_client(emu.endpoint)) as client:
            await client.connect()
            qr = await client.qr_login()
            with pytest.raises(asyncio.TimeoutError):
                await qr.wait()  # nobody scans: times out when the token expires
            with pytest.raises(ControlApiError, match="400 login token expired"):
                await emu.api("POST", "/qr/approve", {"token": _token(qr), "phone": phone})
            old = qr.token
            await qr.recreate()
            assert qr.token != old
            user = await _wait_for_approval(qr, emu, phone)
            assert user.phone == phone

    _run(scenario)


def test_bot_login_good_and_bad_token(emu: Emu) -> None:
    async def scenario() -> None:
        bot = await emu.api("POST", "/bots", {"username": "e2e_orders_bot"})
        async with _connected(emulator_client(emu.endpoint)) as client:
            await client.connect()
            with pytest.raises(errors.AccessTokenInvalidError):
                await client.sign_in(bot_token=f"{bot['user_id']}:not-the-secret")
            await client.start(bot_token=bot["token"])
            me = await client.get_me()
            assert me.bot and me.id == bot["user_id"]

    _run(scenario)


def test_send_to_user_group_and_channel(emu: Emu) -> None:
    async def scenario() -> None:
        sender_phone, friend_phone = random_phone(), random_phone()
        async with (
            _connected(await emu.client(sender_phone)) as sender,
            _connected(await emu.client(friend_phone, username="e2e_friend")) as friend,
        ):
            me, buddy = await sender.get_me(), await friend.get_me()
            group = await emu.api(
                "POST",
                "/groups",
                {"title": "Группа", "creator_id": me.id, "member_ids": [buddy.id]},
            )
            channel = await emu.api(
                "POST",
                "/channels",
                {"title": "Канал", "creator_id": me.id, "username": "e2e_news"},
            )
            by_name = await sender.send_message("e2e_friend", "по имени")
            by_id = await sender.send_message(buddy.id, "по id")  # cached by the resolve
            in_group = await sender.send_message(types.PeerChat(group["chat_id"]), "в группу")
            in_channel = await sender.send_message("e2e_news", "в канал")
            again = await sender.send_message(types.PeerChannel(channel["channel_id"]), "снова")
            assert (by_name.id, by_id.id, in_group.id) == (1, 2, 3)
            assert (in_channel.id, again.id) == (1, 2)
            assert in_channel.peer_id == types.PeerChannel(channel["channel_id"])
            log = await emu.api("GET", f"/messages?sender_id={me.id}")
            assert [(m["peer_type"], m["text"]) for m in log["messages"]] == [
                ("user", "по имени"),
                ("user", "по id"),
                ("chat", "в группу"),
                ("channel", "в канал"),
                ("channel", "снова"),
            ]
            # the friend's box holds both private messages and the group one
            diff = await friend(functions.updates.GetDifferenceRequest(pts=0, date=None, qts=0))
            assert [m.message for m in diff.new_messages] == ["по имени", "по id", "в группу"]

    _run(scenario)


def test_random_id_duplicate(emu: Emu) -> None:
    async def scenario() -> None:
        # Telegram answers 500 RANDOM_ID_DUPLICATE; Telethon retries server errors and,
        # unless told to raise the last one, ends with a ValueError
        async with _connected(await emu.client(raise_last_call_error=True)) as client:
            request = functions.messages.SendMessageRequest(
                peer=types.InputPeerSelf(), message="один раз", random_id=424242
            )
            await client(request)
            with pytest.raises(errors.RandomIdDuplicateError):
                await client(request)
            me = await client.get_me()
            count = await emu.api("GET", f"/messages/count?sender_id={me.id}")
            assert count == {"count": 1}

    _run(scenario)


def test_injected_flood_wait_and_peer_flood(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        async with _connected(await emu.client(phone, flood_sleep_threshold=0)) as client:
            await emu.api(
                "POST",
                "/faults",
                {"phone": phone, "kind": "flood_wait", "seconds": 42, "method": "updates.getState"},
            )
            with pytest.raises(errors.FloodWaitError) as caught:
                await client(functions.updates.GetStateRequest())
            assert caught.value.seconds == 42
            await emu.api(
                "POST",
                "/faults",
                {"phone": phone, "kind": "peer_flood", "method": "messages.sendMessage"},
            )
            with pytest.raises(errors.PeerFloodError):
                await client.send_message("me", "спам")
            # both faults were used up (Telethon itself now refuses getState for 42 s)
            assert (await emu.api("GET", "/faults"))["faults"] == []
            assert (await client.send_message("me", "уже можно")).message == "уже можно"

    _run(scenario)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("AUTH_KEY_UNREGISTERED", errors.AuthKeyUnregisteredError),
        ("SESSION_REVOKED", errors.SessionRevokedError),
    ],
)
def test_revoked_sessions(emu: Emu, mode: str, error: type[Exception]) -> None:
    async def scenario() -> None:
        phone = random_phone()
        async with _connected(await emu.client(phone)) as client:
            revoked = await emu.api("POST", "/revoke", {"phone": phone, "mode": mode})
            assert revoked["revoked_keys"] == 1
            with pytest.raises(error):
                await client(functions.updates.GetStateRequest())

    _run(scenario)


def test_a_minted_session_is_signed_in_and_behaves_like_a_login(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        user = await emu.api("POST", "/users", {"phone": phone, "first_name": "Minted"})
        minted = await emu.api("POST", "/sessions", {"user_id": user["user_id"]})
        string, key = minted_session(minted, emu.endpoint)
        assert len(key) == 256
        client = emulator_client(emu.endpoint, string)
        async with _connected(client):
            await client.connect()
            me = await client.get_me()
            assert me.id == user["user_id"] and me.phone == phone
            # The key is an ordinary one from here on: revocation ends it.
            revoked = await emu.api("POST", "/revoke", {"user_id": user["user_id"]})
            assert revoked["revoked_keys"] == 1
            with pytest.raises(errors.AuthKeyUnregisteredError):
                await client(functions.updates.GetStateRequest())
        await emu.api("POST", "/ban", {"user_id": user["user_id"]})
        with pytest.raises(ControlApiError, match="400 user is banned"):
            await emu.api("POST", "/sessions", {"user_id": user["user_id"]})
        with pytest.raises(ControlApiError, match="404 unknown user"):
            await emu.api("POST", "/sessions", {"user_id": 1})

    _run(scenario)


def test_ban(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        async with _connected(await emu.client(phone)) as client:
            await emu.api("POST", "/ban", {"phone": phone})
            with pytest.raises(errors.UserDeactivatedBanError):
                await client(functions.updates.GetStateRequest())
            with pytest.raises(errors.UserDeactivatedBanError):
                await client.send_message("me", "ещё")

    _run(scenario)


def test_dropped_connections_reconnect(emu: Emu) -> None:
    async def scenario() -> None:
        phone = random_phone()
        async with _connected(await emu.client(phone)) as client:
            dropped = await emu.api("POST", "/connections/drop", {"phone": phone})
            assert dropped["dropped"] >= 1
            # Telethon reconnects on its own with the same auth key and stays signed in
            me = await client.get_me()
            assert me is not None and me.phone == phone

    _run(scenario)


def test_stats_count_connections_per_auth_key(emu: Emu) -> None:
    """/stats: a reconnect opens a second connection for the key, never two at once."""

    async def scenario() -> None:
        client = await emu.client()
        try:
            me = await client.get_me()
            await client.disconnect()
            await client.connect()
            await client.get_me()
        finally:
            await client.disconnect()
        stats = await emu.api("GET", "/stats")
        (mine,) = [k for k in stats["auth_keys"] if k["user_id"] == me.id]
        assert mine["connections_opened"] == 2
        assert mine["max_concurrent_connections"] == 1
        assert stats["auth_key_duplicated"] == 0

    _run(scenario)
