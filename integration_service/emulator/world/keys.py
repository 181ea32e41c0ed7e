"""Which auth key is signed in as whom, and which connections each key has open.

Telegram binds an authorisation to an auth key, not to a TCP connection: a client that
reconnects with the same key stays signed in. A key whose authorisation was revoked
remembers *how* (so later calls get AUTH_KEY_UNREGISTERED or SESSION_REVOKED).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from integration_service.emulator.journal import Journal

Pusher = Callable[[Any], Awaitable[None]]
KEY_STATES_TABLE = "key_states"

REVOKE_MODES = ("AUTH_KEY_UNREGISTERED", "SESSION_REVOKED")


@dataclass
class KeyState:
    auth_key_id: int
    user_id: int | None = None
    # set after the right code/QR approval when the account has 2FA: only
    # account.getPassword and auth.checkPassword may follow
    password_pending_user: int | None = None
    revoked_as: str | None = None
    connections: dict[int, Pusher | None] = field(default_factory=dict)
    signed_in_at: float = 0.0

    @property
    def worth_keeping(self) -> bool:
        """Whether a restarted data centre must remember this key's state."""
        return (
            self.user_id is not None
            or self.password_pending_user is not None
            or self.revoked_as is not None
        )


class KeyBook:
    """Auth key id -> KeyState. Sign-ins, 2FA waits and revocations are noted in the
    journal (connections are not: they end with the process)."""

    def __init__(self, journal: Journal | None = None) -> None:
        self.keys: dict[int, KeyState] = {}
        self.journal = journal or Journal()

    def get(self, auth_key_id: int) -> KeyState:
        state = self.keys.get(auth_key_id)
        if state is None:
            state = self.keys[auth_key_id] = KeyState(auth_key_id)
        return state

    def peek(self, auth_key_id: int) -> KeyState | None:
        return self.keys.get(auth_key_id)

    def user_of(self, auth_key_id: int) -> int | None:
        state = self.keys.get(auth_key_id)
        return None if state is None else state.user_id

    def bind(self, auth_key_id: int, user_id: int, now: float) -> None:
        state = self.get(auth_key_id)
        state.user_id = user_id
        state.password_pending_user = None
        state.revoked_as = None
        state.signed_in_at = now
        self.journal.changed(KEY_STATES_TABLE, auth_key_id)

    def await_password(self, auth_key_id: int, user_id: int) -> None:
        """The first factor is proven; only the 2FA password may follow on this key."""
        state = self.get(auth_key_id)
        state.user_id = None
        state.password_pending_user = user_id
        self.journal.changed(KEY_STATES_TABLE, auth_key_id)

    def unbind(self, auth_key_id: int, revoked_as: str | None = None) -> None:
        state = self.keys.get(auth_key_id)
        if state is None:
            return
        state.user_id = None
        state.password_pending_user = None
        state.revoked_as = revoked_as
        self.journal.changed(KEY_STATES_TABLE, auth_key_id)

    def forget(self, auth_key_id: int) -> None:
        """Drop everything known about a key (the data centre forgot the key itself)."""
        if self.keys.pop(auth_key_id, None) is not None:
            self.journal.changed(KEY_STATES_TABLE, auth_key_id)

    def keys_of(self, user_id: int) -> list[int]:
        return [key for key, state in self.keys.items() if state.user_id == user_id]

    def note_connection(self, auth_key_id: int, connection_id: int, push: Pusher | None) -> None:
        self.get(auth_key_id).connections[connection_id] = push

    def forget_connection(self, auth_key_id: int, connection_id: int) -> None:
        state = self.keys.get(auth_key_id)
        if state is not None:
            state.connections.pop(connection_id, None)

    def pushers(self, auth_key_id: int) -> list[Pusher]:
        state = self.keys.get(auth_key_id)
        if state is None:
            return []
        return [push for push in state.connections.values() if push is not None]
