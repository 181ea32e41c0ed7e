"""The operator's side of the world: what the control API (and tests) can do to it."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Awaitable, Callable
from typing import Any

from telethon.tl import types

from integration_service.emulator.auth_keys import AuthKeyStore
from integration_service.emulator.world.accounts import (
    CHANNELS_TABLE,
    GROUPS_TABLE,
    Account,
    Channel,
    Directory,
    Group,
)
from integration_service.emulator.world.auth import CodeLogin
from integration_service.emulator.world.boxes import MessageBoxes
from integration_service.emulator.world.chats import ChatMethods
from integration_service.emulator.world.delivery_log import DeliveryLog
from integration_service.emulator.world.faults import Fault, FaultBook
from integration_service.emulator.world.help_methods import HelpMethods
from integration_service.emulator.world.inbound import Inbound
from integration_service.emulator.world.keys import REVOKE_MODES, KeyBook
from integration_service.emulator.world.message_copies import MessageCopies
from integration_service.emulator.world.messaging import Messaging
from integration_service.emulator.world.password_login import PasswordLogin
from integration_service.emulator.world.qr import QrLogin
from integration_service.emulator.world.settings import SETTINGS_TABLE, UpdateSettings
from integration_service.emulator.world.state import WorldState


def decode_login_token(token_b64: str) -> bytes:
    """The token as shown in ``tg://login?token=...``: base64url, padding optional."""
    try:
        padded = token_b64 + "=" * (-len(token_b64) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("token is not base64url") from None


class WorldControl:
    state: WorldState
    codes: CodeLogin
    passwords: PasswordLogin
    qr: QrLogin
    boxes: MessageBoxes
    messaging: Messaging
    copies: MessageCopies
    inbound: Inbound
    chats: ChatMethods
    settings: UpdateSettings
    deliveries: DeliveryLog
    faults: FaultBook
    drop_connections: Callable[[int | None], Awaitable[int]] | None
    # Set by the runner: the data centre's auth keys (for minted sessions).
    auth_keys: AuthKeyStore | None
    help: HelpMethods

    def _wipe_storage(self) -> None:
        """Hook: forget what was saved (the persisting world overrides it)."""

    async def push_to_user(self, user_id: int, update: Any) -> int:
        """Hook: push to every connection of the user's keys (TelegramWorld implements it)."""
        raise NotImplementedError

    @property
    def directory(self) -> Directory:
        return self.state.directory

    @property
    def keys(self) -> KeyBook:
        return self.state.keys

    def find_user(self, *, user_id: int | None = None, phone: str | None = None) -> Account:
        """Look up an account by id or phone; KeyError when there is none."""
        if user_id is not None:
            account = self.directory.accounts.get(user_id)
        elif phone is not None:
            account = self.directory.by_phone(phone)
        else:
            raise ValueError("give user_id or phone")
        if account is None:
            raise KeyError("no such user")
        return account

    def create_user(
        self,
        phone: str,
        first_name: str,
        last_name: str = "",
        username: str | None = None,
        password: str | None = None,
    ) -> Account:
        account = self.directory.create_user(phone, first_name, last_name, username)
        self.state.account_changed(account)
        if password is not None:
            self.passwords.set_password(account.user_id, password)
        return account

    def create_bot(self, username: str, first_name: str | None = None) -> Account:
        bot = self.directory.create_bot(username, first_name)
        self.state.account_changed(bot)
        return bot

    def create_group(self, title: str, creator_id: int, member_ids: set[int]) -> Group:
        group = self.directory.create_group(title, creator_id, member_ids, self.state.now())
        self.state.journal.changed(GROUPS_TABLE, group.chat_id)
        return group

    def create_channel(
        self,
        title: str,
        creator_id: int,
        member_ids: set[int],
        *,
        username: str | None = None,
        admin_ids: set[int] | None = None,
        broadcast: bool = True,
    ) -> Channel:
        channel = self.directory.create_channel(
            title,
            creator_id,
            member_ids,
            username=username,
            admins=admin_ids,
            broadcast=broadcast,
            now=self.state.now(),
        )
        self.state.journal.changed(CHANNELS_TABLE, channel.channel_id)
        return channel

    def set_admin_rights(self, channel_id: int, user_id: int, rights: frozenset[str]) -> Channel:
        """What channels.editAdmin does: ``user_id`` (a member) becomes an admin with these
        rights, or a plain member again with none. The creator's rights cannot change."""
        channel = self.require_channel(channel_id)
        self.directory.require_account(user_id)
        if user_id == channel.creator_id:
            raise ValueError("the creator's rights cannot be changed")
        if user_id not in channel.members:
            raise ValueError(f"user {user_id} is not a member of channel {channel_id}")
        if rights:
            channel.admins[user_id] = rights
        else:
            channel.admins.pop(user_id, None)
        self.state.journal.changed(CHANNELS_TABLE, channel.channel_id)
        return channel

    def require_channel(self, channel_id: int) -> Channel:
        try:
            return self.directory.channels[channel_id]
        except KeyError:
            raise KeyError(f"unknown channel {channel_id}") from None

    def require_group(self, chat_id: int) -> Group:
        try:
            return self.directory.groups[chat_id]
        except KeyError:
            raise KeyError(f"unknown group {chat_id}") from None

    def export_invite(self, chat: Channel | Group) -> str:
        """The chat's primary invite link (t.me/+<hash>), made on first use."""
        return self.chats.export_invite(chat)

    def set_password(self, user_id: int, password: str | None, hint: str | None = None) -> None:
        self.passwords.set_password(user_id, password, hint)

    def last_login_code(self, phone: str) -> tuple[str, float] | None:
        """(code, expires_at) of the newest code sent to this phone."""
        pending = self.codes.last_code(phone)
        return None if pending is None else (pending.code, pending.expires_at)

    async def approve_login_token(self, token: bytes, user_id: int) -> None:
        """Approve a QR token as ``user_id``; an RpcError names why it cannot be."""
        await self.qr.approve(token, user_id)

    def revoke_authorizations(self, user_id: int, mode: str = "AUTH_KEY_UNREGISTERED") -> int:
        """Terminate every session of a user, as "terminate all sessions" elsewhere would."""
        if mode not in REVOKE_MODES:
            raise ValueError(f"mode must be one of {', '.join(REVOKE_MODES)}")
        self.directory.require_account(user_id)
        revoked = self.keys.keys_of(user_id)
        for auth_key_id in revoked:
            self.keys.unbind(auth_key_id, revoked_as=mode)
        return len(revoked)

    def mint_session(self, user_id: int) -> bytes:
        """A new auth key, already signed in as ``user_id``: what a completed login on a new
        device leaves behind, made without the key exchange (test and benchmark set-up at
        scale; a real login costs a DH exchange and several calls). Returns the key."""
        if self.auth_keys is None:
            raise RuntimeError("the world is not attached to a data centre")
        account = self.directory.require_account(user_id)
        if account.banned:
            raise ValueError("user is banned")
        while True:
            key = os.urandom(256)
            record = self.auth_keys.add(key)
            if record is not None:
                break
        self.state.sign_in(record.key_id, account)
        return key

    def forget_auth_keys(self, user_id: int) -> int:
        """The data centre forgets every auth key signed in as ``user_id``, keys and all:
        their next message gets transport error -404 (core.telegram.org/mtproto/
        mtproto-transports#transport-errors), as from a Telegram that lost a key. A test
        facility; a real data centre does this on its own. Returns how many."""
        if self.auth_keys is None:
            raise RuntimeError("the world is not attached to a data centre")
        self.directory.require_account(user_id)
        forgotten = self.keys.keys_of(user_id)
        for auth_key_id in forgotten:
            self.keys.forget(auth_key_id)
            self.auth_keys.remove(auth_key_id)
        return len(forgotten)

    def set_banned(self, user_id: int, banned: bool) -> None:
        account = self.directory.require_account(user_id)
        account.banned = banned
        self.state.account_changed(account)

    def inject_fault(self, user_id: int, kind: str, **options: Any) -> Fault:
        self.directory.require_account(user_id)
        return self.faults.add(user_id, kind, **options)

    def change_settings(self, changes: dict[str, Any]) -> dict[str, int]:
        """Set some of the update settings (all checked before any is set); kept on disk."""
        current = UpdateSettings(**self.settings.as_dict())
        for name, value in changes.items():
            current.set(name, value)  # ValueError names what is wrong
        for name, value in changes.items():
            self.settings.set(name, value)
            self.state.journal.changed(SETTINGS_TABLE, name)
        return self.settings.as_dict()

    async def push_updates_too_long(self, user_id: int) -> int:
        """Push ``updatesTooLong`` to every connection of the user's keys: Telegram's "too
        many updates, call updates.getDifference" (core.telegram.org/constructor/
        updatesTooLong). Returns how many connections it reached."""
        self.directory.require_account(user_id)
        return await self.push_to_user(user_id, types.UpdatesTooLong())

    async def drop_user_connections(self, user_id: int | None) -> int:
        """Close the TCP connections of one user's keys (or all); needs the runner's hook."""
        if self.drop_connections is None:
            raise RuntimeError("the runner has not wired drop_connections")
        if user_id is None:
            return await self.drop_connections(None)
        self.directory.require_account(user_id)
        dropped = 0
        for auth_key_id in self.keys.keys_of(user_id):
            dropped += await self.drop_connections(auth_key_id)
        return dropped

    def reset(self) -> None:
        """Forget everything except the runner's hooks: a fresh, empty Telegram, on disk
        too. The data centre's auth keys go as well (their next message gets -404)."""
        self.state.directory = Directory()
        self.state.keys.keys.clear()
        self.state.passwords.clear()
        for part in (self.codes, self.passwords, self.qr, self.boxes, self.messaging, self.copies):
            part.reset()
        self.deliveries.clear()
        self.faults.clear()
        if self.auth_keys is not None:
            self.auth_keys.clear()
        self.state.journal.clear()
        self._wipe_storage()
