"""The world's SQLite storage: everything a signed-in account relies on survives a restart.

A world is driven with real Telethon requests, its storage closed, and a new world loads the
same file: sign-ins, 2FA waits, revocations, bans, groups, channels, boxes, random_ids, the
delivery log, codes and QR tokens in flight and access hashes are as they were, and the
restarted world is exactly as strict as the first one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from telethon.tl import functions, types

from integration_service.emulator.auth_keys import AuthKeyStore
from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.accounts import DEFAULT_ADMIN_RIGHTS
from integration_service.emulator.world.persistence import (
    WORLD_DB,
    WorldStorage,
    WorldStorageError,
    _channel_admins,
)
from tests.emulator_world.world_support import API_HASH, API_ID, Client, ManualClock, new_world, run

ALICE, BOB, CAROL, DAVE = "+79990000101", "+79990000102", "+79990000103", "+79990000104"
STATE = functions.updates.GetStateRequest()


def _open(state_dir: Path, clock: ManualClock) -> TelegramWorld:
    world = new_world(clock)
    world.auth_keys = AuthKeyStore()
    world.attach_storage(WorldStorage.in_state_dir(state_dir))
    return world


def _restart(world: TelegramWorld, state_dir: Path, clock: ManualClock) -> TelegramWorld:
    assert world.storage is not None
    world.storage.close()
    return _open(state_dir, clock)


def _same_key(client: Client, world: TelegramWorld) -> Client:
    return Client(world, auth_key_id=client.auth_key_id)


def test_a_reloaded_world_is_the_world_that_was_saved(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        world = _open(tmp_path, clock)
        alice = world.create_user(ALICE, "Алиса", username="alice_w")
        bob = world.create_user(BOB, "Боб", username="bob_w")
        carol = world.create_user(CAROL, "Кэрол", password="pw-carol")
        dave = world.create_user(DAVE, "Дэйв")
        bot = world.create_bot("storage_test_bot")
        group = world.create_group("Семья", alice.user_id, {bob.user_id})
        channel = world.create_channel(
            "Новости", alice.user_id, {bob.user_id}, username="news_w", admin_ids=set()
        )
        # Admin rights and invite links are kept too.
        world.set_admin_rights(channel.channel_id, bob.user_id, frozenset({"post_messages"}))
        group_link, channel_link = world.export_invite(group), world.export_invite(channel)
        raw_key = world.mint_session(bob.user_id)
        assert world.auth_keys is not None and len(world.auth_keys) == 1

        a, b, c, d = Client(world), Client(world), Client(world), Client(world)
        await a.login(ALICE)
        await b.login(BOB)
        code_hash = await c.send_code(CAROL)
        found = world.last_login_code(CAROL)
        assert found is not None
        with pytest.raises(Exception, match="SESSION_PASSWORD_NEEDED"):
            await c.call(functions.auth.SignInRequest(CAROL, code_hash, found[0]))
        await d.login(DAVE)
        world.revoke_authorizations(dave.user_id, "SESSION_REVOKED")
        world.set_banned(bot.user_id, True)

        resolved = await a.call(functions.contacts.ResolveUsernameRequest("bob_w"))
        bob_hash = resolved.users[0].access_hash
        to_bob = types.InputPeerUser(bob.user_id, bob_hash)
        await a.call(functions.messages.SendMessageRequest(to_bob, "привет", random_id=11))
        await a.call(
            functions.messages.SendMessageRequest(
                types.InputPeerChat(group.chat_id), "в группу", random_id=12
            )
        )
        news = await a.call(functions.contacts.ResolveUsernameRequest("news_w"))
        to_news = types.InputPeerChannel(channel.channel_id, news.chats[0].access_hash)
        await a.call(functions.messages.SendMessageRequest(to_news, "пост", random_id=13))
        # In flight: a code for an unregistered number and a QR token.
        pending_hash = await Client(world, auth_key_id=777).send_code("+79990000199")
        qr = Client(world)
        token = await qr.call(functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, []))
        saved_state = await a.call(STATE)
        saved_log = world.deliveries.query()
        saved_accounts = dict(world.directory.accounts)
        saved_password = world.state.passwords[carol.user_id]

        world = _restart(world, tmp_path, clock)

        assert world.directory.accounts == saved_accounts
        assert world.directory.groups == {group.chat_id: group}
        assert world.directory.channels[channel.channel_id] == channel
        assert channel.admins == {bob.user_id: frozenset({"post_messages"})}
        assert world.export_invite(world.directory.groups[group.chat_id]) == group_link
        assert world.export_invite(world.directory.channels[channel.channel_id]) == channel_link
        assert world.state.passwords == {carol.user_id: saved_password}
        assert world.deliveries.query() == saved_log
        # The minted key is known again, still signed in as Bob.
        assert world.auth_keys is not None
        (minted,) = [r for r in world.auth_keys.records() if r.key == raw_key]
        assert world.keys.user_of(minted.key_id) == bob.user_id

        a2, b2, c2, d2 = (_same_key(x, world) for x in (a, b, c, d))
        # Signed in as before; same pts; the access hash Alice learnt still works.
        assert (await a2.me()).id == alice.user_id and (await b2.me()).id == bob.user_id
        assert (await a2.call(STATE)).pts == saved_state.pts
        await a2.call(functions.messages.SendMessageRequest(to_bob, "снова", random_id=14))
        # Not more lenient: a used random_id, a revoked key, a banned bot, a 2FA wait.
        await a2.fails(
            functions.messages.SendMessageRequest(to_bob, "повтор", random_id=11),
            500,
            "RANDOM_ID_DUPLICATE",
        )
        await d2.fails(STATE, 401, "SESSION_REVOKED")
        await c2.fails(STATE, 401, "AUTH_KEY_UNREGISTERED")
        assert world.directory.accounts[bot.user_id].banned
        password = await c2.call(functions.account.GetPasswordRequest())
        assert password.has_password and password.current_algo.salt1 == saved_password.salt1
        # Bob's box replays what he was sent before the restart.
        difference = await b2.call(functions.updates.GetDifferenceRequest(0, 0, 0))
        assert [m.message for m in difference.new_messages] == ["привет", "в группу", "снова"]
        posts = await b2.call(
            functions.updates.GetChannelDifferenceRequest(
                types.InputChannel(
                    channel.channel_id,
                    world.directory.access_hash(bob.user_id, "channel", channel.channel_id),
                ),
                types.ChannelMessagesFilterEmpty(),
                0,
                100,
            )
        )
        assert [m.message for m in posts.new_messages] == ["пост"]
        # The code in flight still signs up, the QR token can still be approved.
        pending = world.last_login_code("+79990000199")
        assert pending is not None
        signed_up = await Client(world, auth_key_id=777).call(
            functions.auth.SignInRequest("+79990000199", pending_hash, pending[0])
        )
        assert isinstance(signed_up, types.auth.AuthorizationSignUpRequired)
        await world.approve_login_token(token.token, alice.user_id)
        imported = await _same_key(qr, world).call(
            functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, [])
        )
        assert isinstance(imported, types.auth.LoginTokenSuccess)
        assert (await _same_key(qr, world).me()).id == alice.user_id

        # New ids continue after the saved ones.
        assert world.create_user("+79990000105", "Ева").user_id > bot.user_id

        world.reset()
        world = _restart(world, tmp_path, clock)
        assert world.directory.accounts == {} and world.deliveries.query() == []
        assert world.auth_keys is not None and len(world.auth_keys) == 0
        await _same_key(a, world).fails(STATE, 401, "AUTH_KEY_UNREGISTERED")
        assert world.storage is not None
        world.storage.close()

    run(scenario())


def test_a_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    WorldStorage.in_state_dir(tmp_path).close()
    with sqlite3.connect(tmp_path / WORLD_DB) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(WorldStorageError, match="schema 99"):
        WorldStorage.in_state_dir(tmp_path)


def test_channel_admins_saved_before_rights_were_kept_get_the_default_rights() -> None:
    assert _channel_admins([7, 9]) == {7: DEFAULT_ADMIN_RIGHTS, 9: DEFAULT_ADMIN_RIGHTS}
    assert _channel_admins({"7": ["post_messages"]}) == {7: frozenset({"post_messages"})}
