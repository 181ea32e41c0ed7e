"""The API's request and response bodies (what OpenAPI documents)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from integration_service import inputs
from integration_service.channels.targets import channel_target
from integration_service.inputs import MAX_TEXT_LENGTH, InvalidInput
from integration_service.store.records import IDENTIFIER_PATTERN

# An account id is a session's app_id: the store's identifier rule, checked with the other
# parameters (a 422 that lists every problem), before any query sees it.
ACCOUNT_ID_PATTERN = IDENTIFIER_PATTERN.pattern
AccountId = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN, description="the account's app_id")]


class Strict(BaseModel):
    # An unknown field is a mistake the caller wants to hear about, not to have ignored.
    model_config = ConfigDict(extra="forbid")


def _library_rule(check: Callable[[object], object], value: object) -> object:
    """The library's own rule (``inputs``), applied with the other field checks so a 422
    lists every problem; pydantic validators refuse with ValueError."""
    try:
        check(value)
    except InvalidInput as error:
        raise ValueError(error.detail.split(": ", 1)[-1]) from None
    return value


class SendFields(Strict):
    """A send's peer and key, checked by the library's rules."""

    @field_validator("peer", check_fields=False)
    @classmethod
    def _peer(cls, value: object) -> object:
        return _library_rule(inputs.peer, value)

    @field_validator("idempotency_key", check_fields=False)
    @classmethod
    def _key(cls, value: object) -> object:
        return value if value is None else _library_rule(inputs.idempotency_key, value)


class Account(BaseModel):
    id: str = Field(description="the account's app_id, unique within the tenant")
    kind: Literal["user", "bot"]
    state: str
    listening: bool
    telegram_user_id: int | None
    auth_error: str | None
    last_activity_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AccountPage(BaseModel):
    items: list[Account]
    next: str | None = Field(description="pass as ?after= for the next page; null: the last")


class JobAccepted(BaseModel):
    job_id: str
    account_id: str
    task: str


class SendBody(SendFields):
    peer: str | int = Field(description="an @username or a numeric id")
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    idempotency_key: str | None = Field(
        default=None, description="the same key never sends twice (else the header's)"
    )


class BulkItem(SendFields):
    peer: str | int
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    idempotency_key: str | None = None


class BulkBody(Strict):
    messages: list[BulkItem] = Field(min_length=1, max_length=1000)


class MessageAccepted(BaseModel):
    id: str
    account_id: str
    status: str
    idempotency_key: str


class BulkAccepted(BaseModel):
    count: int
    messages: list[MessageAccepted]


class MessageError(BaseModel):
    code: str | None
    detail: str | None


class Message(BaseModel):
    id: str
    account_id: str
    idempotency_key: str
    status: Literal["accepted", "queued", "sent", "failed"]
    peer: str | None
    telegram_message_id: int | None
    attempts: int
    error: MessageError | None
    created_at: datetime
    sent_at: datetime | None


class ChannelBody(Strict):
    account_id: str = Field(
        pattern=ACCOUNT_ID_PATTERN, description="the account or bot that posts to it"
    )
    peer: str | int = Field(
        description=(
            "the channel or group: an @username or t.me/<username> link, an invite link "
            "(t.me/+<hash>: the account joins by it) or a marked id (-100... channels)"
        )
    )

    @field_validator("peer")
    @classmethod
    def _target(cls, value: object) -> object:
        return _library_rule(channel_target, value)


class ChannelSendBody(SendFields):
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    idempotency_key: str | None = Field(
        default=None, description="the same key never sends twice (else the header's)"
    )


class ChannelRightsOut(BaseModel):
    member: bool
    creator: bool
    admin: bool
    can_post: bool = Field(description="whether the account may post in this chat")
    admin_rights: list[str] = Field(description="chatAdminRights flags the account holds")


class ChannelErrorOut(BaseModel):
    code: str
    detail: str | None


class ChannelOut(BaseModel):
    id: str
    account_id: str
    peer: str = Field(description="what it was connected by: @username, +<invite hash> or id")
    status: Literal["pending", "connected", "failed"] = Field(
        description="pending until a worker has checked it with Telegram"
    )
    telegram_id: int | None = Field(description="Telegram's marked id of the chat")
    kind: Literal["channel", "supergroup", "group"] | None
    title: str | None
    username: str | None
    members_count: int | None
    rights: ChannelRightsOut | None = Field(description="the account's rights at the last check")
    error: ChannelErrorOut | None = Field(description="why it could not be connected")
    checked_at: datetime | None = Field(description="the last answer from Telegram")
    created_at: datetime
    updated_at: datetime


class ChannelPage(BaseModel):
    items: list[ChannelOut]
    next: str | None = Field(description="pass as ?after= for the next page; null: the last")


class ConnectBody(Strict):
    method: Literal["qr", "code", "bot"]
    app_id: str = Field(pattern=ACCOUNT_ID_PATTERN)
    phone: str | None = None
    bot_token: str | None = None


class CodeBody(Strict):
    code: str = Field(min_length=1, max_length=16)


class PasswordBody(Strict):
    password: str = Field(min_length=1, max_length=256)


class QrCodeOut(BaseModel):
    url: str = Field(description="sign-in secret: show it to the user only")
    png_base64: str
    expires_at: float | None


class Login(BaseModel):
    id: str
    account_id: str
    method: Literal["qr", "code", "bot"]
    state: Literal[
        "starting", "qr_pending", "code_sent", "password_required", "authorized", "failed"
    ]
    reason: str | None = None
    qr: QrCodeOut | None = None
    created_at: float
