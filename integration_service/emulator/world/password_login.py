"""account.getPassword and auth.checkPassword: the second login factor over SRP.

Each getPassword answer carries a fresh srp_id; only the newest one for the key is
accepted, and only once (a stale or reused id gets SRP_ID_INVALID, as on Telegram).
"""

from __future__ import annotations

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.srp import PasswordRecord, SrpChallenge, password_info
from integration_service.emulator.world.state import PASSWORDS_TABLE, WorldState


class PasswordLogin:
    def __init__(self, state: WorldState) -> None:
        self._state = state
        self._challenges: dict[int, SrpChallenge] = {}  # srp_id -> challenge
        self._latest_by_key: dict[int, int] = {}  # auth key id -> newest srp_id

    def reset(self) -> None:
        self._challenges.clear()
        self._latest_by_key.clear()

    def set_password(self, user_id: int, password: str | None, hint: str | None = None) -> None:
        """Set or (with None) remove a user's 2FA password; open challenges go stale."""
        self._state.directory.require_account(user_id)
        if password is None:
            self._state.passwords.pop(user_id, None)
        else:
            self._state.passwords[user_id] = PasswordRecord.create(password, hint)
        self._state.journal.changed(PASSWORDS_TABLE, user_id)
        for srp_id, challenge in list(self._challenges.items()):
            if challenge.user_id == user_id:
                del self._challenges[srp_id]

    def _user_for(self, auth_key_id: int) -> int:
        key = self._state.keys.get(auth_key_id)
        user_id = key.user_id if key.user_id is not None else key.password_pending_user
        if user_id is None:
            raise RpcError(401, "AUTH_KEY_UNREGISTERED")
        return user_id

    async def get_password(
        self, request: functions.account.GetPasswordRequest, ctx: CallContext
    ) -> types.account.Password:
        user_id = self._user_for(ctx.auth_key_id)
        record = self._state.passwords.get(user_id)
        if record is None:
            return password_info(None)
        challenge = SrpChallenge.create(user_id, ctx.auth_key_id, record)
        previous = self._latest_by_key.get(ctx.auth_key_id)
        if previous is not None:
            self._challenges.pop(previous, None)
        self._challenges[challenge.srp_id] = challenge
        self._latest_by_key[ctx.auth_key_id] = challenge.srp_id
        return password_info(challenge)

    async def check_password(
        self, request: functions.auth.CheckPasswordRequest, ctx: CallContext
    ) -> types.auth.Authorization:
        user_id = self._user_for(ctx.auth_key_id)
        proof = request.password
        if not isinstance(proof, types.InputCheckPasswordSRP):
            raise RpcError(400, "PASSWORD_HASH_INVALID")
        challenge = self._challenges.pop(proof.srp_id, None)
        if (
            challenge is None
            or challenge.auth_key_id != ctx.auth_key_id
            or challenge.user_id != user_id
            or self._state.passwords.get(user_id) is not challenge.record
        ):
            raise RpcError(400, "SRP_ID_INVALID")
        self._latest_by_key.pop(ctx.auth_key_id, None)
        if not challenge.verify(proof.A, proof.M1):
            raise RpcError(400, "PASSWORD_HASH_INVALID")
        account = self._state.directory.require_account(user_id)
        return self._state.sign_in(ctx.auth_key_id, account)
