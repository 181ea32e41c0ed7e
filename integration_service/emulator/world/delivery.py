"""Filing messages, edits and deletions in every box they touch, and pushing them live.

Shared by messages.sendMessage (world/messaging.py) and the operator's inbound routes
(world/inbound.py, control API ``POST /messages`` ...). Callers have already checked that
the step is allowed; here each box gets its pts step and each online account the update
Telegram would push (core.telegram.org/api/updates):

- a private message: ``updateShortMessage``; a basic group one: ``updateShortChatMessage``;
  a channel or supergroup post: ``updates`` with ``updateNewChannelMessage``;
- an edit: ``updates`` with ``updateEditMessage`` (pts +1 in every copy holder's box) or
  ``updateEditChannelMessage`` (channel pts +1);
- a deletion: ``updateShort`` with ``updateDeleteMessages`` (each holder's own ids, pts +n)
  or ``updates`` with ``updateDeleteChannelMessages`` (channel pts +n).

``notify_sender``: the step was made elsewhere than on one of the sender's connections (the
control API), so the sender's online devices get it too, as Telegram pushes a message sent
from another device. messages.sendMessage answers its caller instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telethon.tl import types

from integration_service.emulator.world.accounts import Account, Channel, Group
from integration_service.emulator.world.boxes import ChannelPost, MessageBoxes, reply_header
from integration_service.emulator.world.message_copies import MessageCopies
from integration_service.emulator.world.peers import tl_channel, tl_chat, tl_date, tl_user
from integration_service.emulator.world.state import WorldState

PushToUser = Callable[[int, Any], Awaitable[None]]
Target = Account | Group | Channel


@dataclass(frozen=True)
class Delivered:
    """Where a message, an edit or a deletion landed."""

    message_id: int  # the sender's id of the message (a channel's: the post's id)
    pts: int  # the sender's pts after it (a channel's: the channel's pts)
    date: float
    # user id -> that user's id of the message (for a deletion: their deleted ids)
    recipients: dict[int, Any] = field(default_factory=dict)
    post: ChannelPost | None = None


class Delivery:
    def __init__(
        self,
        state: WorldState,
        boxes: MessageBoxes,
        copies: MessageCopies,
        push_to_user: PushToUser,
    ) -> None:
        self._state = state
        self._boxes = boxes
        self._copies = copies
        self._push_to_user = push_to_user

    # New messages ----------------------------------------------------------------------

    async def send(
        self,
        target: Target,
        sender: Account,
        text: str,
        now: float,
        *,
        reply_to: int | None = None,
        notify_sender: bool = False,
    ) -> Delivered:
        if isinstance(target, Channel):
            return await self._post(target, sender, text, now, reply_to, notify_sender)
        if isinstance(target, Group):
            return await self._to_group(target, sender, text, now, reply_to, notify_sender)
        return await self._to_user(target, sender, text, now, reply_to, notify_sender)

    def _reply_ids(self, sender: Account, reply_to: int | None) -> dict[int, int]:
        return {} if reply_to is None else self._copies.copies_of(sender.user_id, reply_to)

    async def _to_user(
        self,
        recipient: Account,
        sender: Account,
        text: str,
        now: float,
        reply_to: int | None,
        notify_sender: bool,
    ) -> Delivered:
        directory = self._state.directory
        replies = self._reply_ids(sender, reply_to)
        sent_id = directory.next_user_message_id(sender)
        sent_pts = self._boxes.put_user_message(
            sender,
            types.Message(
                id=sent_id,
                peer_id=types.PeerUser(recipient.user_id),
                date=tl_date(now),
                message=text,
                out=True,
                reply_to=reply_header(replies.get(sender.user_id)),
            ),
        )
        copies = {sender.user_id: sent_id}
        if notify_sender:
            await self._push_to_user(
                sender.user_id,
                types.UpdateShortMessage(
                    id=sent_id,
                    user_id=recipient.user_id,
                    message=text,
                    pts=sent_pts,
                    pts_count=1,
                    date=tl_date(now),
                    out=True,
                    reply_to=reply_header(replies.get(sender.user_id)),
                ),
            )
        if recipient.user_id != sender.user_id:  # not "Saved Messages"
            got_id = directory.next_user_message_id(recipient)
            header = reply_header(replies.get(recipient.user_id))
            got_pts = self._boxes.put_user_message(
                recipient,
                types.Message(
                    id=got_id,
                    peer_id=types.PeerUser(sender.user_id),
                    date=tl_date(now),
                    message=text,
                    out=False,
                    from_id=types.PeerUser(sender.user_id),
                    reply_to=header,
                ),
            )
            copies[recipient.user_id] = got_id
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
                    reply_to=header,
                ),
            )
        self._copies.record(sender.user_id, sent_id, copies)
        return Delivered(sent_id, sent_pts, now, copies)

    async def _to_group(
        self,
        group: Group,
        sender: Account,
        text: str,
        now: float,
        reply_to: int | None,
        notify_sender: bool,
    ) -> Delivered:
        # a basic group has no shared box: each member files their own copy
        directory = self._state.directory
        replies = self._reply_ids(sender, reply_to)
        copies: dict[int, int] = {}
        sent = (0, 0)
        for member_id in sorted(group.members):
            member = directory.accounts[member_id]
            message_id = directory.next_user_message_id(member)
            is_sender = member_id == sender.user_id
            header = reply_header(replies.get(member_id))
            pts = self._boxes.put_user_message(
                member,
                types.Message(
                    id=message_id,
                    peer_id=types.PeerChat(group.chat_id),
                    date=tl_date(now),
                    message=text,
                    out=is_sender,
                    from_id=types.PeerUser(sender.user_id),
                    reply_to=header,
                ),
            )
            copies[member_id] = message_id
            if is_sender:
                sent = (message_id, pts)
            if not is_sender or notify_sender:
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
                        out=is_sender,
                        reply_to=header,
                    ),
                )
        self._copies.record(sender.user_id, sent[0], copies)
        return Delivered(sent[0], sent[1], now, copies)

    async def _post(
        self,
        channel: Channel,
        sender: Account,
        text: str,
        now: float,
        reply_to: int | None,
        notify_sender: bool,
    ) -> Delivered:
        directory = self._state.directory
        post = self._boxes.put_channel_post(channel, sender.user_id, text, now, reply_to)
        for member_id in sorted(channel.members):
            if member_id == sender.user_id and not notify_sender:
                continue
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
        recipients = {member_id: post.message_id for member_id in channel.members}
        return Delivered(post.message_id, post.pts, now, recipients, post)

    # Edits -----------------------------------------------------------------------------

    async def edit(
        self, target: Target, sender: Account, message_id: int, text: str, now: float
    ) -> Delivered:
        """New text for a message the sender wrote (checked by the caller)."""
        if isinstance(target, Channel):
            return await self._edit_post(target, message_id, text, now)
        directory = self._state.directory
        edited: dict[int, int] = {}
        sender_pts = 0
        for holder_id, their_id in sorted(
            self._copies.copies_of(sender.user_id, message_id).items()
        ):
            holder = directory.accounts.get(holder_id)
            if holder is None or self._boxes.user_message(holder_id, their_id) is None:
                continue
            update = self._boxes.edit_user_message(holder, their_id, text, now)
            edited[holder_id] = their_id
            if holder_id == sender.user_id:
                sender_pts = update.pts
            users = [tl_user(directory, sender, holder_id)]
            chats: list[types.TypeChat] = []
            if isinstance(target, Group):
                chats.append(tl_chat(target))
            elif target.user_id != sender.user_id:
                users.append(tl_user(directory, target, holder_id))
            await self._push_to_user(
                holder_id,
                types.Updates(updates=[update], users=users, chats=chats, date=tl_date(now), seq=0),
            )
        return Delivered(message_id, sender_pts, now, edited)

    async def _edit_post(
        self, channel: Channel, message_id: int, text: str, now: float
    ) -> Delivered:
        directory = self._state.directory
        pts, post = self._boxes.edit_channel_post(channel, message_id, text, now)
        author = directory.accounts.get(post.sender_id)
        for member_id in sorted(channel.members):
            await self._push_to_user(
                member_id,
                types.Updates(
                    updates=[
                        types.UpdateEditChannelMessage(
                            message=self._boxes.render_post(channel, post, member_id),
                            pts=pts,
                            pts_count=1,
                        )
                    ],
                    users=[] if author is None else [tl_user(directory, author, member_id)],
                    chats=[tl_channel(directory, channel, member_id)],
                    date=tl_date(now),
                    seq=0,
                ),
            )
        recipients = {member_id: message_id for member_id in channel.members}
        return Delivered(message_id, pts, now, recipients, post)

    # Deletions -------------------------------------------------------------------------

    async def delete(
        self, target: Target, sender: Account, message_ids: list[int], now: float
    ) -> Delivered:
        """Delete messages for everyone (checked by the caller); ids in the sender's box."""
        if isinstance(target, Channel):
            return await self._delete_posts(target, message_ids, now)
        directory = self._state.directory
        per_holder: dict[int, list[int]] = {}
        for message_id in message_ids:
            for holder_id, their_id in self._copies.copies_of(sender.user_id, message_id).items():
                if self._boxes.user_message(holder_id, their_id) is not None:
                    per_holder.setdefault(holder_id, []).append(their_id)
        sender_pts = 0
        for holder_id, their_ids in sorted(per_holder.items()):
            holder = directory.accounts[holder_id]
            update = self._boxes.delete_user_messages(holder, their_ids, now)
            if holder_id == sender.user_id:
                sender_pts = update.pts
            await self._push_to_user(holder_id, types.UpdateShort(update=update, date=tl_date(now)))
        return Delivered(message_ids[0], sender_pts, now, per_holder)

    async def _delete_posts(
        self, channel: Channel, message_ids: list[int], now: float
    ) -> Delivered:
        directory = self._state.directory
        pts = self._boxes.delete_channel_posts(channel, message_ids, now)
        for member_id in sorted(channel.members):
            await self._push_to_user(
                member_id,
                types.Updates(
                    updates=[
                        types.UpdateDeleteChannelMessages(
                            channel_id=channel.channel_id,
                            messages=list(message_ids),
                            pts=pts,
                            pts_count=len(message_ids),
                        )
                    ],
                    users=[],
                    chats=[tl_channel(directory, channel, member_id)],
                    date=tl_date(now),
                    seq=0,
                ),
            )
        recipients = {member_id: list(message_ids) for member_id in channel.members}
        return Delivered(message_ids[0], pts, now, recipients)
