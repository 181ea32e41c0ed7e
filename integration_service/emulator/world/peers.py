"""Render the directory's objects as the TL constructors a given viewer would receive."""

from __future__ import annotations

from datetime import UTC, datetime

from telethon.tl import types

from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world.accounts import Account, Channel, Directory, Group


def tl_date(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def tl_user(directory: Directory, account: Account, viewer_id: int) -> types.User:
    is_self = account.user_id == viewer_id
    return types.User(
        id=account.user_id,
        is_self=is_self,
        bot=account.is_bot,
        # a bot's own phone is never shown; a user's phone only to themselves
        access_hash=directory.access_hash(viewer_id, "user", account.user_id),
        first_name=account.first_name,
        last_name=account.last_name or None,
        username=account.username,
        phone=account.phone if is_self else None,
        bot_info_version=1 if account.is_bot else None,
        bot_nochats=account.is_bot or None,
        status=None if account.is_bot else types.UserStatusRecently(),
    )


def tl_chat(group: Group) -> types.Chat:
    return types.Chat(
        id=group.chat_id,
        title=group.title,
        photo=types.ChatPhotoEmpty(),
        participants_count=len(group.members),
        date=tl_date(group.date),
        version=1,
    )


def tl_channel(directory: Directory, channel: Channel, viewer_id: int) -> types.Channel:
    return types.Channel(
        id=channel.channel_id,
        title=channel.title,
        photo=types.ChatPhotoEmpty(),
        date=tl_date(channel.date),
        creator=channel.creator_id == viewer_id or None,
        left=viewer_id not in channel.members or None,
        broadcast=channel.broadcast or None,
        megagroup=(not channel.broadcast) or None,
        access_hash=directory.access_hash(viewer_id, "channel", channel.channel_id),
        username=channel.username,
        participants_count=len(channel.members),
    )


def readable_channel(
    directory: Directory, wanted: types.TypeInputChannel, viewer: Account
) -> Channel:
    """The channel an inputChannel names, as a method that reads it resolves it: a wrong
    access hash is CHANNEL_INVALID, a private channel the viewer is not in CHANNEL_PRIVATE."""
    if not isinstance(wanted, types.InputChannel):
        raise RpcError(400, "CHANNEL_INVALID")
    channel = directory.channels.get(wanted.channel_id)
    if channel is None or wanted.access_hash != directory.access_hash(
        viewer.user_id, "channel", channel.channel_id
    ):
        raise RpcError(400, "CHANNEL_INVALID")
    if viewer.user_id not in channel.members and channel.username is None:
        raise RpcError(400, "CHANNEL_PRIVATE")
    return channel
