"""Validation of every job input, at the two boundaries, into typed values.

Input is validated once where it enters: the producer API validates a caller's
arguments before anything is enqueued, and a job's payload is parsed again at the task
boundary (``tasks/``), because a message can reach a queue without the producer (another
service publishing directly, an operator re-driving a dead letter). Both build the same
typed value (``SendRequest``, ``SessionKey``, ``Peer``); the domain functions take those
and never validate again. Each failure is its own error class with a message that names
the field and never echoes a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from integration_service.errors import PermanentError
from integration_service.store.records import IDENTIFIER_PATTERN, SessionKey

MAX_TEXT_LENGTH = 4096  # Telegram's limit for one text message
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
USERNAME = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
BOT_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
LOGIN_CODE = re.compile(r"^[0-9]{5,6}$")
MAX_PASSWORD_LENGTH = 256


class InvalidInput(PermanentError):
    """A job input is malformed; nothing was enqueued or changed."""

    code = "invalid_input"
    field: str = ""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", code=f"invalid_{field}")
        self.field = field


def _require_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    return value


def identifier(field: str, value: object) -> str:
    text = _require_str(field, value)
    if not IDENTIFIER_PATTERN.match(text):
        raise InvalidInput(
            field, "must be 1-64 characters of letters, digits, '_', '.', '-' (no ':')"
        )
    return text


def session_key(tenant_id: object, app_id: object) -> SessionKey:
    return SessionKey(identifier("tenant_id", tenant_id), identifier("app_id", app_id))


def phone(value: object) -> str:
    text = _require_str("phone", value)
    if not E164.match(text):
        raise InvalidInput("phone", "must be in E.164 form, e.g. +4915112345678")
    return text


@dataclass(frozen=True, slots=True)
class Peer:
    """A destination: a marked Telegram id (users > 0, chats/channels < 0) or a username."""

    username: str | None = None
    peer_id: int | None = None

    def __str__(self) -> str:
        return self.username if self.username is not None else str(self.peer_id)


def peer(value: object) -> Peer:
    if isinstance(value, bool):
        raise InvalidInput("peer", "must be a numeric id or an @username")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.startswith("@"):
        if not USERNAME.match(value):
            raise InvalidInput("peer", "username must be @ and 4-32 letters, digits or '_'")
        return Peer(username=value.lower())
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):
        number = int(value)
    else:
        raise InvalidInput("peer", "must be a numeric id or an @username")
    if number == 0 or not -(2**63) < number < 2**63:
        raise InvalidInput("peer", "id is out of range")
    return Peer(peer_id=number)


def message_text(value: object) -> str:
    text = _require_str("text", value)
    if not text.strip():
        raise InvalidInput("text", "must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput("text", f"is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
    return text


def idempotency_key(value: object) -> str:
    text = _require_str("idempotency_key", value)
    if not IDEMPOTENCY_KEY.match(text):
        raise InvalidInput(
            "idempotency_key", "must be 1-128 characters of letters, digits, '_', '.', ':', '-'"
        )
    return text


def bot_token(value: object) -> str:
    text = _require_str("bot_token", value)
    if not BOT_TOKEN.match(text):
        raise InvalidInput("bot_token", "is not of the form <bot id>:<secret>")
    return text


def login_code(value: object) -> str:
    text = _require_str("code", value)
    if not LOGIN_CODE.match(text):
        raise InvalidInput("code", "must be 5 or 6 digits")
    return text


def password(value: object) -> str:
    text = _require_str("password", value)
    if not text or len(text) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be 1-{MAX_PASSWORD_LENGTH} characters")
    return text


# SendRequest.parse's parameters share these validators' names.
_peer, _idempotency_key = peer, idempotency_key


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One send, validated: built by ``parse`` (the producer) or ``from_job`` (a worker).

    Construct it through those two only; the fields are then known to be valid.
    """

    key: SessionKey
    peer: Peer
    text: str
    idempotency_key: str

    @classmethod
    def parse(
        cls,
        tenant_id: object,
        app_id: object,
        peer: object,
        text: object,
        idempotency_key: object,
    ) -> SendRequest:
        """Validate every field; InvalidInput names the first one that is wrong."""
        return cls(
            session_key(tenant_id, app_id),
            _peer(peer),
            message_text(text),
            _idempotency_key(idempotency_key),
        )

    @classmethod
    def from_job(cls, kwargs: Mapping[str, object]) -> SendRequest:
        """The request a send job's keyword arguments carry (``job_kwargs``' inverse)."""
        return cls.parse(
            kwargs.get("tenant_id"),
            kwargs.get("app_id"),
            kwargs.get("peer"),
            kwargs.get("text"),
            kwargs.get("idempotency_key"),
        )

    def job_kwargs(self) -> dict[str, str]:
        """The send job's keyword arguments (JSON: the peer as its text form)."""
        return {
            "tenant_id": self.key.tenant_id,
            "app_id": self.key.app_id,
            "peer": str(self.peer),
            "text": self.text,
            "idempotency_key": self.idempotency_key,
        }
