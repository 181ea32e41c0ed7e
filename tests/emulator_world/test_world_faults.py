"""Injected faults, revocation, bans and dropped connections."""

from __future__ import annotations

import time

import pytest
from telethon.tl import functions, types

from integration_service.emulator.world import TelegramWorld
from tests.emulator_world.world_support import API_HASH, API_ID, Client, new_world, run

PHONE = "+79995550011"
GET_STATE = functions.updates.GetStateRequest()
SELF_MESSAGE = functions.messages.SendMessageRequest(types.InputPeerSelf(), "hi", random_id=1)


async def _signed_in() -> tuple[TelegramWorld, Client, int]:
    world = new_world()
    user_id = world.create_user(PHONE, "Семён").user_id
    client = Client(world)
    await client.login(PHONE)
    return world, client, user_id


def test_flood_wait_for_the_next_n_calls() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        world.inject_fault(user_id, "flood_wait", seconds=17, count=2)
        await client.fails(GET_STATE, 420, "FLOOD_WAIT_17")
        await client.fails(GET_STATE, 420, "FLOOD_WAIT_17")
        assert isinstance(await client.call(GET_STATE), types.updates.State)
        assert world.faults.list() == []

    run(scenario())


def test_fault_limited_to_one_method_by_tl_or_class_name() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        world.inject_fault(user_id, "peer_flood", method="messages.sendMessage")
        world.inject_fault(user_id, "flood_wait", method="GetStateRequest", seconds=3)
        await client.fails(SELF_MESSAGE, 400, "PEER_FLOOD")
        assert world.deliveries.query() == []
        await client.fails(GET_STATE, 420, "FLOOD_WAIT_3")
        await client.call(SELF_MESSAGE)
        assert len(world.deliveries.query()) == 1

    run(scenario())


def test_fault_until_cleared_and_custom_error() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        world.inject_fault(user_id, "error", code=500, message="INTERNAL_SERVER_ERROR", count=None)
        for _ in range(3):
            await client.fails(GET_STATE, 500, "INTERNAL_SERVER_ERROR")
        assert world.faults.clear(user_id) == 1
        await client.call(GET_STATE)
        with pytest.raises(ValueError):
            world.inject_fault(user_id, "error", code=400, message="lower case")
        with pytest.raises(ValueError):
            world.inject_fault(user_id, "meteor")

    run(scenario())


def test_slow_answers() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        world.inject_fault(user_id, "slow", delay=0.3)
        started = time.monotonic()
        await client.call(GET_STATE)
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        await client.call(GET_STATE)
        assert time.monotonic() - started < 0.3

    run(scenario())


def test_fault_on_a_phone_hits_send_code() -> None:
    async def scenario() -> None:
        world = new_world()
        user_id = world.create_user(PHONE, "Семён").user_id
        world.inject_fault(user_id, "flood_wait", method="auth.sendCode", seconds=60)
        request = functions.auth.SendCodeRequest(PHONE, API_ID, API_HASH, types.CodeSettings())
        await Client(world).fails(request, 420, "FLOOD_WAIT_60")
        assert world.last_login_code(PHONE) is None

    run(scenario())


@pytest.mark.parametrize("mode", ["AUTH_KEY_UNREGISTERED", "SESSION_REVOKED"])
def test_revoked_sessions(mode: str) -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        second = Client(world)
        await second.login(PHONE)
        assert world.revoke_authorizations(user_id, mode) == 2
        await client.fails(GET_STATE, 401, mode)
        await second.fails(SELF_MESSAGE, 401, mode)
        assert not world.is_authorized(client.auth_key_id)
        # the key may sign in again, which clears the revocation
        await client.login(PHONE)
        assert isinstance(await client.call(GET_STATE), types.updates.State)
        with pytest.raises(ValueError):
            world.revoke_authorizations(user_id, "LOGOUT")

    run(scenario())


def test_ban_answers_every_call() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        world.set_banned(user_id, True)
        await client.fails(GET_STATE, 401, "USER_DEACTIVATED_BAN")
        await client.fails(functions.help.GetConfigRequest(), 401, "USER_DEACTIVATED_BAN")
        world.set_banned(user_id, False)
        await client.call(GET_STATE)

    run(scenario())


def test_drop_connections_uses_the_runner_hook() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        with pytest.raises(RuntimeError):
            await world.drop_user_connections(user_id)
        asked: list[int | None] = []

        async def drop(auth_key_id: int | None) -> int:
            asked.append(auth_key_id)
            return 1

        world.drop_connections = drop
        assert await world.drop_user_connections(user_id) == 1
        assert await world.drop_user_connections(None) == 1
        assert asked == [client.auth_key_id, None]

    run(scenario())


def test_connection_closed_stops_pushes() -> None:
    async def scenario() -> None:
        world, _, user_id = await _signed_in()
        token_client = Client(world)
        token = await token_client.call(
            functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, [])
        )
        world.connection_closed(token_client.auth_key_id, token_client.connection_id)
        await world.approve_login_token(token.token, user_id)
        assert token_client.pushed == []
        assert isinstance(
            await token_client.call(functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, [])),
            types.auth.LoginTokenSuccess,
        )

    run(scenario())


def test_reset_forgets_everything() -> None:
    async def scenario() -> None:
        world, client, user_id = await _signed_in()
        await client.call(SELF_MESSAGE)
        world.inject_fault(user_id, "peer_flood")
        world.reset()
        assert world.directory.accounts == {} and world.deliveries.query() == []
        assert world.faults.list() == [] and not world.is_authorized(client.auth_key_id)
        await client.fails(GET_STATE, 401, "AUTH_KEY_UNREGISTERED")

    run(scenario())
