"""2FA over SRP, proven with Telethon's own client half (telethon.password.compute_check)."""

from __future__ import annotations

from telethon import password as client_srp
from telethon.tl import functions, types

from integration_service.emulator.world import TelegramWorld
from tests.emulator_world.world_support import Client, new_world, run

PHONE = "+79991234567"
SECRET = "корова-42"


async def _reach_password_step(world: TelegramWorld, client: Client) -> None:
    code_hash = await client.send_code(PHONE)
    code = world.last_login_code(PHONE)
    assert code is not None
    await client.fails(
        functions.auth.SignInRequest(PHONE, code_hash, code[0]), 401, "SESSION_PASSWORD_NEEDED"
    )
    assert not world.is_authorized(client.auth_key_id)


def _world() -> tuple[TelegramWorld, int]:
    world = new_world()
    account = world.create_user(PHONE, "Ольга", password=SECRET)
    return world, account.user_id


def test_password_info_carries_real_srp_parameters() -> None:
    async def scenario() -> None:
        world, _ = _world()
        client = Client(world)
        await _reach_password_step(world, client)
        info = await client.call(functions.account.GetPasswordRequest())
        assert isinstance(info, types.account.Password) and info.has_password
        algo = info.current_algo
        assert isinstance(
            algo, types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow
        )
        # Telethon refuses anything but Telegram's prime with a good generator
        client_srp.check_prime_and_good(algo.p, algo.g)
        assert len(info.srp_B) == 256 and info.srp_id is not None

    run(scenario())


def test_right_password_signs_in() -> None:
    async def scenario() -> None:
        world, user_id = _world()
        client = Client(world)
        await _reach_password_step(world, client)
        info = await client.call(functions.account.GetPasswordRequest())
        proof = client_srp.compute_check(info, SECRET)
        auth = await client.call(functions.auth.CheckPasswordRequest(proof))
        assert auth.user.id == user_id
        assert world.is_authorized(client.auth_key_id)

    run(scenario())


def test_wrong_password_is_refused_and_a_retry_works() -> None:
    async def scenario() -> None:
        world, user_id = _world()
        client = Client(world)
        await _reach_password_step(world, client)
        info = await client.call(functions.account.GetPasswordRequest())
        wrong = client_srp.compute_check(info, "not-the-password")
        await client.fails(functions.auth.CheckPasswordRequest(wrong), 400, "PASSWORD_HASH_INVALID")
        assert not world.is_authorized(client.auth_key_id)
        info = await client.call(functions.account.GetPasswordRequest())
        auth = await client.call(
            functions.auth.CheckPasswordRequest(client_srp.compute_check(info, SECRET))
        )
        assert auth.user.id == user_id

    run(scenario())


def test_stale_and_reused_srp_ids_are_invalid() -> None:
    async def scenario() -> None:
        world, _ = _world()
        client = Client(world)
        await _reach_password_step(world, client)
        old = await client.call(functions.account.GetPasswordRequest())
        new = await client.call(functions.account.GetPasswordRequest())
        stale = client_srp.compute_check(old, SECRET)
        await client.fails(functions.auth.CheckPasswordRequest(stale), 400, "SRP_ID_INVALID")
        wrong = client_srp.compute_check(new, "nope")
        await client.fails(functions.auth.CheckPasswordRequest(wrong), 400, "PASSWORD_HASH_INVALID")
        # the same srp_id cannot be tried twice, even with the right password now
        reused = client_srp.compute_check(new, SECRET)
        await client.fails(functions.auth.CheckPasswordRequest(reused), 400, "SRP_ID_INVALID")

    run(scenario())


def test_empty_proof_and_no_pending_login() -> None:
    async def scenario() -> None:
        world, _ = _world()
        stranger = Client(world)
        await stranger.fails(functions.account.GetPasswordRequest(), 401, "AUTH_KEY_UNREGISTERED")
        client = Client(world)
        await _reach_password_step(world, client)
        await client.fails(
            functions.auth.CheckPasswordRequest(types.InputCheckPasswordEmpty()),
            400,
            "PASSWORD_HASH_INVALID",
        )

    run(scenario())


def test_account_without_password_reports_none_and_password_can_be_removed() -> None:
    async def scenario() -> None:
        world, user_id = _world()
        world.set_password(user_id, None)
        client = Client(world)
        await client.login(PHONE)
        info = await client.call(functions.account.GetPasswordRequest())
        assert not info.has_password and info.current_algo is None and info.srp_B is None

    run(scenario())
