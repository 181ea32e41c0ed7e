"""Warm Telethon clients of one worker, keyed by session; lives on the worker's loop.

Every method runs on the loop thread (Telethon objects never leave it). Clients are kept
connected while used, evicted least-recently-used when the pool is full, and after
CLIENT_IDLE_TIMEOUT of idleness: connect/disconnect churn is itself a risk on Telegram's
side, but an idle connection holds a lease other workers may need.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from telethon import TelegramClient

from integration_service.circuit import CircuitBreaker
from integration_service.errors import RetryableError
from integration_service.leases import Lease
from integration_service.store import SessionKey
from integration_service.telegram.client_factory import (
    ClientFactory,
    LazyClientFactory,
    settle_disconnection,
)

GET_CLIENT_LATENCY = Histogram(
    "session_get_client_latency_seconds",
    "Time to hand a job a connected client, by whether it was already warm.",
    ["warm"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POOL_CLIENTS = Gauge("session_pool_clients", "Connected clients held by this worker.")
POOL_EVICTIONS = Counter(
    "session_pool_evictions_total", "Clients disconnected by the pool, by reason.", ["reason"]
)
CLIENT_CONNECTS = Counter("session_client_connects_total", "New client connections made.")

OnEvicted = Callable[["PooledClient", str], Awaitable[None]]


class PoolExhausted(RetryableError):
    """Every pooled client is busy and the pool is at its maximum; retry shortly."""

    code = "client_pool_exhausted"


@dataclass(eq=False)
class PooledClient:
    key: SessionKey
    client: TelegramClient
    lease: Lease
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    # A listening session placement keeps here: never idle- or LRU-evicted, and not
    # counted against CLIENT_POOL_MAX (LISTEN_CAPACITY bounds those).
    pinned: bool = False


class ClientPool:
    """LRU pool of connected clients with a maximum size and idle eviction."""

    def __init__(
        self,
        factory: ClientFactory | LazyClientFactory,
        *,
        max_clients: int,
        idle_timeout: float,
        on_evicted: OnEvicted,
        breaker: CircuitBreaker | None = None,
        max_concurrent_connects: int = 10,
    ) -> None:
        self._factory = factory
        self._max = max_clients
        self._idle_timeout = idle_timeout
        self._on_evicted = on_evicted
        self._clients: OrderedDict[SessionKey, PooledClient] = OrderedDict()
        self._locks: dict[SessionKey, asyncio.Lock] = {}
        self._breaker = breaker or CircuitBreaker()
        # Bounded concurrent handshakes: after a mass disconnect, reconnects trickle.
        self._connect_slots = asyncio.Semaphore(max_concurrent_connects)

    def __len__(self) -> int:
        return len(self._clients)

    def peek(self, key: SessionKey) -> PooledClient | None:
        """The warm entry for ``key`` if any (a plain dict read, safe from any thread)."""
        return self._clients.get(key)

    def keys(self) -> list[SessionKey]:
        return list(self._clients)

    async def checkout(
        self,
        key: SessionKey,
        lease: Lease,
        session_string: str | None,
        *,
        build: Callable[[], Awaitable[TelegramClient]] | None = None,
    ) -> PooledClient:
        """A connected client for ``key``, connecting one from ``session_string`` if cold
        (built by ``build`` when given: a listening session's client)."""
        started = time.perf_counter()
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._clients.get(key)
            warm = entry is not None and entry.lease.epoch == lease.epoch
            if entry is not None and not warm:
                # A newer lease means the old client's authority is gone: never reuse it.
                await self._evict(entry, "lease_changed")
                entry = None
            if entry is None:
                await self._make_room()
                entry = await self._connect(key, lease, session_string, build)
            elif not entry.client.is_connected():
                # Dropped underneath us: reconnect lazily, when a job needs it, so a mass
                # disconnect does not turn into a reconnect storm.
                await self._reconnect(entry)
            entry.busy += 1
            entry.last_used = time.monotonic()
            self._clients.move_to_end(key)
        GET_CLIENT_LATENCY.labels(warm=str(warm).lower()).observe(time.perf_counter() - started)
        return entry

    async def adopt(self, key: SessionKey, lease: Lease, client: TelegramClient) -> PooledClient:
        """Pool a client connected elsewhere (a login in progress), replacing any other."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            old = self._clients.get(key)
            if old is not None:
                await self._evict(old, "replaced" if old.lease == lease else "lease_changed")
            else:
                await self._make_room()
            entry = PooledClient(key=key, client=client, lease=lease)
            self._clients[key] = entry
            POOL_CLIENTS.set(len(self._clients))
            return entry

    def checkin(self, entry: PooledClient) -> None:
        entry.busy = max(0, entry.busy - 1)
        entry.last_used = time.monotonic()

    async def _connect(
        self,
        key: SessionKey,
        lease: Lease,
        session_string: str | None,
        build: Callable[[], Awaitable[TelegramClient]] | None = None,
    ) -> PooledClient:
        if session_string is None:
            raise RetryableError(f"session {key} has no stored session material yet")
        client = await build() if build is not None else self._factory.create(session_string)
        async with self._connect_slots:
            try:
                await self._guarded_connect(client)
            except BaseException:
                settle_disconnection(client)
                raise
        CLIENT_CONNECTS.inc()
        entry = PooledClient(key=key, client=client, lease=lease)
        self._clients[key] = entry
        POOL_CLIENTS.set(len(self._clients))
        return entry

    async def _guarded_connect(self, client: TelegramClient) -> None:
        self._breaker.before_connect()
        try:
            await client.connect()
        except (OSError, TimeoutError):
            # Only the network counts against the data centre; an RPC error in the
            # handshake (a banned account) says nothing about its health.
            self._breaker.failed()
            raise
        except BaseException:
            self._breaker.released()
            raise
        self._breaker.succeeded()

    async def _reconnect(self, entry: PooledClient) -> None:
        async with self._connect_slots:
            await self._guarded_connect(entry.client)
        CLIENT_CONNECTS.inc()

    async def reconnect(self, entry: PooledClient) -> None:
        """Connect a dropped client again (a listening session's supervisor does, at once)."""
        lock = self._locks.setdefault(entry.key, asyncio.Lock())
        async with lock:
            if self._clients.get(entry.key) is entry and not entry.client.is_connected():
                await self._reconnect(entry)

    def pinned_count(self) -> int:
        return sum(1 for e in self._clients.values() if e.pinned)

    async def _make_room(self) -> None:
        while len(self._clients) - self.pinned_count() >= self._max:
            idle = next((e for e in self._clients.values() if e.busy == 0 and not e.pinned), None)
            if idle is None:
                raise PoolExhausted(f"all {self._max} clients are busy")
            await self._evict(idle, "lru")

    async def evict(self, key: SessionKey, reason: str, *, epoch: int | None = None) -> bool:
        """Disconnect ``key``'s client (only the one at ``epoch`` if given)."""
        entry = self._clients.get(key)
        if entry is None or (epoch is not None and entry.lease.epoch != epoch):
            return False
        await self._evict(entry, reason)
        return True

    async def _evict(self, entry: PooledClient, reason: str) -> None:
        if self._clients.get(entry.key) is entry:
            del self._clients[entry.key]
        POOL_CLIENTS.set(len(self._clients))
        POOL_EVICTIONS.labels(reason=reason).inc()
        try:
            await entry.client.disconnect()
            settle_disconnection(entry.client)
        finally:
            await self._on_evicted(entry, reason)

    async def evict_idle(self) -> int:
        """Disconnect clients idle longer than the idle timeout; returns how many."""
        now = time.monotonic()
        stale = [
            e
            for e in list(self._clients.values())
            if e.busy == 0 and not e.pinned and now - e.last_used > self._idle_timeout
        ]
        for entry in stale:
            await self._evict(entry, "idle")
        return len(stale)

    async def close_all(self, reason: str = "shutdown") -> None:
        for entry in list(self._clients.values()):
            await self._evict(entry, reason)
