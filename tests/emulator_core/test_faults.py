"""Faults: garbage clients, dropped connections and AUTH_KEY_DUPLICATED."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
from telethon import errors, functions
from telethon.tl import types

from integration_service.emulator.testing import InProcessEmulator
from tests.emulator_core.conftest import connected, make_client, run, sign_in_bot, wait_for
from tests.emulator_core.raw_client import RawClient
from tests.emulator_core.stub_world import StubWorld

GARBAGE = {
    "random_header": os.urandom(64),
    "intermediate_huge_length": b"\xee\xee\xee\xee" + struct.pack("<I", 0x7FFFFFF0),
    "abridged_huge_length": b"\xef\x7f\xff\xff\xff",
    "full_bad_crc": struct.pack("<ii", 32, 0) + os.urandom(24),
    "full_too_short": struct.pack("<ii", 16, 0) + b"\0" * 8,
    "unaligned_intermediate": b"\xee\xee\xee\xee" + struct.pack("<I", 13) + os.urandom(13),
}


async def _spew(port: int, payload: bytes, *, half_close: bool = False) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = RawClient(reader, writer)
    writer.write(payload)
    if half_close:
        writer.write_eof()
    closed = await raw.closed_by_server()
    await raw.close()
    return closed


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_client_is_disconnected_while_telethon_keeps_working(
    emulator: InProcessEmulator, name: str
) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            assert await _spew(emulator.endpoint.port, GARBAGE[name])
            assert isinstance(await client(functions.help.GetConfigRequest()), types.Config)

    run(body())


def test_truncated_frames_and_many_garbage_clients_at_once(emulator: InProcessEmulator) -> None:
    port = emulator.endpoint.port
    truncated = b"\xee\xee\xee\xee" + struct.pack("<I", 400) + os.urandom(100)

    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            spewers = [_spew(port, truncated, half_close=True) for _ in range(5)]
            spewers += [_spew(port, os.urandom(4096)) for _ in range(5)]
            spewers += [_spew(port, payload) for payload in GARBAGE.values()]
            calls = [client(functions.PingRequest(ping_id=i)) for i in range(20)]
            results = await asyncio.gather(*spewers, *calls)
            assert all(results[: len(spewers)])
            assert [pong.ping_id for pong in results[len(spewers) :]] == list(range(20))
        # Nothing lingers: every garbage connection and the client's are gone.
        await wait_for(lambda: emulator.server.connection_count == 0)

    run(body())
    assert emulator.server.stats["protocol_violations"] >= 10


def test_dropped_connection_telethon_reconnects_and_the_next_call_succeeds(
    emulator: InProcessEmulator,
) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            await sign_in_bot(client)
            key_id = client.session.auth_key.key_id
            dropped = await emulator.acall(emulator.server.drop_connections(key_id))
            assert dropped == 1
            state = await client(functions.updates.GetStateRequest())
            assert isinstance(state, types.updates.State)
            me = await client.get_me()
            assert me is not None

    run(body())
    stats = emulator.server.stats
    assert stats["connections"] >= 2 and stats["dropped_connections"] == 1
    assert stats["auth_key_duplicated"] == 0


def test_reconnecting_with_the_same_key_is_not_a_duplicate(
    emulator: InProcessEmulator, world: StubWorld
) -> None:
    async def body() -> None:
        first = make_client(emulator.endpoint)
        await first.connect()
        await sign_in_bot(first)
        session = first.session.save()
        await first.disconnect()
        for _ in range(3):  # a worker restarting its client quickly, several times
            async with connected(emulator.endpoint, session=session) as again:
                assert (await again.get_me()) is not None

    run(body())
    assert world.invalidated == []
    assert emulator.server.stats["auth_key_duplicated"] == 0


def test_two_open_connections_with_one_authorised_key_burn_it(
    emulator: InProcessEmulator, world: StubWorld
) -> None:
    async def body() -> None:
        first = make_client(emulator.endpoint)
        await first.connect()
        try:
            await sign_in_bot(first)
            session = first.session.save()
            second = make_client(emulator.endpoint, session=session)
            try:
                with pytest.raises(errors.AuthKeyDuplicatedError):
                    await second.connect()
                    await second(functions.updates.GetStateRequest())
            finally:
                await second.disconnect()
            # The key is dead for everyone now, the original connection included.
            with pytest.raises(errors.AuthKeyDuplicatedError):
                await first(functions.updates.GetStateRequest())
        finally:
            await first.disconnect()

    run(body())
    assert [reason for _, reason in world.invalidated] == ["AUTH_KEY_DUPLICATED"]
    assert emulator.server.stats["auth_key_duplicated"] == 1


def test_unauthorised_key_may_use_two_connections(emulator: InProcessEmulator) -> None:
    async def body() -> None:
        first = make_client(emulator.endpoint)
        await first.connect()
        try:
            second = make_client(emulator.endpoint, session=first.session.save())
            await second.connect()
            try:
                await wait_for(lambda: emulator.server.connection_count == 2)
                replies = await asyncio.gather(
                    first(functions.help.GetConfigRequest()),
                    second(functions.help.GetConfigRequest()),
                )
                assert all(isinstance(reply, types.Config) for reply in replies)
            finally:
                await second.disconnect()
        finally:
            await first.disconnect()

    run(body())
    assert emulator.server.stats["auth_key_duplicated"] == 0
