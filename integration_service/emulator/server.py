"""The emulated data centre's TCP server: connections, auth keys, sessions, pushes, faults.

The world reaches the core through this object: ``push_to_key`` (e.g. QR login approval),
``drop_connections`` (the "dropped connections" fault), ``set_response_delay`` (slow
responses) and ``keys`` (the auth key store).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from typing import Any

from .auth_keys import AuthKeyRecord, AuthKeyStore
from .connection import ClientConnection
from .dispatcher import CallDispatcher
from .rpc import World
from .rsa_keys import ServerRsaKey
from .session import MtprotoSession

log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 600.0
SWEEP_INTERVAL = 15.0
MAX_SESSIONS_PER_KEY = 64


class EmulatorServer:
    """Accepts MTProto clients on one host/port and serves them from ``world``."""

    def __init__(
        self,
        world: World,
        rsa_key: ServerRsaKey,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dc_id: int = 2,
        advertised_host: str | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.world = world
        self.rsa_key = rsa_key
        self.host = host
        self.port = port
        self.dc_id = dc_id
        self.advertised_host = advertised_host or host
        self.idle_timeout = idle_timeout
        self.keys = AuthKeyStore()
        self.stats: Counter[str] = Counter()
        # Per auth key: connections that used it, and the most open at once (tests assert
        # one warm connection per session and never two in parallel).
        self.key_stats: dict[int, dict[str, int]] = {}
        self.response_delays: dict[int, float] = {}
        self.dispatcher = CallDispatcher(self)
        self._connections: dict[int, ClientConnection] = {}
        self._by_key: dict[int, set[ClientConnection]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serving: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_idle())
        log.info("emulator listening on %s:%d (dc %d)", self.host, self.port, self.dc_id)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._connections.values()):
            conn.close()
        # Connection tasks end by themselves once their sockets close; cancelling them would
        # make asyncio's stream callback log the cancellation as an error.
        if self._serving:
            await asyncio.wait(list(self._serving), timeout=5)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def track_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ClientConnection(self, reader, writer, next(self._ids))
        self._connections[conn.connection_id] = conn
        self.stats["connections"] += 1
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        await conn.serve()

    # Registry

    def attach_key(self, conn: ClientConnection, record: AuthKeyRecord) -> None:
        peers = self._by_key.setdefault(record.key_id, set())
        if conn in peers:
            return
        peers.add(conn)
        stats = self.key_stats.setdefault(
            record.key_id, {"connections_opened": 0, "max_concurrent_connections": 0}
        )
        stats["connections_opened"] += 1
        open_now = sum(1 for peer in peers if not peer.peer_gone)
        stats["max_concurrent_connections"] = max(stats["max_concurrent_connections"], open_now)

    def snapshot(self) -> dict[str, Any]:
        """Counters for the control API's /stats."""
        return {
            "events": dict(self.stats),
            "open_connections": len(self._connections),
            "auth_keys": {key_id: dict(stats) for key_id, stats in self.key_stats.items()},
        }

    def forget_connection(self, conn: ClientConnection) -> None:
        self._connections.pop(conn.connection_id, None)
        if conn.key is None:
            return
        peers = self._by_key.get(conn.key.key_id)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self._by_key[conn.key.key_id]
        try:
            self.world.connection_closed(conn.key.key_id, conn.connection_id)
        except Exception:  # the world's bookkeeping must not break connection teardown
            log.exception("world.connection_closed failed")

    def has_parallel_connection(self, conn: ClientConnection, key_id: int) -> bool:
        """Whether another still-open connection has sent messages with this key."""
        return any(
            other is not conn and not other.peer_gone for other in self._by_key.get(key_id, ())
        )

    def session_for(self, record: AuthKeyRecord, session_id: int) -> MtprotoSession:
        session = record.sessions.get(session_id)
        if session is None:
            if len(record.sessions) >= MAX_SESSIONS_PER_KEY:
                oldest = min(record.sessions.values(), key=lambda s: s.last_used)
                oldest.cancel_running()
                del record.sessions[oldest.session_id]
            session = record.sessions[session_id] = MtprotoSession(session_id)
        return session

    def destroy_key(self, key_id: int) -> None:
        """destroy_auth_key: forget the key; its connections close after this answer."""
        self.keys.remove(key_id)
        for conn in list(self._by_key.get(key_id, ())):
            asyncio.get_running_loop().call_soon(conn.close)

    # Hooks for the world and the control API

    async def push_to_key(self, auth_key_id: int, obj: Any) -> int:
        """Push an Updates object to every open connection of a key; returns how many."""
        sent = 0
        for conn in list(self._by_key.get(auth_key_id, ())):
            if not conn.peer_gone:
                await conn.push(obj)
                sent += 1
        return sent

    async def drop_connections(self, auth_key_id: int | None = None) -> int:
        """Close TCP connections (of one key, or all); clients must reconnect."""
        if auth_key_id is None:
            victims = list(self._connections.values())
        else:
            victims = list(self._by_key.get(auth_key_id, ()))
        for conn in victims:
            conn.close()
        self.stats["dropped_connections"] += len(victims)
        return len(victims)

    def set_response_delay(self, auth_key_id: int, seconds: float | None) -> None:
        """Delay every answer on this key by ``seconds`` (None or 0 removes the delay)."""
        if seconds:
            self.response_delays[auth_key_id] = float(seconds)
        else:
            self.response_delays.pop(auth_key_id, None)

    async def _sweep_idle(self) -> None:
        while True:
            await asyncio.sleep(min(SWEEP_INTERVAL, self.idle_timeout))
            deadline = time.monotonic() - self.idle_timeout
            for conn in list(self._connections.values()):
                if conn.last_activity < deadline:
                    conn.close()
