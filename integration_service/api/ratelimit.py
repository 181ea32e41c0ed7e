"""Rate limits for the HTTP API: GCRA (generic cell rate algorithm) buckets in Redis.

A bucket stores one number, its theoretical arrival time TAT. With emission interval
T = 1/per_second, a request at time ``now`` is allowed iff max(TAT, now) + T - now <= burst * T
(a tolerance tau = T * (burst - 1) beyond the one interval), and then TAT = max(TAT, now) + T.

Every check is one Lua script run on Redis's own clock (``TIME``), so all API processes
share one time and one bucket state, and several limits (the key's and the tenant's) are
decided together: a request is counted against all of them or against none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.typing import EncodableT

from integration_service.api.errors import RateLimited
from integration_service.settings import Settings

# The limit names ``limits_from_settings`` returns; they appear in the headers as well.
KEY_LIMIT = "key"
TENANT_LIMIT = "tenant"

_MICROSECONDS = 1_000_000
# A bucket that takes longer than this to refill is a misconfiguration; the bound also
# keeps TAT (server microseconds) well inside the integers a Lua double holds exactly.
_MAX_REFILL_MICROSECONDS = 365 * 86_400 * _MICROSECONDS
# A name is a part of the Redis key (so no ':', which would let two limits share a
# bucket) and a Structured Field String in the headers (so nothing that needs escaping).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# KEYS[i]: limit i's bucket. ARGV[2i-1], ARGV[2i]: its emission interval T (whole
# microseconds) and its burst. Returns, flattened, per limit: allowed (1 or 0), remaining,
# retry_after and reset_after (microseconds). Nothing is written unless every limit allows,
# and a refusal never moves a TAT, so refused requests use up no allowance anywhere.
_GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local answer = {}
local next_tats = {}
local all_allowed = true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local depth = interval * tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allowed_at = next_tat - depth
  local base = 4 * (i - 1)
  if allowed_at <= now then
    next_tats[i] = next_tat
    answer[base + 1] = 1
    answer[base + 2] = math.floor((depth - (next_tat - now)) / interval)
    answer[base + 3] = 0
    answer[base + 4] = next_tat - now
  else
    all_allowed = false
    answer[base + 1] = 0
    answer[base + 2] = 0
    answer[base + 3] = allowed_at - now
    answer[base + 4] = tat - now
  end
end
if all_allowed then
  for i = 1, #KEYS do
    -- Expire when the bucket is full again: a bucket that is gone and a full one are the
    -- same state, so idle callers leave nothing behind.
    local ttl_ms = math.ceil((next_tats[i] - now) / 1000)
    redis.call('SET', KEYS[i], string.format('%d', next_tats[i]), 'PX', ttl_ms)
  end
else
  -- Report the limits that would have allowed as they stand, nothing having been taken.
  for i = 1, #KEYS do
    local base = 4 * (i - 1)
    if answer[base + 1] == 1 then
      local interval = tonumber(ARGV[2 * i - 1])
      local depth = interval * tonumber(ARGV[2 * i])
      local held = answer[base + 4] - interval
      answer[base + 2] = math.floor((depth - held) / interval)
      answer[base + 4] = held
    end
  end
end
return answer
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """``per_second`` requests on average, up to ``burst`` of them at one instant."""

    name: str
    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError("a limit name is letters, digits, '_', '.' and '-'")
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise ValueError("per_second must be a positive number")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        if self.burst * self.interval_microseconds > _MAX_REFILL_MICROSECONDS:
            raise ValueError("burst / per_second must not exceed a year")

    @property
    def interval_microseconds(self) -> int:
        """T in whole microseconds, rounded up: integer arithmetic in the script stays
        exact, and rounding up never lets more through than the configured rate."""
        return max(1, math.ceil(_MICROSECONDS / self.per_second))


@dataclass(frozen=True, slots=True)
class Decision:
    """One limit's answer. ``remaining`` counts requests still allowed right now;
    ``retry_after`` is 0 when allowed; ``reset_after`` is the time to a full bucket."""

    allowed: bool
    limit: Limit
    remaining: int
    retry_after: float
    reset_after: float


class RateLimiter:
    """Checks requests against GCRA buckets ``{prefix}:{limit name}:{identifier}``."""

    def __init__(self, redis_client: redis.Redis, *, prefix: str = "ratelimit") -> None:
        self._redis = redis_client
        # A prefix lets tests share one Redis without touching real buckets.
        self.prefix = prefix
        self._gcra = redis_client.register_script(_GCRA)

    def key(self, limit: Limit, identifier: str) -> str:
        """The Redis key of ``limit``'s bucket for ``identifier`` (a key id, a tenant id)."""
        if not identifier:
            # An empty id would make every such caller share one bucket.
            raise ValueError("a rate limit identifier must not be empty")
        return f"{self.prefix}:{limit.name}:{identifier}"

    def check(self, checks: Sequence[tuple[Limit, str]]) -> Decision:
        """Count one request against every ``(limit, identifier)`` if all of them allow it.

        Returns the refusing decision with the longest wait, or, when all allow, the one
        with the fewest requests remaining (the first of those on a tie).
        """
        if not checks:
            raise ValueError("check needs at least one limit")
        keys = [self.key(limit, identifier) for limit, identifier in checks]
        if len(set(keys)) != len(keys):
            # The script would read the bucket twice and write it once: one request
            # would be counted once while being checked as two.
            raise ValueError("the same bucket appears twice in one check")
        args: list[EncodableT] = []
        for limit, _ in checks:
            args.extend((limit.interval_microseconds, limit.burst))
        answer = self._gcra(keys=keys, args=args)
        decisions = [
            Decision(
                allowed=int(answer[4 * index]) == 1,
                limit=limit,
                remaining=int(answer[4 * index + 1]),
                retry_after=int(answer[4 * index + 2]) / _MICROSECONDS,
                reset_after=int(answer[4 * index + 3]) / _MICROSECONDS,
            )
            for index, (limit, _) in enumerate(checks)
        ]
        refused = [decision for decision in decisions if not decision.allowed]
        if refused:
            return max(refused, key=lambda decision: decision.retry_after)
        return min(decisions, key=lambda decision: decision.remaining)


def enforce(decision: Decision) -> None:
    """Raise ``RateLimited`` (429) for a refused decision; an allowed one passes."""
    if decision.allowed:
        return
    raise RateLimited(
        f"the {decision.limit.name} rate limit is exhausted; "
        f"retry after {decision.retry_after:.3f} seconds",
        retry_after=decision.retry_after,
        limit=decision.limit.name,
    )


def _retry_after_seconds(decision: Decision) -> int:
    # Retry-After is whole seconds (delay-seconds); rounding down would send the client
    # back before the bucket has room, and 0 would invite an immediate retry.
    return max(1, math.ceil(decision.retry_after))


def headers(decision: Decision) -> dict[str, str]:
    """The response headers of ``decision``.

    Syntax of draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026), sections 3 and 4:
    ``RateLimit-Policy: "key";q=100;w=2`` (a List of Strings; q the quota, w the window in
    whole seconds) and ``RateLimit: "key";r=57;t=1`` (r the available quota, t the effective
    window in seconds). No ``pk`` parameter: the partition is the caller's own key or
    tenant, and the draft advises against echoing identifying data.
    """
    limit = decision.limit
    name = f'"{limit.name}"'  # _NAME admits nothing a Structured Field String must escape
    # The GCRA policy as a quota per window: a full burst, refilled over burst / per_second
    # seconds, rounded up because w is an Integer and a longer window understates the rate.
    window = max(1, math.ceil(limit.burst / limit.per_second))
    fields = {"RateLimit-Policy": f"{name};q={limit.burst};w={window}"}
    if decision.allowed:
        effective = math.ceil(decision.reset_after)
        fields["RateLimit"] = f"{name};r={decision.remaining};t={effective}"
    else:
        retry_after = _retry_after_seconds(decision)
        # The draft (section 6): Retry-After SHOULD NOT end before the effective window,
        # so t is the same wait; within it the client can use no quota at all.
        fields["RateLimit"] = f"{name};r=0;t={retry_after}"
        fields["Retry-After"] = str(retry_after)
    return fields


def limits_from_settings(settings: Settings) -> tuple[Limit, Limit]:
    """The per-key (API key or token subject) and per-tenant limits, in that order."""
    return (
        Limit(KEY_LIMIT, settings.rate_limit_key_per_second, settings.rate_limit_key_burst),
        Limit(
            TENANT_LIMIT,
            settings.rate_limit_tenant_per_second,
            settings.rate_limit_tenant_burst,
        ),
    )
