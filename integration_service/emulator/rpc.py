"""The seam between the emulator's MTProto core and its Telegram world.

The core (transport, auth keys, encryption, sessions) decodes a client's request into a
Telethon TLRequest and hands it to the world's ``dispatch`` together with a
``CallContext``. The world answers with a TL object or raises ``RpcError``; the core
wraps either into an ``rpc_result`` for the client. The world pushes updates (for
example ``updateLoginToken``) through ``CallContext.push`` or ``Core.push_to_key``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class RpcError(Exception):
    """An RPC error as Telegram sends it: an HTTP-like code and an UPPER_CASE message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass
class CallContext:
    """Who is calling: the auth key, the TCP connection and the MTProto session."""

    auth_key_id: int
    connection_id: int
    session_id: int
    # layer and init_connection params as last seen on this auth key (invokeWithLayer)
    layer: int | None = None
    client_info: dict[str, Any] = field(default_factory=dict)
    # Sends an Updates object to this very connection, outside any rpc_result.
    push: Callable[[Any], Awaitable[None]] | None = None


class World(Protocol):
    """What the core needs from the Telegram world."""

    async def dispatch(self, request: Any, ctx: CallContext) -> Any:
        """Answer one unwrapped request (no invokeWithLayer/initConnection wrappers)."""
        ...

    def connection_closed(self, auth_key_id: int, connection_id: int) -> None:
        """A client's TCP connection ended (cleanly or not)."""
        ...

    def is_authorized(self, auth_key_id: int) -> bool:
        """Whether a user or bot is signed in on this auth key."""
        ...

    def invalidate_key(self, auth_key_id: int, reason: str) -> None:
        """Drop the authorisation bound to this key (e.g. after AUTH_KEY_DUPLICATED)."""
        ...
