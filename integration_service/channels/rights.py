"""What an account may do in a chat, read from Telegram's own answers.

- A channel or supergroup: the account's ``channels.getParticipant`` record
  (core.telegram.org/method/channels.getParticipant). The creator holds every right; an
  admin the flags of its ``chatAdminRights``; a plain member none; a left, kicked or
  banned account is no member.
- A basic group: whether the account is in ``messages.getFullChat``'s participant list,
  as creator, admin or member (basic groups have no per-admin rights).
- ``can_post``: in a broadcast channel only the creator and admins with
  ``post_messages`` post (core.telegram.org/api/channel: "only administrators can post");
  in a supergroup or group every member does, unless the chat's default banned rights
  forbid sending and the account is no admin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from telethon.tl import types

# chatAdminRights flags (core.telegram.org/constructor/chatAdminRights), in its order.
ADMIN_RIGHT_NAMES = (
    "change_info",
    "post_messages",
    "edit_messages",
    "delete_messages",
    "ban_users",
    "invite_users",
    "pin_messages",
    "add_admins",
    "anonymous",
    "manage_call",
    "other",
    "manage_topics",
    "post_stories",
    "edit_stories",
    "delete_stories",
)
# The flags a lost or gained right is named by, besides the admin rights themselves.
STANDING = ("member", "admin", "can_post")


@dataclass(frozen=True, slots=True)
class Rights:
    member: bool
    creator: bool
    admin: bool
    can_post: bool
    admin_rights: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "creator": self.creator,
            "admin": self.admin,
            "can_post": self.can_post,
            "admin_rights": list(self.admin_rights),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rights:
        return cls(
            member=bool(data["member"]),
            creator=bool(data["creator"]),
            admin=bool(data["admin"]),
            can_post=bool(data["can_post"]),
            admin_rights=tuple(data.get("admin_rights", ())),
        )

    def _held(self) -> set[str]:
        held = {name for name in STANDING if getattr(self, name)}
        return held | {f"admin_rights.{name}" for name in self.admin_rights}


NO_RIGHTS = Rights(member=False, creator=False, admin=False, can_post=False)


def changes(before: Rights, after: Rights) -> tuple[list[str], list[str]]:
    """(lost, gained): the rights ``after`` no longer has, and the new ones."""
    held_before, held_after = before._held(), after._held()
    return sorted(held_before - held_after), sorted(held_after - held_before)


def _flags(rights: types.ChatAdminRights | None) -> tuple[str, ...]:
    if rights is None:
        return ()
    return tuple(name for name in ADMIN_RIGHT_NAMES if getattr(rights, name, None))


def _may_send(chat: Any, admin: bool) -> bool:
    """A supergroup or group member may send unless the chat's defaults forbid it."""
    banned = getattr(chat, "default_banned_rights", None)
    return admin or not (banned is not None and getattr(banned, "send_messages", False))


def channel_rights(channel: types.Channel, participant: Any | None) -> Rights:
    """Rights from the account's participant record (None: USER_NOT_PARTICIPANT)."""
    if participant is None or isinstance(
        participant, types.ChannelParticipantLeft | types.ChannelParticipantBanned
    ):
        return NO_RIGHTS
    if isinstance(participant, types.ChannelParticipantCreator):
        flags = _flags(participant.admin_rights) or ADMIN_RIGHT_NAMES
        return Rights(member=True, creator=True, admin=True, can_post=True, admin_rights=flags)
    if isinstance(participant, types.ChannelParticipantAdmin):
        flags = _flags(participant.admin_rights)
        can_post = "post_messages" in flags if channel.broadcast else True
        return Rights(member=True, creator=False, admin=True, can_post=can_post, admin_rights=flags)
    can_post = not channel.broadcast and _may_send(channel, admin=False)
    return Rights(member=True, creator=False, admin=False, can_post=can_post)


def group_rights(chat: types.Chat, participants: Iterable[Any], user_id: int) -> Rights:
    """Rights in a basic group from its participant list (``chatParticipants``)."""
    for participant in participants:
        if getattr(participant, "user_id", None) != user_id:
            continue
        creator = isinstance(participant, types.ChatParticipantCreator)
        admin = creator or isinstance(participant, types.ChatParticipantAdmin)
        return Rights(
            member=True, creator=creator, admin=admin, can_post=_may_send(chat, admin=admin)
        )
    return NO_RIGHTS
