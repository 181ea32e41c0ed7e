"""A beat scheduler that sends periodic jobs only while it holds the leader lease.

Running two beats for availability would otherwise double every periodic job. Each
tick, a beat renews (or tries to take) ``beat_leader`` in Redis, an atomic SET NX PX
with its own token; a beat without the lease sends nothing and tries again shortly. A
dead leader's lease expires after BEAT_LEASE_TTL and a standby takes over.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import redis
import structlog
from celery.beat import PersistentScheduler
from prometheus_client import Gauge

from integration_service.settings import get_settings

LEADER_KEY = "beat_leader"
LEASE_TTL_SECONDS = 30
STANDBY_RETRY_SECONDS = 2.0
BEAT_LEADER = Gauge("celery_beat_leader", "1 while this beat holds the leader lease.")
logger = structlog.get_logger(__name__)

# Take the lease if free, renew it if ours; 1 if we hold it afterwards.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeasedScheduler(PersistentScheduler):
    """PersistentScheduler gated by a Redis leader lease."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._redis = redis.Redis.from_url(get_settings().redis_url)
        self._token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._hold = self._redis.register_script(_HOLD)
        self._release = self._redis.register_script(_RELEASE)
        self._leading = False
        super().__init__(*args, **kwargs)

    def _hold_lease(self) -> bool:
        try:
            held = bool(self._hold(keys=[LEADER_KEY], args=[self._token, LEASE_TTL_SECONDS * 1000]))
        except redis.RedisError:
            # Unable to prove leadership: act as a standby rather than risk two leaders.
            held = False
        if held != self._leading:
            logger.info("beat_leadership_changed", leader=held, token=self._token)
        self._leading = held
        BEAT_LEADER.set(1 if held else 0)
        return held

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lease():
            return STANDBY_RETRY_SECONDS
        # Never sleep past the lease: renew well before it could expire.
        return float(min(super().tick(*args, **kwargs), LEASE_TTL_SECONDS / 3))

    def close(self) -> None:
        try:
            if self._leading:
                self._release(keys=[LEADER_KEY], args=[self._token])
        except redis.RedisError:
            pass
        finally:
            BEAT_LEADER.set(0)
            super().close()
