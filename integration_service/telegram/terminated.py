"""``SessionTerminated``, importable without Telethon.

The producer refuses jobs for sessions whose stored state is terminal, and the CLI maps
the error to its exit code; neither may import Telethon (start-up time, and the producer
has no business with the client library). ``telegram.errors`` re-exports it beside the
mapping from Telethon's exceptions.
"""

from __future__ import annotations

import re

from integration_service.errors import PermanentError

_RPC_MESSAGE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SessionTerminated(PermanentError):
    """Telegram ended this authorisation; no job for the session can succeed.

    ``auth_error`` is the stable reason stored with the session: Telegram's RPC error in
    lower case (``auth_key_unregistered``, ``session_revoked``), ``auth_key_unknown`` for
    a key the data centre does not know (transport error -404), None for "already
    terminal in the store".
    """

    code = "session_terminated"

    def __init__(self, state: str, rpc_message: str, auth_error: str | None = None) -> None:
        super().__init__(f"session is {state} ({rpc_message})", code=f"session_{state}")
        self.state = state
        self.rpc_message = rpc_message
        if auth_error is None and _RPC_MESSAGE.match(rpc_message):
            auth_error = rpc_message.lower()
        self.auth_error = auth_error
