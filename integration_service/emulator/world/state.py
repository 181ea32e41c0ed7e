"""The state every part of the world shares, and the one way to finish a login."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from telethon.tl import types

from integration_service.emulator.journal import Journal
from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world.accounts import Account, Directory
from integration_service.emulator.world.keys import KeyBook
from integration_service.emulator.world.peers import tl_user
from integration_service.emulator.world.srp import PasswordRecord

Clock = Callable[[], float]


ACCOUNTS_TABLE = "accounts"
PASSWORDS_TABLE = "passwords"


@dataclass
class WorldState:
    clock: Clock = time.time
    directory: Directory = field(default_factory=Directory)
    keys: KeyBook = field(default_factory=KeyBook)
    # user id -> the SRP verifier of their 2FA password (absent: no 2FA)
    passwords: dict[int, PasswordRecord] = field(default_factory=dict)
    # every change a restarted data centre must remember (world/persistence.py saves it)
    journal: Journal = field(default_factory=Journal)

    def __post_init__(self) -> None:
        self.keys.journal = self.journal

    def now(self) -> float:
        return self.clock()

    def account_changed(self, account: Account) -> None:
        self.journal.changed(ACCOUNTS_TABLE, account.user_id)

    def finish_login(self, auth_key_id: int, account: Account) -> types.auth.Authorization:
        """The first factor is proven: sign in, or demand the 2FA password first."""
        if account.banned:
            raise RpcError(400, "PHONE_NUMBER_BANNED")
        if account.user_id in self.passwords:
            self.keys.await_password(auth_key_id, account.user_id)
            raise RpcError(401, "SESSION_PASSWORD_NEEDED")
        return self.sign_in(auth_key_id, account)

    def sign_in(self, auth_key_id: int, account: Account) -> types.auth.Authorization:
        """Bind the key to the account (all factors proven) and describe the login."""
        self.keys.bind(auth_key_id, account.user_id, self.now())
        return types.auth.Authorization(user=tl_user(self.directory, account, account.user_id))

    def account_of_key(self, auth_key_id: int) -> Account | None:
        user_id = self.keys.user_of(auth_key_id)
        return None if user_id is None else self.directory.accounts.get(user_id)
