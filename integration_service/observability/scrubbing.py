"""Remove secrets from log events before they are rendered.

DESIGN.md ("Secrets"): no session string, auth key, login code, password or token may
reach a log line. Callers are careful, but one f-string in an exception message is enough
to leak a session, so every line passes through ``scrub_secrets`` last, just before the
JSON renderer: keys and values, recursively, plus the rendered event and traceback text.

Secrets become ``[REDACTED:<kind>]``; phone numbers keep their last two digits so an
operator can still tell two accounts apart (``+*********12``). The scrubber must never
lose a line: if it fails internally the whole event is replaced by a safe marker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import structlog

MAX_DEPTH = 12
SCRUBBER_FAILED = "[REDACTED:scrubber_failed]"


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Most log strings contain none of these, so the precise patterns below are skipped.
_MAYBE_SECRET = re.compile(r"\d{5}|[A-Za-z0-9+/_=-]{24}|://|\+\d")
_MAYBE_SECRET_WORDS = re.compile(
    r"pass|pwd|token|secret|api_|auth|cookie|bearer|basic|code|код|пароль|dev-"
)

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(?=@)")
_BEARER = re.compile(r"(?i)\b((?:bearer|basic)\s+)(?!\[REDACTED)([A-Za-z0-9._~+/=-]{8,})")
_SENSITIVE_NAME = (
    r"password|passwd|passphrase|pwd|secret|token|api_hash|api_key|authorization|cookie"
    r"|session_string|string_session|auth_key|пароль"
)
# `name=value`, `name: value` and JSON-ish `"name": "value"` inside free text.
_KEY_VALUE = re.compile(
    rf"(?i)(?=[pstacп])((?:{_SENSITIVE_NAME})[\w-]*[\"']?\s*[=:]\s*[\"']?)"
    r"(?!\[REDACTED|(?:bearer|basic)\s)([^\s\"',;&)}\]]+)"
)
_BOT_TOKEN = re.compile(r"(?<![\w])\d{3,}:[A-Za-z0-9_-]{30,}")
_VAULT_TOKEN = re.compile(
    r"(?<![\w.-])(?:hv[sbr]\.[A-Za-z0-9_-]{20,}|[sbr]\.[A-Za-z0-9]{24}(?![A-Za-z0-9]))"
)
_DEV_TOKEN = re.compile(r"(?<![\w.-])dev-[A-Za-z0-9_-]{6,}")
# Telethon's StringSession: version "1" + urlsafe base64 of dc, address, port, auth key.
_STRING_SESSION = re.compile(r"(?<![A-Za-z0-9_+/-])1[A-Za-z0-9_-]{100,}={0,2}")
_HEX_KEY = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64,}(?![0-9A-Fa-f])")
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{40,}={0,2}")
# A whole word or a snake_case tail ("phone_code"), not "decode" or "unicode".
_CODE_WORD = r"(?:\b|(?<=_))(?:code|код|otp|pin)"
_CODE_DIGITS = r"(?<!\d)(\d{5,6}|\d{3}[ -]\d{2,3})(?!\d)"
# Up to three words may sit between the word and the digits: "Код подтверждения: 12345".
_CODE_AFTER_WORD = re.compile(
    rf"(?i)({_CODE_WORD}\w*\W{{1,4}}(?:[^\W\d]+\W{{1,3}}){{0,3}}?){_CODE_DIGITS}"
)
_CODE_BEFORE_WORD = re.compile(
    rf"(?i)(?<![\d+])(\d{{5,6}})(?!\d)(?=\W{{1,4}}(?:[^\W\d]+\W{{1,3}}){{0,3}}?{_CODE_WORD})"
)
_PHONE = re.compile(r"(?<![\w+.-])(\+?)(\d{10,15})(?![\d])")
_FORMATTED_PHONE = re.compile(r"(?<![\w+])\+(\d(?:[ ().-]{0,2}\d){9,14})(?!\d)")


def mask_phone(digits: str, plus: bool) -> str:
    """``+79161234512`` -> ``+*********12``: enough to tell accounts apart, no more."""
    return ("+" if plus else "") + "*" * max(0, len(digits) - 2) + digits[-2:]


def _looks_random(run: str) -> bool:
    # Identifiers, paths and words are rarely a mix of upper, lower and digits; keys are.
    return (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
    )


def _sub_base64(match: re.Match[str]) -> str:
    return marker("secret") if _looks_random(match.group(0)) else match.group(0)


def _sub_dev_token(match: re.Match[str]) -> str:
    text = match.group(0)
    lowered = text.lower()
    if "root" in lowered or "token" in lowered or _looks_random(text):
        return marker("token")
    return text


def _sub_key_value(match: re.Match[str]) -> str:
    return match.group(1) + marker(key_kind(match.group(1)) or "secret")


def _sub_phone(match: re.Match[str]) -> str:
    return mask_phone(match.group(2), bool(match.group(1)))


def _sub_formatted_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(1))
    return mask_phone(digits, True) if 10 <= len(digits) <= 15 else match.group(0)


# Order matters: long opaque secrets go first, so later (slower) rules scan short text.
_TEXT_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_URL_PASSWORD, r"\1" + marker("password")),
    (_BOT_TOKEN, marker("token")),
    (_VAULT_TOKEN, marker("token")),
    (_DEV_TOKEN, _sub_dev_token),
    # Hex first: a hex key that happens to start with "1" also fits the session shape.
    (_HEX_KEY, marker("auth_key")),
    (_STRING_SESSION, marker("session")),
    (_BASE64_RUN, _sub_base64),
    (_BEARER, r"\1" + marker("token")),
    (_KEY_VALUE, _sub_key_value),
    (_CODE_AFTER_WORD, r"\1" + marker("code")),
    (_CODE_BEFORE_WORD, marker("code")),
    (_FORMATTED_PHONE, _sub_formatted_phone),
    (_PHONE, _sub_phone),
)


# Short strings already found clean (event names, logger names, ids): most lines repeat
# them, so a set lookup replaces the scan. Only clean strings are kept, never secrets.
_KNOWN_CLEAN: set[str] = set()
_KNOWN_CLEAN_MAX_LEN = 160
_KNOWN_CLEAN_MAX_SIZE = 8192


def _might_hold_secret(text: str) -> bool:
    return bool(_MAYBE_SECRET.search(text) or _MAYBE_SECRET_WORDS.search(text.lower()))


def _remember_clean(text: str) -> None:
    if len(text) <= _KNOWN_CLEAN_MAX_LEN:
        if len(_KNOWN_CLEAN) >= _KNOWN_CLEAN_MAX_SIZE:
            _KNOWN_CLEAN.clear()
        _KNOWN_CLEAN.add(text)


def scrub_text(text: str) -> str:
    """``text`` with every recognisable secret replaced by a marker; never raises."""
    try:
        if text in _KNOWN_CLEAN:
            return text
        if not _might_hold_secret(text):
            _remember_clean(text)
            return text
        scrubbed = text
        for pattern, replacement in _TEXT_RULES:
            scrubbed = pattern.sub(replacement, scrubbed)
        if scrubbed == text:
            _remember_clean(text)
        return scrubbed
    except Exception:  # noqa: BLE001 - a scrubber must never lose the line
        return SCRUBBER_FAILED


_CODE_KEYS = frozenset(
    {
        "code",
        "phone_code",
        "login_code",
        "auth_code",
        "sms_code",
        "verification_code",
        "confirmation_code",
        "otp",
        "otp_code",
    }
)
_PASSWORD_PARTS = ("password", "passwd", "passphrase", "pwd", "2fa", "srp", "пароль")
_TOKEN_PARTS = (
    "token",
    "secret",
    "api_hash",
    "api_key",
    "authorization",
    "cookie",
    "credential",
    "private_key",
    "phone_code_hash",
    "hmac",
)
_SESSION_PARTS = ("session_string", "string_session", "session_str", "session_material")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


@lru_cache(maxsize=4096)
def key_kind(key: str) -> str | None:
    """Which secret a key name announces (``password``, ``token``, ...), or None."""
    name = key.strip().strip("\"'=: ").lower().replace("-", "_")
    if "auth_key" in name or name == "authkey":
        return "auth_key"
    if any(part in name for part in _SESSION_PARTS):
        return "session"
    if any(part in name for part in _TOKEN_PARTS):
        return "token"
    if any(part in name for part in _PASSWORD_PARTS) or name in ("pass", "twofa"):
        return "password"
    if name in _CODE_KEYS:
        return "code"
    if "phone" in name:
        return "phone"
    return None


def _scrub_under(kind: str, key: str, value: Any) -> Any:
    """A value stored under a key that names a secret."""
    if value is None or isinstance(value, bool) or value == "":
        return value  # flags and absences carry nothing secret
    if kind == "phone":
        if isinstance(value, int):
            return mask_phone(str(abs(value)), False)
        if isinstance(value, str):
            digits = re.sub(r"\D", "", value)
            if len(digits) < 5:
                return scrub_text(value)
            return mask_phone(digits, value.lstrip().startswith("+"))
        return marker("phone")
    if kind == "code" and key.lower() == "code" and isinstance(value, str):
        # `code` also names error codes ("stale_epoch"); a login code is digits.
        if _IDENTIFIER.fullmatch(value):
            return value
    return marker(kind)


def _scrub_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return marker("too_deep")
    if isinstance(value, Mapping):
        return _scrub_mapping(value, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_scrub_value(item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        # 32 bytes is already an AES key; Telegram's auth keys are 256.
        return marker("auth_key") if len(raw) >= 32 else scrub_text(repr(raw))
    return scrub_text(str(value))


def _scrub_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    cleaned: dict[Any, Any] = {}
    for key, value in mapping.items():
        if isinstance(key, str):
            kind = key_kind(key)
            safe_key: Any = scrub_text(key)
        else:
            kind = None
            safe_key = _scrub_value(key, depth) if not isinstance(key, int | float) else key
        if kind is not None:
            cleaned[safe_key] = _scrub_under(kind, key, value)
        else:
            cleaned[safe_key] = _scrub_value(value, depth)
    return cleaned


# Added by our own processors, never by callers: not worth scanning on every line.
_TRUSTED_KEYS = frozenset({"timestamp", "level", "logger", "_record", "_from_structlog"})
# Context fields holding a validated identifier (inputs.identifier, Celery's task ids, the
# worker's name): kept as they are, so an app called "code-001301" stays recognisable
# instead of reading as a login code. A value with a phone-length digit run (an app named
# after its phone number) or longer than an id is scrubbed like any other text.
_ID_FIELDS = frozenset({"tenant_id", "app_id", "task_id", "worker", "ticket_id"})
_ID_VALUE = re.compile(r"(?!.*\d{7})[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")


def scrub_secrets(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: scrub keys, values, the event and any traceback text."""
    try:
        if event_dict.get("exc_info"):
            # Render the traceback here so its text is scrubbed, whatever the chain order.
            event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
        cleaned: dict[str, Any] = {}
        for key, value in event_dict.items():
            if key in _TRUSTED_KEYS or (
                key in _ID_FIELDS and isinstance(value, str) and _ID_VALUE.fullmatch(value)
            ):
                cleaned[key] = value
                continue
            kind = key_kind(key) if isinstance(key, str) else None
            safe_key = scrub_text(key) if isinstance(key, str) else str(key)
            if kind is not None:
                cleaned[safe_key] = _scrub_under(kind, key, value)
            else:
                cleaned[safe_key] = _scrub_value(value, 0)
        return cleaned
    except Exception as error:  # noqa: BLE001 - a scrubber must never lose the line
        return _safe_replacement(event_dict, error)


def _safe_replacement(event_dict: Any, error: Exception) -> dict[str, Any]:
    safe: dict[str, Any] = {"event": SCRUBBER_FAILED, "scrubber_error": type(error).__name__}
    try:
        for key in ("timestamp", "level"):
            if isinstance(event_dict.get(key), str):
                safe[key] = event_dict[key]
    except Exception:  # noqa: BLE001, S110 - the marker line is all we can keep
        pass
    return safe
