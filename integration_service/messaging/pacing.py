"""Send pacing in Redis: stay under Telegram's limits so FloodWait stays rare.

Token buckets shared by every worker, checked and taken atomically in one Lua call:
per chat, per group and per account. Defaults are Telegram's documented limits for
bots (about one message per second per chat, 20 per minute per group, about 30 per
second overall; Telegram publishes none for user accounts, so the same values apply).
A send over the limit is not slept on: the job is retried when a token is due.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from prometheus_client import Counter

from integration_service.errors import RetryableError
from integration_service.store import SessionKey

PACING_DELAYS = Counter(
    "telegram_pacing_delays_total",
    "Sends deferred by pacing, by the limit that applied.",
    ["limit"],
)

# KEYS: bucket keys. ARGV: now_ms, then (rate_per_ms, capacity) per key.
# Returns {0} if a token was taken from every bucket, else {wait_ms, index of the bucket}.
# Nothing is taken unless every bucket has a token, so a refused send costs no budget.
_TAKE = """
local now = tonumber(ARGV[1])
local levels = {}
local worst_wait, worst_index = 0, 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local capacity = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  levels[i] = tokens
  if tokens < 1 then
    local wait = math.ceil((1 - tokens) / rate)
    if wait > worst_wait then worst_wait, worst_index = wait, i end
  end
end
if worst_wait > 0 then return {worst_wait, worst_index} end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local capacity = tonumber(ARGV[2 * i + 1])
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(capacity / rate) + 1000)
end
return {0, 0}
"""


class PacingDelay(RetryableError):
    """This send would exceed a pacing limit; retry after ``retry_after`` seconds."""

    code = "pacing_delay"
    counts_against_limit = False

    def __init__(self, retry_after: float, limit: str) -> None:
        super().__init__(f"paced by the {limit} limit for {retry_after:.2f}s")
        self.retry_after = retry_after
        self.limit = limit


@dataclass(frozen=True, slots=True)
class PacingLimits:
    per_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0
    per_account_per_second: float = 30.0


class Pacer:
    def __init__(self, client: redis.Redis, limits: PacingLimits) -> None:
        self._redis = client
        self.limits = limits
        self._take = client.register_script(_TAKE)

    def take(self, key: SessionKey, peer: str, *, is_group: bool) -> None:
        """Take one send from every applicable bucket, or raise PacingDelay."""
        session = f"{key.tenant_id}:{key.app_id}"
        buckets: list[tuple[str, str, float, float]] = [
            (
                "account",
                f"pace:account:{session}",
                self.limits.per_account_per_second / 1000,
                max(1.0, self.limits.per_account_per_second),
            ),
            ("chat", f"pace:chat:{session}:{peer}", self.limits.per_chat_per_second / 1000, 1.0),
        ]
        if is_group:
            per_minute = self.limits.per_group_per_minute
            buckets.append(
                ("group", f"pace:group:{session}:{peer}", per_minute / 60_000, max(1.0, per_minute))
            )
        args: list[float] = [int(time.time() * 1000)]
        for _name, _key, rate, capacity in buckets:
            args.extend((rate, capacity))
        wait_ms, index = self._take(keys=[b[1] for b in buckets], args=args)
        if int(wait_ms) > 0:
            limit = buckets[int(index) - 1][0]
            PACING_DELAYS.labels(limit=limit).inc()
            raise PacingDelay(int(wait_ms) / 1000, limit)
