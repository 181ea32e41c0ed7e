"""channels.getParticipant, channels.getFullChannel, messages.getFullChat and invite links,
as Telegram answers them (docs/EMULATOR.md, "Channels, groups and invites")."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from telethon.tl import functions, types

from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.accounts import Channel
from tests.emulator_world.world_support import Client, new_world, run


@dataclass
class Scene:
    world: TelegramWorld
    owner: Client
    member: Client
    outsider: Client
    owner_id: int
    member_id: int
    outsider_id: int


async def _scene() -> Scene:
    world = new_world()
    ids = []
    clients = []
    for index, name in enumerate(("Olga", "Mark", "Oscar"), start=1):
        phone = f"+7999100000{index}"
        ids.append(world.create_user(phone, name).user_id)
        client = Client(world)
        await client.login(phone)
        clients.append(client)
    owner, member, outsider = clients
    return Scene(world, owner, member, outsider, ids[0], ids[1], ids[2])


def _input_channel(world: TelegramWorld, channel: Channel, viewer_id: int) -> types.InputChannel:
    access_hash = world.directory.access_hash(viewer_id, "channel", channel.channel_id)
    return types.InputChannel(channel.channel_id, access_hash)


def _input_user(world: TelegramWorld, user_id: int, viewer_id: int) -> types.InputPeerUser:
    return types.InputPeerUser(user_id, world.directory.access_hash(viewer_id, "user", user_id))


def _participant(channel: types.InputChannel, who: object) -> object:
    return functions.channels.GetParticipantRequest(channel=channel, participant=who)


def test_participant_records_name_creator_admin_and_member_rights() -> None:
    async def scenario() -> None:
        s = await _scene()
        news = s.world.create_channel("News", s.owner_id, {s.member_id})
        own = await s.owner.call(
            _participant(_input_channel(s.world, news, s.owner_id), types.InputPeerSelf())
        )
        assert isinstance(own.participant, types.ChannelParticipantCreator)
        assert own.participant.admin_rights.post_messages
        plain = await s.member.call(
            _participant(_input_channel(s.world, news, s.member_id), types.InputPeerSelf())
        )
        assert isinstance(plain.participant, types.ChannelParticipantSelf)
        s.world.set_admin_rights(news.channel_id, s.member_id, frozenset({"post_messages"}))
        admin = await s.member.call(
            _participant(_input_channel(s.world, news, s.member_id), types.InputPeerSelf())
        )
        assert isinstance(admin.participant, types.ChannelParticipantAdmin)
        assert admin.participant.is_self
        assert admin.participant.admin_rights.post_messages
        assert not admin.participant.admin_rights.delete_messages
        # The owner sees the member's record; it names the rights just given.
        seen = await s.owner.call(
            _participant(
                _input_channel(s.world, news, s.owner_id),
                _input_user(s.world, s.member_id, s.owner_id),
            )
        )
        assert isinstance(seen.participant, types.ChannelParticipantAdmin)
        assert seen.participant.can_edit
        # Demoted again: a plain member, who may no longer post.
        s.world.set_admin_rights(news.channel_id, s.member_id, frozenset())
        again = await s.member.call(
            _participant(_input_channel(s.world, news, s.member_id), types.InputPeerSelf())
        )
        assert isinstance(again.participant, types.ChannelParticipantSelf)
        assert not news.can_post(s.member_id)

    run(scenario())


def test_participant_refusals() -> None:
    async def scenario() -> None:
        s = await _scene()
        news = s.world.create_channel("News", s.owner_id, {s.member_id}, username="news_chats")
        secret = s.world.create_channel("Secret", s.owner_id, {s.member_id})
        # A plain subscriber of a broadcast channel cannot look at others.
        await s.member.fails(
            _participant(
                _input_channel(s.world, news, s.member_id),
                _input_user(s.world, s.owner_id, s.member_id),
            ),
            400,
            "CHAT_ADMIN_REQUIRED",
        )
        # A public channel one has not joined: readable, but not a participant.
        await s.outsider.fails(
            _participant(_input_channel(s.world, news, s.outsider_id), types.InputPeerSelf()),
            400,
            "USER_NOT_PARTICIPANT",
        )
        await s.outsider.fails(
            _participant(_input_channel(s.world, secret, s.outsider_id), types.InputPeerSelf()),
            400,
            "CHANNEL_PRIVATE",
        )
        # An access hash learnt by someone else is not the outsider's.
        await s.outsider.fails(
            _participant(_input_channel(s.world, news, s.owner_id), types.InputPeerSelf()),
            400,
            "CHANNEL_INVALID",
        )
        await s.owner.fails(
            _participant(
                _input_channel(s.world, news, s.owner_id),
                types.InputPeerUser(s.member_id, 12345),
            ),
            400,
            "PARTICIPANT_ID_INVALID",
        )

    run(scenario())


def test_full_channel_and_full_chat_count_participants() -> None:
    async def scenario() -> None:
        s = await _scene()
        news = s.world.create_channel("News", s.owner_id, {s.member_id})
        for viewer, viewer_id, admins_count in (
            (s.owner, s.owner_id, 1),
            (s.member, s.member_id, None),
        ):
            full = await viewer.call(
                functions.channels.GetFullChannelRequest(_input_channel(s.world, news, viewer_id))
            )
            assert isinstance(full.full_chat, types.ChannelFull)
            assert full.full_chat.participants_count == 2
            assert full.full_chat.admins_count == admins_count
            assert full.chats[0].broadcast
        group = s.world.create_group("Team", s.owner_id, {s.member_id})
        chat = await s.member.call(functions.messages.GetFullChatRequest(group.chat_id))
        assert isinstance(chat.full_chat, types.ChatFull)
        participants = chat.full_chat.participants.participants
        assert {type(p) for p in participants} == {
            types.ChatParticipantCreator,
            types.ChatParticipant,
        }
        assert chat.chats[0].participants_count == 2
        await s.outsider.fails(
            functions.messages.GetFullChatRequest(group.chat_id), 400, "CHAT_ID_INVALID"
        )

    run(scenario())


def test_invite_link_previews_then_joins_once() -> None:
    async def scenario() -> None:
        s = await _scene()
        secret = s.world.create_channel("Secret", s.owner_id, set(), broadcast=False)
        link = s.world.export_invite(secret)
        assert link.startswith("https://t.me/+")
        assert s.world.export_invite(secret) == link  # the primary link, made once
        invite_hash = link.rsplit("+", 1)[1]
        preview = await s.outsider.call(functions.messages.CheckChatInviteRequest(invite_hash))
        assert isinstance(preview, types.ChatInvite)
        assert (preview.title, preview.participants_count, preview.megagroup) == (
            "Secret",
            1,
            True,
        )
        joined = await s.outsider.call(functions.messages.ImportChatInviteRequest(invite_hash))
        assert isinstance(joined, types.Updates)
        assert joined.chats[0].id == secret.channel_id
        assert s.outsider_id in secret.members
        already = await s.outsider.call(functions.messages.CheckChatInviteRequest(invite_hash))
        assert isinstance(already, types.ChatInviteAlready)
        await s.outsider.fails(
            functions.messages.ImportChatInviteRequest(invite_hash),
            400,
            "USER_ALREADY_PARTICIPANT",
        )

    run(scenario())


@pytest.mark.parametrize(
    ("invite_hash", "error"),
    [
        ("", "INVITE_HASH_EMPTY"),
        ("no spaces!", "INVITE_HASH_INVALID"),
        ("AbC", "INVITE_HASH_EXPIRED"),
    ],
)
def test_bad_invite_hashes(invite_hash: str, error: str) -> None:
    async def scenario() -> None:
        s = await _scene()
        for request in (
            functions.messages.CheckChatInviteRequest(invite_hash),
            functions.messages.ImportChatInviteRequest(invite_hash),
        ):
            await s.outsider.fails(request, 400, error)

    run(scenario())


def test_bots_cannot_use_invite_links() -> None:
    async def scenario() -> None:
        s = await _scene()
        bot = s.world.create_bot("chats_helper_bot")
        assert bot.bot_token is not None
        client = Client(s.world)
        await client.call(
            functions.auth.ImportBotAuthorizationRequest(
                flags=0, api_id=12345, api_hash="0" * 32, bot_auth_token=bot.bot_token
            )
        )
        group = s.world.create_group("Team", s.owner_id, set())
        invite_hash = s.world.export_invite(group).rsplit("+", 1)[1]
        await client.fails(
            functions.messages.ImportChatInviteRequest(invite_hash), 400, "BOT_METHOD_INVALID"
        )

    run(scenario())


def test_admin_rights_are_checked_and_kept_for_members_only() -> None:
    s = run(_scene())
    news = s.world.create_channel("News", s.owner_id, {s.member_id})
    with pytest.raises(ValueError, match="not a member"):
        s.world.set_admin_rights(news.channel_id, s.outsider_id, frozenset({"post_messages"}))
    with pytest.raises(ValueError, match="creator"):
        s.world.set_admin_rights(news.channel_id, s.owner_id, frozenset())
    with pytest.raises(KeyError):
        s.world.set_admin_rights(1, s.member_id, frozenset())


def test_get_channels_needs_the_callers_own_access_hash() -> None:
    async def scenario() -> None:
        s = await _scene()
        news = s.world.create_channel("News", s.owner_id, {s.member_id}, username="news_gc")
        found = await s.member.call(
            functions.channels.GetChannelsRequest([_input_channel(s.world, news, s.member_id)])
        )
        assert [c.id for c in found.chats] == [news.channel_id]
        for access_hash in (
            0,
            s.world.directory.access_hash(s.owner_id, "channel", news.channel_id),
        ):
            await s.member.fails(
                functions.channels.GetChannelsRequest(
                    [types.InputChannel(news.channel_id, access_hash)]
                ),
                400,
                "CHANNEL_INVALID",
            )

    run(scenario())
