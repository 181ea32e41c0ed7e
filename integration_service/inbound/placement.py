"""Placement: every listening session held by exactly one live worker, shares kept fair.

Each listening worker (LISTEN_CAPACITY > 0) runs a round every PLACEMENT_INTERVAL:
- it announces itself in the Redis sorted set ``listeners`` (score: when it last did) and
  counts the live listeners (announced within WORKER_LIVENESS_TTL);
- its fair share is ceil(listening sessions / live listeners), capped by its capacity;
- holding fewer than that, it claims unowned sessions (no lease, or a lease whose holder
  stopped beating), at most PLACEMENT_BATCH per round, in random order so that workers
  claiming at once rarely collide (a collision is settled by the lease itself);
- holding more than its share + 10 %, it releases down to its share, at most
  PLACEMENT_BATCH per round, and the others claim them next round.
Claims go through the lease and its epoch (fencing) like every job. A worker stopping
cleanly leaves the set first, then releases its sessions. A dead worker's leases expire
(SESSION_LOCK_TTL) or its liveness key does, and the others take its sessions over.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import structlog

from integration_service.errors import ServiceError
from integration_service.inbound.metrics import (
    LISTENING_SESSIONS,
    LISTENING_UNOWNED,
    PLACEMENT_MOVES,
)
from integration_service.store.records import SessionKey

if TYPE_CHECKING:
    from integration_service.runtime.session_runtime import SessionRuntime

logger = structlog.get_logger(__name__)

SHARE_TOLERANCE = 0.10


def fair_share(total: int, live_workers: int, capacity: int) -> tuple[int, int]:
    """(target, upper): what a worker should hold, and above what it must release."""
    if total == 0:
        return 0, 0
    fair = math.ceil(total / max(1, live_workers))
    target = min(capacity, fair)
    upper = min(capacity, fair + max(1, math.floor(fair * SHARE_TOLERANCE)))
    return target, upper


class Placement:
    def __init__(self, runtime: SessionRuntime, *, key_prefix: str = "") -> None:
        self._runtime = runtime
        self._settings = runtime.settings
        self._registry = f"{key_prefix}listeners"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._round: asyncio.Future[None] | None = None
        self._claimers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="placement")

    def start(self) -> None:
        """On the runtime's loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Leave the placement group (others count us out), then stop claiming."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        if self._round is not None and not self._round.done():
            # Let a round in progress finish its claims before the pool closes.
            await asyncio.wait([self._round], timeout=15)
        self._claimers.shutdown(wait=False, cancel_futures=True)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._leave)
        except Exception:  # noqa: BLE001 - Redis down: our entry ages out of the set
            logger.warning("placement_leave_failed")

    def _leave(self) -> None:
        self._runtime.redis.zrem(self._registry, self._runtime.worker_id)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                self._round = loop.run_in_executor(None, self.round)
                await asyncio.shield(self._round)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the next round tries again
                logger.warning("placement_round_failed", error=type(error).__name__)
            await asyncio.sleep(self._settings.placement_interval * random.uniform(0.8, 1.2))

    # One round (on a thread) ---------------------------------------------------------

    def live_listeners(self) -> int:
        redis = self._runtime.redis
        now = time.time()
        pipe = redis.pipeline()
        pipe.zadd(self._registry, {self._runtime.worker_id: now})
        pipe.zremrangebyscore(self._registry, "-inf", now - self._settings.worker_liveness_ttl)
        pipe.zcard(self._registry)
        return int(pipe.execute()[-1])

    def held(self) -> list[SessionKey]:
        pool = self._runtime.pool
        listener = self._runtime.listener
        return [
            key
            for key in pool.keys()
            if (entry := pool.peek(key)) is not None
            and entry.pinned
            and listener.is_listening(entry)
            and self._runtime.holds(entry.lease)
        ]

    def unowned(self, keys: list[SessionKey]) -> list[SessionKey]:
        """Sessions with no lease, or a lease of a worker that stopped beating."""
        runtime = self._runtime
        redis = runtime.redis
        pipe = redis.pipeline()
        for key in keys:
            pipe.hget(runtime.leases.lock_key(key.tenant_id, key.app_id), "worker")
        holders = pipe.execute()
        candidates = [
            (key, holder.decode() if isinstance(holder, bytes) else holder)
            for key, holder in zip(keys, holders, strict=True)
        ]
        held_by = sorted({h for _, h in candidates if h})
        pipe = redis.pipeline()
        for worker in held_by:
            pipe.exists(runtime.leases.liveness_key(worker))
        alive = {w for w, exists in zip(held_by, pipe.execute(), strict=True) if exists}
        return [key for key, holder in candidates if holder is None or holder not in alive]

    def _claim(self, key: SessionKey) -> bool:
        if self._stopping:
            return False
        try:
            self._runtime.listen(key)
        except ServiceError as error:
            # Owned elsewhere by now, or not connectable yet: the next round tries again.
            logger.debug("placement_claim_skipped", session=str(key), code=error.code)
            return False
        PLACEMENT_MOVES.labels(action="claimed").inc()
        return True

    def round(self) -> None:
        runtime = self._runtime
        settings = self._settings
        listeners = self.live_listeners()
        wanted = runtime.store.listening_keys()
        wanted_set = set(wanted)
        held = self.held()
        # Sessions no longer listening (turned off, terminated) are let go first.
        for key in held:
            if key not in wanted_set:
                runtime.hand_off(key)
                PLACEMENT_MOVES.labels(action="released").inc()
        held = [key for key in held if key in wanted_set]
        unowned = self.unowned(wanted)
        LISTENING_UNOWNED.set(len(unowned))
        target, upper = fair_share(len(wanted), listeners, settings.listen_capacity)
        if len(held) > upper:
            excess = random.sample(held, min(settings.placement_batch, len(held) - target))
            for key in excess:
                runtime.hand_off(key)
                PLACEMENT_MOVES.labels(action="released").inc()
            logger.info("placement_released", count=len(excess), held=len(held), target=target)
        elif len(held) < target and unowned:
            random.shuffle(unowned)
            chosen = unowned[: min(settings.placement_batch, target - len(held))]
            # Claimed side by side: each claim waits on a connection (the pool bounds the
            # concurrent handshakes), and one slow claim must not hold up the round.
            claimed = sum(self._claimers.map(self._claim, chosen))
            if claimed:
                logger.info("placement_claimed", count=claimed, target=target)
        LISTENING_SESSIONS.set(len(self.held()))  # after this round's claims and releases
