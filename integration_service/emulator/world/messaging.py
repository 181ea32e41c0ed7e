"""users.getUsers, contacts.resolveUsername and messages.sendMessage.

sendMessage answers as Telegram does: ``updateShortSentMessage`` for private chats and
basic groups, and ``updates`` with ``updateMessageID(random_id)`` +
``updateNewChannelMessage`` for channels (Telethon matches the reply by random_id).
A random_id may be used once per sender; a repeat gets 500 RANDOM_ID_DUPLICATE (the
code Telegram uses) and delivers nothing.
"""

from __future__ import annotations

from typing import Any

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.accounts import Account, Channel, Group, is_valid_username
from integration_service.emulator.world.boxes import ChannelPost, MessageBoxes
from integration_service.emulator.world.delivery import Delivery
from integration_service.emulator.world.delivery_log import DeliveryLog
from integration_service.emulator.world.peers import tl_channel, tl_date, tl_user
from integration_service.emulator.world.state import WorldState

MAX_MESSAGE_LENGTH = 4096
RANDOM_IDS_TABLE = "random_ids"


class Messaging:
    def __init__(
        self, state: WorldState, boxes: MessageBoxes, log: DeliveryLog, delivery: Delivery
    ) -> None:
        self._state = state
        self._boxes = boxes
        self._log = log
        self._delivery = delivery
        self._used_random_ids: dict[int, set[int]] = {}

    def reset(self) -> None:
        self._used_random_ids.clear()

    def restore_random_ids(self, used: list[tuple[int, int]]) -> None:
        """Load the saved (sender id, random_id) pairs: a repeat stays a duplicate."""
        self._used_random_ids.clear()
        for sender_id, random_id in used:
            self._used_random_ids.setdefault(sender_id, set()).add(random_id)

    async def get_users(
        self, request: functions.users.GetUsersRequest, ctx: CallContext, account: Account
    ) -> list[types.User]:
        directory = self._state.directory
        found: list[types.User] = []
        for wanted in request.id:
            if isinstance(wanted, types.InputUserSelf):
                found.append(tl_user(directory, account, account.user_id))
            elif isinstance(wanted, types.InputUser):
                other = directory.accounts.get(wanted.user_id)
                if other is not None and wanted.access_hash == directory.access_hash(
                    account.user_id, "user", other.user_id
                ):
                    found.append(tl_user(directory, other, account.user_id))
        return found

    async def resolve_username(
        self, request: functions.contacts.ResolveUsernameRequest, ctx: CallContext, account: Account
    ) -> types.contacts.ResolvedPeer:
        if not is_valid_username(request.username):
            raise RpcError(400, "USERNAME_INVALID")
        directory = self._state.directory
        target = directory.by_username(request.username)
        if target is None:
            raise RpcError(400, "USERNAME_NOT_OCCUPIED")
        kind, peer_id = target
        if kind == "channel":
            channel = directory.channels[peer_id]
            return types.contacts.ResolvedPeer(
                peer=types.PeerChannel(peer_id),
                chats=[tl_channel(directory, channel, account.user_id)],
                users=[],
            )
        user = directory.accounts[peer_id]
        return types.contacts.ResolvedPeer(
            peer=types.PeerUser(peer_id),
            chats=[],
            users=[tl_user(directory, user, account.user_id)],
        )

    def _resolve_peer(self, peer: Any, sender: Account) -> Account | Group | Channel:
        directory = self._state.directory
        if isinstance(peer, types.InputPeerSelf):
            return sender
        if isinstance(peer, types.InputPeerUser):
            user = directory.accounts.get(peer.user_id)
            if user is None or peer.access_hash != directory.access_hash(
                sender.user_id, "user", user.user_id
            ):
                raise RpcError(400, "PEER_ID_INVALID")
            if user.banned:
                raise RpcError(400, "INPUT_USER_DEACTIVATED")
            if sender.is_bot and user.is_bot:
                raise RpcError(400, "USER_IS_BOT")
            return user
        if isinstance(peer, types.InputPeerChat):
            group = directory.groups.get(peer.chat_id)
            if group is None:
                raise RpcError(400, "PEER_ID_INVALID")
            if sender.user_id not in group.members:
                raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
            return group
        if isinstance(peer, types.InputPeerChannel):
            channel = directory.channels.get(peer.channel_id)
            if channel is None or peer.access_hash != directory.access_hash(
                sender.user_id, "channel", channel.channel_id
            ):
                raise RpcError(400, "CHANNEL_INVALID")
            if sender.user_id not in channel.members and channel.username is None:
                raise RpcError(400, "CHANNEL_PRIVATE")
            if sender.user_id not in channel.members:
                raise RpcError(403, "CHAT_WRITE_FORBIDDEN")  # a public channel not joined
            if not channel.can_post(sender.user_id):
                # A subscriber of a broadcast channel, or an admin without post_messages.
                raise RpcError(400, "CHAT_ADMIN_REQUIRED")
            return channel
        raise RpcError(400, "PEER_ID_INVALID")

    async def send_message(
        self, request: functions.messages.SendMessageRequest, ctx: CallContext, sender: Account
    ) -> types.UpdateShortSentMessage | types.Updates:
        target = self._resolve_peer(request.peer, sender)
        text = request.message or ""
        check_text(text)
        used = self._used_random_ids.setdefault(sender.user_id, set())
        if request.random_id in used:
            # Telegram files this under 500, so clients (Telethon) retry it as a server error
            raise RpcError(500, "RANDOM_ID_DUPLICATE")
        used.add(request.random_id)
        self._state.journal.appended(RANDOM_IDS_TABLE, (sender.user_id, request.random_id))
        now = self._state.now()
        delivered = await self._delivery.send(target, sender, text, now)
        if isinstance(target, Channel):
            peer_type, peer_id = "channel", target.channel_id
        elif isinstance(target, Group):
            peer_type, peer_id = "chat", target.chat_id
        else:
            peer_type, peer_id = "user", target.user_id
        self._log.record(
            sender_id=sender.user_id,
            peer_type=peer_type,
            peer_id=peer_id,
            text=text,
            random_id=request.random_id,
            date=now,
            message_id=delivered.message_id,
        )
        if isinstance(target, Channel):
            assert delivered.post is not None
            return self._channel_answer(target, sender, delivered.post, request.random_id, now)
        return types.UpdateShortSentMessage(
            id=delivered.message_id, pts=delivered.pts, pts_count=1, date=tl_date(now), out=True
        )

    def _channel_answer(
        self, channel: Channel, sender: Account, post: ChannelPost, random_id: int, now: float
    ) -> types.Updates:
        directory = self._state.directory
        return types.Updates(
            updates=[
                types.UpdateMessageID(id=post.message_id, random_id=random_id),
                types.UpdateNewChannelMessage(
                    message=self._boxes.render_post(channel, post, sender.user_id),
                    pts=post.pts,
                    pts_count=1,
                ),
            ],
            users=[tl_user(directory, sender, sender.user_id)],
            chats=[tl_channel(directory, channel, sender.user_id)],
            date=tl_date(now),
            seq=0,
        )


def check_text(text: str) -> None:
    """A message's text as messages.sendMessage accepts it."""
    if not text.strip():
        raise RpcError(400, "MESSAGE_EMPTY")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise RpcError(400, "MESSAGE_TOO_LONG")
