"""Telegram updates to event drafts: which updates matter and what their events say.

Dedup keys are made of Telegram's own ids, so the same update seen again (a live push
and a replay through getDifference, or two holders across a takeover) gives the same key:
- a new message: ``msg:<peer>:<message id>``;
- an edit: ``edit:<peer>:<message id>:<edit_date>:<text digest>`` (the edit version:
  two edits within Telegram's one-second edit_date still differ by their text);
- a deletion: ``del:<box>:<pts>`` (the pts Telegram gave that deletion in its box);
- a gap: ``gap:<box>:<from pts>:<to pts>``.
``<peer>`` is ``u<id>``, ``g<id>`` or ``c<id>``. Private and basic-group message ids are
per account, channel ids per channel: either way the key is unique within the session.
Our own outgoing messages are not ``message.received``: their outcome is ``message.sent``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from telethon.tl import types

from integration_service.inbound.events import (
    GAP,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    MESSAGE_RECEIVED,
    EventDraft,
)

# What the translator knows about peers: Telethon's User / Chat / Channel objects by id.
Peers = Mapping[int, Any]


def short_to_message(update: Any) -> types.Message | None:
    """The message a short update stands for (Telegram's compact forms of updateNewMessage)."""
    if isinstance(update, types.UpdateShortMessage):
        return types.Message(
            id=update.id,
            peer_id=types.PeerUser(update.user_id),
            date=update.date,
            message=update.message,
            out=update.out,
            from_id=None if update.out else types.PeerUser(update.user_id),
            reply_to=update.reply_to,
            fwd_from=update.fwd_from,
            via_bot_id=update.via_bot_id,
            entities=update.entities,
        )
    if isinstance(update, types.UpdateShortChatMessage):
        return types.Message(
            id=update.id,
            peer_id=types.PeerChat(update.chat_id),
            date=update.date,
            message=update.message,
            out=update.out,
            from_id=types.PeerUser(update.from_id),
            reply_to=update.reply_to,
            fwd_from=update.fwd_from,
            via_bot_id=update.via_bot_id,
            entities=update.entities,
        )
    return None


def peer_tag(peer: Any) -> str:
    if isinstance(peer, types.PeerUser):
        return f"u{peer.user_id}"
    if isinstance(peer, types.PeerChat):
        return f"g{peer.chat_id}"
    if isinstance(peer, types.PeerChannel):
        return f"c{peer.channel_id}"
    return f"x{type(peer).__name__}"  # no other peer kinds exist in the current layer


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _chat(peer: Any, users: Peers, chats: Peers) -> dict[str, Any]:
    if isinstance(peer, types.PeerUser):
        user = users.get(peer.user_id)
        return {
            "type": "private",
            "id": peer.user_id,
            "title": _user_name(user),
            "username": getattr(user, "username", None),
        }
    if isinstance(peer, types.PeerChat):
        chat = chats.get(peer.chat_id)
        return {
            "type": "group",
            "id": peer.chat_id,
            "title": getattr(chat, "title", None),
            "username": None,
        }
    channel = chats.get(peer.channel_id)
    return {
        "type": "supergroup" if getattr(channel, "megagroup", False) else "channel",
        "id": peer.channel_id,
        "title": getattr(channel, "title", None),
        "username": getattr(channel, "username", None),
    }


def _user_name(user: Any) -> str | None:
    if user is None:
        return None
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return name or None


def _sender(message: types.Message, users: Peers, chats: Peers) -> dict[str, Any] | None:
    sender = message.from_id
    if sender is None and isinstance(message.peer_id, types.PeerUser) and not message.out:
        sender = message.peer_id  # a private message's sender is the chat's other side
    if sender is None and isinstance(message.peer_id, types.PeerChannel):
        sender = message.peer_id  # a channel post is signed by the channel
    if isinstance(sender, types.PeerUser):
        user = users.get(sender.user_id)
        return {
            "type": "user",
            "id": sender.user_id,
            "username": getattr(user, "username", None),
            "name": _user_name(user),
        }
    if isinstance(sender, types.PeerChannel):
        channel = chats.get(sender.channel_id)
        return {
            "type": "channel",
            "id": sender.channel_id,
            "username": getattr(channel, "username", None),
            "name": getattr(channel, "title", None),
        }
    return None


def media_summary(media: Any) -> dict[str, Any] | None:
    """What is attached, never the file itself (media are a resource of their own)."""
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        return {"type": "photo"}
    if isinstance(media, types.MessageMediaDocument):
        document = media.document
        summary: dict[str, Any] = {"type": "document"}
        if isinstance(document, types.Document):
            summary["mime_type"] = document.mime_type
            summary["size"] = document.size
            for attribute in document.attributes:
                if isinstance(attribute, types.DocumentAttributeFilename):
                    summary["file_name"] = attribute.file_name
        return summary
    name = type(media).__name__.removeprefix("MessageMedia")
    return {"type": name[:1].lower() + name[1:]}


def _message_data(message: types.Message, users: Peers, chats: Peers) -> dict[str, Any]:
    reply = message.reply_to
    return {
        "chat": _chat(message.peer_id, users, chats),
        "message_id": message.id,
        "sender": _sender(message, users, chats),
        "text": message.message or "",
        "reply_to_message_id": getattr(reply, "reply_to_msg_id", None),
        "media": media_summary(message.media),
        "date": _iso(message.date),
        "edit_date": _iso(message.edit_date),
        "out": bool(message.out),
    }


def received(message: Any, users: Peers, chats: Peers) -> EventDraft | None:
    """``message.received`` for an incoming message; None for anything else."""
    if not isinstance(message, types.Message) or message.out:
        return None
    return EventDraft(
        type=MESSAGE_RECEIVED,
        dedup_key=f"msg:{peer_tag(message.peer_id)}:{message.id}",
        occurred_at=message.date,
        data=_message_data(message, users, chats),
    )


def edited(message: Any, users: Peers, chats: Peers) -> EventDraft | None:
    if not isinstance(message, types.Message) or message.out:
        return None
    version = int(message.edit_date.timestamp()) if message.edit_date else 0
    digest = hashlib.sha256((message.message or "").encode()).hexdigest()[:12]
    return EventDraft(
        type=MESSAGE_EDITED,
        dedup_key=f"edit:{peer_tag(message.peer_id)}:{message.id}:{version}:{digest}",
        occurred_at=message.edit_date or message.date,
        data=_message_data(message, users, chats),
    )


def deleted(
    box: str, pts: int, message_ids: list[int], chat: dict[str, Any] | None, now: datetime
) -> EventDraft:
    return EventDraft(
        type=MESSAGE_DELETED,
        dedup_key=f"del:{box}:{pts}",
        occurred_at=now,
        data={"chat": chat, "message_ids": list(message_ids)},
    )


def channel_chat(channel_id: int, chats: Peers) -> dict[str, Any]:
    return _chat(types.PeerChannel(channel_id), {}, chats)


def gap(
    box: str, channel_id: int | None, from_pts: int, to_pts: int, reason: str, now: datetime
) -> EventDraft:
    """What Telegram would no longer give us: pts from_pts (exclusive) to to_pts."""
    return EventDraft(
        type=GAP,
        dedup_key=f"gap:{box}:{from_pts}:{to_pts}",
        occurred_at=now,
        data={
            "box": "common" if channel_id is None else "channel",
            "channel_id": channel_id,
            "from_pts": from_pts,
            "to_pts": to_pts,
            "reason": reason,
        },
    )
