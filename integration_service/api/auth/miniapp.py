"""Telegram Mini App initData, checked as Telegram documents it (core.telegram.org/bots/
webapps, "Validating data received via the Mini App"): the ``hash`` field is the hex
HMAC-SHA256 of every other field (sorted ``key=value`` lines) under
HMAC-SHA256(key="WebAppData", msg=bot token). The optional Ed25519 ``signature`` field
(third-party validation) is not checked, but as a received field it is part of what the
hash covers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

from integration_service.api.errors import Unauthenticated

# Telegram sends the hash as 64 lowercase hex digits; one spelling only, so one initData
# has one form (an upper-case hash is refused, not folded).
HASH = re.compile(r"[0-9a-f]{64}")
AUTH_DATE = re.compile(r"[0-9]{1,12}")
MAX_INIT_DATA_LENGTH = 8192
MAX_FIELDS = 64
# Clocks drift: an auth_date this far ahead of ours is still accepted.
MAX_FUTURE_SKEW = 60


@dataclass(frozen=True, slots=True)
class MiniAppUser:
    """The Telegram user a verified initData speaks for."""

    user_id: int
    first_name: str | None
    username: str | None
    auth_date: int
    start_param: str | None


def verify_init_data(
    init_data: str, *, bot_token: str, tolerance: int, now: float | None = None
) -> MiniAppUser:
    """The user ``init_data`` proves, if its hash is the bot's and it is at most
    ``tolerance`` seconds old; Unauthenticated with a short reason otherwise."""
    fields = _fields(init_data)
    received = fields.pop("hash", None)
    if received is None:
        raise Unauthenticated("initData has no hash")
    if not HASH.fullmatch(received):
        raise Unauthenticated("initData hash is malformed")
    if not hmac.compare_digest(_hash(fields, bot_token), received):
        raise Unauthenticated("initData signature mismatch")

    auth_date_text = fields.get("auth_date")
    if auth_date_text is None:
        raise Unauthenticated("initData has no auth_date")
    if not AUTH_DATE.fullmatch(auth_date_text):
        raise Unauthenticated("initData auth_date is malformed")
    auth_date = int(auth_date_text)
    current = time.time() if now is None else now
    if current - auth_date > tolerance:
        raise Unauthenticated("initData is stale")
    if auth_date - current > MAX_FUTURE_SKEW:
        raise Unauthenticated("initData auth_date is in the future")

    user_text = fields.get("user")
    if user_text is None:
        raise Unauthenticated("initData has no user")
    try:
        user: object = json.loads(user_text)
    except (ValueError, RecursionError):
        raise Unauthenticated("initData user is malformed") from None
    if not isinstance(user, dict):
        raise Unauthenticated("initData user is malformed")
    user_id = user.get("id")
    # bool is an int in Python; Telegram user ids are positive and fit 64 bits.
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not 0 < user_id < 2**63:
        raise Unauthenticated("initData user has no valid id")
    first_name, username = user.get("first_name"), user.get("username")
    return MiniAppUser(
        user_id=user_id,
        first_name=first_name if isinstance(first_name, str) else None,
        username=username if isinstance(username, str) else None,
        auth_date=auth_date,
        start_param=fields.get("start_param"),
    )


def sign_init_data(fields: Mapping[str, str], bot_token: str) -> str:
    """initData carrying ``fields`` and the hash ``bot_token``'s bot would give them
    (tests and the emulator)."""
    signed = {key: value for key, value in fields.items() if key != "hash"}
    return urlencode({**signed, "hash": _hash(signed, bot_token)}, quote_via=quote)


def _fields(init_data: str) -> dict[str, str]:
    if len(init_data) > MAX_INIT_DATA_LENGTH:
        raise Unauthenticated("initData is too long")
    try:
        pairs = parse_qsl(
            init_data,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise Unauthenticated("initData is malformed") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        # A line feed would let one set of signed lines be split into fields two ways.
        if not key or "\n" in key or "\n" in value:
            raise Unauthenticated("initData is malformed")
        if key in fields:
            # Which copy would count is up to the parser: refuse instead of choosing.
            raise Unauthenticated("initData repeats a field")
        fields[key] = value
    return fields


def _hash(fields: Mapping[str, str], bot_token: str) -> str:
    secret_key = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    data_check_string = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    return hmac.new(secret_key, data_check_string.encode(), hashlib.sha256).hexdigest()
