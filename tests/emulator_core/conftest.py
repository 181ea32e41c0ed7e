"""Fixtures for the MTProto core: an in-process emulator with a stub world, Telethon clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from telethon import TelegramClient
from telethon.network import Connection, ConnectionTcpFull
from telethon.sessions import StringSession

from integration_service.emulator.testing import InProcessEmulator
from integration_service.telegram.endpoint import (
    TelegramEndpoint,
    apply_to_session,
    register_rsa_key,
)
from tests.emulator_core.stub_world import GOOD_BOT_TOKEN, StubWorld

T = TypeVar("T")
API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def emulator_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared so the 2048-bit RSA key is generated once per test session.
    return tmp_path_factory.mktemp("emulator-core")


@pytest.fixture
def world() -> StubWorld:
    return StubWorld()


@pytest.fixture
def emulator(emulator_state_dir: Path, world: StubWorld) -> Iterator[InProcessEmulator]:
    with InProcessEmulator(emulator_state_dir, world) as running:
        yield running


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run one test's async body on a fresh loop, with an overall deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def make_client(
    endpoint: TelegramEndpoint,
    *,
    connection: type[Connection] = ConnectionTcpFull,
    session: str | None = None,
    **options: Any,
) -> TelegramClient:
    """An unmodified Telethon client pointed at the emulator by configuration alone."""
    register_rsa_key(endpoint)
    string_session = StringSession(session)
    apply_to_session(string_session, endpoint)
    options.setdefault("retry_delay", 0.1)
    return TelegramClient(string_session, API_ID, API_HASH, connection=connection, **options)


@contextlib.asynccontextmanager
async def connected(endpoint: TelegramEndpoint, **kwargs: Any) -> AsyncIterator[TelegramClient]:
    client = make_client(endpoint, **kwargs)
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()


async def sign_in_bot(client: TelegramClient) -> Any:
    return await client.sign_in(bot_token=GOOD_BOT_TOKEN)


async def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll a condition until it holds or the deadline passes (then fail)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(interval)
