"""GCRA rate limits against the real Redis on 127.0.0.1:6379, database 2, each test in its
own key prefix (deleted afterwards). A missing Redis fails these tests, never skips them."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from integration_service.api.errors import RateLimited
from integration_service.api.ratelimit import (
    KEY_LIMIT,
    TENANT_LIMIT,
    Decision,
    Limit,
    RateLimiter,
    enforce,
    headers,
    limits_from_settings,
)
from integration_service.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/2"
# A rate so low that no cell comes back while a test runs: counts are exact.
FROZEN = 0.001
# Slack for the time between two script runs on a busy 2-core machine.
SLACK = 0.05


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    client.ping()  # a missing Redis fails the test, never skips it
    yield client
    client.close()


@pytest.fixture
def limiter(redis_client: redis.Redis) -> Iterator[RateLimiter]:
    """A limiter in a key namespace of this test alone; its keys are deleted afterwards."""
    prefix = f"test:ratelimit:{uuid.uuid4().hex}"
    yield RateLimiter(redis_client, prefix=prefix)
    stale = list(redis_client.scan_iter(match=prefix + ":*", count=1000))
    if stale:
        redis_client.delete(*stale)


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def count_allowed(limiter: RateLimiter, checks: list[tuple[Limit, str]], attempts: int) -> int:
    return sum(limiter.check(checks).allowed for _ in range(attempts))


def test_a_burst_is_allowed_and_the_next_request_waits_one_interval(
    limiter: RateLimiter,
) -> None:
    limit = Limit("key", per_second=5, burst=4)
    interval = 1 / limit.per_second
    started = time.monotonic()
    burst = [limiter.check([(limit, "k1")]) for _ in range(limit.burst)]
    elapsed = time.monotonic() - started
    assert all(decision.allowed and decision.retry_after == 0 for decision in burst)

    refused = limiter.check([(limit, "k1")])
    assert not refused.allowed and refused.limit == limit and refused.remaining == 0
    # The first cell comes back one interval after the burst began.
    assert interval - elapsed - SLACK <= refused.retry_after <= interval
    assert limit.burst * interval - elapsed - SLACK <= refused.reset_after
    assert refused.reset_after <= limit.burst * interval


def test_a_request_is_allowed_again_once_retry_after_has_passed(limiter: RateLimiter) -> None:
    limit = Limit("key", per_second=5, burst=2)
    assert count_allowed(limiter, [(limit, "k1")], limit.burst + 1) == limit.burst
    refused = limiter.check([(limit, "k1")])
    refused_at = time.monotonic()
    assert not refused.allowed and refused.retry_after > 0

    answers: list[Decision] = []

    def allowed_again() -> bool:
        answers.append(limiter.check([(limit, "k1")]))
        return answers[-1].allowed

    assert wait_for(allowed_again, timeout=5.0), "still refused long after retry_after"
    waited = time.monotonic() - refused_at
    assert waited >= refused.retry_after - SLACK
    # The refused polls took nothing: the one cell that came back is the one just used.
    assert answers[-1].remaining == 0
    assert not limiter.check([(limit, "k1")]).allowed


def test_remaining_counts_down_to_zero(limiter: RateLimiter) -> None:
    limit = Limit("key", per_second=FROZEN, burst=5)
    remaining = [limiter.check([(limit, "k1")]).remaining for _ in range(limit.burst)]
    assert remaining == [4, 3, 2, 1, 0]
    refused = limiter.check([(limit, "k1")])
    assert not refused.allowed and refused.remaining == 0


def test_each_identifier_has_its_own_bucket(limiter: RateLimiter) -> None:
    limit = Limit("key", per_second=FROZEN, burst=2)
    assert count_allowed(limiter, [(limit, "k1")], 5) == 2
    assert count_allowed(limiter, [(limit, "k2")], 5) == 2


def test_a_refusal_by_the_tenant_limit_takes_nothing_from_the_key_limit(
    limiter: RateLimiter,
) -> None:
    key = Limit(KEY_LIMIT, per_second=FROZEN, burst=10)
    tenant = Limit(TENANT_LIMIT, per_second=FROZEN, burst=3)
    both = [(key, "k1"), (tenant, "t1")]

    allowed = [limiter.check(both) for _ in range(3)]
    # All allowed: the decision with the fewest remaining is the tenant's.
    assert [(d.allowed, d.limit.name, d.remaining) for d in allowed] == [
        (True, TENANT_LIMIT, 2),
        (True, TENANT_LIMIT, 1),
        (True, TENANT_LIMIT, 0),
    ]
    for _ in range(5):
        refused = limiter.check(both)
        assert not refused.allowed and refused.limit == tenant

    # The key's bucket holds 10 - 3: the five refused requests took nothing from it.
    assert limiter.check([(key, "k1")]).remaining == 6
    assert count_allowed(limiter, [(key, "k1")], 20) == 6


def test_a_refusal_by_the_key_limit_takes_nothing_from_the_tenant_limit(
    limiter: RateLimiter,
) -> None:
    key = Limit(KEY_LIMIT, per_second=FROZEN, burst=2)
    tenant = Limit(TENANT_LIMIT, per_second=FROZEN, burst=10)
    assert count_allowed(limiter, [(key, "k1"), (tenant, "t1")], 6) == 2
    refused = limiter.check([(key, "k1"), (tenant, "t1")])
    assert not refused.allowed and refused.limit == key
    # Another key of the same tenant still finds the tenant's 10 - 2.
    assert count_allowed(limiter, [(tenant, "t1")], 20) == 8


def test_when_both_limits_refuse_the_longer_wait_is_reported(limiter: RateLimiter) -> None:
    key = Limit(KEY_LIMIT, per_second=10, burst=1)
    tenant = Limit(TENANT_LIMIT, per_second=0.5, burst=1)
    both = [(key, "k1"), (tenant, "t1")]
    assert limiter.check(both).allowed
    refused = limiter.check(both)
    assert not refused.allowed and refused.limit == tenant
    assert 2.0 - SLACK <= refused.retry_after <= 2.0


def test_buckets_expire_once_full_again(limiter: RateLimiter, redis_client: redis.Redis) -> None:
    slow = Limit("slow", per_second=FROZEN, burst=3)
    decision = limiter.check([(slow, "k1")])
    ttl_ms = redis_client.pttl(limiter.key(slow, "k1"))
    # The bucket lives exactly until it is full again (one interval here), no longer.
    assert 0 < ttl_ms <= math.ceil(decision.reset_after * 1000)
    assert ttl_ms >= (decision.reset_after - SLACK) * 1000

    fast = Limit("fast", per_second=20, burst=2)
    limiter.check([(fast, "k1")])
    assert redis_client.pttl(limiter.key(fast, "k1")) > 0
    assert wait_for(lambda: redis_client.exists(limiter.key(fast, "k1")) == 0, timeout=5.0)


def test_headers_of_an_allowed_decision() -> None:
    decision = Decision(
        allowed=True,
        limit=Limit("key", per_second=50, burst=100),
        remaining=57,
        retry_after=0.0,
        reset_after=0.86,
    )
    assert headers(decision) == {
        "RateLimit-Policy": '"key";q=100;w=2',
        "RateLimit": '"key";r=57;t=1',
    }


def test_headers_of_a_refused_decision() -> None:
    limit = Limit("tenant", per_second=200, burst=400)
    decision = Decision(False, limit, remaining=0, retry_after=2.1, reset_after=2.5)
    assert headers(decision) == {
        "RateLimit-Policy": '"tenant";q=400;w=2',
        "RateLimit": '"tenant";r=0;t=3',
        "Retry-After": "3",
    }
    # A wait under a second is still announced as one: 0 would invite an immediate retry.
    brief = Decision(False, limit, remaining=0, retry_after=0.004, reset_after=2.0)
    assert headers(brief)["Retry-After"] == "1"
    assert headers(brief)["RateLimit"] == '"tenant";r=0;t=1'


def test_the_window_is_rounded_up_to_whole_seconds() -> None:
    decision = Decision(True, Limit("key", per_second=3, burst=10), 9, 0.0, 0.34)
    assert headers(decision)["RateLimit-Policy"] == '"key";q=10;w=4'


def test_headers_of_real_decisions(limiter: RateLimiter) -> None:
    limit = Limit("key", per_second=FROZEN, burst=2)
    first = headers(limiter.check([(limit, "k1")]))
    assert first["RateLimit-Policy"] == '"key";q=2;w=2000'
    assert first["RateLimit"] == '"key";r=1;t=1000'
    assert "Retry-After" not in first
    limiter.check([(limit, "k1")])
    refused = headers(limiter.check([(limit, "k1")]))
    assert refused["RateLimit"] == '"key";r=0;t=1000'
    assert refused["Retry-After"] == "1000"


def test_enforce_raises_rate_limited_for_a_refusal_only(limiter: RateLimiter) -> None:
    key = Limit(KEY_LIMIT, per_second=FROZEN, burst=5)
    tenant = Limit(TENANT_LIMIT, per_second=FROZEN, burst=1)
    enforce(limiter.check([(key, "k1"), (tenant, "t1")]))
    refused = limiter.check([(key, "k1"), (tenant, "t1")])
    with pytest.raises(RateLimited) as raised:
        enforce(refused)
    assert raised.value.status == 429 and raised.value.code == "rate_limited"
    assert raised.value.limit == TENANT_LIMIT
    assert raised.value.retry_after == refused.retry_after > 0
    # The message names the limit, never the caller's identifiers.
    assert "t1" not in str(raised.value) and "k1" not in str(raised.value)


def test_concurrent_checks_allow_exactly_the_burst(limiter: RateLimiter) -> None:
    limit = Limit("key", per_second=FROZEN, burst=100)
    threads, per_thread = 8, 50
    start = threading.Barrier(threads)

    def hammer() -> int:
        start.wait(timeout=10)
        return count_allowed(limiter, [(limit, "k1")], per_thread)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        counts = [future.result() for future in [pool.submit(hammer) for _ in range(threads)]]
    assert sum(counts) == limit.burst


def test_limits_from_settings() -> None:
    settings = Settings(
        rate_limit_key_per_second=5.0,
        rate_limit_key_burst=7,
        rate_limit_tenant_per_second=20.0,
        rate_limit_tenant_burst=30,
    )
    assert limits_from_settings(settings) == (
        Limit(KEY_LIMIT, per_second=5.0, burst=7),
        Limit(TENANT_LIMIT, per_second=20.0, burst=30),
    )


def test_programming_errors_are_refused(limiter: RateLimiter) -> None:
    limit = Limit("key", per_second=1, burst=1)
    with pytest.raises(ValueError, match="empty"):
        limiter.check([(limit, "")])
    with pytest.raises(ValueError, match="at least one"):
        limiter.check([])
    with pytest.raises(ValueError, match="twice"):
        limiter.check([(limit, "k1"), (limit, "k1")])
    for name in ("", "a:b", 'say "hi"'):
        with pytest.raises(ValueError):
            Limit(name, per_second=1, burst=1)
    with pytest.raises(ValueError):
        Limit("key", per_second=0, burst=1)
    with pytest.raises(ValueError):
        Limit("key", per_second=1, burst=0)
    with pytest.raises(ValueError):
        Limit("key", per_second=1e-9, burst=1)
