"""Keep a worker's leases alive from its asyncio loop, and say at once when one is lost.

Why the sync client in an executor rather than `redis.asyncio`: the Celery task threads
acquire and release with the synchronous `LeaseManager`, and a `redis.asyncio` connection
is bound to one loop, so it could not serve those threads. Offloading the sync call keeps
one implementation of the Lua scripts and one connection pool; the loop only waits on a
future, and all leases are renewed in one pipelined round trip per beat.

A lease is lost when a renewal answers "not yours" (another worker took over, or the
key expired) or when Redis stays unreachable until the lease may have expired: we
cannot prove we still hold it, so the client must stop before a new holder starts.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

import structlog

from integration_service.leases.liveness import WorkerLiveness
from integration_service.leases.manager import Lease, LeaseManager, LeaseUnavailable
from integration_service.leases.metrics import LostReason

OnLost = Callable[[Lease], Awaitable[None] | None]
logger = structlog.get_logger(__name__)


class LeaseHeartbeat:
    """Renews tracked leases every `interval` seconds on the running asyncio loop."""

    def __init__(
        self,
        manager: LeaseManager,
        *,
        interval: float,
        on_lost: OnLost,
        liveness: WorkerLiveness | None = None,
        retry_interval: float | None = None,
        executor: Executor | None = None,
    ):
        if interval <= 0 or interval * 2 > manager.ttl:
            # Two missed beats must fit in the TTL, or one slow renewal loses a healthy lease.
            raise ValueError("heartbeat interval must be positive and at most half the lease ttl")
        self._manager = manager
        self.interval = interval
        # While Redis fails, retry sooner: a lease is only lost once its TTL may have run out.
        self.retry_interval = retry_interval or min(interval, 1.0)
        self._on_lost = on_lost
        self._liveness = liveness
        self._executor = executor
        # track()/untrack() come from Celery threads as well as the loop.
        self._guard = threading.Lock()
        self._tracked: dict[tuple[str, str], Lease] = {}
        self._valid_until: dict[tuple[str, str], float] = {}
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Task[None]] = set()

    def track(self, lease: Lease, *, acquired_at: float | None = None) -> None:
        """Keep `lease` alive; `acquired_at` is time.monotonic() taken before acquiring."""
        started = acquired_at if acquired_at is not None else time.monotonic()
        with self._guard:
            self._tracked[lease.session] = lease
            self._valid_until[lease.session] = started + self._manager.ttl

    def untrack(self, lease: Lease) -> bool:
        """Stop renewing `lease` (call before releasing it); False if it was not tracked."""
        with self._guard:
            if self._tracked.get(lease.session) != lease:
                return False
            del self._tracked[lease.session]
            self._valid_until.pop(lease.session, None)
            return True

    def leases(self) -> list[Lease]:
        with self._guard:
            return list(self._tracked.values())

    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is the one tracked for its session (one dict lookup: a worker
        holding thousands of listening sessions asks this for every job and round)."""
        with self._guard:
            return self._tracked.get(lease.session) == lease

    async def beat_once(self) -> bool:
        """One round: liveness beat, then renew every tracked lease. False if Redis failed."""
        loop = asyncio.get_running_loop()
        healthy = True
        if self._liveness is not None:
            try:
                await loop.run_in_executor(self._executor, self._liveness.beat)
            except LeaseUnavailable:
                logger.warning("worker_liveness_beat_failed", reason="redis_unavailable")
                healthy = False
        leases = self.leases()
        if not leases:
            return healthy
        sent_at = time.monotonic()
        try:
            renewed = await loop.run_in_executor(self._executor, self._manager.renew_many, leases)
        except LeaseUnavailable:
            logger.warning("lease_renewal_failed", leases=len(leases), reason="redis_unavailable")
            self._drop_expired(time.monotonic())
            return False
        for lease, ok in zip(leases, renewed, strict=True):
            if ok:
                with self._guard:
                    if self._tracked.get(lease.session) == lease:
                        self._valid_until[lease.session] = sent_at + self._manager.ttl
            else:
                self._lose(lease, reason="taken_over")
        return healthy

    def _drop_expired(self, now: float) -> None:
        with self._guard:
            tracked = list(self._tracked.values())
            deadlines = dict(self._valid_until)
        for lease in tracked:
            # Lost if the lease may expire before the next attempt could renew it.
            if now + self.retry_interval >= deadlines.get(lease.session, now):
                self._lose(lease, reason="unreachable")

    def _lose(self, lease: Lease, *, reason: LostReason) -> None:
        with self._guard:
            if self._tracked.get(lease.session) != lease:
                return  # untracked (released on purpose) while the renewal was in flight
            del self._tracked[lease.session]
            self._valid_until.pop(lease.session, None)
        if reason == "unreachable":
            # A renewal answering "not yours" is counted by the manager; this one never
            # reached Redis, so the heartbeat counts it.
            self._manager.metrics.lost(reason)
        logger.warning(
            "session_lease_lost",
            tenant_id=lease.tenant_id,
            app_id=lease.app_id,
            epoch=lease.epoch,
            reason=reason,
        )
        try:
            outcome = self._on_lost(lease)
        except Exception:
            logger.exception("on_lost_callback_failed", tenant_id=lease.tenant_id)
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            self._callbacks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[None]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("on_lost_callback_failed", error=type(task.exception()).__name__)

    async def _run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                healthy = await self.beat_once()
            except Exception:
                # A bug in one beat must not end the heartbeat: every lease would then
                # silently expire while its client keeps talking to Telegram.
                logger.exception("lease_heartbeat_beat_failed")
                healthy = False
            pause = self.interval if healthy else self.retry_interval
            try:
                await asyncio.wait_for(stopping.wait(), timeout=pause)
            except TimeoutError:
                continue

    def start(self) -> asyncio.Task[None]:
        """Start beating on the running loop (first beat at once, for the liveness key)."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("heartbeat already running")
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(self._stopping))
        return self._task

    async def stop(self, *, release: bool = False) -> None:
        """Stop beating; with `release`, release every tracked lease (worker shutdown)."""
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)
        if release:
            with self._guard:
                leases = list(self._tracked.values())
                self._tracked.clear()
                self._valid_until.clear()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._manager.release_many, leases)
