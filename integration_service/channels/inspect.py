"""Asking Telegram what a channel or group is and what the account may do there.

Runs on the session's warm client (the worker's loop). Connecting resolves the tenant's
target: an @username with contacts.resolveUsername, an invite link with
messages.checkChatInvite (a member gets the chat back; anyone else joins it with
messages.importChatInvite: handing an account an invite link is asking it to join), a
marked id from the account's own entities. A refresh never resolves the target again:
it asks by the stored id and access hash, so an account that was removed from a chat
is recorded as such, never joined back through an old invite link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from telethon import TelegramClient, errors, utils
from telethon.tl import functions, types

from integration_service.channels.rights import channel_rights, group_rights
from integration_service.channels.store import ChannelFacts
from integration_service.channels.targets import ChannelTarget
from integration_service.errors import PermanentError


class ChannelUnusable(PermanentError):
    """The target is no chat the account can connect (named by ``code``)."""

    code = "channel_unusable"


@dataclass(frozen=True, slots=True)
class KnownChat:
    """A chat already resolved for this account (a refresh)."""

    telegram_id: int
    access_hash: int | None


# What a target resolves to: a channel or supergroup by its inputChannel, or a basic
# group by its id (which needs no access hash).
Chat: TypeAlias = types.InputChannel | int


def _chat_of(entity: Any, target: ChannelTarget) -> Chat:
    if isinstance(entity, types.Channel):
        return types.InputChannel(entity.id, entity.access_hash or 0)
    if isinstance(entity, types.Chat):
        return int(entity.id)
    if isinstance(entity, types.ChannelForbidden | types.ChatForbidden):
        raise ChannelUnusable(f"{target} is closed to this account", code="channel_private")
    if isinstance(entity, types.User):
        raise ChannelUnusable(f"{target} is a user, not a channel or group", code="not_a_chat")
    raise ChannelUnusable(f"{target} is not a channel or group", code="not_a_chat")


async def _resolve(client: TelegramClient, target: ChannelTarget) -> Chat:
    """The chat ``target`` names."""
    if target.kind == "username":
        try:
            entity = await client.get_entity(target.value)
        except (errors.UsernameNotOccupiedError, errors.UsernameInvalidError, ValueError):
            raise ChannelUnusable(f"no chat is called {target}", code="peer_not_found") from None
        return _chat_of(entity, target)
    if target.kind == "invite":
        return _chat_of(await _by_invite(client, target.invite_hash), target)
    chat_id, kind = utils.resolve_id(target.chat_id)
    if kind is types.PeerChat:
        return chat_id
    try:
        # From the account's own entities only: Telegram has no lookup of a channel by id
        # without the access hash this account was given for it.
        known = await client.get_input_entity(target.chat_id)
    except ValueError:
        raise ChannelUnusable(
            f"chat {target} is not known to this account: connect it by @username or invite link",
            code="peer_unknown",
        ) from None
    if not isinstance(known, types.InputPeerChannel):
        raise ChannelUnusable(f"{target} is not a channel or group", code="not_a_chat")
    return types.InputChannel(known.channel_id, known.access_hash)


async def _by_invite(client: TelegramClient, invite_hash: str) -> Any:
    try:
        invite = await client(functions.messages.CheckChatInviteRequest(invite_hash))
        if isinstance(invite, types.ChatInviteAlready | types.ChatInvitePeek):
            return invite.chat
        joined = await client(functions.messages.ImportChatInviteRequest(invite_hash))
    except (errors.InviteHashExpiredError, errors.InviteHashInvalidError):
        raise ChannelUnusable(
            "the invite link is not valid (revoked, expired or mistyped)", code="invite_invalid"
        ) from None
    except errors.BotMethodInvalidError:
        raise ChannelUnusable(
            "a bot cannot join by invite link: add it to the chat instead", code="bot_cannot_join"
        ) from None
    chats = [c for c in getattr(joined, "chats", ()) if isinstance(c, types.Channel | types.Chat)]
    if not chats:
        raise ChannelUnusable("joining by the invite link gave no chat", code="invite_invalid")
    return chats[0]


_CLOSED = (errors.ChannelPrivateError, errors.ChatIdInvalidError, errors.ChannelInvalidError)


async def inspect(client: TelegramClient, target: ChannelTarget) -> ChannelFacts:
    """Connect: resolve ``target`` and read the chat and the account's rights in it."""
    try:
        return await _inspect(client, target)
    except _CLOSED:
        raise ChannelUnusable(
            f"{target} is closed to this account: private, and the account is not in it",
            code="channel_private",
        ) from None


async def _inspect(client: TelegramClient, target: ChannelTarget) -> ChannelFacts:
    chat = await _resolve(client, target)
    if isinstance(chat, int):
        return await _group(client, chat)
    return await _channel(client, chat)


async def reinspect(client: TelegramClient, known: KnownChat) -> ChannelFacts | None:
    """Refresh by the stored id; None when the account can no longer see the chat at all
    (removed from a private channel, or from a group)."""
    chat_id, kind = utils.resolve_id(known.telegram_id)
    try:
        if kind is types.PeerChat:
            return await _group(client, chat_id)
        return await _channel(client, types.InputChannel(chat_id, known.access_hash or 0))
    except _CLOSED:
        return None


async def _channel(client: TelegramClient, channel: types.InputChannel) -> ChannelFacts:
    full = await client(functions.channels.GetFullChannelRequest(channel))
    entity = next(c for c in full.chats if getattr(c, "id", None) == channel.channel_id)
    try:
        answer = await client(
            functions.channels.GetParticipantRequest(channel, types.InputPeerSelf())
        )
        participant = answer.participant
    except errors.UserNotParticipantError:
        participant = None
    count = getattr(full.full_chat, "participants_count", None)
    return ChannelFacts(
        telegram_id=utils.get_peer_id(types.PeerChannel(entity.id)),
        access_hash=entity.access_hash,
        kind="channel" if entity.broadcast else "supergroup",
        title=entity.title,
        username=entity.username,
        members_count=count if count is not None else entity.participants_count,
        rights=channel_rights(entity, participant),
    )


async def _group(client: TelegramClient, chat_id: int) -> ChannelFacts:
    full = await client(functions.messages.GetFullChatRequest(chat_id))
    entity = next(c for c in full.chats if getattr(c, "id", None) == chat_id)
    me = await client.get_me(input_peer=True)
    listed = getattr(full.full_chat.participants, "participants", ())
    return ChannelFacts(
        telegram_id=utils.get_peer_id(types.PeerChat(chat_id)),
        access_hash=None,
        kind="group",
        title=entity.title,
        username=None,
        members_count=getattr(entity, "participants_count", None) or len(listed),
        rights=group_rights(entity, listed, int(me.user_id)),
    )
