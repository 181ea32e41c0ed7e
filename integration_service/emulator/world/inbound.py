"""What other Telegram users do to an account, driven by the operator (control API).

``POST /messages``, ``/messages/edit`` and ``/messages/delete`` act as an emulator user who
needs no session: the steps are checked as Telegram checks messages.sendMessage,
messages.editMessage and messages.deleteMessages / channels.deleteMessages (same RPC error
names; an RpcError here leaves nothing stored), then filed and pushed by world/delivery.py
exactly as a client's own sendMessage is. A batch of sends is checked whole before any is
filed, so a refused batch stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from telethon.tl import types

from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world.accounts import Account, Channel, Group
from integration_service.emulator.world.boxes import MessageBoxes
from integration_service.emulator.world.delivery import Delivered, Delivery, Target
from integration_service.emulator.world.messaging import check_text
from integration_service.emulator.world.state import WorldState

PEER_KINDS = ("user", "chat", "channel")


@dataclass(frozen=True)
class PeerRef:
    kind: str  # "user" | "chat" | "channel"
    peer_id: int


@dataclass(frozen=True)
class InboundMessage:
    sender_id: int
    peer: PeerRef
    text: str
    reply_to: int | None = None


class RefusedMessage(RpcError):
    """Message ``index`` of a batch was refused as Telegram would refuse it."""

    def __init__(self, index: int, error: RpcError) -> None:
        super().__init__(error.code, error.message)
        self.index = index


@dataclass(frozen=True)
class _CheckedSend:
    sender: Account
    target: Target
    text: str
    reply_to: int | None


class Inbound:
    def __init__(self, state: WorldState, boxes: MessageBoxes, delivery: Delivery) -> None:
        self._state = state
        self._boxes = boxes
        self._delivery = delivery

    # Sends -----------------------------------------------------------------------------

    async def send(self, messages: list[InboundMessage]) -> list[Delivered]:
        """Check every message, then file and push them in order (RefusedMessage: none
        was filed)."""
        checked = []
        for index, message in enumerate(messages):
            try:
                checked.append(self._check_send(message))
            except RpcError as error:
                raise RefusedMessage(index, error) from None
        now = self._state.now()
        return [
            await self._delivery.send(
                c.target, c.sender, c.text, now, reply_to=c.reply_to, notify_sender=True
            )
            for c in checked
        ]

    def _check_send(self, message: InboundMessage) -> _CheckedSend:
        sender = self._sender(message.sender_id)
        target = self._target(sender, message.peer)
        if isinstance(target, Channel) and not target.can_post(sender.user_id):
            raise RpcError(400, "CHAT_ADMIN_REQUIRED")  # as messages.sendMessage
        check_text(message.text)
        if message.reply_to is not None and not self._exists_in(sender, target, message.reply_to):
            raise RpcError(400, "REPLY_MESSAGE_ID_INVALID")
        return _CheckedSend(sender, target, message.text, message.reply_to)

    # Edits -----------------------------------------------------------------------------

    async def edit(self, sender_id: int, peer: PeerRef, message_id: int, text: str) -> Delivered:
        sender = self._sender(sender_id)
        target = self._target(sender, peer)
        check_text(text)
        if not self._exists_in(sender, target, message_id):
            raise RpcError(400, "MESSAGE_ID_INVALID")
        if not self._is_author(sender, target, message_id):
            raise RpcError(403, "MESSAGE_AUTHOR_REQUIRED")
        if self._text_of(sender, target, message_id) == text:
            raise RpcError(400, "MESSAGE_NOT_MODIFIED")
        return await self._delivery.edit(target, sender, message_id, text, self._state.now())

    # Deletions -------------------------------------------------------------------------

    async def delete(self, sender_id: int, peer: PeerRef, message_ids: list[int]) -> Delivered:
        sender = self._sender(sender_id)
        target = self._target(sender, peer)
        wanted = list(dict.fromkeys(message_ids))  # once each, in the order given
        if not wanted:
            raise RpcError(400, "MESSAGE_IDS_EMPTY")
        # channels.deleteMessages names a bad id MSG_ID_INVALID, messages.deleteMessages
        # MESSAGE_ID_INVALID
        invalid = "MSG_ID_INVALID" if isinstance(target, Channel) else "MESSAGE_ID_INVALID"
        for message_id in wanted:
            if not self._exists_in(sender, target, message_id):
                raise RpcError(400, invalid)
            if not self._may_delete(sender, target, message_id):
                raise RpcError(403, "MESSAGE_DELETE_FORBIDDEN")
        return await self._delivery.delete(target, sender, wanted, self._state.now())

    # Checks ----------------------------------------------------------------------------

    def _sender(self, sender_id: int) -> Account:
        sender = self._state.directory.require_account(sender_id)  # KeyError: unknown
        if sender.banned:
            raise RpcError(401, "USER_DEACTIVATED_BAN")
        return sender

    def _target(self, sender: Account, peer: PeerRef) -> Target:
        """The peer as messages.sendMessage resolves it for this sender."""
        directory = self._state.directory
        if peer.kind == "user":
            user = directory.accounts.get(peer.peer_id)
            if user is None:
                raise RpcError(400, "PEER_ID_INVALID")
            if user.banned:
                raise RpcError(400, "INPUT_USER_DEACTIVATED")
            if sender.is_bot and user.is_bot:
                raise RpcError(400, "USER_IS_BOT")
            return user
        if peer.kind == "chat":
            group = directory.groups.get(peer.peer_id)
            if group is None:
                raise RpcError(400, "PEER_ID_INVALID")
            if sender.user_id not in group.members:
                raise RpcError(403, "CHAT_WRITE_FORBIDDEN")
            return group
        if peer.kind == "channel":
            channel = directory.channels.get(peer.peer_id)
            if channel is None:
                raise RpcError(400, "CHANNEL_INVALID")
            if sender.user_id not in channel.members:
                raise RpcError(
                    400, "CHANNEL_PRIVATE" if channel.username is None else "CHAT_WRITE_FORBIDDEN"
                )
            return channel
        raise ValueError(f"peer type must be one of {', '.join(PEER_KINDS)}")

    def _exists_in(self, sender: Account, target: Target, message_id: int) -> bool:
        """Whether the sender's box holds this message in the chat with ``target``."""
        if isinstance(target, Channel):
            return self._boxes.channel_post(target.channel_id, message_id) is not None
        message = self._boxes.user_message(sender.user_id, message_id)
        if message is None:
            return False
        if isinstance(target, Group):
            return bool(message.peer_id == types.PeerChat(target.chat_id))
        return bool(message.peer_id == types.PeerUser(target.user_id))

    def _is_author(self, sender: Account, target: Target, message_id: int) -> bool:
        if isinstance(target, Channel):
            post = self._boxes.channel_post(target.channel_id, message_id)
            return post is not None and post.sender_id == sender.user_id
        message = self._boxes.user_message(sender.user_id, message_id)
        return message is not None and bool(message.out)

    def _may_delete(self, sender: Account, target: Target, message_id: int) -> bool:
        if isinstance(target, Channel) and target.can_delete_any(sender.user_id):
            return True  # admins with delete_messages may delete any post
        return self._is_author(sender, target, message_id)

    def _text_of(self, sender: Account, target: Target, message_id: int) -> str | None:
        if isinstance(target, Channel):
            post = self._boxes.channel_post(target.channel_id, message_id)
            return None if post is None else post.text
        message = self._boxes.user_message(sender.user_id, message_id)
        return None if message is None else message.message
