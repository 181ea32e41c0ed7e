"""QR login: export, approval (control side and acceptLoginToken), push, import, expiry."""

from __future__ import annotations

from typing import Any

import pytest
from telethon import password as client_srp
from telethon.tl import functions, types

from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world import TelegramWorld
from tests.emulator_world.world_support import API_HASH, API_ID, Client, ManualClock, new_world, run

PHONE = "+79997654321"
EXPORT = functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, [])


def _world(
    clock: ManualClock | None = None, password: str | None = None
) -> tuple[TelegramWorld, int]:
    world = new_world(clock, login_token_ttl=30.0)
    return world, world.create_user(PHONE, "Пётр", password=password).user_id


def _is_login_token_push(update: Any) -> bool:
    return isinstance(update, types.UpdateShort) and isinstance(
        update.update, types.UpdateLoginToken
    )


def test_export_approve_push_then_import() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        world, user_id = _world(clock)
        client = Client(world)
        token = await client.call(EXPORT)
        assert isinstance(token, types.auth.LoginToken)
        assert int(token.expires.timestamp()) == int(clock.now + 30)
        await world.approve_login_token(token.token, user_id)
        assert [u for u in client.pushed if _is_login_token_push(u)]
        success = await client.call(EXPORT)
        assert isinstance(success, types.auth.LoginTokenSuccess)
        assert success.authorization.user.id == user_id
        assert world.is_authorized(client.auth_key_id)

    run(scenario())


def test_runner_push_hook_is_preferred() -> None:
    async def scenario() -> None:
        world, user_id = _world()
        pushed: list[tuple[int, Any]] = []

        async def push_to_key(auth_key_id: int, update: Any) -> None:
            pushed.append((auth_key_id, update))

        world.push_to_key = push_to_key
        client = Client(world)
        token = await client.call(EXPORT)
        await world.approve_login_token(token.token, user_id)
        assert len(pushed) == 1 and pushed[0][0] == client.auth_key_id
        assert _is_login_token_push(pushed[0][1]) and client.pushed == []

    run(scenario())


def test_approval_with_2fa_requires_the_password() -> None:
    async def scenario() -> None:
        world, user_id = _world(password="qr-secret")
        client = Client(world)
        token = await client.call(EXPORT)
        await world.approve_login_token(token.token, user_id)
        await client.fails(EXPORT, 401, "SESSION_PASSWORD_NEEDED")
        info = await client.call(functions.account.GetPasswordRequest())
        auth = await client.call(
            functions.auth.CheckPasswordRequest(client_srp.compute_check(info, "qr-secret"))
        )
        assert auth.user.id == user_id and world.is_authorized(client.auth_key_id)

    run(scenario())


def test_expired_token_cannot_be_approved_and_recreate_works() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        world, user_id = _world(clock)
        client = Client(world)
        first = await client.call(EXPORT)
        clock.advance(31)
        with pytest.raises(RpcError) as caught:
            await world.approve_login_token(first.token, user_id)
        assert caught.value.message == "AUTH_TOKEN_EXPIRED"
        second = await client.call(EXPORT)
        assert second.token != first.token
        # the old token died with the new export
        with pytest.raises(RpcError) as caught:
            await world.approve_login_token(first.token, user_id)
        assert caught.value.message == "AUTH_TOKEN_INVALID"
        await world.approve_login_token(second.token, user_id)
        with pytest.raises(RpcError) as caught:
            await world.approve_login_token(second.token, user_id)
        assert caught.value.message == "AUTH_TOKEN_ALREADY_ACCEPTED"
        assert isinstance(await client.call(EXPORT), types.auth.LoginTokenSuccess)

    run(scenario())


def test_accept_login_token_from_a_signed_in_device() -> None:
    async def scenario() -> None:
        world, user_id = _world()
        phone_app, desktop = Client(world), Client(world)
        await phone_app.login(PHONE)
        token = await desktop.call(EXPORT)
        accepted = await phone_app.call(functions.auth.AcceptLoginTokenRequest(token.token))
        assert isinstance(accepted, types.Authorization)
        assert [u for u in desktop.pushed if _is_login_token_push(u)]
        success = await desktop.call(EXPORT)
        assert success.authorization.user.id == user_id
        stranger = Client(world)
        await stranger.fails(
            functions.auth.AcceptLoginTokenRequest(b"x" * 32), 401, "AUTH_KEY_UNREGISTERED"
        )
        await phone_app.fails(
            functions.auth.AcceptLoginTokenRequest(b"x" * 32), 400, "AUTH_TOKEN_INVALID"
        )

    run(scenario())
