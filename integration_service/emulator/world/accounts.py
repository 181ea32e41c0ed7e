"""Who exists in the emulated Telegram: users, bots, basic groups and channels.

Ids and access hashes follow Telegram's shape: positive 64-bit ids, and an access hash
that depends on who is looking at a peer (so a hash learnt by one account is useless to
another, as on Telegram).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

# Telegram usernames: 5-32 chars, a letter first, then letters, digits or underscores.
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,30}[A-Za-z0-9]$")
PHONE_RE = re.compile(r"^[0-9]{7,15}$")


def normalize_phone(raw: str) -> str:
    """Digits only, as Telegram stores phones (``+7 999 123-45-67`` -> ``79991234567``)."""
    return "".join(ch for ch in raw if ch.isdigit())


def is_valid_phone(raw: str) -> bool:
    return bool(PHONE_RE.match(normalize_phone(raw))) and not any(ch.isalpha() for ch in raw)


def is_valid_username(name: str) -> bool:
    return bool(USERNAME_RE.match(name))


@dataclass
class Account:
    """A user or a bot."""

    user_id: int
    first_name: str
    last_name: str = ""
    username: str | None = None
    phone: str | None = None
    is_bot: bool = False
    bot_token: str | None = None
    banned: bool = False
    # message-box state: every account has its own pts and message id sequence
    pts: int = 0
    last_message_id: int = 0


# The chatAdminRights flags the emulator models (core.telegram.org/constructor/chatAdminRights).
ADMIN_RIGHTS = (
    "change_info",
    "post_messages",
    "edit_messages",
    "delete_messages",
    "ban_users",
    "invite_users",
    "pin_messages",
    "add_admins",
    "manage_call",
    "other",
)
# What an admin named at creation gets: a channel admin's usual rights, without add_admins
# (which only the creator hands out).
DEFAULT_ADMIN_RIGHTS = frozenset(ADMIN_RIGHTS) - {"add_admins"}


def admin_rights(names: Iterable[str]) -> frozenset[str]:
    """Checked rights names; a ValueError names the first unknown one."""
    rights = frozenset(names)
    unknown = sorted(rights - set(ADMIN_RIGHTS))
    if unknown:
        raise ValueError(f"unknown admin right {unknown[0]!r}: one of {', '.join(ADMIN_RIGHTS)}")
    return rights


@dataclass
class Group:
    """A basic group (``chat``): every member has the messages in their own box."""

    chat_id: int
    title: str
    creator_id: int
    members: set[int] = field(default_factory=set)
    date: float = 0.0
    # The chat's primary invite link hash (t.me/+<hash>), once exported; None: none.
    invite_hash: str | None = None


@dataclass
class Channel:
    """A channel or supergroup: one shared message sequence with its own pts."""

    channel_id: int
    title: str
    creator_id: int
    username: str | None = None
    broadcast: bool = True
    members: set[int] = field(default_factory=set)
    # Admin user id -> the rights they were given (the creator has every right).
    admins: dict[int, frozenset[str]] = field(default_factory=dict)
    pts: int = 0
    last_message_id: int = 0
    date: float = 0.0
    invite_hash: str | None = None

    def rights_of(self, user_id: int) -> frozenset[str] | None:
        """The admin rights of ``user_id``; None for someone who is no admin."""
        if user_id == self.creator_id:
            return frozenset(ADMIN_RIGHTS)
        return self.admins.get(user_id)

    def can_post(self, user_id: int) -> bool:
        if not self.broadcast:
            return user_id in self.members
        # In a broadcast channel only the creator and admins with post_messages post.
        return "post_messages" in (self.rights_of(user_id) or ())

    def can_delete_any(self, user_id: int) -> bool:
        return "delete_messages" in (self.rights_of(user_id) or ())


GROUPS_TABLE = "groups"
CHANNELS_TABLE = "channels"
FIRST_USER_ID = 7_000_000_001
FIRST_CHAT_ID = 4_000_001
FIRST_CHANNEL_ID = 1_900_000_001


class Directory:
    """All accounts, groups and channels, with lookups by phone, username and token."""

    def __init__(self) -> None:
        self._hash_secret = secrets.token_bytes(32)
        self.accounts: dict[int, Account] = {}
        self.groups: dict[int, Group] = {}
        self.channels: dict[int, Channel] = {}
        self._by_phone: dict[str, int] = {}
        # lower-cased username -> ("user" | "channel", id); Telegram ignores case here
        self._by_username: dict[str, tuple[str, int]] = {}
        self._next_user_id = FIRST_USER_ID
        self._next_chat_id = FIRST_CHAT_ID
        self._next_channel_id = FIRST_CHANNEL_ID

    @property
    def hash_secret(self) -> bytes:
        """The secret access hashes derive from (clients keep the hashes they learnt)."""
        return self._hash_secret

    def restore(
        self,
        hash_secret: bytes,
        accounts: list[Account],
        groups: list[Group],
        channels: list[Channel],
    ) -> None:
        """Load a saved directory: the same ids, hashes and lookups as before."""
        self._hash_secret = hash_secret
        self.accounts = {account.user_id: account for account in accounts}
        self.groups = {group.chat_id: group for group in groups}
        self.channels = {channel.channel_id: channel for channel in channels}
        self._by_phone = {a.phone: a.user_id for a in accounts if a.phone is not None}
        self._by_username = {}
        for account in accounts:
            if account.username is not None:
                self._by_username[account.username.lower()] = ("user", account.user_id)
        for channel in channels:
            if channel.username is not None:
                self._by_username[channel.username.lower()] = ("channel", channel.channel_id)
        self._next_user_id = max([FIRST_USER_ID - 1, *self.accounts]) + 1
        self._next_chat_id = max([FIRST_CHAT_ID - 1, *self.groups]) + 1
        self._next_channel_id = max([FIRST_CHANNEL_ID - 1, *self.channels]) + 1

    def access_hash(self, viewer_id: int, kind: str, peer_id: int) -> int:
        """The access hash of ``peer_id`` as seen by ``viewer_id`` (signed 64-bit)."""
        digest = hashlib.sha256(
            self._hash_secret + f"{viewer_id}:{kind}:{peer_id}".encode()
        ).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def _claim_username(self, username: str | None, kind: str, peer_id: int) -> None:
        if username is None:
            return
        if not is_valid_username(username):
            raise ValueError(f"invalid username {username!r}")
        if username.lower() in self._by_username:
            raise ValueError(f"username {username!r} is taken")
        self._by_username[username.lower()] = (kind, peer_id)

    def create_user(
        self, phone: str, first_name: str, last_name: str = "", username: str | None = None
    ) -> Account:
        if not is_valid_phone(phone):
            raise ValueError("invalid phone number")
        digits = normalize_phone(phone)
        if digits in self._by_phone:
            raise ValueError("phone number already registered")
        if not first_name.strip():
            raise ValueError("first_name must not be empty")
        user_id = self._next_user_id
        self._claim_username(username, "user", user_id)
        self._next_user_id += 1
        account = Account(user_id, first_name, last_name, username, phone=digits)
        self.accounts[user_id] = account
        self._by_phone[digits] = user_id
        return account

    def create_bot(self, username: str, first_name: str | None = None) -> Account:
        # Telegram insists that bot usernames end in "bot"
        if not username.lower().endswith("bot"):
            raise ValueError("bot username must end with 'bot'")
        user_id = self._next_user_id
        self._claim_username(username, "user", user_id)
        self._next_user_id += 1
        token = f"{user_id}:{secrets.token_urlsafe(26)[:35]}"
        account = Account(
            user_id, first_name or username, username=username, is_bot=True, bot_token=token
        )
        self.accounts[user_id] = account
        return account

    def create_group(self, title: str, creator_id: int, members: set[int], now: float) -> Group:
        if not title.strip():
            raise ValueError("title must not be empty")
        for member in {creator_id, *members}:
            self.require_account(member)
        group = Group(self._next_chat_id, title, creator_id, {creator_id, *members}, now)
        self._next_chat_id += 1
        self.groups[group.chat_id] = group
        return group

    def create_channel(
        self,
        title: str,
        creator_id: int,
        members: set[int],
        *,
        username: str | None = None,
        admins: set[int] | None = None,
        broadcast: bool = True,
        now: float = 0.0,
    ) -> Channel:
        if not title.strip():
            raise ValueError("title must not be empty")
        admins = set(admins or ())
        for member in {creator_id, *members, *admins}:
            self.require_account(member)
        admins.discard(creator_id)  # the creator's rights are all rights already
        channel_id = self._next_channel_id
        self._claim_username(username, "channel", channel_id)
        self._next_channel_id += 1
        channel = Channel(
            channel_id,
            title,
            creator_id,
            username,
            broadcast,
            members={creator_id, *members, *admins},
            admins=dict.fromkeys(admins, DEFAULT_ADMIN_RIGHTS),
            date=now,
        )
        self.channels[channel_id] = channel
        return channel

    def require_account(self, user_id: int) -> Account:
        try:
            return self.accounts[user_id]
        except KeyError:
            raise KeyError(f"unknown user {user_id}") from None

    def by_phone(self, phone: str) -> Account | None:
        user_id = self._by_phone.get(normalize_phone(phone))
        return None if user_id is None else self.accounts[user_id]

    def by_bot_token(self, token: str) -> Account | None:
        user_id_part, _, _ = token.partition(":")
        if not user_id_part.isdigit():
            return None
        account = self.accounts.get(int(user_id_part))
        if account is None or account.bot_token is None:
            return None
        # constant-time comparison: the token is a secret
        return account if secrets.compare_digest(account.bot_token, token) else None

    def by_username(self, username: str) -> tuple[str, int] | None:
        return self._by_username.get(username.lower())

    def next_user_message_id(self, account: Account) -> int:
        account.last_message_id += 1
        return account.last_message_id
