"""Key exchange, encryption and basic calls over every TCP transport Telethon offers."""

from __future__ import annotations

import json
import stat

import pytest
from telethon import functions
from telethon.network import (
    Connection,
    ConnectionTcpAbridged,
    ConnectionTcpFull,
    ConnectionTcpIntermediate,
    ConnectionTcpObfuscated,
)
from telethon.tl import types

from integration_service.emulator.testing import InProcessEmulator
from integration_service.telegram.endpoint import load_endpoint
from tests.emulator_core.conftest import connected, run, sign_in_bot


@pytest.mark.parametrize(
    "connection",
    [ConnectionTcpFull, ConnectionTcpAbridged, ConnectionTcpIntermediate, ConnectionTcpObfuscated],
)
def test_key_exchange_config_and_ping_over_each_transport(
    emulator: InProcessEmulator, connection: type[Connection]
) -> None:
    async def body() -> None:
        async with connected(emulator.endpoint, connection=connection) as client:
            config = await client(functions.help.GetConfigRequest())
            assert config.this_dc == emulator.endpoint.dc_id
            assert [(o.ip_address, o.port) for o in config.dc_options] == [
                ("127.0.0.1", emulator.endpoint.port)
            ]
            pong = await client(functions.PingRequest(ping_id=777))
            assert isinstance(pong, types.Pong) and pong.ping_id == 777
            nearest = await client(functions.help.GetNearestDcRequest())
            assert nearest.this_dc == emulator.endpoint.dc_id
            assert client.session.auth_key.key_id in emulator.server.keys

    run(body())
    assert emulator.server.stats["auth_keys_created"] == 1


def test_bot_sign_in_then_get_me_reaches_the_world(
    emulator: InProcessEmulator, world: object
) -> None:
    async def body() -> tuple[int, int]:
        async with connected(emulator.endpoint) as client:
            assert await client.get_me() is None  # AUTH_KEY_UNREGISTERED before login
            user = await sign_in_bot(client)
            me = await client.get_me()
            return user.id, me.id

    signed_in, me = run(body())
    assert signed_in == me
    contexts = world.contexts  # type: ignore[attr-defined]
    # The world sees the inner request, with the layer and initConnection data recorded.
    assert all(ctx.layer is not None and ctx.client_info["api_id"] == 12345 for ctx in contexts)
    assert "InitConnectionRequest" not in world.calls  # type: ignore[attr-defined]
    assert "InvokeWithLayerRequest" not in world.calls  # type: ignore[attr-defined]


def test_emulator_json_is_private_and_describes_the_endpoint(
    emulator: InProcessEmulator,
) -> None:
    assert emulator.running is not None
    path = emulator.running.info_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = json.loads(path.read_text())
    assert info["port"] == emulator.server.port != 0
    assert info["host"] == "127.0.0.1" and info["dc_id"] == 2
    endpoint = load_endpoint(path)
    assert endpoint == emulator.endpoint
    assert endpoint.rsa_public_key_pem.startswith("-----BEGIN RSA PUBLIC KEY-----")
