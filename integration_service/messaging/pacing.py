"""Send pacing in Redis: stay under Telegram's limits so FloodWait stays rare.

Per chat, per group and per account, shared by every worker. Each bucket is a GCRA
("virtual scheduling") slot book: a send reserves the next free slot in every bucket in
one atomic Lua call and learns how long until that slot. A send whose slot is now goes
at once; a later one is retried at its slot, carrying its reservation, so it is deferred
exactly once however many sends queue up for one chat (no worker thread sleeps).

Defaults are Telegram's documented limits for bots (about one message per second per
chat, 20 per minute per group, about 30 per second overall); Telegram publishes none for
user accounts, so the same values apply unless configured.
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

# KEYS: buckets. ARGV: now_ms, then (interval_ms, tolerance_ms) per bucket.
# Reserves a slot in every bucket; returns {wait_ms, index of the bucket that set it}.
_RESERVE = """
local now = tonumber(ARGV[1])
local worst_wait, worst_index = 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > worst_wait then worst_wait, worst_index = wait, i end
  local new_tat = tat + interval
  redis.call('SET', key, new_tat, 'PX', math.ceil(new_tat - now + tolerance + interval))
end
return {math.ceil(worst_wait), worst_index}
"""


# On a retry: this job's slot is reserved already, send without reserving again.
PACE_RESERVED_HEADER = "x-pace-reserved"


class PacingDelay(RetryableError):
    """This send's slot is ``retry_after`` seconds away; it is reserved for the retry."""

    code = "pacing_delay"

    def __init__(self, retry_after: float, limit: str) -> None:
        # Retry exactly at the reserved slot (rounded up, no jitter: slots are spread out
        # already), carrying the reservation; a wait, so bounded by max_deferrals.
        super().__init__(
            f"paced by the {limit} limit for {retry_after:.2f}s",
            retry_after=retry_after,
            exact=True,
            retry_headers={PACE_RESERVED_HEADER: 1},
            counts_against_limit=False,
        )
        self.limit = limit


@dataclass(frozen=True, slots=True)
class PacingLimits:
    per_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0
    per_account_per_second: float = 30.0


def _bucket(name: str, key: str, per_second: float, burst: float) -> tuple[str, str, float, float]:
    interval = 1000.0 / per_second
    return (name, key, interval, interval * max(0.0, burst - 1))


class Pacer:
    # A slot this close is taken at once rather than paid for with a retry.
    NOW_MS = 50

    def __init__(self, client: redis.Redis, limits: PacingLimits) -> None:
        self._redis = client
        self.limits = limits
        self._reserve = client.register_script(_RESERVE)

    def reserve(self, key: SessionKey, peer: str, *, is_group: bool) -> None:
        """Reserve this send's slot in every bucket; PacingDelay if it is not now."""
        session = f"{key.tenant_id}:{key.app_id}"
        limits = self.limits
        buckets = [
            _bucket(
                "account",
                f"pace:account:{session}",
                limits.per_account_per_second,
                limits.per_account_per_second,
            ),
            _bucket("chat", f"pace:chat:{session}:{peer}", limits.per_chat_per_second, 1),
        ]
        if is_group:
            per_minute = limits.per_group_per_minute
            buckets.append(
                _bucket("group", f"pace:group:{session}:{peer}", per_minute / 60, per_minute)
            )
        args: list[float] = [int(time.time() * 1000)]
        for _name, _key, interval, tolerance in buckets:
            args.extend((interval, tolerance))
        wait_ms, index = self._reserve(keys=[b[1] for b in buckets], args=args)
        if int(wait_ms) > self.NOW_MS:
            limit = buckets[int(index) - 1][0]
            PACING_DELAYS.labels(limit=limit).inc()
            raise PacingDelay(int(wait_ms) / 1000, limit)
