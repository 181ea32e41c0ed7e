"""A tiny World for testing the MTProto core on its own (the real one lives in world/)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext, RpcError

GOOD_BOT_TOKEN = "4242:core-test-token"
MANY_USERS = 300


def _user(user_id: int, *, is_self: bool = False) -> types.User:
    return types.User(
        id=user_id,
        is_self=is_self,
        bot=True,
        access_hash=user_id * 7919,
        first_name=f"Core test bot number {user_id} with a long name to make answers big",
        username=f"core_test_bot_{user_id}",
        bot_info_version=1,
    )


class StubWorld:
    """Bot login, get_me, GetState and a few errors; enough to exercise every core path."""

    def __init__(self) -> None:
        self.authorized: dict[int, int] = {}
        self.invalidated: list[tuple[int, str]] = []
        self.closed_connections: list[tuple[int, int]] = []
        self.calls: list[str] = []
        self.contexts: list[CallContext] = []
        self._next_user = 1000

    def is_authorized(self, auth_key_id: int) -> bool:
        return auth_key_id in self.authorized

    def invalidate_key(self, auth_key_id: int, reason: str) -> None:
        self.authorized.pop(auth_key_id, None)
        self.invalidated.append((auth_key_id, reason))

    def connection_closed(self, auth_key_id: int, connection_id: int) -> None:
        self.closed_connections.append((auth_key_id, connection_id))

    async def dispatch(self, request: Any, ctx: CallContext) -> Any:
        self.calls.append(type(request).__name__)
        self.contexts.append(ctx)
        if isinstance(request, functions.auth.ImportBotAuthorizationRequest):
            if request.bot_auth_token != GOOD_BOT_TOKEN:
                raise RpcError(400, "ACCESS_TOKEN_INVALID")
            self._next_user += 1
            self.authorized[ctx.auth_key_id] = self._next_user
            return types.auth.Authorization(user=_user(self._next_user, is_self=True))
        user_id = self.authorized.get(ctx.auth_key_id)
        if user_id is None:
            raise RpcError(401, "AUTH_KEY_UNREGISTERED")
        if isinstance(request, functions.users.GetUsersRequest):
            return [
                _user(user_id, is_self=True)
                if isinstance(wanted, types.InputUserSelf)
                else _user(wanted.user_id)
                for wanted in request.id
            ]
        if isinstance(request, functions.updates.GetStateRequest):
            return types.updates.State(
                pts=1, qts=0, date=dt.datetime.now(dt.UTC), seq=1, unread_count=0
            )
        if isinstance(request, functions.updates.GetDifferenceRequest):
            return types.updates.DifferenceEmpty(date=dt.datetime.now(dt.UTC), seq=1)
        if isinstance(request, functions.contacts.ResolveUsernameRequest):
            raise RpcError(400, "USERNAME_NOT_OCCUPIED")
        if isinstance(request, functions.messages.SendMessageRequest):
            return types.UpdateShortSentMessage(
                id=len(self.calls), pts=1, pts_count=1, date=dt.datetime.now(dt.UTC)
            )
        raise RpcError(400, "INPUT_METHOD_INVALID")
