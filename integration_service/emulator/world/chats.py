"""What an account may learn about a chat it is in, and joining one by its invite link.

- ``channels.getParticipant`` (core.telegram.org/method/channels.getParticipant): the
  caller's or another member's participant record, with the admin rights it holds.
  Anyone may ask about themselves; in a broadcast channel only admins see other
  members (CHAT_ADMIN_REQUIRED), as Telegram hides a channel's subscribers. Someone not
  in the channel is USER_NOT_PARTICIPANT.
- ``channels.getChannels`` (core.telegram.org/method/channels.getChannels): channels by
  id with the caller's own access hash.
- ``channels.getFullChannel`` (core.telegram.org/method/channels.getFullChannel) and
  ``messages.getFullChat`` (core.telegram.org/method/messages.getFullChat): the full
  info with ``participants_count``; a basic group's participant list names its creator.
- ``messages.checkChatInvite`` and ``messages.importChatInvite``
  (core.telegram.org/api/invites): a ``t.me/+<hash>`` link previews the chat
  (``chatInvite``, or ``chatInviteAlready`` to a member) and joins it. Bots cannot use
  either (BOT_METHOD_INVALID): a bot is added to a chat by its admins.
"""

from __future__ import annotations

import re
import secrets

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.accounts import (
    ADMIN_RIGHTS,
    CHANNELS_TABLE,
    GROUPS_TABLE,
    Account,
    Channel,
    Group,
)
from integration_service.emulator.world.peers import (
    readable_channel,
    tl_channel,
    tl_chat,
    tl_date,
    tl_user,
)
from integration_service.emulator.world.state import WorldState

# Invite hashes Telegram issues are URL-safe base64 text.
INVITE_HASH_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INVITE_LINK_PREFIX = "https://t.me/+"


def tl_admin_rights(rights: frozenset[str]) -> types.ChatAdminRights:
    return types.ChatAdminRights(**{name: True for name in ADMIN_RIGHTS if name in rights})


class ChatMethods:
    def __init__(self, state: WorldState) -> None:
        self._state = state

    # Participants and full info --------------------------------------------------------

    async def get_participant(
        self, request: functions.channels.GetParticipantRequest, ctx: CallContext, viewer: Account
    ) -> types.channels.ChannelParticipant:
        directory = self._state.directory
        channel = readable_channel(directory, request.channel, viewer)
        target = self._participant_id(request.participant, viewer)
        sees_others = not channel.broadcast or channel.rights_of(viewer.user_id) is not None
        if target != viewer.user_id and not sees_others:
            raise RpcError(400, "CHAT_ADMIN_REQUIRED")
        if target not in channel.members:
            raise RpcError(400, "USER_NOT_PARTICIPANT")
        return types.channels.ChannelParticipant(
            participant=self._participant(channel, target, viewer),
            chats=[tl_channel(directory, channel, viewer.user_id)],
            users=[tl_user(directory, directory.accounts[target], viewer.user_id)],
        )

    def _participant_id(self, wanted: types.TypeInputPeer, viewer: Account) -> int:
        directory = self._state.directory
        if isinstance(wanted, types.InputPeerSelf):
            return viewer.user_id
        if isinstance(wanted, types.InputPeerUser):
            user = directory.accounts.get(wanted.user_id)
            if user is not None and wanted.access_hash == directory.access_hash(
                viewer.user_id, "user", user.user_id
            ):
                return user.user_id
        raise RpcError(400, "PARTICIPANT_ID_INVALID")

    def _participant(
        self, channel: Channel, user_id: int, viewer: Account
    ) -> types.TypeChannelParticipant:
        joined = tl_date(channel.date)
        if user_id == channel.creator_id:
            return types.ChannelParticipantCreator(
                user_id=user_id, admin_rights=tl_admin_rights(frozenset(ADMIN_RIGHTS))
            )
        rights = channel.admins.get(user_id)
        if rights is not None:
            return types.ChannelParticipantAdmin(
                user_id=user_id,
                promoted_by=channel.creator_id,
                date=joined,
                admin_rights=tl_admin_rights(rights),
                can_edit=viewer.user_id == channel.creator_id or None,
                # TL: self and inviter_id share flags.1: the caller's own record names who
                # invited it.
                is_self=user_id == viewer.user_id or None,
                inviter_id=channel.creator_id if user_id == viewer.user_id else None,
            )
        if user_id == viewer.user_id:
            return types.ChannelParticipantSelf(
                user_id=user_id, inviter_id=channel.creator_id, date=joined
            )
        return types.ChannelParticipant(user_id=user_id, date=joined)

    async def get_channels(
        self, request: functions.channels.GetChannelsRequest, ctx: CallContext, viewer: Account
    ) -> types.messages.Chats:
        """channels.getChannels: each inputChannel with the caller's own access hash (a
        wrong or zero hash is CHANNEL_INVALID, as readable_channel says)."""
        directory = self._state.directory
        found = [readable_channel(directory, wanted, viewer) for wanted in request.id]
        return types.messages.Chats(
            chats=[tl_channel(directory, channel, viewer.user_id) for channel in found]
        )

    async def get_full_channel(
        self, request: functions.channels.GetFullChannelRequest, ctx: CallContext, viewer: Account
    ) -> types.messages.ChatFull:
        directory = self._state.directory
        channel = readable_channel(directory, request.channel, viewer)
        is_admin = channel.rights_of(viewer.user_id) is not None
        full = types.ChannelFull(
            id=channel.channel_id,
            about="",
            read_inbox_max_id=0,
            read_outbox_max_id=0,
            unread_count=0,
            chat_photo=types.PhotoEmpty(id=0),
            notify_settings=types.PeerNotifySettings(),
            bot_info=[],
            pts=channel.pts,
            participants_count=len(channel.members),
            # The admins count and the member list are for admins (and, in a supergroup,
            # for its members), as on Telegram.
            admins_count=len(channel.admins) + 1 if is_admin else None,
            can_view_participants=is_admin or not channel.broadcast or None,
            exported_invite=self._exported(channel, viewer) if is_admin else None,
        )
        return types.messages.ChatFull(
            full_chat=full, chats=[tl_channel(directory, channel, viewer.user_id)], users=[]
        )

    async def get_full_chat(
        self, request: functions.messages.GetFullChatRequest, ctx: CallContext, viewer: Account
    ) -> types.messages.ChatFull:
        directory = self._state.directory
        group = directory.groups.get(request.chat_id)
        if group is None or viewer.user_id not in group.members:
            raise RpcError(400, "CHAT_ID_INVALID")
        joined = tl_date(group.date)
        participants: list[types.TypeChatParticipant] = [
            types.ChatParticipantCreator(user_id=member)
            if member == group.creator_id
            else types.ChatParticipant(user_id=member, inviter_id=group.creator_id, date=joined)
            for member in sorted(group.members)
        ]
        full = types.ChatFull(
            id=group.chat_id,
            about="",
            participants=types.ChatParticipants(
                chat_id=group.chat_id, participants=participants, version=1
            ),
            notify_settings=types.PeerNotifySettings(),
            exported_invite=(
                self._exported(group, viewer) if viewer.user_id == group.creator_id else None
            ),
        )
        users = [tl_user(directory, directory.accounts[m], viewer.user_id) for m in group.members]
        return types.messages.ChatFull(full_chat=full, chats=[tl_chat(group)], users=users)

    def _exported(self, chat: Channel | Group, viewer: Account) -> types.ChatInviteExported | None:
        if chat.invite_hash is None:
            return None
        return types.ChatInviteExported(
            link=INVITE_LINK_PREFIX + chat.invite_hash,
            admin_id=chat.creator_id,
            date=tl_date(chat.date),
            permanent=True,
        )

    # Invite links ----------------------------------------------------------------------

    def export_invite(self, chat: Channel | Group) -> str:
        """The chat's primary invite link, made on first use (control API)."""
        if chat.invite_hash is None:
            chat.invite_hash = secrets.token_urlsafe(12)
            self._changed(chat)
        return INVITE_LINK_PREFIX + chat.invite_hash

    async def check_chat_invite(
        self, request: functions.messages.CheckChatInviteRequest, ctx: CallContext, viewer: Account
    ) -> types.ChatInviteAlready | types.ChatInvite:
        chat = self._invited_to(request.hash, viewer)
        directory = self._state.directory
        if viewer.user_id in chat.members:
            if isinstance(chat, Channel):
                return types.ChatInviteAlready(chat=tl_channel(directory, chat, viewer.user_id))
            return types.ChatInviteAlready(chat=tl_chat(chat))
        invite = types.ChatInvite(
            title=chat.title,
            photo=types.PhotoEmpty(id=0),
            participants_count=len(chat.members),
            color=0,
        )
        if isinstance(chat, Channel):
            invite.channel = True
            invite.broadcast = chat.broadcast or None
            invite.megagroup = (not chat.broadcast) or None
            invite.public = chat.username is not None or None
        return invite

    async def import_chat_invite(
        self, request: functions.messages.ImportChatInviteRequest, ctx: CallContext, viewer: Account
    ) -> types.Updates:
        chat = self._invited_to(request.hash, viewer)
        if viewer.user_id in chat.members:
            raise RpcError(400, "USER_ALREADY_PARTICIPANT")
        chat.members.add(viewer.user_id)
        self._changed(chat)
        directory = self._state.directory
        rendered = (
            tl_channel(directory, chat, viewer.user_id)
            if isinstance(chat, Channel)
            else tl_chat(chat)
        )
        # Telegram also sends the join's service message in a basic group; the chat itself is
        # what a client needs to use it.
        return types.Updates(
            updates=[], users=[], chats=[rendered], date=tl_date(self._state.now()), seq=0
        )

    def _invited_to(self, invite_hash: str, viewer: Account) -> Channel | Group:
        if viewer.is_bot:
            raise RpcError(400, "BOT_METHOD_INVALID")
        if not invite_hash:
            raise RpcError(400, "INVITE_HASH_EMPTY")
        if not INVITE_HASH_RE.match(invite_hash):
            raise RpcError(400, "INVITE_HASH_INVALID")
        directory = self._state.directory
        chats: list[Channel | Group] = [*directory.channels.values(), *directory.groups.values()]
        for chat in chats:
            if chat.invite_hash is not None and secrets.compare_digest(
                chat.invite_hash, invite_hash
            ):
                return chat
        raise RpcError(400, "INVITE_HASH_EXPIRED")

    def _changed(self, chat: Channel | Group) -> None:
        if isinstance(chat, Channel):
            self._state.journal.changed(CHANNELS_TABLE, chat.channel_id)
        else:
            self._state.journal.changed(GROUPS_TABLE, chat.chat_id)
