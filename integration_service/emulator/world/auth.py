"""Code login, bot login and log-out (auth.sendCode / signIn / importBotAuthorization / logOut).

A login code belongs to the auth key that asked for it: the phone_code_hash is worthless
on any other key, as on Telegram. The code itself is never logged; tests read it through
the control API.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.accounts import is_valid_phone, normalize_phone
from integration_service.emulator.world.state import WorldState

CODE_LENGTH = 5
# wrong guesses allowed before Telegram burns the code
MAX_CODE_ATTEMPTS = 5
# saved whole (a handful of codes in flight): the journal notes the table, not a row
LOGIN_CODES_TABLE = "login_codes"


@dataclass
class PendingCode:
    phone: str
    code: str
    phone_code_hash: str
    auth_key_id: int
    expires_at: float
    wrong_attempts: int = 0


class CodeLogin:
    def __init__(self, state: WorldState, code_ttl: float) -> None:
        self._state = state
        self._code_ttl = code_ttl
        self._pending: dict[str, PendingCode] = {}  # phone_code_hash -> pending code
        self._last_code_by_phone: dict[str, PendingCode] = {}

    def last_code(self, phone: str) -> PendingCode | None:
        return self._last_code_by_phone.get(normalize_phone(phone))

    def reset(self) -> None:
        self._pending.clear()
        self._last_code_by_phone.clear()

    def snapshot(self) -> list[tuple[PendingCode, bool, bool]]:
        """Every code worth keeping: (code, still usable, newest for its phone)."""
        latest = {id(code) for code in self._last_code_by_phone.values()}
        codes = {id(code): code for code in self._pending.values()}
        codes.update((id(code), code) for code in self._last_code_by_phone.values())
        return [
            (code, code.phone_code_hash in self._pending, id(code) in latest)
            for code in codes.values()
        ]

    def restore(self, saved: list[tuple[PendingCode, bool, bool]]) -> None:
        self.reset()
        for code, usable, newest in saved:
            if usable:
                self._pending[code.phone_code_hash] = code
            if newest:
                self._last_code_by_phone[code.phone] = code

    def _changed(self) -> None:
        self._state.journal.changed(LOGIN_CODES_TABLE, None)

    async def send_code(
        self, request: functions.auth.SendCodeRequest, ctx: CallContext
    ) -> types.auth.SentCode:
        if request.api_id <= 0 or not request.api_hash:
            raise RpcError(400, "API_ID_INVALID")
        if not is_valid_phone(request.phone_number):
            raise RpcError(400, "PHONE_NUMBER_INVALID")
        phone = normalize_phone(request.phone_number)
        account = self._state.directory.by_phone(phone)
        if account is not None and account.banned:
            raise RpcError(400, "PHONE_NUMBER_BANNED")
        # Unregistered numbers get a code too: Telegram only reveals "sign up required"
        # after the code is proven (auth.authorizationSignUpRequired).
        pending = PendingCode(
            phone=phone,
            code="".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH)),
            phone_code_hash=secrets.token_hex(9),
            auth_key_id=ctx.auth_key_id,
            expires_at=self._state.now() + self._code_ttl,
        )
        self._pending[pending.phone_code_hash] = pending
        self._last_code_by_phone[phone] = pending
        self._changed()
        return types.auth.SentCode(
            type=types.auth.SentCodeTypeApp(length=CODE_LENGTH),
            phone_code_hash=pending.phone_code_hash,
            next_type=types.auth.CodeTypeSms(),
            timeout=int(self._code_ttl),
        )

    async def sign_in(
        self, request: functions.auth.SignInRequest, ctx: CallContext
    ) -> types.auth.Authorization | types.auth.AuthorizationSignUpRequired:
        if not is_valid_phone(request.phone_number):
            raise RpcError(400, "PHONE_NUMBER_INVALID")
        if not request.phone_code_hash:
            raise RpcError(400, "PHONE_CODE_HASH_EMPTY")
        if not request.phone_code:
            raise RpcError(400, "PHONE_CODE_EMPTY")
        phone = normalize_phone(request.phone_number)
        pending = self._pending.get(request.phone_code_hash)
        # A hash from another key or for another number is as good as an expired one.
        if pending is None or pending.phone != phone or pending.auth_key_id != ctx.auth_key_id:
            raise RpcError(400, "PHONE_CODE_EXPIRED")
        if self._state.now() >= pending.expires_at:
            self._drop(pending)
            raise RpcError(400, "PHONE_CODE_EXPIRED")
        if not secrets.compare_digest(pending.code, request.phone_code):
            pending.wrong_attempts += 1
            self._changed()
            if pending.wrong_attempts >= MAX_CODE_ATTEMPTS:
                self._drop(pending)
            raise RpcError(400, "PHONE_CODE_INVALID")
        self._drop(pending)
        account = self._state.directory.by_phone(phone)
        if account is None:
            return types.auth.AuthorizationSignUpRequired()
        return self._state.finish_login(ctx.auth_key_id, account)

    async def import_bot_authorization(
        self, request: functions.auth.ImportBotAuthorizationRequest, ctx: CallContext
    ) -> types.auth.Authorization:
        if request.api_id <= 0 or not request.api_hash:
            raise RpcError(400, "API_ID_INVALID")
        account = self._state.directory.by_bot_token(request.bot_auth_token)
        if account is None:
            raise RpcError(400, "ACCESS_TOKEN_INVALID")
        if account.banned:
            raise RpcError(401, "USER_DEACTIVATED_BAN")
        return self._state.sign_in(ctx.auth_key_id, account)

    async def log_out(
        self, request: functions.auth.LogOutRequest, ctx: CallContext
    ) -> types.auth.LoggedOut:
        self._state.keys.unbind(ctx.auth_key_id)
        return types.auth.LoggedOut()

    def _drop(self, pending: PendingCode) -> None:
        self._pending.pop(pending.phone_code_hash, None)
        self._changed()
