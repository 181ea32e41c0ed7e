"""Message boxes: each account's pts-ordered messages and each channel's posts.

Telethon tracks pts strictly (a jump means a gap and an updates.getDifference), so
every message that lands in an account's box bumps that account's pts by exactly one,
and getDifference replays what the client missed.
"""

from __future__ import annotations

from dataclasses import dataclass

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.accounts import CHANNELS_TABLE, Account, Channel
from integration_service.emulator.world.peers import tl_channel, tl_chat, tl_date, tl_user
from integration_service.emulator.world.state import WorldState

# how long a client should wait before asking for a channel's difference again
CHANNEL_DIFFERENCE_TIMEOUT = 30
USER_MESSAGES_TABLE = "user_messages"
CHANNEL_POSTS_TABLE = "channel_posts"


@dataclass(frozen=True)
class ChannelPost:
    pts: int
    message_id: int
    sender_id: int
    text: str
    date: float


class MessageBoxes:
    def __init__(self, state: WorldState) -> None:
        self._state = state
        self._user_boxes: dict[int, list[tuple[int, types.Message]]] = {}
        self._channel_posts: dict[int, list[ChannelPost]] = {}

    def reset(self) -> None:
        self._user_boxes.clear()
        self._channel_posts.clear()

    def restore(
        self,
        user_messages: list[tuple[int, int, types.Message]],
        channel_posts: list[tuple[int, ChannelPost]],
    ) -> None:
        """Load saved boxes: (user id, pts, message) and (channel id, post), in pts order."""
        self.reset()
        for user_id, pts, message in user_messages:
            self._user_boxes.setdefault(user_id, []).append((pts, message))
        for channel_id, post in channel_posts:
            self._channel_posts.setdefault(channel_id, []).append(post)

    def put_user_message(self, account: Account, message: types.Message) -> int:
        """File a message (already rendered for this account) and return the new pts."""
        account.pts += 1
        self._user_boxes.setdefault(account.user_id, []).append((account.pts, message))
        self._state.account_changed(account)
        self._state.journal.appended(USER_MESSAGES_TABLE, (account.user_id, account.pts, message))
        return account.pts

    def put_channel_post(
        self, channel: Channel, sender_id: int, text: str, date: float
    ) -> ChannelPost:
        channel.pts += 1
        channel.last_message_id += 1
        post = ChannelPost(channel.pts, channel.last_message_id, sender_id, text, date)
        self._channel_posts.setdefault(channel.channel_id, []).append(post)
        self._state.journal.changed(CHANNELS_TABLE, channel.channel_id)
        self._state.journal.appended(CHANNEL_POSTS_TABLE, (channel.channel_id, post))
        return post

    def render_post(self, channel: Channel, post: ChannelPost, viewer_id: int) -> types.Message:
        return types.Message(
            id=post.message_id,
            peer_id=types.PeerChannel(channel.channel_id),
            date=tl_date(post.date),
            message=post.text,
            out=post.sender_id == viewer_id,
            post=channel.broadcast or None,
            from_id=None if channel.broadcast else types.PeerUser(post.sender_id),
        )

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
    ) -> types.updates.Difference | types.updates.DifferenceEmpty:
        missed = [
            message
            for pts, message in self._user_boxes.get(account.user_id, [])
            if pts > request.pts
        ]
        if not missed:
            return types.updates.DifferenceEmpty(date=tl_date(self._state.now()), seq=0)
        directory = self._state.directory
        user_ids = {account.user_id}
        chat_ids: set[int] = set()
        for message in missed:
            if isinstance(message.peer_id, types.PeerUser):
                user_ids.add(message.peer_id.user_id)
            elif isinstance(message.peer_id, types.PeerChat):
                chat_ids.add(message.peer_id.chat_id)
            if isinstance(message.from_id, types.PeerUser):
                user_ids.add(message.from_id.user_id)
        return types.updates.Difference(
            new_messages=missed,
            new_encrypted_messages=[],
            other_updates=[],
            chats=[tl_chat(directory.groups[chat_id]) for chat_id in sorted(chat_ids)],
            users=[
                tl_user(directory, directory.accounts[user_id], account.user_id)
                for user_id in sorted(user_ids)
            ],
            state=self.current_state(account),
        )

    async def get_channel_difference(
        self,
        request: functions.updates.GetChannelDifferenceRequest,
        ctx: CallContext,
        account: Account,
    ) -> types.updates.ChannelDifference | types.updates.ChannelDifferenceEmpty:
        directory = self._state.directory
        wanted = request.channel
        if not isinstance(wanted, types.InputChannel):
            raise RpcError(400, "CHANNEL_INVALID")
        channel = directory.channels.get(wanted.channel_id)
        if channel is None or wanted.access_hash != directory.access_hash(
            account.user_id, "channel", channel.channel_id
        ):
            raise RpcError(400, "CHANNEL_INVALID")
        if account.user_id not in channel.members and channel.username is None:
            raise RpcError(400, "CHANNEL_PRIVATE")
        posts = [p for p in self._channel_posts.get(channel.channel_id, []) if p.pts > request.pts]
        if not posts:
            return types.updates.ChannelDifferenceEmpty(
                pts=channel.pts, final=True, timeout=CHANNEL_DIFFERENCE_TIMEOUT
            )
        senders = {post.sender_id for post in posts}
        return types.updates.ChannelDifference(
            pts=channel.pts,
            new_messages=[self.render_post(channel, p, account.user_id) for p in posts],
            other_updates=[],
            chats=[tl_channel(directory, channel, account.user_id)],
            users=[
                tl_user(directory, directory.accounts[sender], account.user_id)
                for sender in sorted(senders)
            ],
            final=True,
            timeout=CHANNEL_DIFFERENCE_TIMEOUT,
        )
