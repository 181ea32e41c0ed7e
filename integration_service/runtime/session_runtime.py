"""A worker's session runtime: leases, warm clients and the loop, wired together.

Created at worker start (never at import), stopped at worker shutdown, handed to jobs
through ``integration_service.runtime.current``. Task threads call ``session(key)``;
everything Telethon runs on the one loop thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
import structlog
from sqlalchemy.engine import Engine
from telethon import TelegramClient

from integration_service.crypto import SessionCipher, build_cipher
from integration_service.errors import PermanentError
from integration_service.inbound.event_log import EventLog
from integration_service.inbound.listener import Listener
from integration_service.leases import (
    Lease,
    LeaseHeartbeat,
    LeaseManager,
    LeaseUnavailable,
    WorkerLiveness,
)
from integration_service.leases.generation import LeaseGeneration
from integration_service.messaging.pacing import Pacer, PacingLimits
from integration_service.runtime.client_pool import ClientPool, PooledClient
from integration_service.runtime.forwarding import worker_queue_prefix
from integration_service.runtime.loop_thread import LoopCallTimedOut, LoopThread
from integration_service.runtime.ownership import OwnershipContended, SessionOwnership
from integration_service.sessions.state_machine import AUTHORIZED, TERMINAL
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionRow, SessionStore, build_engine
from integration_service.store.guard import DatabaseGuard
from integration_service.store.job_journal import JobJournal
from integration_service.store.outbox import OutboxStore
from integration_service.telegram.client_factory import ClientFactory, LazyClientFactory
from integration_service.telegram.errors import SessionTerminated

T = TypeVar("T")
logger = structlog.get_logger(__name__)


class SessionNotUsable(PermanentError):
    """The session has no stored material to connect with (never authorised)."""

    code = "session_not_authorized"


def session_context(key: SessionKey) -> bytes:
    """Associated data binding a ciphertext to its row (see crypto.cipher)."""
    return f"{key.tenant_id}/{key.app_id}".encode()


class ActiveSession:
    """A checked-out warm client and the lease under which the job may act."""

    def __init__(self, runtime: SessionRuntime, pooled: PooledClient) -> None:
        self._runtime = runtime
        self._pooled = pooled

    @property
    def key(self) -> SessionKey:
        return self._pooled.key

    @property
    def lease(self) -> Lease:
        return self._pooled.lease

    @property
    def pooled(self) -> PooledClient:
        """The pooled entry; its client may only be touched from coroutines on the loop."""
        return self._pooled

    def call(
        self,
        fn: Callable[[TelegramClient], Coroutine[Any, Any, T]],
        *,
        timeout: float | None = None,
    ) -> T:
        """Run ``fn(client)`` on the loop; cancelled there after ``timeout``."""
        limit = timeout if timeout is not None else self._runtime.settings.task_timeout
        try:
            return self._runtime.loop.run(fn(self._pooled.client), limit)
        except LoopCallTimedOut:
            # A call that got no answer at all leaves a client we cannot trust (seen after
            # dropped connections: Telethon's sender broken while it still says connected,
            # every later call hanging). Drop it; the retry connects afresh.
            self._runtime.discard(self._pooled)
            raise


class SessionRuntime:
    """Owns the loop thread, the client pool, the leases and the worker's liveness."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        *,
        engine: Engine | None = None,
        redis_client: redis.Redis | None = None,
        cipher: SessionCipher | None = None,
        client_factory: ClientFactory | None = None,
        key_prefix: str = "",
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.engine = engine or build_engine(settings)
        # One breaker for all database calls of this worker (DESIGN: circuit breaker).
        guard = DatabaseGuard.for_workers()
        self.store = SessionStore(self.engine, guard=guard)
        self.outbox = OutboxStore(self.engine, guard=guard)
        self.journal = JobJournal(self.engine, guard=guard)
        self.events = EventLog(self.engine, guard=guard)
        self.cipher = cipher or build_cipher(settings)
        self.redis = redis_client or redis.Redis.from_url(settings.redis_url)
        self.pacer = Pacer(
            self.redis,
            PacingLimits(
                per_chat_per_second=settings.pace_per_chat_per_second,
                per_group_per_minute=settings.pace_per_group_per_minute,
                per_account_per_second=settings.pace_per_account_per_second,
            ),
        )
        self.leases = LeaseManager(
            self.redis, worker_id, settings.session_lock_ttl, key_prefix=key_prefix
        )
        self.liveness = WorkerLiveness(
            self.redis,
            worker_id,
            settings.worker_liveness_ttl,
            queue=worker_queue_prefix(worker_id),
            key_prefix=key_prefix,
        )
        self.ownership = SessionOwnership(self.leases, self.liveness)
        self.generation = LeaseGeneration(self.redis, key_prefix=key_prefix)
        self._generation_id: str | None = None
        self.heartbeat = LeaseHeartbeat(
            self.leases,
            interval=settings.session_lock_heartbeat,
            on_lost=self._lease_lost,
            liveness=self.liveness,
        )
        self.client_factory = client_factory or LazyClientFactory(settings)
        self.pool = ClientPool(
            self.client_factory,
            max_clients=settings.client_pool_max,
            idle_timeout=settings.client_idle_timeout,
            on_evicted=self._client_evicted,
        )
        self.loop = LoopThread(name=f"telethon-loop[{worker_id}]")
        self.listener = Listener(self, self.events)
        # Placement (claiming listening sessions) runs on workers with LISTEN_CAPACITY > 0.
        self.placement: Any = None
        if settings.listen_capacity > 0:
            from integration_service.inbound.placement import Placement

            self.placement = Placement(self, key_prefix=key_prefix)
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._touched: dict[SessionKey, float] = {}
        self._background: set[Any] = set()

    # Lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.liveness.beat()
        self._generation_id = self.generation.current().id
        self.loop.start()
        self.loop.run(self._start_on_loop(), timeout=10)
        logger.info("session_runtime_started", worker=self.worker_id)

    async def _start_on_loop(self) -> None:
        self.heartbeat.start()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.create_task(self._sweep_idle())
        self._watcher = loop.create_task(self._watch_generation())
        if self.placement is not None:
            self.placement.start()

    def stop(self) -> None:
        """Disconnect every client, release every lease, retire the liveness key."""
        if self.loop.is_alive():
            try:
                self.loop.run(self._stop_on_loop(), timeout=30)
            finally:
                self.loop.stop()
        self.liveness.retire()
        logger.info("session_runtime_stopped", worker=self.worker_id)

    async def _stop_on_loop(self) -> None:
        for task in (self._sweeper, self._watcher):
            if task is not None:
                task.cancel()
        if self.placement is not None:
            # Leave the placement group first: the others count us out and take over the
            # sessions we release next (a clean hand-off, within one placement round).
            await self.placement.stop()
        self.listener.close()
        await self.pool.close_all()
        await self.heartbeat.stop(release=True)

    async def _sweep_idle(self) -> None:
        period = max(1.0, min(30.0, self.settings.client_idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.pool.evict_idle()
            except Exception:
                logger.exception("idle_eviction_failed")

    async def _watch_generation(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.session_lock_heartbeat)
            try:
                current = await loop.run_in_executor(None, self.generation.current)
            except LeaseUnavailable:
                continue  # the heartbeat handles unreachable Redis by lease deadlines
            if current.id != self._generation_id:
                logger.warning("redis_lost_leases", held=len(self.pool), worker=self.worker_id)
                self._generation_id = current.id
                # Every lease vanished with the data: stop driving every session now.
                await self.pool.close_all("redis_reset")

    # Leases ---------------------------------------------------------------------------

    async def _lease_lost(self, lease: Lease) -> None:
        # Stop talking to Telegram at once: another worker may already hold the session.
        key = SessionKey(lease.tenant_id, lease.app_id)
        await self.pool.evict(key, "lease_lost", epoch=lease.epoch)

    async def _client_evicted(self, entry: PooledClient, reason: str) -> None:
        if reason == "replaced":
            return  # a new client took its place under the same lease
        self.listener.forget(entry.key)
        self.heartbeat.untrack(entry.lease)
        if reason != "lease_lost":
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.leases.release, entry.lease)

    def open_login_client(
        self, key: SessionKey, lease: Lease, *, receive_updates: bool = False
    ) -> PooledClient:
        """Connect a client with a fresh auth key for a login and pool it under ``lease``.

        Pinned like any warm client: the login's later steps (code, password) reach this
        worker through forwarding and run on the very auth key that started the login.
        """

        async def connect() -> PooledClient:
            client = self.client_factory.create(None, receive_updates=receive_updates)
            await client.connect()
            return await self.pool.adopt(key, lease, client)

        return self.loop.run(connect(), timeout=self.settings.telegram_connect_timeout + 5)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run a background coroutine on the loop (a QR waiter); failures are logged."""
        future = self.loop.submit(coro)
        self._background.add(future)

        def _done(f: Any) -> None:
            self._background.discard(f)
            if not f.cancelled() and f.exception() is not None:
                logger.error("background_task_failed", task=name, error=repr(f.exception()))

        future.add_done_callback(_done)

    def discard(self, entry: PooledClient) -> None:
        """Disconnect ``entry``'s client soon (from any thread, never waiting): only that
        client, so a newer one of the same session is left alone."""

        async def drop() -> None:
            await self.pool.evict(entry.key, "call_timed_out", epoch=entry.lease.epoch)

        self.loop.submit(drop())

    def evict(self, key: SessionKey, reason: str) -> None:
        """Disconnect ``key``'s warm client, if any, and release its lease."""
        self.loop.run(self.pool.evict(key, reason), timeout=30)

    def note_activity(self, key: SessionKey, *, every: float = 60.0) -> None:
        """Touch ``last_activity_at`` at most once per ``every`` seconds per session."""
        now = time.monotonic()
        if now - self._touched.get(key, -every) >= every:
            self._touched[key] = now
            self.store.touch(key)

    def record_claim(self, key: SessionKey, lease: Lease) -> None:
        """Fence and tag a row created under an already held lease (a new login)."""
        self.store.claim_epoch(key, lease.epoch, self.generation.current().id)

    def holds(self, lease: Lease) -> bool:
        return self.heartbeat.holds(lease)

    # Jobs ------------------------------------------------------------------------------

    @contextmanager
    def session(self, key: SessionKey) -> Iterator[ActiveSession]:
        """Check out ``key``'s warm client (claiming the lease and connecting if cold).

        Raises OwnedElsewhere when a live worker holds the session: forward the job.
        """
        warm = self.pool.peek(key)
        if warm is not None and self.holds(warm.lease):
            pooled = self.loop.run(self.pool.checkout(key, warm.lease, None), timeout=30)
        else:
            pooled = self._checkout_cold(key)
        try:
            yield ActiveSession(self, pooled)
        finally:
            self.loop.loop.call_soon_threadsafe(self.pool.checkin, pooled)

    def _checkout_cold(self, key: SessionKey, *, pin: bool = False) -> PooledClient:
        row = self.store.require(key)
        if row.state in TERMINAL:
            raise SessionTerminated(row.state, "stored state")
        with self.lease(key, row=row, keep=True) as lease:
            material = self._decrypt(row)
            timeout = self.settings.telegram_connect_timeout + 5
            # Only a listening worker listens; elsewhere (the interactive worker) a job
            # gets a plain client, and placement claims the session when it is let go.
            listening = row.listening and row.state == AUTHORIZED and self.placement is not None
            return self.loop.run(
                self._connect(key, lease, material, listening=listening, pin=pin), timeout
            )

    async def _connect(
        self, key: SessionKey, lease: Lease, material: str, *, listening: bool, pin: bool
    ) -> PooledClient:
        if not listening:
            return await self.pool.checkout(key, lease, material)
        # Whoever connects a listening session listens to it while it holds the lease:
        # one connection per account, with updates on (inbound/listener.py).
        warm = self.pool.peek(key)
        entry = await self.pool.checkout(
            key, lease, material, build=lambda: self.listener.build(key, material)
        )
        if entry is not warm:
            self.listener.watch(entry)
        entry.pinned = entry.pinned or pin
        return entry

    def listen(self, key: SessionKey) -> PooledClient:
        """Claim and connect a listening session for placement, pinned (from a thread).

        Raises OwnedElsewhere / OwnershipContended when another worker has it."""
        warm = self.pool.peek(key)
        if warm is not None and self.holds(warm.lease):
            if self.listener.is_listening(warm):
                warm.pinned = True
                return warm
            self.evict(key, "listen")  # a plain client: replace it with a listening one
        entry = self._checkout_cold(key, pin=True)
        self.loop.loop.call_soon_threadsafe(self.pool.checkin, entry)
        return entry

    def hand_off(self, key: SessionKey, *, fresh_login: bool = False) -> None:
        """Give the session up for placement (from a thread): after a login on the
        interactive worker, or to rebalance. ``fresh_login``: the log starts now."""

        async def give_up() -> None:
            entry = self.pool.peek(key)
            if entry is not None and fresh_login:
                try:
                    await self.listener.start_state(key, entry.client)
                except Exception:  # noqa: BLE001 - the first listener calls getState instead
                    logger.warning("login_start_state_failed", session=str(key))
            await self.pool.evict(key, "handoff")

        self.loop.run(give_up(), timeout=30)

    @contextmanager
    def lease(
        self, key: SessionKey, *, row: SessionRow | None = None, keep: bool = False
    ) -> Iterator[Lease]:
        """Hold ``key``'s lease for a block: ours already, or claimed for the block.

        With ``keep`` the lease stays held (and heart-beaten) after a successful block, as
        it must while a client is warm; otherwise one claimed here is released at the end.
        A failing block always gives back a lease it claimed, so no lease outlives its use.
        ``row`` (the stored session, if read already) gives the epoch floor and says whether
        the last owner held the session in another Redis data set.
        """
        warm = self.pool.peek(key)
        if warm is not None and self.holds(warm.lease):
            yield warm.lease
            return
        min_epoch = row.lease_epoch if row is not None else 0
        generation = self.generation.current()
        if row is not None and row.lease_epoch > 0 and row.lease_generation != generation.id:
            # Its last owner held it in a Redis data set that is gone: wait until any such
            # owner has noticed (one heartbeat) and disconnected before driving it here.
            wait = generation.quarantine_left(self.settings.session_lock_heartbeat + 1)
            if wait > 0:
                raise OwnershipContended(
                    f"leases of {key} were reset; waiting for old owners", retry_after=wait
                )
        started = time.monotonic()
        claimed = self.ownership.claim(key, min_epoch=min_epoch)
        self.heartbeat.track(claimed, acquired_at=started)
        try:
            self.store.claim_epoch(key, claimed.epoch, generation.id)
            yield claimed
        except BaseException:
            self._give_back(claimed)
            raise
        if not keep:
            self._give_back(claimed)

    def _give_back(self, lease: Lease) -> None:
        if self.pool.peek(SessionKey(lease.tenant_id, lease.app_id)) is not None:
            return  # a client is warm under this lease; eviction releases it
        self.heartbeat.untrack(lease)
        self.leases.release(lease)

    def _decrypt(self, row: SessionRow) -> str:
        if row.session_string_enc is None:
            raise SessionNotUsable(f"session {row.key} has no stored session material")
        return self.cipher.decrypt(row.session_string_enc, context=session_context(row.key))
