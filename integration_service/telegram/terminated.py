"""``SessionTerminated``, importable without Telethon.

The producer refuses jobs for sessions whose stored state is terminal, and the CLI maps
the error to its exit code; neither may import Telethon (start-up time, and the producer
has no business with the client library). ``telegram.errors`` re-exports it beside the
mapping from Telethon's exceptions.
"""

from __future__ import annotations

from integration_service.errors import PermanentError


class SessionTerminated(PermanentError):
    """Telegram ended this authorisation; no job for the session can succeed."""

    code = "session_terminated"

    def __init__(self, state: str, rpc_message: str) -> None:
        super().__init__(f"session is {state} ({rpc_message})", code=f"session_{state}")
        self.state = state
        self.rpc_message = rpc_message
