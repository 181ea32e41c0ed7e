"""What a tenant names a channel or group by, checked once at the boundary.

- ``@username``, or its link ``https://t.me/<username>``;
- an invite link: ``https://t.me/+<hash>``, ``https://t.me/joinchat/<hash>``,
  ``tg://join?invite=<hash>`` or ``+<hash>`` (core.telegram.org/api/invites);
- a marked chat id: ``-100<channel id>`` for channels and supergroups, ``-<chat id>`` for
  basic groups (a positive id is a user, not a chat).

Stored and shown in one canonical form: ``@name`` (lower case), ``+hash`` or the id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from integration_service.inputs import USERNAME, InvalidInput

# Invite hashes are URL-safe base64 text.
INVITE_HASH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LINK = re.compile(r"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/(?P<path>[^?#]+?)/?$")
_TG_JOIN = re.compile(r"^tg://join\?invite=(?P<hash>[^&#]+)$")
# Marked ids Telegram gives chats: channels -100xxxxxxxxxx, basic groups -xxxxxxxxx.
_MARKED_ID = re.compile(r"^-[0-9]{1,19}$")
SHAPES = "an @username, a t.me link, an invite link (t.me/+...) or a marked chat id (-100...)"

TargetKind = Literal["username", "invite", "id"]


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    kind: TargetKind
    value: str

    def __str__(self) -> str:
        return self.value

    @property
    def invite_hash(self) -> str:
        return self.value[1:]

    @property
    def chat_id(self) -> int:
        return int(self.value)


def _username(name: str) -> ChannelTarget:
    handle = name if name.startswith("@") else f"@{name}"
    if not USERNAME.match(handle):
        raise InvalidInput("peer", "a username is 5-32 letters, digits or '_', a letter first")
    return ChannelTarget("username", handle.lower())


def _invite(invite_hash: str) -> ChannelTarget:
    if not INVITE_HASH.match(invite_hash):
        raise InvalidInput("peer", "an invite link's hash is letters, digits, '-' or '_'")
    return ChannelTarget("invite", f"+{invite_hash}")


def _chat_id(number: int) -> ChannelTarget:
    if number >= 0:
        raise InvalidInput("peer", "a positive id is a user; a chat's marked id is negative")
    if number <= -(2**63):
        raise InvalidInput("peer", "id is out of range")
    return ChannelTarget("id", str(number))


def channel_target(value: object) -> ChannelTarget:
    """The target ``value`` names; ``InvalidInput`` (field ``peer``) says why not."""
    if isinstance(value, bool):
        raise InvalidInput("peer", f"must be {SHAPES}")
    if isinstance(value, int):
        return _chat_id(value)
    if not isinstance(value, str):
        raise InvalidInput("peer", f"must be {SHAPES}")
    text = value.strip()
    if _MARKED_ID.match(text):
        return _chat_id(int(text))
    if text.startswith("@"):
        return _username(text)
    if text.startswith("+"):
        return _invite(text[1:])
    joined = _TG_JOIN.match(text)
    if joined:
        return _invite(joined["hash"])
    link = _LINK.match(text)
    if link:
        path = link["path"]
        if path.startswith("+"):
            return _invite(path[1:])
        if path.startswith("joinchat/"):
            return _invite(path[len("joinchat/") :])
        if "/" not in path:
            return _username(path)
        raise InvalidInput("peer", "a t.me link names a chat: t.me/<username> or t.me/+<hash>")
    raise InvalidInput("peer", f"must be {SHAPES}")
