"""Detecting that Redis lost its data (a restart without persistence, a failover).

Leases live in Redis; if Redis comes back empty, every lease is gone while the workers
that held them may still have clients connected. ``lease_generation`` is a key created
once per Redis data set: a worker that sees it change knows its leases vanished and
drops its clients at once; a worker claiming a session that had an owner before waits
out a quarantine after the change, long enough for every old holder to notice (one
heartbeat) — so no two workers ever drive one session, even across a Redis restart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from integration_service.leases.manager import LeaseUnavailable

GENERATION_KEY = "lease_generation"

# Returns {id, created_ms, now_ms}; creates the generation if this data set has none.
_CURRENT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_ms', now)
  return {ARGV[1], now, now}
end
return {id, tonumber(redis.call('HGET', KEYS[1], 'created_ms')), now}
"""


@dataclass(frozen=True, slots=True)
class Generation:
    id: str
    created_ms: int
    now_ms: int

    def quarantine_left(self, quarantine_seconds: float) -> float:
        """Seconds until claims of previously owned sessions are safe again."""
        return max(0.0, (self.created_ms + quarantine_seconds * 1000 - self.now_ms) / 1000)


class LeaseGeneration:
    def __init__(self, client: redis.Redis, *, key_prefix: str = "") -> None:
        self._key = f"{key_prefix}{GENERATION_KEY}"
        self._current = client.register_script(_CURRENT)

    def current(self) -> Generation:
        try:
            gid, created, now = self._current(keys=[self._key], args=[secrets.token_hex(8)])
        except redis.RedisError as error:
            raise LeaseUnavailable("Redis failed while reading the lease generation") from error
        text = gid.decode() if isinstance(gid, bytes) else str(gid)
        return Generation(text, int(created), int(now))
