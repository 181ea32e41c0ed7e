"""QR login: auth.exportLoginToken, approval by a signed-in user, auth.acceptLoginToken.

The exporting client polls nothing: it waits for ``updateLoginToken`` pushed to its
connection after approval, then calls exportLoginToken again and gets the authorisation
(or SESSION_PASSWORD_NEEDED when the approving account has 2FA). Only the newest token
of a key is alive, and an expired token cannot be approved.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.peers import tl_date
from integration_service.emulator.world.state import WorldState

PushToKey = Callable[[int, Any], Awaitable[int]]
# saved whole (a handful of tokens alive): the journal notes the table, not a row
LOGIN_TOKENS_TABLE = "login_tokens"


@dataclass
class LoginTokenRecord:
    token: bytes
    auth_key_id: int
    expires_at: float
    client_info: dict[str, Any]
    approved_by: int | None = None


class QrLogin:
    def __init__(self, state: WorldState, push_to_key: PushToKey, token_ttl: float) -> None:
        self._state = state
        self._push_to_key = push_to_key
        self._token_ttl = token_ttl
        self._tokens: dict[bytes, LoginTokenRecord] = {}
        self._latest_by_key: dict[int, bytes] = {}

    def reset(self) -> None:
        self._tokens.clear()
        self._latest_by_key.clear()

    def snapshot(self) -> list[LoginTokenRecord]:
        """Every live token (each key's newest is the only one it has)."""
        return list(self._tokens.values())

    def restore(self, tokens: list[LoginTokenRecord]) -> None:
        self.reset()
        for record in tokens:
            self._tokens[record.token] = record
            self._latest_by_key[record.auth_key_id] = record.token

    def _changed(self) -> None:
        self._state.journal.changed(LOGIN_TOKENS_TABLE, None)

    async def export_login_token(
        self, request: functions.auth.ExportLoginTokenRequest, ctx: CallContext
    ) -> types.auth.LoginToken | types.auth.LoginTokenSuccess:
        if request.api_id <= 0 or not request.api_hash:
            raise RpcError(400, "API_ID_INVALID")
        current = self._latest_by_key.get(ctx.auth_key_id)
        record = self._tokens.get(current) if current is not None else None
        if record is not None and record.approved_by is not None:
            self._forget(record)
            account = self._state.directory.require_account(record.approved_by)
            # raises SESSION_PASSWORD_NEEDED when the account has 2FA
            return types.auth.LoginTokenSuccess(self._state.finish_login(ctx.auth_key_id, account))
        if record is not None:
            self._forget(record)
        record = LoginTokenRecord(
            token=secrets.token_bytes(32),
            auth_key_id=ctx.auth_key_id,
            # whole seconds: the client only ever sees the TL date, so agree with it
            expires_at=float(int(self._state.now() + self._token_ttl)),
            client_info=dict(ctx.client_info),
        )
        self._tokens[record.token] = record
        self._latest_by_key[ctx.auth_key_id] = record.token
        self._changed()
        return types.auth.LoginToken(expires=tl_date(record.expires_at), token=record.token)

    async def approve(self, token: bytes, user_id: int) -> LoginTokenRecord:
        """A signed-in user scanned the code: remember who, and wake the exporting client."""
        record = self._tokens.get(token)
        if record is None:
            raise RpcError(400, "AUTH_TOKEN_INVALID")
        if record.approved_by is not None:
            raise RpcError(400, "AUTH_TOKEN_ALREADY_ACCEPTED")
        if self._state.now() >= record.expires_at:
            raise RpcError(400, "AUTH_TOKEN_EXPIRED")
        account = self._state.directory.require_account(user_id)
        if account.is_bot:
            raise RpcError(400, "BOT_METHOD_INVALID")
        if account.banned:
            raise RpcError(401, "USER_DEACTIVATED_BAN")
        record.approved_by = user_id
        self._changed()
        await self._push_to_key(
            record.auth_key_id,
            types.UpdateShort(update=types.UpdateLoginToken(), date=tl_date(self._state.now())),
        )
        return record

    async def accept_login_token(
        self, request: functions.auth.AcceptLoginTokenRequest, ctx: CallContext
    ) -> types.Authorization:
        user_id = self._state.keys.user_of(ctx.auth_key_id)
        if user_id is None:
            raise RpcError(401, "AUTH_KEY_UNREGISTERED")
        record = await self.approve(request.token, user_id)
        info = record.client_info
        now = tl_date(self._state.now())
        return types.Authorization(
            hash=secrets.randbits(63),
            device_model=str(info.get("device_model", "Unknown")),
            platform=str(info.get("platform", "")),
            system_version=str(info.get("system_version", "")),
            api_id=int(info.get("api_id", 0)),
            app_name=str(info.get("app_name", "")),
            app_version=str(info.get("app_version", "")),
            date_created=now,
            date_active=now,
            ip="127.0.0.1",
            country="",
            region="",
        )

    def _forget(self, record: LoginTokenRecord) -> None:
        self._tokens.pop(record.token, None)
        if self._latest_by_key.get(record.auth_key_id) == record.token:
            del self._latest_by_key[record.auth_key_id]
        self._changed()
