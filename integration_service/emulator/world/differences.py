"""updates.getState, updates.getDifference and updates.getChannelDifference.

What a returning client gets, following core.telegram.org/api/updates and the method pages
(core.telegram.org/method/updates.getDifference, .../updates.getChannelDifference):

- the steps of its box after the pts it gives, in pts order: new messages (as they read
  now, so an edited one shows its latest text; a deleted one is gone) in ``new_messages``,
  edits and deletions as the ``updateEditMessage`` / ``updateDeleteMessages`` (channels:
  ``updateEditChannelMessage`` / ``updateDeleteChannelMessages``) they were, with their pts,
  in ``other_updates``; the users and chats they mention; the box's state after them;
- a long difference in pieces: ``updates.differenceSlice`` with ``intermediate_state``
  (at most ``difference_slice`` steps, or ``pts_limit`` if smaller); a channel's at most
  ``limit`` steps (1..100000) with ``final`` unset while more remain;
- ``updates.differenceTooLong(pts)`` when the box is more than ``difference_limit`` ahead
  (or ``pts_total_limit`` is given and ``pts + pts_total_limit < remote pts``), and
  ``updates.channelDifferenceTooLong`` (dialog with the channel's pts, its latest messages
  up to ``limit``) for a channel: the client resumes at that pts, the steps in between are
  not replayed;
- a pts the box never reached: 400 PERSISTENT_TIMESTAMP_INVALID. ``qts`` is always 0 here
  (no secret chats, no bot qts updates), and ``date`` does not select anything: pts does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.accounts import Account, Channel
from integration_service.emulator.world.boxes import ChannelEntry, MessageBoxes, UserEntry
from integration_service.emulator.world.peers import (
    readable_channel,
    tl_channel,
    tl_chat,
    tl_date,
    tl_user,
)
from integration_service.emulator.world.settings import UpdateSettings
from integration_service.emulator.world.state import WorldState

# how long a client should wait before asking for a channel's difference again
CHANNEL_DIFFERENCE_TIMEOUT = 30
MAX_CHANNEL_DIFFERENCE_LIMIT = 100_000

UserDifference: TypeAlias = (
    types.updates.Difference
    | types.updates.DifferenceEmpty
    | types.updates.DifferenceSlice
    | types.updates.DifferenceTooLong
)
ChannelDifference: TypeAlias = (
    types.updates.ChannelDifference
    | types.updates.ChannelDifferenceEmpty
    | types.updates.ChannelDifferenceTooLong
)


class Differences:
    def __init__(self, state: WorldState, boxes: MessageBoxes, settings: UpdateSettings) -> None:
        self._state = state
        self._boxes = boxes
        self._settings = settings

    def current_state(self, account: Account) -> types.updates.State:
        return types.updates.State(
            pts=account.pts, qts=0, date=tl_date(self._state.now()), seq=0, unread_count=0
        )

    async def get_state(
        self, request: functions.updates.GetStateRequest, ctx: CallContext, account: Account
    ) -> types.updates.State:
        return self.current_state(account)

    async def get_difference(
        self, request: functions.updates.GetDifferenceRequest, ctx: CallContext, account: Account
    ) -> UserDifference:
        if request.pts < 0 or request.pts > account.pts:
            raise RpcError(400, "PERSISTENT_TIMESTAMP_INVALID")
        if request.pts == account.pts:
            return types.updates.DifferenceEmpty(date=tl_date(self._state.now()), seq=0)
        total_limit = request.pts_total_limit
        if account.pts - request.pts > self._settings.difference_limit or (
            total_limit is not None and request.pts + total_limit < account.pts
        ):
            return types.updates.DifferenceTooLong(pts=account.pts)
        size = self._settings.difference_slice
        if request.pts_limit is not None and request.pts_limit > 0:
            size = min(size, request.pts_limit)
        missed = self._boxes.user_box(account.user_id).entries_after(request.pts)
        piece = missed[:size]
        new_messages, other_updates = self._user_steps(account, piece)
        users, chats = self._user_entities(account, [*new_messages, *_edited(other_updates)])
        if len(missed) > size:
            last = piece[-1]
            return types.updates.DifferenceSlice(
                new_messages=new_messages,
                new_encrypted_messages=[],
                other_updates=other_updates,
                chats=chats,
                users=users,
                intermediate_state=types.updates.State(
                    pts=last.pts, qts=0, date=tl_date(last.date), seq=0, unread_count=0
                ),
            )
        return types.updates.Difference(
            new_messages=new_messages,
            new_encrypted_messages=[],
            other_updates=other_updates,
            chats=chats,
            users=users,
            state=self.current_state(account),
        )

    def _user_steps(
        self, account: Account, steps: list[UserEntry]
    ) -> tuple[list[types.Message], list[types.TypeUpdate]]:
        box = self._boxes.user_box(account.user_id)
        new_messages: list[types.Message] = []
        other_updates: list[types.TypeUpdate] = []
        for step in steps:
            if step.new_message_id is not None:
                current = box.messages.get(step.new_message_id)
                if current is not None:  # deleted since: Telegram no longer has it
                    new_messages.append(current[1])
            elif isinstance(step.update, types.UpdateEditMessage):
                if step.update.message.id in box.messages:
                    other_updates.append(step.update)
            elif step.update is not None:
                other_updates.append(step.update)
        return new_messages, other_updates

    def _user_entities(
        self, account: Account, messages: Iterable[types.TypeMessage]
    ) -> tuple[list[types.User], list[types.TypeChat]]:
        directory = self._state.directory
        user_ids = {account.user_id}
        chat_ids: set[int] = set()
        for message in messages:
            peer = getattr(message, "peer_id", None)
            if isinstance(peer, types.PeerUser):
                user_ids.add(peer.user_id)
            elif isinstance(peer, types.PeerChat):
                chat_ids.add(peer.chat_id)
            sender = getattr(message, "from_id", None)
            if isinstance(sender, types.PeerUser):
                user_ids.add(sender.user_id)
        users = [
            tl_user(directory, directory.accounts[user_id], account.user_id)
            for user_id in sorted(user_ids)
            if user_id in directory.accounts
        ]
        chats: list[types.TypeChat] = [
            tl_chat(directory.groups[chat_id])
            for chat_id in sorted(chat_ids)
            if chat_id in directory.groups
        ]
        return users, chats

    async def get_channel_difference(
        self,
        request: functions.updates.GetChannelDifferenceRequest,
        ctx: CallContext,
        account: Account,
    ) -> ChannelDifference:
        channel = readable_channel(self._state.directory, request.channel, account)
        if request.pts < 0 or request.pts > channel.pts:
            raise RpcError(400, "PERSISTENT_TIMESTAMP_INVALID")
        limit = max(1, min(request.limit, MAX_CHANNEL_DIFFERENCE_LIMIT))
        if request.pts == channel.pts:
            return types.updates.ChannelDifferenceEmpty(
                pts=channel.pts, final=True, timeout=CHANNEL_DIFFERENCE_TIMEOUT
            )
        if channel.pts - request.pts > self._settings.difference_limit:
            return self._channel_too_long(channel, account, limit)
        missed = self._boxes.channel_box(channel.channel_id).entries_after(request.pts)
        piece = missed[:limit]
        final = len(missed) <= limit
        new_messages, other_updates, senders = self._channel_steps(channel, account, piece)
        return types.updates.ChannelDifference(
            pts=channel.pts if final else piece[-1].pts,
            new_messages=new_messages,
            other_updates=other_updates,
            chats=[tl_channel(self._state.directory, channel, account.user_id)],
            users=self._users(senders, account),
            final=final or None,
            timeout=CHANNEL_DIFFERENCE_TIMEOUT,
        )

    def _channel_steps(
        self, channel: Channel, account: Account, steps: list[ChannelEntry]
    ) -> tuple[list[types.TypeMessage], list[types.TypeUpdate], set[int]]:
        box = self._boxes.channel_box(channel.channel_id)
        new_messages: list[types.TypeMessage] = []
        other_updates: list[types.TypeUpdate] = []
        senders: set[int] = set()
        for step in steps:
            if step.new_message_id is not None:
                post = box.posts.get(step.new_message_id)
                if post is not None:
                    new_messages.append(self._boxes.render_post(channel, post, account.user_id))
                    senders.add(post.sender_id)
            elif step.edited is not None:
                if step.edited.message_id in box.posts:
                    other_updates.append(
                        types.UpdateEditChannelMessage(
                            message=self._boxes.render_post(channel, step.edited, account.user_id),
                            pts=step.pts,
                            pts_count=1,
                        )
                    )
                    senders.add(step.edited.sender_id)
            else:
                other_updates.append(
                    types.UpdateDeleteChannelMessages(
                        channel_id=channel.channel_id,
                        messages=list(step.deleted),
                        pts=step.pts,
                        pts_count=step.pts_count,
                    )
                )
        return new_messages, other_updates, senders

    def _channel_too_long(
        self, channel: Channel, account: Account, limit: int
    ) -> types.updates.ChannelDifferenceTooLong:
        box = self._boxes.channel_box(channel.channel_id)
        latest = sorted(box.posts.values(), key=lambda p: p.message_id, reverse=True)[:limit]
        return types.updates.ChannelDifferenceTooLong(
            dialog=types.Dialog(
                peer=types.PeerChannel(channel.channel_id),
                top_message=latest[0].message_id if latest else 0,
                read_inbox_max_id=0,
                read_outbox_max_id=0,
                unread_count=0,
                unread_mentions_count=0,
                unread_reactions_count=0,
                unread_poll_votes_count=0,
                notify_settings=types.PeerNotifySettings(),
                pts=channel.pts,
            ),
            messages=[self._boxes.render_post(channel, p, account.user_id) for p in latest],
            chats=[tl_channel(self._state.directory, channel, account.user_id)],
            users=self._users({p.sender_id for p in latest}, account),
            final=True,
            timeout=CHANNEL_DIFFERENCE_TIMEOUT,
        )

    def _users(self, user_ids: set[int], account: Account) -> list[types.User]:
        directory = self._state.directory
        return [
            tl_user(directory, directory.accounts[user_id], account.user_id)
            for user_id in sorted(user_ids)
            if user_id in directory.accounts
        ]


def _edited(updates: list[types.TypeUpdate]) -> list[types.TypeMessage]:
    return [u.message for u in updates if isinstance(u, types.UpdateEditMessage)]
