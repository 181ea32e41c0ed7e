"""Inbound traffic driven by the operator: other users' messages, edits and deletions reach
an account as Telegram delivers them (core.telegram.org/api/updates): pushed live with
their pts, replayed by getDifference / getChannelDifference exactly once in pts order, in
slices, or cut short by differenceTooLong / channelDifferenceTooLong past the limit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telethon.tl import functions, types

from integration_service.emulator.auth_keys import AuthKeyStore
from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.inbound import InboundMessage, PeerRef, RefusedMessage
from integration_service.emulator.world.persistence import WorldStorage
from tests.emulator_world.world_support import Client, ManualClock, new_world, run

ALICE, BOB, CAROL = "+79990000201", "+79990000202", "+79990000203"


@dataclass
class Scene:
    world: TelegramWorld
    bob: Client  # the account under test, online
    alice_id: int
    bob_id: int
    carol_id: int

    async def send(self, sender: int, kind: str, peer: int, text: str, **kw: Any) -> Any:
        [sent] = await self.world.inbound.send(
            [InboundMessage(sender, PeerRef(kind, peer), text, kw.get("reply_to"))]
        )
        return sent

    def pushed(self, cls: type) -> list[Any]:
        found = []
        for update in self.bob.pushed:
            inner = update.updates if isinstance(update, types.Updates) else [update]
            if isinstance(update, types.UpdateShort):
                inner = [update.update]
            found += [u for u in inner if isinstance(u, cls)]
        return found


async def _scene(world: TelegramWorld | None = None) -> Scene:
    world = world or new_world()
    alice = world.create_user(ALICE, "Алиса")
    bob = world.create_user(BOB, "Борис")
    carol = world.create_user(CAROL, "Карина")
    bob_client = Client(world)
    await bob_client.login(BOB)
    await bob_client.call(functions.updates.GetStateRequest())  # registers the connection
    return Scene(world, bob_client, alice.user_id, bob.user_id, carol.user_id)


def _diff(pts: int, **kw: Any) -> functions.updates.GetDifferenceRequest:
    return functions.updates.GetDifferenceRequest(pts=pts, date=None, qts=0, **kw)


def _input_channel(world: TelegramWorld, viewer: int, channel_id: int) -> types.InputChannel:
    return types.InputChannel(
        channel_id, world.directory.access_hash(viewer, "channel", channel_id)
    )


def _channel_diff(
    world: TelegramWorld, viewer: int, channel_id: int, pts: int, limit: int = 100
) -> functions.updates.GetChannelDifferenceRequest:
    return functions.updates.GetChannelDifferenceRequest(
        _input_channel(world, viewer, channel_id), types.ChannelMessagesFilterEmpty(), pts, limit
    )


def test_a_private_message_is_pushed_and_filed_with_reply_headers() -> None:
    async def scenario() -> None:
        s = await _scene()
        first = await s.send(s.alice_id, "user", s.bob_id, "привет")
        assert first.recipients == {s.alice_id: 1, s.bob_id: 1}
        [short] = s.pushed(types.UpdateShortMessage)
        assert (short.id, short.user_id, short.message, short.pts, short.pts_count) == (
            1,
            s.alice_id,
            "привет",
            1,
            1,
        )
        assert not short.out and short.reply_to is None
        # Bob writes twice (his ids 2, 3), Alice replies to her id of Bob's second message
        await s.send(s.bob_id, "user", s.alice_id, "раз")
        second = await s.send(s.bob_id, "user", s.alice_id, "два")
        reply = await s.send(
            s.alice_id, "user", s.bob_id, "ответ", reply_to=second.recipients[s.alice_id]
        )
        shorts = s.pushed(types.UpdateShortMessage)
        assert [(u.message, bool(u.out), u.pts) for u in shorts] == [
            ("привет", False, 1),
            ("раз", True, 2),  # sent "from another device": his own connections see it
            ("два", True, 3),
            ("ответ", False, 4),
        ]
        assert shorts[-1].reply_to.reply_to_msg_id == second.message_id
        alice_copy = s.world.boxes.user_message(s.alice_id, reply.message_id)
        assert alice_copy is not None and alice_copy.reply_to.reply_to_msg_id == 3

    run(scenario())


def test_group_and_channel_messages_are_pushed_as_telegram_pushes_them() -> None:
    async def scenario() -> None:
        s = await _scene()
        group = s.world.create_group("Семья", s.alice_id, {s.bob_id})
        channel = s.world.create_channel("Новости", s.alice_id, {s.bob_id})
        supergroup = s.world.create_channel(
            "Чат", s.alice_id, {s.bob_id, s.carol_id}, broadcast=False
        )
        await s.send(s.alice_id, "chat", group.chat_id, "в группу")
        post = await s.send(s.alice_id, "channel", channel.channel_id, "пост")
        await s.send(s.carol_id, "channel", supergroup.channel_id, "в чат", reply_to=None)
        [chat_message] = s.pushed(types.UpdateShortChatMessage)
        assert (chat_message.chat_id, chat_message.from_id, chat_message.pts) == (
            group.chat_id,
            s.alice_id,
            1,
        )
        new_posts = s.pushed(types.UpdateNewChannelMessage)
        assert [(u.message.peer_id.channel_id, u.pts, u.message.message) for u in new_posts] == [
            (channel.channel_id, 1, "пост"),
            (supergroup.channel_id, 1, "в чат"),
        ]
        assert new_posts[0].message.post and new_posts[1].message.from_id == types.PeerUser(
            s.carol_id
        )
        assert post.message_id == 1 and post.recipients[s.bob_id] == 1

    run(scenario())


def test_edits_and_deletions_take_pts_steps_and_are_pushed() -> None:
    async def scenario() -> None:
        s = await _scene()
        sent = await s.send(s.alice_id, "user", s.bob_id, "черновик")
        other = await s.send(s.alice_id, "user", s.bob_id, "второе")
        edited = await s.world.inbound.edit(
            s.alice_id, PeerRef("user", s.bob_id), sent.message_id, "чистовик"
        )
        assert edited.recipients == {s.alice_id: 1, s.bob_id: 1}
        [edit] = s.pushed(types.UpdateEditMessage)
        assert (edit.message.id, edit.message.message, edit.pts, edit.pts_count) == (
            1,
            "чистовик",
            3,
            1,
        )
        assert edit.message.edit_date is not None
        await s.world.inbound.delete(
            s.alice_id, PeerRef("user", s.bob_id), [sent.message_id, other.message_id]
        )
        [deletion] = s.pushed(types.UpdateDeleteMessages)
        assert (deletion.messages, deletion.pts, deletion.pts_count) == ([1, 2], 5, 2)
        assert s.world.directory.accounts[s.bob_id].pts == 5
        assert s.world.boxes.user_message(s.bob_id, 1) is None

        channel = s.world.create_channel("Канал", s.carol_id, {s.bob_id}, admin_ids={s.alice_id})
        post = await s.send(s.alice_id, "channel", channel.channel_id, "пост")
        await s.world.inbound.edit(
            s.alice_id, PeerRef("channel", channel.channel_id), post.message_id, "пост!"
        )
        [channel_edit] = s.pushed(types.UpdateEditChannelMessage)
        assert (channel_edit.pts, channel_edit.message.message) == (2, "пост!")
        # the creator (an admin) may delete a post another admin wrote
        await s.world.inbound.delete(
            s.carol_id, PeerRef("channel", channel.channel_id), [post.message_id]
        )
        [channel_deletion] = s.pushed(types.UpdateDeleteChannelMessages)
        assert (channel_deletion.channel_id, channel_deletion.messages) == (channel.channel_id, [1])
        assert (channel_deletion.pts, channel_deletion.pts_count) == (3, 1)

    run(scenario())


def test_get_difference_replays_every_missed_step_once_in_pts_order() -> None:
    async def scenario() -> None:
        s = await _scene()
        group = s.world.create_group("Семья", s.alice_id, {s.bob_id})
        a = await s.send(s.alice_id, "user", s.bob_id, "один")  # bob pts 1
        b = await s.send(s.alice_id, "chat", group.chat_id, "два")  # 2
        await s.world.inbound.edit(s.alice_id, PeerRef("user", s.bob_id), a.message_id, "один!")
        c = await s.send(s.alice_id, "user", s.bob_id, "три")  # 4
        await s.world.inbound.delete(s.alice_id, PeerRef("chat", group.chat_id), [b.message_id])
        await s.world.inbound.delete(s.alice_id, PeerRef("user", s.bob_id), [c.message_id])
        diff = await s.bob.call(_diff(0))
        assert isinstance(diff, types.updates.Difference)
        # the edited message reads as it is now; deleted ones are gone
        assert [m.message for m in diff.new_messages] == ["один!"]
        assert [(type(u).__name__, u.pts, u.pts_count) for u in diff.other_updates] == [
            ("UpdateEditMessage", 3, 1),
            ("UpdateDeleteMessages", 5, 1),
            ("UpdateDeleteMessages", 6, 1),
        ]
        assert diff.state.pts == 6 and diff.state.qts == 0
        assert {u.id for u in diff.users} == {s.alice_id, s.bob_id}
        # from pts 1: the first message is not repeated, its edit is
        later = await s.bob.call(_diff(1))
        assert later.new_messages == [] and [u.pts for u in later.other_updates] == [3, 5, 6]
        assert [c.id for c in later.chats] == [] and (await s.bob.call(_diff(6))).seq == 0
        await s.bob.fails(_diff(7), 400, "PERSISTENT_TIMESTAMP_INVALID")

    run(scenario())


def test_a_long_difference_comes_in_slices() -> None:
    async def scenario() -> None:
        s = await _scene(new_world(difference_slice=3))
        for n in range(8):
            await s.send(s.alice_id, "user", s.bob_id, f"m{n}")
        texts: list[str] = []
        pts = 0
        while True:
            diff = await s.bob.call(_diff(pts))
            texts += [m.message for m in diff.new_messages]
            if isinstance(diff, types.updates.Difference):
                break
            assert isinstance(diff, types.updates.DifferenceSlice)
            assert diff.intermediate_state.pts == pts + 3
            pts = diff.intermediate_state.pts
        assert texts == [f"m{n}" for n in range(8)] and diff.state.pts == 8
        # pts_limit asks for smaller pieces still
        small = await s.bob.call(_diff(0, pts_limit=2))
        assert isinstance(small, types.updates.DifferenceSlice)
        assert small.intermediate_state.pts == 2

    run(scenario())


def test_difference_too_long_past_the_limit_and_pts_total_limit() -> None:
    async def scenario() -> None:
        s = await _scene(new_world(difference_limit=5))
        for n in range(7):
            await s.send(s.alice_id, "user", s.bob_id, f"m{n}")
        too_long = await s.bob.call(_diff(1))
        assert isinstance(too_long, types.updates.DifferenceTooLong) and too_long.pts == 7
        within = await s.bob.call(_diff(2))
        assert [m.message for m in within.new_messages] == [f"m{n}" for n in range(2, 7)]
        capped = await s.bob.call(_diff(2, pts_total_limit=4))
        assert isinstance(capped, types.updates.DifferenceTooLong) and capped.pts == 7
        # resuming at the returned pts: nothing in between is replayed
        assert isinstance(await s.bob.call(_diff(7)), types.updates.DifferenceEmpty)
        s.world.change_settings({"difference_limit": 100})
        assert isinstance(await s.bob.call(_diff(1)), types.updates.Difference)

    run(scenario())


def test_channel_difference_limit_slices_and_too_long() -> None:
    async def scenario() -> None:
        s = await _scene(new_world(difference_limit=7))
        channel = s.world.create_channel("Канал", s.alice_id, {s.bob_id})
        for n in range(5):
            await s.send(s.alice_id, "channel", channel.channel_id, f"p{n}")
        await s.world.inbound.edit(s.alice_id, PeerRef("channel", channel.channel_id), 2, "p1!")
        await s.world.inbound.delete(s.alice_id, PeerRef("channel", channel.channel_id), [3])
        world, bob = s.world, s.bob_id
        first = await s.bob.call(_channel_diff(world, bob, channel.channel_id, 0, limit=4))
        assert isinstance(first, types.updates.ChannelDifference)
        assert not first.final and first.pts == 4
        assert [m.message for m in first.new_messages] == ["p0", "p1!", "p3"]  # p2 deleted
        rest = await s.bob.call(_channel_diff(world, bob, channel.channel_id, 4, limit=4))
        assert rest.final and rest.pts == 7
        assert [m.message for m in rest.new_messages] == ["p4"]
        assert [(type(u).__name__, u.pts) for u in rest.other_updates] == [
            ("UpdateEditChannelMessage", 6),
            ("UpdateDeleteChannelMessages", 7),
        ]
        empty = await s.bob.call(_channel_diff(world, bob, channel.channel_id, 7))
        assert isinstance(empty, types.updates.ChannelDifferenceEmpty) and empty.final
        await s.send(s.alice_id, "channel", channel.channel_id, "p5")
        too_long = await s.bob.call(_channel_diff(world, bob, channel.channel_id, 0, limit=2))
        assert isinstance(too_long, types.updates.ChannelDifferenceTooLong) and too_long.final
        assert too_long.dialog.pts == 8 and too_long.dialog.top_message == 6
        assert [m.message for m in too_long.messages] == ["p5", "p4"]
        assert [c.id for c in too_long.chats] == [channel.channel_id]
        assert [u.id for u in too_long.users] == [s.alice_id]
        await s.bob.fails(
            _channel_diff(world, bob, channel.channel_id, 9), 400, "PERSISTENT_TIMESTAMP_INVALID"
        )

    run(scenario())


def test_updates_too_long_is_pushed_to_every_connection() -> None:
    async def scenario() -> None:
        s = await _scene()
        second = Client(s.world, auth_key_id=s.bob.auth_key_id)
        await second.call(functions.updates.GetStateRequest())
        assert await s.world.push_updates_too_long(s.bob_id) == 2
        assert isinstance(s.bob.pushed[-1], types.UpdatesTooLong)
        assert isinstance(second.pushed[-1], types.UpdatesTooLong)
        assert await s.world.push_updates_too_long(s.alice_id) == 0  # offline
        with pytest.raises(KeyError):
            await s.world.push_updates_too_long(1)

    run(scenario())


@pytest.mark.parametrize(
    ("case", "code", "name"),
    [
        ("unknown peer user", 400, "PEER_ID_INVALID"),
        ("unknown chat", 400, "PEER_ID_INVALID"),
        ("not in group", 403, "CHAT_WRITE_FORBIDDEN"),
        ("unknown channel", 400, "CHANNEL_INVALID"),
        ("private channel", 400, "CHANNEL_PRIVATE"),
        ("member posting to a broadcast", 400, "CHAT_ADMIN_REQUIRED"),
        ("empty text", 400, "MESSAGE_EMPTY"),
        ("long text", 400, "MESSAGE_TOO_LONG"),
        ("banned sender", 401, "USER_DEACTIVATED_BAN"),
        ("banned recipient", 400, "INPUT_USER_DEACTIVATED"),
        ("reply to another chat", 400, "REPLY_MESSAGE_ID_INVALID"),
    ],
)
def test_refused_sends_store_nothing(case: str, code: int, name: str) -> None:
    async def scenario() -> None:
        s = await _scene()
        world = s.world
        group = world.create_group("Группа", s.bob_id, {s.carol_id})
        channel = world.create_channel("Канал", s.bob_id, {s.alice_id})
        private = world.create_channel("Тайный", s.bob_id, set())
        elsewhere = await s.send(s.alice_id, "user", s.carol_id, "не тебе")
        peers = {
            "unknown peer user": ("user", 1, "x", None),
            "unknown chat": ("chat", 1, "x", None),
            "not in group": ("chat", group.chat_id, "x", None),
            "unknown channel": ("channel", 1, "x", None),
            "private channel": ("channel", private.channel_id, "x", None),
            "member posting to a broadcast": ("channel", channel.channel_id, "x", None),
            "empty text": ("user", s.bob_id, "  ", None),
            "long text": ("user", s.bob_id, "я" * 4097, None),
            "banned sender": ("user", s.bob_id, "x", None),
            "banned recipient": ("user", s.bob_id, "x", None),
            "reply to another chat": ("user", s.bob_id, "x", elsewhere.message_id),
        }
        if case == "banned sender":
            world.set_banned(s.alice_id, True)
        if case == "banned recipient":
            world.set_banned(s.bob_id, True)
        kind, peer, text, reply_to = peers[case]
        before = {a.user_id: a.pts for a in world.directory.accounts.values()}
        good = InboundMessage(s.carol_id, PeerRef("chat", group.chat_id), "ok")
        bad = InboundMessage(s.alice_id, PeerRef(kind, peer), text, reply_to)
        with pytest.raises(RefusedMessage) as refused:
            await world.inbound.send([good, bad])
        assert (refused.value.code, refused.value.message, refused.value.index) == (code, name, 1)
        assert {a.user_id: a.pts for a in world.directory.accounts.values()} == before
        assert channel.pts == 0 and not s.bob.pushed

    run(scenario())


def test_refused_edits_and_deletions() -> None:
    async def scenario() -> None:
        s = await _scene()
        inbound = s.world.inbound
        to_bob = PeerRef("user", s.bob_id)
        mine = await s.send(s.alice_id, "user", s.bob_id, "моё")
        await s.send(s.bob_id, "user", s.alice_id, "от Бориса")  # alice's id 2, not hers to edit
        cases = [
            (inbound.edit(s.alice_id, to_bob, 99, "x"), 400, "MESSAGE_ID_INVALID"),
            (
                inbound.edit(s.alice_id, PeerRef("user", s.carol_id), 1, "x"),
                400,
                "MESSAGE_ID_INVALID",
            ),
            (inbound.edit(s.alice_id, to_bob, 2, "x"), 403, "MESSAGE_AUTHOR_REQUIRED"),
            (inbound.edit(s.alice_id, to_bob, mine.message_id, "моё"), 400, "MESSAGE_NOT_MODIFIED"),
            (inbound.edit(s.alice_id, to_bob, mine.message_id, ""), 400, "MESSAGE_EMPTY"),
            (inbound.delete(s.alice_id, to_bob, []), 400, "MESSAGE_IDS_EMPTY"),
            (inbound.delete(s.alice_id, to_bob, [1, 99]), 400, "MESSAGE_ID_INVALID"),
            (inbound.delete(s.alice_id, to_bob, [1, 2]), 403, "MESSAGE_DELETE_FORBIDDEN"),
        ]
        pts = s.world.directory.accounts[s.bob_id].pts
        for call, code, name in cases:
            with pytest.raises(RpcError) as refused:
                await call
            assert (refused.value.code, refused.value.message) == (code, name)
        assert s.world.directory.accounts[s.bob_id].pts == pts
        assert s.world.boxes.user_message(s.bob_id, 1) is not None

        channel = s.world.create_channel(
            "Канал", s.alice_id, {s.bob_id, s.carol_id}, broadcast=False
        )
        await s.send(s.bob_id, "channel", channel.channel_id, "от Бориса")
        in_channel = PeerRef("channel", channel.channel_id)
        with pytest.raises(RpcError, match="MESSAGE_AUTHOR_REQUIRED"):
            await inbound.edit(s.carol_id, in_channel, 1, "x")
        with pytest.raises(RpcError, match="MESSAGE_DELETE_FORBIDDEN"):
            await inbound.delete(s.carol_id, in_channel, [1])
        with pytest.raises(RpcError, match="MSG_ID_INVALID"):
            await inbound.delete(s.alice_id, in_channel, [5])
        await inbound.delete(s.alice_id, in_channel, [1])  # the creator may
        assert channel.pts == 2

    run(scenario())


def test_edits_deletions_copies_and_settings_survive_a_restart(tmp_path: Path) -> None:
    def open_world(clock: ManualClock) -> TelegramWorld:
        world = new_world(clock)
        world.auth_keys = AuthKeyStore()
        world.attach_storage(WorldStorage.in_state_dir(tmp_path))
        return world

    async def scenario() -> None:
        clock = ManualClock()
        world = open_world(clock)
        s = await _scene(world)
        channel = world.create_channel("Канал", s.alice_id, {s.bob_id})
        # a batch and the steps after it, each call saved as the control API saves
        await world.inbound.send(
            [
                InboundMessage(s.alice_id, PeerRef("user", s.bob_id), "один"),
                InboundMessage(s.alice_id, PeerRef("user", s.bob_id), "два"),
                InboundMessage(s.alice_id, PeerRef("channel", channel.channel_id), "пост"),
            ]
        )
        world.save()
        await world.inbound.edit(s.alice_id, PeerRef("user", s.bob_id), 1, "один!")
        await world.inbound.delete(s.alice_id, PeerRef("user", s.bob_id), [2])
        await world.inbound.edit(s.alice_id, PeerRef("channel", channel.channel_id), 1, "пост!")
        reply = await s.send(s.alice_id, "channel", channel.channel_id, "ещё", reply_to=1)
        await world.inbound.delete(
            s.alice_id, PeerRef("channel", channel.channel_id), [reply.message_id]
        )
        world.change_settings({"difference_slice": 2})
        world.save()
        before = await s.bob.call(_diff(0, pts_limit=50))
        channel_before = await s.bob.call(_channel_diff(world, s.bob_id, channel.channel_id, 0))
        assert world.storage is not None
        world.storage.close()

        again = open_world(clock)
        bob = Client(again, auth_key_id=s.bob.auth_key_id)
        assert again.settings.difference_slice == 2
        after = await bob.call(_diff(0, pts_limit=50))
        assert type(after) is type(before)
        assert [bytes(m) for m in after.new_messages] == [bytes(m) for m in before.new_messages]
        assert [bytes(u) for u in after.other_updates] == [bytes(u) for u in before.other_updates]
        channel_after = await bob.call(_channel_diff(again, s.bob_id, channel.channel_id, 0))
        assert [m.message for m in channel_after.new_messages] == ["пост!"]
        assert [bytes(m) for m in channel_after.new_messages] == [
            bytes(m) for m in channel_before.new_messages
        ]
        assert [bytes(u) for u in channel_after.other_updates] == [
            bytes(u) for u in channel_before.other_updates
        ]
        # the copies are remembered: an edit after the restart reaches Bob's copy
        await bob.call(functions.updates.GetStateRequest())
        await again.inbound.edit(s.alice_id, PeerRef("user", s.bob_id), 1, "один!!")
        bob_copy = again.boxes.user_message(s.bob_id, 1)
        assert bob_copy is not None and bob_copy.message == "один!!"
        assert isinstance(bob.pushed[-1].updates[0], types.UpdateEditMessage)
        assert again.storage is not None
        again.storage.close()
        # a setting given on the command line wins over the saved one
        forced = new_world(clock, difference_slice=7)
        forced.auth_keys = AuthKeyStore()
        forced.attach_storage(WorldStorage.in_state_dir(tmp_path))
        assert forced.settings.difference_slice == 7
        assert forced.storage is not None
        forced.storage.close()

    run(scenario())
