"""users.getUsers, contacts.resolveUsername and messages.sendMessage.

sendMessage answers as Telegram does: ``updateShortSentMessage`` for private chats and
basic groups, and ``updates`` with ``updateMessageID(random_id)`` +
``updateNewChannelMessage`` for channels (Telethon matches the reply by random_id).
A random_id may be used once per sender; a repeat gets 500 RANDOM_ID_DUPLICATE (the
code Telegram uses) and delivers nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.accounts import Account, Channel, Group, is_valid_username
from integration_service.emulator.world.boxes import MessageBoxes
from integration_service.emulator.world.delivery_log import DeliveryLog
from integration_service.emulator.world.peers import tl_channel, tl_date, tl_user
from integration_service.emulator.world.state import WorldState

MAX_MESSAGE_LENGTH = 4096
RANDOM_IDS_TABLE = "random_ids"

PushToUser = Callable[[int, Any], Awaitable[None]]


class Messaging:
    def __init__(
        self, state: WorldState, boxes: MessageBoxes, log: DeliveryLog, push_to_user: PushToUser
    ) -> None:
        self._state = state
        self._boxes = boxes
        self._log = log
        self._push_to_user = push_to_user
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
            if not channel.can_post(sender.user_id):
                raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
            return channel
        raise RpcError(400, "PEER_ID_INVALID")

    async def send_message(
        self, request: functions.messages.SendMessageRequest, ctx: CallContext, sender: Account
    ) -> types.UpdateShortSentMessage | types.Updates:
        target = self._resolve_peer(request.peer, sender)
        text = request.message or ""
        if not text.strip():
            raise RpcError(400, "MESSAGE_EMPTY")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise RpcError(400, "MESSAGE_TOO_LONG")
        used = self._used_random_ids.setdefault(sender.user_id, set())
        if request.random_id in used:
            # Telegram files this under 500, so clients (Telethon) retry it as a server error
            raise RpcError(500, "RANDOM_ID_DUPLICATE")
        used.add(request.random_id)
        self._state.journal.appended(RANDOM_IDS_TABLE, (sender.user_id, request.random_id))
        now = self._state.now()
        if isinstance(target, Channel):
            return await self._post_to_channel(target, sender, text, request.random_id, now)
        if isinstance(target, Group):
            message_id, pts = await self._deliver_to_group(target, sender, text, now)
            peer_type, peer_id = "chat", target.chat_id
        else:
            message_id, pts = await self._deliver_to_user(target, sender, text, now)
            peer_type, peer_id = "user", target.user_id
        self._log.record(
            sender_id=sender.user_id,
            peer_type=peer_type,
            peer_id=peer_id,
            text=text,
            random_id=request.random_id,
            date=now,
            message_id=message_id,
        )
        return types.UpdateShortSentMessage(
            id=message_id, pts=pts, pts_count=1, date=tl_date(now), out=True
        )

    async def _deliver_to_user(
        self, recipient: Account, sender: Account, text: str, now: float
    ) -> tuple[int, int]:
        directory = self._state.directory
        sent_id = directory.next_user_message_id(sender)
        sent_pts = self._boxes.put_user_message(
            sender,
            types.Message(
                id=sent_id,
                peer_id=types.PeerUser(recipient.user_id),
                date=tl_date(now),
                message=text,
                out=True,
            ),
        )
        if recipient.user_id != sender.user_id:  # not "Saved Messages"
            got_id = directory.next_user_message_id(recipient)
            got_pts = self._boxes.put_user_message(
                recipient,
                types.Message(
                    id=got_id,
                    peer_id=types.PeerUser(sender.user_id),
                    date=tl_date(now),
                    message=text,
                    out=False,
                    from_id=types.PeerUser(sender.user_id),
                ),
            )
            await self._push_to_user(
                recipient.user_id,
                types.UpdateShortMessage(
                    id=got_id,
                    user_id=sender.user_id,
                    message=text,
                    pts=got_pts,
                    pts_count=1,
                    date=tl_date(now),
                    out=False,
                ),
            )
        return sent_id, sent_pts

    async def _deliver_to_group(
        self, group: Group, sender: Account, text: str, now: float
    ) -> tuple[int, int]:
        # a basic group has no shared box: each member files their own copy
        directory = self._state.directory
        sent: tuple[int, int] = (0, 0)
        for member_id in sorted(group.members):
            member = directory.accounts[member_id]
            message_id = directory.next_user_message_id(member)
            is_sender = member_id == sender.user_id
            pts = self._boxes.put_user_message(
                member,
                types.Message(
                    id=message_id,
                    peer_id=types.PeerChat(group.chat_id),
                    date=tl_date(now),
                    message=text,
                    out=is_sender,
                    from_id=types.PeerUser(sender.user_id),
                ),
            )
            if is_sender:
                sent = (message_id, pts)
            else:
                await self._push_to_user(
                    member_id,
                    types.UpdateShortChatMessage(
                        id=message_id,
                        from_id=sender.user_id,
                        chat_id=group.chat_id,
                        message=text,
                        pts=pts,
                        pts_count=1,
                        date=tl_date(now),
                        out=False,
                    ),
                )
        return sent

    async def _post_to_channel(
        self, channel: Channel, sender: Account, text: str, random_id: int, now: float
    ) -> types.Updates:
        directory = self._state.directory
        post = self._boxes.put_channel_post(channel, sender.user_id, text, now)
        self._log.record(
            sender_id=sender.user_id,
            peer_type="channel",
            peer_id=channel.channel_id,
            text=text,
            random_id=random_id,
            date=now,
            message_id=post.message_id,
        )
        for member_id in sorted(channel.members - {sender.user_id}):
            await self._push_to_user(
                member_id,
                types.Updates(
                    updates=[
                        types.UpdateNewChannelMessage(
                            message=self._boxes.render_post(channel, post, member_id),
                            pts=post.pts,
                            pts_count=1,
                        )
                    ],
                    users=[tl_user(directory, sender, member_id)],
                    chats=[tl_channel(directory, channel, member_id)],
                    date=tl_date(now),
                    seq=0,
                ),
            )
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
