"""Message boxes: each account's pts sequence and each channel's, with what every step did.

Telegram numbers the events of a message box by pts: a new message takes one, an edit one,
a deletion of n messages n (core.telegram.org/api/updates, "pts_count"). A box here keeps
every step (``UserEntry`` / ``ChannelEntry``, pts = the box's pts after the step) and the
messages as they are now, so getDifference (world/differences.py) can replay the steps a
client missed: new messages as they read now, edits and deletions as the updates they were.
Telethon tracks pts strictly (a jump means a gap and an updates.getDifference), so every
step bumps the box's pts by exactly its pts_count.
"""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from telethon.tl import types

from integration_service.emulator.world.accounts import CHANNELS_TABLE, Account, Channel
from integration_service.emulator.world.peers import tl_date
from integration_service.emulator.world.state import WorldState

USER_MESSAGES_TABLE = "user_messages"
USER_MESSAGES_DELETED = "user_messages_deleted"
USER_UPDATES_TABLE = "user_updates"
CHANNEL_POSTS_TABLE = "channel_posts"
CHANNEL_POSTS_DELETED = "channel_posts_deleted"
CHANNEL_UPDATES_TABLE = "channel_updates"

UserUpdate: TypeAlias = types.UpdateEditMessage | types.UpdateDeleteMessages


@dataclass(frozen=True)
class ChannelPost:
    pts: int  # the channel's pts when it was posted (its key in storage)
    message_id: int
    sender_id: int
    text: str
    date: float
    reply_to: int | None = None
    edit_date: float | None = None


@dataclass(frozen=True)
class UserEntry:
    """One step of an account's box: a new message (by id) or an edit/deletion update."""

    pts: int
    pts_count: int
    date: float
    new_message_id: int | None = None
    update: UserUpdate | None = None


@dataclass(frozen=True)
class ChannelEntry:
    """One step of a channel's box: a new post, an edit (the post as it left it) or a
    deletion of some posts."""

    pts: int
    pts_count: int
    date: float
    new_message_id: int | None = None
    edited: ChannelPost | None = None
    deleted: tuple[int, ...] = ()


def _entry_pts(entry: UserEntry | ChannelEntry) -> int:
    return entry.pts


@dataclass
class UserBox:
    entries: list[UserEntry] = field(default_factory=list)
    # message id -> (pts it arrived with, the message as it reads now); deleted ones go
    messages: dict[int, tuple[int, types.Message]] = field(default_factory=dict)

    def entries_after(self, pts: int) -> list[UserEntry]:
        return self.entries[bisect.bisect_right(self.entries, pts, key=_entry_pts) :]


@dataclass
class ChannelBox:
    entries: list[ChannelEntry] = field(default_factory=list)
    posts: dict[int, ChannelPost] = field(default_factory=dict)  # by message id, as now

    def entries_after(self, pts: int) -> list[ChannelEntry]:
        return self.entries[bisect.bisect_right(self.entries, pts, key=_entry_pts) :]


class MessageBoxes:
    def __init__(self, state: WorldState) -> None:
        self._state = state
        self._user_boxes: dict[int, UserBox] = {}
        self._channel_boxes: dict[int, ChannelBox] = {}

    def reset(self) -> None:
        self._user_boxes.clear()
        self._channel_boxes.clear()

    def user_box(self, user_id: int) -> UserBox:
        return self._user_boxes.setdefault(user_id, UserBox())

    def channel_box(self, channel_id: int) -> ChannelBox:
        return self._channel_boxes.setdefault(channel_id, ChannelBox())

    # Loading ---------------------------------------------------------------------------

    def restore(
        self,
        user_messages: list[tuple[int, int, types.Message | types.MessageEmpty]],
        channel_posts: list[tuple[int, ChannelPost, bool]],
        user_updates: list[tuple[int, UserEntry]] | None = None,
        channel_updates: list[tuple[int, ChannelEntry]] | None = None,
    ) -> None:
        """Load saved boxes: messages as they read now under the pts they arrived with (a
        deleted one as ``messageEmpty``: its arrival step stays, its content is gone), posts
        likewise (``None`` for a deleted one), and the edit/deletion steps."""
        self.reset()
        for user_id, pts, message in user_messages:
            box = self.user_box(user_id)
            if isinstance(message, types.Message):
                box.messages[message.id] = (pts, message)
            box.entries.append(UserEntry(pts, 1, _timestamp(message), new_message_id=message.id))
        for user_id, entry in user_updates or ():
            self.user_box(user_id).entries.append(entry)
        for channel_id, post, deleted in channel_posts:
            channel_box = self.channel_box(channel_id)
            if not deleted:
                channel_box.posts[post.message_id] = post
            channel_box.entries.append(
                ChannelEntry(post.pts, 1, post.date, new_message_id=post.message_id)
            )
        for channel_id, channel_entry in channel_updates or ():
            self.channel_box(channel_id).entries.append(channel_entry)
        for box in self._user_boxes.values():
            box.entries.sort(key=_entry_pts)
        for channel_box in self._channel_boxes.values():
            channel_box.entries.sort(key=_entry_pts)

    # Accounts' boxes -------------------------------------------------------------------

    def put_user_message(self, account: Account, message: types.Message) -> int:
        """File a message (already rendered for this account) and return the new pts."""
        account.pts += 1
        box = self.user_box(account.user_id)
        box.messages[message.id] = (account.pts, message)
        box.entries.append(
            UserEntry(account.pts, 1, _timestamp(message), new_message_id=message.id)
        )
        self._state.account_changed(account)
        self._state.journal.appended(USER_MESSAGES_TABLE, (account.user_id, account.pts, message))
        return account.pts

    def user_message(self, user_id: int, message_id: int) -> types.Message | None:
        found = self.user_box(user_id).messages.get(message_id)
        return None if found is None else found[1]

    def edit_user_message(
        self, account: Account, message_id: int, text: str, now: float
    ) -> types.UpdateEditMessage:
        """Give a message new text (it must exist); one pts step, the update to push."""
        box = self.user_box(account.user_id)
        arrived_pts, old = box.messages[message_id]
        edited = copy.copy(old)
        edited.message, edited.edit_date = text, tl_date(now)
        box.messages[message_id] = (arrived_pts, edited)
        account.pts += 1
        update = types.UpdateEditMessage(message=edited, pts=account.pts, pts_count=1)
        entry = UserEntry(account.pts, 1, now, update=update)
        box.entries.append(entry)
        self._state.account_changed(account)
        journal = self._state.journal
        journal.appended(USER_MESSAGES_TABLE, (account.user_id, arrived_pts, edited))
        journal.appended(USER_UPDATES_TABLE, (account.user_id, entry))
        return update

    def delete_user_messages(
        self, account: Account, message_ids: list[int], now: float
    ) -> types.UpdateDeleteMessages:
        """Delete messages (they must exist): one pts step per message, the update to push."""
        box = self.user_box(account.user_id)
        journal = self._state.journal
        for message_id in message_ids:
            arrived_pts, _ = box.messages.pop(message_id)
            journal.appended(USER_MESSAGES_DELETED, (account.user_id, arrived_pts, message_id))
        account.pts += len(message_ids)
        update = types.UpdateDeleteMessages(
            messages=list(message_ids), pts=account.pts, pts_count=len(message_ids)
        )
        entry = UserEntry(account.pts, len(message_ids), now, update=update)
        box.entries.append(entry)
        self._state.account_changed(account)
        journal.appended(USER_UPDATES_TABLE, (account.user_id, entry))
        return update

    # Channels' boxes -------------------------------------------------------------------

    def put_channel_post(
        self, channel: Channel, sender_id: int, text: str, date: float, reply_to: int | None = None
    ) -> ChannelPost:
        channel.pts += 1
        channel.last_message_id += 1
        post = ChannelPost(channel.pts, channel.last_message_id, sender_id, text, date, reply_to)
        box = self.channel_box(channel.channel_id)
        box.posts[post.message_id] = post
        box.entries.append(ChannelEntry(post.pts, 1, date, new_message_id=post.message_id))
        self._state.journal.changed(CHANNELS_TABLE, channel.channel_id)
        self._state.journal.appended(CHANNEL_POSTS_TABLE, (channel.channel_id, post))
        return post

    def channel_post(self, channel_id: int, message_id: int) -> ChannelPost | None:
        return self.channel_box(channel_id).posts.get(message_id)

    def edit_channel_post(
        self, channel: Channel, message_id: int, text: str, now: float
    ) -> tuple[int, ChannelPost]:
        """New text for a post (it must exist); returns the channel's new pts and the post."""
        box = self.channel_box(channel.channel_id)
        edited = replace(box.posts[message_id], text=text, edit_date=now)
        box.posts[message_id] = edited
        channel.pts += 1
        entry = ChannelEntry(channel.pts, 1, now, edited=edited)
        box.entries.append(entry)
        journal = self._state.journal
        journal.changed(CHANNELS_TABLE, channel.channel_id)
        journal.appended(CHANNEL_POSTS_TABLE, (channel.channel_id, edited))
        journal.appended(CHANNEL_UPDATES_TABLE, (channel.channel_id, entry))
        return channel.pts, edited

    def delete_channel_posts(self, channel: Channel, message_ids: list[int], now: float) -> int:
        """Delete posts (they must exist); returns the channel's new pts."""
        box = self.channel_box(channel.channel_id)
        journal = self._state.journal
        for message_id in message_ids:
            post = box.posts.pop(message_id)
            journal.appended(CHANNEL_POSTS_DELETED, (channel.channel_id, post.pts))
        channel.pts += len(message_ids)
        entry = ChannelEntry(channel.pts, len(message_ids), now, deleted=tuple(message_ids))
        box.entries.append(entry)
        journal.changed(CHANNELS_TABLE, channel.channel_id)
        journal.appended(CHANNEL_UPDATES_TABLE, (channel.channel_id, entry))
        return channel.pts

    def render_post(self, channel: Channel, post: ChannelPost, viewer_id: int) -> types.Message:
        return types.Message(
            id=post.message_id,
            peer_id=types.PeerChannel(channel.channel_id),
            date=tl_date(post.date),
            message=post.text,
            out=post.sender_id == viewer_id,
            post=channel.broadcast or None,
            from_id=None if channel.broadcast else types.PeerUser(post.sender_id),
            reply_to=reply_header(post.reply_to),
            edit_date=None if post.edit_date is None else tl_date(post.edit_date),
        )


def reply_header(reply_to: int | None) -> types.MessageReplyHeader | None:
    return None if reply_to is None else types.MessageReplyHeader(reply_to_msg_id=reply_to)


def _timestamp(message: types.Message | types.MessageEmpty) -> float:
    date = getattr(message, "date", None)
    return date.timestamp() if date is not None else 0.0
