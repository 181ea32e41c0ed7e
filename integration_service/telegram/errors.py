"""Telethon's exceptions mapped onto the service's retryable / permanent error tree.

The mapping is by exception class (Telethon's own classification of Telegram's RPC
errors), so a job never parses error text. Terminal session errors carry the session
state they imply and a stable reason (``auth_error``), which validation and every job
use to stop the session for good.

"The server does not know this auth key" arrives in two shapes: the RPC errors
AUTH_KEY_UNREGISTERED / AUTH_KEY_INVALID (the key exists, its authorisation does not),
and the MTProto transport error -404, "auth key not found ... returned when the
specified auth key ID cannot be found by the DC" (core.telegram.org/mtproto/
mtproto-transports#transport-errors), which Telethon raises as ``AuthKeyNotFound`` (or,
from its connection layer, ``InvalidBufferError`` with code 404). The data centre has
forgotten the key: no retry brings it back, only a new login does. Telethon's docstring
allows that this may be temporary; we treat it as terminal (``revoked``, reason
``auth_key_unknown``) because retrying against a forgotten key never ends, and a new
login is what the operator has to do either way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re

from telethon import errors as tg

from integration_service.errors import PermanentError, RetryableError, ServiceError
from integration_service.telegram.terminated import SessionTerminated as SessionTerminated

# Telegram's answer -> the session state it proves (DESIGN.md, "validate").
TERMINAL_STATES: tuple[tuple[type[BaseException], str], ...] = (
    (tg.AuthKeyDuplicatedError, "duplicated"),
    (tg.UserDeactivatedBanError, "banned"),
    (tg.UserDeactivatedError, "deactivated"),
    (tg.SessionExpiredError, "expired"),
    (tg.SessionRevokedError, "revoked"),
    (tg.AuthKeyUnregisteredError, "revoked"),
    (tg.AuthKeyInvalidError, "revoked"),
)


class TelegramFloodWait(RetryableError):
    """Telegram asked us to wait ``retry_after`` seconds before this call again."""

    code = "flood_wait"

    def __init__(self, seconds: int) -> None:
        # A wait Telegram asks for, not a failure: bounded by max_deferrals.
        super().__init__(
            f"FLOOD_WAIT of {seconds}s", retry_after=float(seconds), counts_against_limit=False
        )
        self.seconds = seconds


class TelegramUnavailable(RetryableError):
    """Telegram (or the network to it) failed on its side; try again later."""

    code = "telegram_unavailable"


class TelegramRejected(PermanentError):
    """Telegram refused the request as given (a 4xx RPC error)."""

    code = "telegram_rejected"


# Telethon's generic classes, used for RPC errors it has no class of its own for.
_GENERIC = {
    tg.RPCError,
    tg.InvalidDCError,
    tg.BadRequestError,
    tg.UnauthorizedError,
    tg.ForbiddenError,
    tg.NotFoundError,
    tg.AuthKeyError,
    tg.FloodError,
    tg.ServerError,
    tg.TimedOutError,
}


_CONNECTION_TROUBLE = (
    ConnectionError,
    TimeoutError,
    OSError,
    EOFError,  # asyncio.IncompleteReadError: the server closed mid-answer
    asyncio.CancelledError,
    concurrent.futures.CancelledError,
    tg.InvalidBufferError,  # a transport-level error code instead of an answer (-404 aside)
)


def rpc_message(error: BaseException) -> str:
    """Telegram's error string: Telethon keeps only a generic one on its own classes
    (``UNAUTHORIZED``), so for those it is rebuilt from the class name."""
    cls = type(error)
    if cls not in _GENERIC and cls.__name__.endswith("Error"):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__[: -len("Error")]).upper()
    return str(getattr(error, "message", "") or cls.__name__)


# The reason stored for a key the data centre does not know (transport error -404).
AUTH_KEY_UNKNOWN = "auth_key_unknown"


def is_auth_key_unknown(error: BaseException) -> bool:
    """Whether ``error`` is the data centre saying it does not know the auth key (-404)."""
    if isinstance(error, tg.AuthKeyNotFound):
        return True
    return isinstance(error, tg.InvalidBufferError) and error.code == 404


def classify_telethon(error: BaseException) -> ServiceError | None:
    """The service error for a Telethon/network exception, or None if it is not one."""
    if is_auth_key_unknown(error):
        return SessionTerminated(
            "revoked", "transport error -404: auth key not found", auth_error=AUTH_KEY_UNKNOWN
        )
    for cls, state in TERMINAL_STATES:
        if isinstance(error, cls):
            return SessionTerminated(state, rpc_message(error))
    if isinstance(error, tg.FloodWaitError | tg.FloodPremiumWaitError | tg.SlowModeWaitError):
        return TelegramFloodWait(int(getattr(error, "seconds", 1) or 1))
    if isinstance(error, tg.ServerError | tg.TimedOutError):
        return TelegramUnavailable(f"Telegram server error {rpc_message(error)}")
    if isinstance(error, tg.RPCError):
        return TelegramRejected(
            f"Telegram refused the request: {rpc_message(error)}",
            code=rpc_message(error).lower(),
        )
    if isinstance(error, _CONNECTION_TROUBLE):
        # The connection dropped under the call (or the call was cancelled with it): the
        # request may or may not have reached Telegram; the job retries with the same
        # random_id, so a send that did arrive is deduplicated.
        return TelegramUnavailable(f"connection to Telegram failed: {type(error).__name__}")
    return None
