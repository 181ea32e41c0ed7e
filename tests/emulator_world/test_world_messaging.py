"""get_me, GetState/GetDifference, resolveUsername and sendMessage to every peer kind."""

from __future__ import annotations

from dataclasses import dataclass

from telethon.tl import functions, types

from integration_service.emulator.world import TelegramWorld
from tests.emulator_world.world_support import Client, new_world, run


@dataclass
class Scene:
    world: TelegramWorld
    alice: Client
    bob: Client
    alice_id: int
    bob_id: int
    carol_id: int


async def _scene() -> Scene:
    world = new_world()
    alice = world.create_user("+79990000001", "Алиса", username="alice_s")
    bob = world.create_user("+79990000002", "Борис", username="boris_k")
    carol = world.create_user("+79990000003", "Карина")
    alice_client, bob_client = Client(world), Client(world)
    await alice_client.login("+79990000001")
    await bob_client.login("+79990000002")
    return Scene(world, alice_client, bob_client, alice.user_id, bob.user_id, carol.user_id)


async def _resolve(client: Client, username: str) -> types.contacts.ResolvedPeer:
    resolved = await client.call(functions.contacts.ResolveUsernameRequest(username))
    assert isinstance(resolved, types.contacts.ResolvedPeer)
    return resolved


def _send(peer: object, text: str, random_id: int) -> functions.messages.SendMessageRequest:
    return functions.messages.SendMessageRequest(peer=peer, message=text, random_id=random_id)


def test_get_me_and_get_state() -> None:
    async def scenario() -> None:
        scene = await _scene()
        me = await scene.alice.me()
        assert me.id == scene.alice_id and me.is_self and me.username == "alice_s"
        state = await scene.alice.call(functions.updates.GetStateRequest())
        assert isinstance(state, types.updates.State)
        assert (state.pts, state.qts, state.seq) == (0, 0, 0)

    run(scenario())


def test_resolve_username() -> None:
    async def scenario() -> None:
        scene = await _scene()
        resolved = await _resolve(scene.alice, "Boris_K")  # case does not matter
        assert resolved.peer == types.PeerUser(scene.bob_id)
        assert resolved.users[0].access_hash is not None and resolved.users[0].phone is None
        await scene.alice.fails(
            functions.contacts.ResolveUsernameRequest("nobody_here"), 400, "USERNAME_NOT_OCCUPIED"
        )
        await scene.alice.fails(
            functions.contacts.ResolveUsernameRequest("1bad"), 400, "USERNAME_INVALID"
        )

    run(scenario())


def test_send_to_user_via_username_delivers_and_updates_both_boxes() -> None:
    async def scenario() -> None:
        scene = await _scene()
        user = (await _resolve(scene.alice, "boris_k")).users[0]
        peer = types.InputPeerUser(user.id, user.access_hash)
        sent = await scene.alice.call(_send(peer, "Привет, Борис!", 111))
        assert isinstance(sent, types.UpdateShortSentMessage)
        assert (sent.id, sent.pts, sent.pts_count, sent.out) == (1, 1, 1, True)
        pushed = [u for u in scene.bob.pushed if isinstance(u, types.UpdateShortMessage)]
        assert pushed and pushed[0].user_id == scene.alice_id and pushed[0].pts == 1
        diff = await scene.bob.call(functions.updates.GetDifferenceRequest(pts=0, date=None, qts=0))
        assert isinstance(diff, types.updates.Difference)
        assert [m.message for m in diff.new_messages] == ["Привет, Борис!"]
        assert diff.state.pts == 1
        empty = await scene.bob.call(
            functions.updates.GetDifferenceRequest(pts=1, date=None, qts=0)
        )
        assert isinstance(empty, types.updates.DifferenceEmpty)
        [entry] = scene.world.deliveries.query(sender_id=scene.alice_id)
        assert (entry.peer_type, entry.peer_id, entry.random_id) == ("user", scene.bob_id, 111)

    run(scenario())


def test_send_to_self_is_saved_messages() -> None:
    async def scenario() -> None:
        scene = await _scene()
        sent = await scene.alice.call(_send(types.InputPeerSelf(), "заметка", 5))
        assert sent.pts == 1
        [entry] = scene.world.deliveries.query(peer_id=scene.alice_id)
        assert entry.text == "заметка"

    run(scenario())


def test_access_hash_is_checked_per_viewer() -> None:
    async def scenario() -> None:
        scene = await _scene()
        hash_for_alice = (await _resolve(scene.alice, "boris_k")).users[0].access_hash
        await scene.alice.fails(
            _send(types.InputPeerUser(scene.bob_id, hash_for_alice + 1), "x", 1),
            400,
            "PEER_ID_INVALID",
        )
        # Bob's view of himself is not Alice's key to him
        carol_hash_for_bob = scene.world.directory.access_hash(scene.bob_id, "user", scene.carol_id)
        await scene.alice.fails(
            _send(types.InputPeerUser(scene.carol_id, carol_hash_for_bob), "x", 2),
            400,
            "PEER_ID_INVALID",
        )
        assert scene.world.deliveries.query() == []

    run(scenario())


def test_send_to_basic_group() -> None:
    async def scenario() -> None:
        scene = await _scene()
        group = scene.world.create_group("Семья", scene.alice_id, {scene.bob_id})
        sent = await scene.alice.call(_send(types.InputPeerChat(group.chat_id), "Ужин в 7", 9))
        assert isinstance(sent, types.UpdateShortSentMessage) and sent.out
        pushed = [u for u in scene.bob.pushed if isinstance(u, types.UpdateShortChatMessage)]
        assert pushed[0].chat_id == group.chat_id and pushed[0].from_id == scene.alice_id
        await scene.alice.fails(_send(types.InputPeerChat(42), "x", 10), 400, "PEER_ID_INVALID")
        outsiders = scene.world.create_group("Без Алисы", scene.bob_id, set())
        await scene.alice.fails(
            _send(types.InputPeerChat(outsiders.chat_id), "x", 11), 403, "CHAT_WRITE_FORBIDDEN"
        )
        assert scene.world.deliveries.query(peer_type="chat")[0].peer_id == group.chat_id

    run(scenario())


def test_send_to_channel_by_id_and_username() -> None:
    async def scenario() -> None:
        scene = await _scene()
        world = scene.world
        news = world.create_channel("Новости", scene.alice_id, {scene.bob_id}, username="news_ru")
        resolved = await _resolve(scene.alice, "news_ru")
        chat = resolved.chats[0]
        assert isinstance(chat, types.Channel) and chat.id == news.channel_id and chat.broadcast
        peer = types.InputPeerChannel(chat.id, chat.access_hash)
        updates = await scene.alice.call(_send(peer, "Выпуск 1", 77))
        assert isinstance(updates, types.Updates)
        message_id, new_message = updates.updates
        assert isinstance(message_id, types.UpdateMessageID) and message_id.random_id == 77
        assert isinstance(new_message, types.UpdateNewChannelMessage)
        assert new_message.message.id == message_id.id and new_message.pts == 1
        by_id = types.InputPeerChannel(
            news.channel_id, world.directory.access_hash(scene.alice_id, "channel", news.channel_id)
        )
        again = await scene.alice.call(_send(by_id, "Выпуск 2", 78))
        assert again.updates[1].pts == 2
        assert (
            world.deliveries.query(peer_type="channel", peer_id=news.channel_id)[1].text
            == "Выпуск 2"
        )
        # a subscriber may read but not post in a broadcast channel
        bob_peer = types.InputPeerChannel(
            news.channel_id, world.directory.access_hash(scene.bob_id, "channel", news.channel_id)
        )
        await scene.bob.fails(_send(bob_peer, "x", 1), 400, "CHAT_ADMIN_REQUIRED")
        diff = await scene.bob.call(
            functions.updates.GetChannelDifferenceRequest(
                types.InputChannel(bob_peer.channel_id, bob_peer.access_hash),
                types.ChannelMessagesFilterEmpty(),
                pts=1,
                limit=100,
            )
        )
        assert [m.message for m in diff.new_messages] == ["Выпуск 2"]

    run(scenario())


def test_channel_membership_and_access_hash() -> None:
    async def scenario() -> None:
        scene = await _scene()
        world = scene.world
        private = world.create_channel("Закрытый", scene.bob_id, set())
        talk = world.create_channel("Чат", scene.bob_id, {scene.alice_id}, broadcast=False)
        hash_of = world.directory.access_hash
        await scene.alice.fails(
            _send(
                types.InputPeerChannel(
                    private.channel_id, hash_of(scene.alice_id, "channel", private.channel_id)
                ),
                "x",
                1,
            ),
            400,
            "CHANNEL_PRIVATE",
        )
        await scene.alice.fails(
            _send(types.InputPeerChannel(talk.channel_id, 12345), "x", 2), 400, "CHANNEL_INVALID"
        )
        sent = await scene.alice.call(
            _send(
                types.InputPeerChannel(
                    talk.channel_id, hash_of(scene.alice_id, "channel", talk.channel_id)
                ),
                "Всем привет",
                3,
            )
        )
        assert sent.updates[1].message.from_id == types.PeerUser(scene.alice_id)

    run(scenario())


def test_random_id_duplicate_delivers_nothing() -> None:
    async def scenario() -> None:
        scene = await _scene()
        peer = types.InputPeerUser(
            scene.bob_id, scene.world.directory.access_hash(scene.alice_id, "user", scene.bob_id)
        )
        await scene.alice.call(_send(peer, "раз", 500))
        await scene.alice.fails(_send(peer, "два", 500), 500, "RANDOM_ID_DUPLICATE")
        assert [e.text for e in scene.world.deliveries.query()] == ["раз"]
        # random ids are per sender: Bob may use 500 too
        bob_peer = types.InputPeerUser(
            scene.alice_id, scene.world.directory.access_hash(scene.bob_id, "user", scene.alice_id)
        )
        await scene.bob.call(_send(bob_peer, "ответ", 500))
        assert len(scene.world.deliveries.query()) == 2

    run(scenario())


def test_text_limits() -> None:
    async def scenario() -> None:
        scene = await _scene()
        peer = types.InputPeerSelf()
        await scene.alice.fails(_send(peer, "   ", 1), 400, "MESSAGE_EMPTY")
        await scene.alice.fails(_send(peer, "я" * 4097, 2), 400, "MESSAGE_TOO_LONG")
        await scene.alice.call(_send(peer, "я" * 4096, 3))
        assert len(scene.world.deliveries.query()) == 1

    run(scenario())


def test_bots_cannot_message_bots() -> None:
    async def scenario() -> None:
        world = new_world()
        first = world.create_bot("first_bot")
        second = world.create_bot("second_bot")
        client = Client(world)
        assert first.bot_token is not None
        await client.call(
            functions.auth.ImportBotAuthorizationRequest(0, 1, "hash", first.bot_token)
        )
        peer = types.InputPeerUser(
            second.user_id, world.directory.access_hash(first.user_id, "user", second.user_id)
        )
        await client.fails(_send(peer, "hi", 1), 400, "USER_IS_BOT")

    run(scenario())


def test_delivery_log_filters() -> None:
    async def scenario() -> None:
        scene = await _scene()
        world = scene.world
        await scene.alice.call(_send(types.InputPeerSelf(), "one", 1))
        scene.world.state.clock.advance(10)  # type: ignore[attr-defined]
        cutoff = world.state.now()
        await scene.alice.call(_send(types.InputPeerSelf(), "two", 2))
        assert [e.text for e in world.deliveries.query(since=cutoff)] == ["two"]
        assert [e.text for e in world.deliveries.query(after_log_id=1)] == ["two"]
        assert world.deliveries.query(sender_id=scene.bob_id) == []

    run(scenario())
