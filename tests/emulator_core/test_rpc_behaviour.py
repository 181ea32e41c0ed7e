"""RPC semantics through the unmodified Telethon client: errors, containers, gzip, salts,
msg_id recovery, service messages, pushes and response delays."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct
import time
from typing import Any

import pytest
from telethon import errors, events, functions
from telethon.extensions import BinaryReader
from telethon.tl import types
from telethon.tl.tlobject import TLRequest

from integration_service.emulator.testing import InProcessEmulator
from tests.emulator_core.conftest import connected, run, sign_in_bot, wait_for
from tests.emulator_core.stub_world import MANY_USERS, StubWorld


class _RawRequest(TLRequest):
    """A request whose bytes we choose, to send what no generated class would."""

    SUBCLASS_OF_ID = 0x8AF52AAC

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def _bytes(self) -> bytes:
        return self.payload

    @staticmethod
    def read_result(reader: BinaryReader) -> Any:
        return reader.tgread_object()


def test_world_errors_surface_as_telethon_exceptions(emulator: InProcessEmulator) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            with pytest.raises(errors.AccessTokenInvalidError):
                await client.sign_in(bot_token="1:wrong")
            with pytest.raises(errors.AuthKeyUnregisteredError):
                await client(functions.updates.GetStateRequest())
            await sign_in_bot(client)
            with pytest.raises(errors.UsernameNotOccupiedError):
                await client(functions.contacts.ResolveUsernameRequest(username="nobody_here"))

    run(body())


def test_unknown_method_and_malformed_body_are_rpc_errors(emulator: InProcessEmulator) -> None:
    unknown = struct.pack("<I", 0x0BADF00D)
    # users.getUsers with a vector announcing five items and carrying none.
    truncated = struct.pack("<IIi", 0x0D91A548, 0x1CB5C415, 5)

    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            with pytest.raises(errors.InputMethodInvalidError):
                await client(_RawRequest(unknown))
            with pytest.raises(errors.InputFetchErrorError):
                await client(_RawRequest(truncated))
            # The connection is still healthy afterwards.
            assert (await client(functions.PingRequest(ping_id=3))).ping_id == 3

    run(body())
    assert emulator.server.stats["rpc_error_400"] == 2


def test_container_of_several_requests(emulator: InProcessEmulator) -> None:
    async def body() -> list[Any]:
        async with connected(emulator.endpoint) as client:
            await sign_in_bot(client)
            return list(
                await client(
                    [
                        functions.help.GetConfigRequest(),
                        functions.updates.GetStateRequest(),
                        functions.help.GetNearestDcRequest(),
                    ]
                )
            )

    before = emulator.server.stats["containers"]
    config, state, nearest = run(body())
    assert isinstance(config, types.Config)
    assert isinstance(state, types.updates.State) and state.pts == 1
    assert isinstance(nearest, types.NearestDc)
    assert emulator.server.stats["containers"] > before


def test_large_answers_and_requests_travel_gzip_packed(emulator: InProcessEmulator) -> None:
    async def body() -> list[Any]:
        async with connected(emulator.endpoint) as client:
            await sign_in_bot(client)
            users = await client(
                functions.users.GetUsersRequest(
                    id=[types.InputUser(user_id=i, access_hash=0) for i in range(1, MANY_USERS + 1)]
                )
            )
            await client(
                functions.messages.SendMessageRequest(
                    peer=types.InputPeerSelf(), message="long text " * 300, random_id=42
                )
            )
            return list(users)

    users = run(body())
    assert [u.id for u in users] == list(range(1, MANY_USERS + 1))
    assert emulator.server.stats["gzipped_answers"] >= 1
    assert emulator.server.stats["gzipped_requests"] >= 1


def test_wrong_salt_and_clock_skew_are_recovered_transparently(
    emulator: InProcessEmulator,
) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            state = client._sender._state
            state.salt ^= 0x5A5A
            assert isinstance(await client(functions.help.GetConfigRequest()), types.Config)
            # A client clock 10 minutes slow: bad_msg_notification 16, Telethon resyncs.
            state.time_offset -= 600
            state._last_msg_id = 0
            assert (await client(functions.PingRequest(ping_id=9))).ping_id == 9
            assert abs(state.time_offset) < 5

    stats = emulator.server.stats
    before_salt = stats["bad_server_salt"]
    run(body())
    # One at connect (Telethon starts with salt 0), one after we spoiled it.
    assert stats["bad_server_salt"] == before_salt + 2
    assert stats["bad_msg_16"] >= 1


def test_future_salts_and_destroy_session(emulator: InProcessEmulator) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            salts = await client(functions.GetFutureSaltsRequest(num=3))
            assert len(salts.salts) == 3
            assert salts.salts[0].salt == client._sender._state.salt
            assert salts.salts[0].valid_until > dt.datetime.now(dt.UTC)
            own = client._sender._state.id
            answer = await client(functions.DestroySessionRequest(session_id=own))
            assert isinstance(answer, types.DestroySessionNone)  # never the current one

    run(body())


def test_push_to_key_reaches_the_client(emulator: InProcessEmulator) -> None:
    async def body() -> None:
        received: list[Any] = []
        async with connected(emulator.endpoint) as client:
            client.add_event_handler(received.append, events.Raw(types.UpdateLoginToken))
            await client(functions.help.GetConfigRequest())
            update = types.UpdateShort(
                update=types.UpdateLoginToken(), date=dt.datetime.now(dt.UTC)
            )
            sent = await emulator.acall(
                emulator.server.push_to_key(client.session.auth_key.key_id, update)
            )
            assert sent == 1
            await wait_for(lambda: bool(received))
            assert isinstance(received[0], types.UpdateLoginToken)

    run(body())


def test_response_delay_hook_slows_answers(emulator: InProcessEmulator) -> None:
    async def body() -> float:
        async with connected(emulator.endpoint) as client:
            key_id = client.session.auth_key.key_id
            emulator.server.set_response_delay(key_id, 0.6)
            started = time.monotonic()
            await client(functions.help.GetConfigRequest())
            elapsed = time.monotonic() - started
            emulator.server.set_response_delay(key_id, None)
            return elapsed

    assert run(body()) >= 0.6


def test_ping_delay_disconnect_closes_then_telethon_reconnects(
    emulator: InProcessEmulator,
) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            pong = await client(functions.PingDelayDisconnectRequest(ping_id=4, disconnect_delay=1))
            assert pong.ping_id == 4
            await wait_for(lambda: emulator.server.stats["ping_delay_disconnects"] == 1)
            assert isinstance(await client(functions.help.GetConfigRequest()), types.Config)

    run(body())
    assert emulator.server.stats["connections"] >= 2


def test_world_failure_becomes_500_and_the_server_survives(
    emulator: InProcessEmulator, world: StubWorld
) -> None:
    async def explode(request: Any, ctx: Any) -> Any:
        raise RuntimeError("world bug")

    async def body() -> None:
        # Telethon retries 5xx answers; one attempt and "raise the last error" keep it short.
        options = {"request_retries": 1, "raise_last_call_error": True}
        async with connected(emulator.endpoint, **options) as client:
            world.dispatch = explode  # type: ignore[method-assign]
            with pytest.raises(errors.ServerError):
                await client(functions.updates.GetStateRequest())
            assert isinstance(await client(functions.help.GetConfigRequest()), types.Config)

    run(body())
    assert emulator.server.stats["internal_errors"] >= 1


def test_slow_world_gets_an_early_ack(emulator: InProcessEmulator, world: StubWorld) -> None:
    original = world.dispatch

    async def slow(request: Any, ctx: Any) -> Any:
        await asyncio.sleep(0.8)
        return await original(request, ctx)

    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            world.dispatch = slow  # type: ignore[method-assign]
            with pytest.raises(errors.AuthKeyUnregisteredError):
                await client(functions.updates.GetStateRequest())

    run(body())
    assert emulator.server.stats["early_acks"] >= 1


def test_rpc_drop_answer_for_an_unknown_query(emulator: InProcessEmulator) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint) as client:
            dropped = await client(functions.RpcDropAnswerRequest(req_msg_id=4 << 32))
            assert isinstance(dropped, types.RpcAnswerUnknown)

    run(body())
