"""The emulator as the CLI runs it: a subprocess with the real world and its control API."""

from __future__ import annotations

import json
import stat
import urllib.request
from pathlib import Path
from typing import Any

from telethon import functions
from telethon.tl import types

from integration_service.emulator.testing import EmulatorProcess
from integration_service.telegram.endpoint import TelegramEndpoint
from tests.emulator_core.conftest import connected, run


def _control(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310 (checked: loopback http only)
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def test_subprocess_emulator_serves_telethon_and_stops_cleanly(tmp_path: Path) -> None:
    state_dir = tmp_path / "emulator"
    with EmulatorProcess(state_dir) as emulator:
        info_path = state_dir / "emulator.json"
        assert stat.S_IMODE(info_path.stat().st_mode) == 0o600
        endpoint = emulator.endpoint
        assert isinstance(endpoint, TelegramEndpoint) and endpoint.port > 0
        control_url = emulator.control_url
        assert control_url is not None and control_url.startswith("http://127.0.0.1:")
        assert _control(f"{control_url}/health")
        bot = _control(f"{control_url}/bots", "POST", {"username": "core_process_bot"})

        async def body() -> tuple[Any, Any]:
            async with connected(endpoint) as client:
                config = await client(functions.help.GetConfigRequest())
                await client.sign_in(bot_token=bot["token"])
                return config, await client.get_me()

        config, me = run(body())
        assert isinstance(config, types.Config) and config.dc_options[0].port == endpoint.port
        assert me.id == bot["user_id"] and me.bot
        process = emulator.process
    assert process is not None and process.returncode == 0
    assert not info_path.exists()
