"""Code login, bot login, log-out and the gatekeeping every call goes through."""

from __future__ import annotations

from telethon.tl import functions, types

from integration_service.emulator.world import TelegramWorld
from tests.emulator_world.world_support import (
    API_HASH,
    API_ID,
    Client,
    ManualClock,
    new_world,
    run,
)

PHONE = "+7 999 111-22-33"


def _world_with_user(clock: ManualClock | None = None) -> tuple[TelegramWorld, int]:
    world = new_world(clock, code_ttl=120.0)
    account = world.create_user(PHONE, "Иван", "Петров", username="ivan_petrov")
    return world, account.user_id


def test_right_code_signs_in_and_binds_the_key() -> None:
    async def scenario() -> None:
        world, user_id = _world_with_user()
        client = Client(world)
        assert not world.is_authorized(client.auth_key_id)
        auth = await client.login(PHONE)
        assert auth.user.id == user_id and auth.user.is_self
        assert auth.user.phone == "79991112233"
        assert world.is_authorized(client.auth_key_id)
        assert (await client.me()).id == user_id

    run(scenario())


def test_wrong_code_is_invalid_and_the_right_one_still_works() -> None:
    async def scenario() -> None:
        world, user_id = _world_with_user()
        client = Client(world)
        code_hash = await client.send_code(PHONE)
        code = world.last_login_code(PHONE)
        assert code is not None
        wrong = "00000" if code[0] != "00000" else "11111"
        await client.fails(
            functions.auth.SignInRequest(PHONE, code_hash, wrong), 400, "PHONE_CODE_INVALID"
        )
        await client.fails(
            functions.auth.SignInRequest(PHONE, code_hash, ""), 400, "PHONE_CODE_EMPTY"
        )
        auth = await client.call(functions.auth.SignInRequest(PHONE, code_hash, code[0]))
        assert auth.user.id == user_id

    run(scenario())


def test_code_burns_after_five_wrong_guesses() -> None:
    async def scenario() -> None:
        world, _ = _world_with_user()
        client = Client(world)
        code_hash = await client.send_code(PHONE)
        code = world.last_login_code(PHONE)
        assert code is not None
        wrong = "00000" if code[0] != "00000" else "11111"
        for _ in range(5):
            await client.fails(
                functions.auth.SignInRequest(PHONE, code_hash, wrong), 400, "PHONE_CODE_INVALID"
            )
        await client.fails(
            functions.auth.SignInRequest(PHONE, code_hash, code[0]), 400, "PHONE_CODE_EXPIRED"
        )

    run(scenario())


def test_expired_code_is_rejected() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        world, _ = _world_with_user(clock)
        client = Client(world)
        code_hash = await client.send_code(PHONE)
        code = world.last_login_code(PHONE)
        assert code is not None and code[1] == clock.now + 120.0
        clock.advance(121)
        await client.fails(
            functions.auth.SignInRequest(PHONE, code_hash, code[0]), 400, "PHONE_CODE_EXPIRED"
        )
        assert not world.is_authorized(client.auth_key_id)

    run(scenario())


def test_code_is_bound_to_the_key_and_phone_that_asked_for_it() -> None:
    async def scenario() -> None:
        world, _ = _world_with_user()
        world.create_user("+7 999 000-00-01", "Мария")
        asker, other = Client(world), Client(world)
        code_hash = await asker.send_code(PHONE)
        code = world.last_login_code(PHONE)
        assert code is not None
        await other.fails(
            functions.auth.SignInRequest(PHONE, code_hash, code[0]), 400, "PHONE_CODE_EXPIRED"
        )
        await asker.fails(
            functions.auth.SignInRequest("+79990000001", code_hash, code[0]),
            400,
            "PHONE_CODE_EXPIRED",
        )
        await asker.fails(
            functions.auth.SignInRequest(PHONE, "", code[0]), 400, "PHONE_CODE_HASH_EMPTY"
        )
        await asker.fails(
            functions.auth.SignInRequest(PHONE, "deadbeef", code[0]), 400, "PHONE_CODE_EXPIRED"
        )
        assert not world.is_authorized(other.auth_key_id)

    run(scenario())


def test_unknown_phone_needs_sign_up_and_bad_numbers_are_refused() -> None:
    async def scenario() -> None:
        world, _ = _world_with_user()
        client = Client(world)
        code_hash = await client.send_code("+7 900 555-44-33")
        code = world.last_login_code("79005554433")
        assert code is not None
        result = await client.call(functions.auth.SignInRequest("79005554433", code_hash, code[0]))
        assert isinstance(result, types.auth.AuthorizationSignUpRequired)
        bad = functions.auth.SendCodeRequest("12ab", API_ID, API_HASH, types.CodeSettings())
        await client.fails(bad, 400, "PHONE_NUMBER_INVALID")
        no_api = functions.auth.SendCodeRequest(PHONE, 0, API_HASH, types.CodeSettings())
        await client.fails(no_api, 400, "API_ID_INVALID")

    run(scenario())


def test_banned_number_cannot_get_a_code() -> None:
    async def scenario() -> None:
        world, user_id = _world_with_user()
        world.set_banned(user_id, True)
        request = functions.auth.SendCodeRequest(PHONE, API_ID, API_HASH, types.CodeSettings())
        await Client(world).fails(request, 400, "PHONE_NUMBER_BANNED")

    run(scenario())


def test_log_out_unbinds_the_key() -> None:
    async def scenario() -> None:
        world, _ = _world_with_user()
        client = Client(world)
        await client.login(PHONE)
        assert isinstance(await client.call(functions.auth.LogOutRequest()), types.auth.LoggedOut)
        assert not world.is_authorized(client.auth_key_id)
        await client.fails(functions.updates.GetStateRequest(), 401, "AUTH_KEY_UNREGISTERED")

    run(scenario())


def test_bot_login_with_good_and_bad_token() -> None:
    async def scenario() -> None:
        world = new_world()
        bot = world.create_bot("shop_helper_bot", "Shop helper")
        assert bot.bot_token is not None and bot.bot_token.startswith(f"{bot.user_id}:")
        client = Client(world)
        bad_tokens = [f"{bot.user_id}:wrong-secret", "nonsense", "999:abc"]
        for token in bad_tokens:
            request = functions.auth.ImportBotAuthorizationRequest(0, API_ID, API_HASH, token)
            await client.fails(request, 400, "ACCESS_TOKEN_INVALID")
        good = functions.auth.ImportBotAuthorizationRequest(0, API_ID, API_HASH, bot.bot_token)
        auth = await client.call(good)
        assert auth.user.id == bot.user_id and auth.user.bot
        assert (await client.me()).username == "shop_helper_bot"

    run(scenario())


def test_unauthorised_key_and_unknown_method() -> None:
    async def scenario() -> None:
        world = new_world()
        client = Client(world)
        await client.fails(functions.updates.GetStateRequest(), 401, "AUTH_KEY_UNREGISTERED")
        await client.fails(
            functions.users.GetUsersRequest([types.InputUserSelf()]), 401, "AUTH_KEY_UNREGISTERED"
        )
        await client.fails(functions.help.GetAppConfigRequest(hash=0), 400, "INPUT_METHOD_INVALID")
        config = await client.call(functions.help.GetConfigRequest())
        assert isinstance(config, types.Config) and config.this_dc == 2
        assert config.dc_options[0].ip_address == "127.0.0.1"

    run(scenario())


def test_invalidated_key_loses_its_login() -> None:
    async def scenario() -> None:
        world, _ = _world_with_user()
        client = Client(world)
        await client.login(PHONE)
        world.invalidate_key(client.auth_key_id, "AUTH_KEY_DUPLICATED")
        assert not world.is_authorized(client.auth_key_id)
        await client.fails(functions.updates.GetStateRequest(), 401, "AUTH_KEY_UNREGISTERED")

    run(scenario())
