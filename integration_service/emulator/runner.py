"""Starting and stopping the whole emulator, and the blocking ``run`` behind the CLI.

``start_emulator`` binds the MTProto server (``port=0`` picks a free port), wires the world's
hooks, with ``persist`` loads the world saved in ``state_dir`` (and saves every change to it
from then on, world/persistence.py), optionally starts the world's control API, and
atomically writes ``state_dir/emulator.json`` (0600) with everything a client needs to
reach it. The CLI always persists: a restarted emulator keeps its accounts and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rpc import World
from .rsa_keys import load_or_create_rsa_key
from .server import EmulatorServer

log = logging.getLogger(__name__)

EMULATOR_JSON = "emulator.json"
RSA_KEY_FILE = "server_rsa_key.pem"

WorldFactory = Callable[[str, int, int], World]
# Given the world and the host, start the control API; returns (runner with cleanup(), url).
ControlStarter = Callable[[Any, str], Awaitable[tuple[Any, str]]]


@dataclass
class RunningEmulator:
    """A started emulator; ``await stop()`` shuts everything down."""

    host: str
    port: int
    dc_id: int
    state_dir: Path
    server: EmulatorServer
    world: Any
    rsa_public_key_pem: str
    control_url: str | None = None
    _control_runner: Any = field(default=None, repr=False)
    # the world's database (world/persistence.py WorldStorage) when persisting
    storage: Any = field(default=None, repr=False)

    @property
    def info_path(self) -> Path:
        return self.state_dir / EMULATOR_JSON

    def info(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "dc_id": self.dc_id,
            "rsa_public_key_pem": self.rsa_public_key_pem,
            "control_url": self.control_url,
        }

    async def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.info_path.unlink()
        if self._control_runner is not None:
            await self._control_runner.cleanup()
        await self.server.stop()
        if self.storage is not None:
            # Every change was saved with its answer; this only closes the file.
            self.world.save()
            self.storage.close()
            self.storage = None


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename) with mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def _wire_world(world: Any, server: EmulatorServer) -> None:
    async def push_to_key(auth_key_id: int, obj: Any) -> int:
        return await server.push_to_key(auth_key_id, obj)

    # The world declares these attributes (see world helper); other worlds may not.
    if hasattr(world, "push_to_key"):
        world.push_to_key = push_to_key
    if hasattr(world, "drop_connections"):
        world.drop_connections = server.drop_connections
    if hasattr(world, "set_response_delay"):
        world.set_response_delay = server.set_response_delay
    if hasattr(world, "auth_keys"):
        world.auth_keys = server.keys
    if hasattr(world, "server_stats"):
        world.server_stats = server.snapshot


async def start_emulator(
    host: str,
    port: int,
    state_dir: Path | str,
    world: World | None = None,
    *,
    dc_id: int = 2,
    world_factory: WorldFactory | None = None,
    control_url: str | None = None,
    start_control: ControlStarter | None = None,
    idle_timeout: float | None = None,
    persist: bool = False,
) -> RunningEmulator:
    """Start serving; give either ``world`` or ``world_factory(host, real_port, dc_id)``.

    ``persist``: load the world saved in ``state_dir`` and save it from now on (for worlds
    that support it, ``attach_storage``)."""
    if (world is None) == (world_factory is None):
        raise ValueError("pass exactly one of world and world_factory")
    state_path = Path(state_dir)
    state_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    rsa_key = await asyncio.to_thread(load_or_create_rsa_key, state_path / RSA_KEY_FILE)
    options = {} if idle_timeout is None else {"idle_timeout": idle_timeout}
    server = EmulatorServer(world, rsa_key, host=host, port=port, dc_id=dc_id, **options)  # type: ignore[arg-type]
    await server.start()
    # No other task has run since the socket was bound, so no client can see a missing world.
    if world is None:
        assert world_factory is not None
        world = world_factory(host, server.port, dc_id)
        server.world = world
    _wire_world(world, server)
    storage = None
    if persist and hasattr(world, "attach_storage"):
        # Still no await since the bind: the saved world is in place before any client.
        from .world.persistence import WorldStorage

        try:
            storage = WorldStorage.in_state_dir(state_path)
            world.attach_storage(storage)
        except BaseException:
            if storage is not None:
                storage.close()
            await server.stop()
            raise
    running = RunningEmulator(
        host=host,
        port=server.port,
        dc_id=dc_id,
        state_dir=state_path,
        server=server,
        world=world,
        rsa_public_key_pem=rsa_key.public_pem,
        control_url=control_url,
        storage=storage,
    )
    try:
        if start_control is not None:
            running._control_runner, running.control_url = await start_control(world, host)
        write_private_json(running.info_path, running.info())
    except BaseException:
        await running.stop()
        raise
    return running


def default_world_factory(**world_options: Any) -> WorldFactory:
    """TelegramWorld from the world package, built for the port actually bound;
    ``world_options`` go to TelegramWorld (e.g. ``difference_limit``)."""
    from .world import TelegramWorld

    def build(host: str, port: int, dc_id: int) -> World:
        return TelegramWorld(dc_id=dc_id, dc_host=host, dc_port=port, **world_options)

    return build


def default_control_starter() -> ControlStarter | None:
    """The world's HTTP control API on the same host and a free port, if it exists."""
    try:
        module = importlib.import_module("integration_service.emulator.control_api")
    except ModuleNotFoundError:
        return None
    start_control_api = module.start_control_api

    async def start(world: Any, host: str) -> tuple[Any, str]:
        runner, url = await start_control_api(world, host, 0)
        return runner, url

    return start


async def serve_until_signalled(
    host: str,
    port: int,
    state_dir: Path | str,
    dc_id: int = 2,
    world_factory: WorldFactory | None = None,
    world_options: dict[str, Any] | None = None,
) -> None:
    running = await start_emulator(
        host,
        port,
        state_dir,
        dc_id=dc_id,
        world_factory=world_factory or default_world_factory(**(world_options or {})),
        start_control=default_control_starter(),
        persist=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "emulator ready on %s:%d, control API %s", running.host, running.port, running.control_url
    )
    try:
        await stop.wait()
    finally:
        await running.stop()


def run(
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: Path | str = ".state/emulator",
    dc_id: int = 2,
    world_factory: WorldFactory | None = None,
    world_options: dict[str, Any] | None = None,
) -> None:
    """Run the emulator in the foreground until SIGTERM or SIGINT."""
    asyncio.run(serve_until_signalled(host, port, state_dir, dc_id, world_factory, world_options))
