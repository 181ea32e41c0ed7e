"""Helpers for driving a TelegramWorld directly with real Telethon request objects."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from telethon.tl import functions, types
from telethon.tl.tlobject import TLObject

from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world import TelegramWorld

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"

T = TypeVar("T")
_ids = itertools.count(1000)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class ManualClock:
    """A clock the test moves by hand (the world takes any ``() -> float``)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Client:
    """One auth key with one connection; records what the world pushes to it."""

    world: TelegramWorld
    auth_key_id: int = field(default_factory=lambda: next(_ids))
    connection_id: int = field(default_factory=lambda: next(_ids))
    pushed: list[Any] = field(default_factory=list)

    def ctx(self) -> CallContext:
        async def push(update: Any) -> None:
            self.pushed.append(update)

        return CallContext(
            auth_key_id=self.auth_key_id,
            connection_id=self.connection_id,
            session_id=self.auth_key_id * 7,
            push=push,
        )

    async def call(self, request: Any) -> Any:
        answer = await self.world.dispatch(request, self.ctx())
        if isinstance(answer, TLObject):
            bytes(answer)  # what the core would send: the TL schema's flags must hold
        return answer

    async def fails(self, request: Any, code: int, message: str) -> RpcError:
        with pytest.raises(RpcError) as caught:
            await self.call(request)
        assert (caught.value.code, caught.value.message) == (code, message)
        return caught.value

    async def send_code(self, phone: str) -> str:
        sent = await self.call(
            functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings())
        )
        assert isinstance(sent, types.auth.SentCode)
        return str(sent.phone_code_hash)

    async def login(self, phone: str) -> types.auth.Authorization:
        """Code login for an account without 2FA."""
        code_hash = await self.send_code(phone)
        found = self.world.last_login_code(phone)
        assert found is not None
        result = await self.call(functions.auth.SignInRequest(phone, code_hash, found[0]))
        assert isinstance(result, types.auth.Authorization)
        return result

    async def me(self) -> types.User:
        users = await self.call(functions.users.GetUsersRequest([types.InputUserSelf()]))
        assert len(users) == 1
        return users[0]


def new_world(clock: ManualClock | None = None, **options: Any) -> TelegramWorld:
    return TelegramWorld(clock=clock or ManualClock(), **options)
