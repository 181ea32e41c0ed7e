"""Rate limits through the real API process: per key, then per tenant; 429 with
Retry-After and the RateLimit headers; served again once the wait has passed."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for

T = "/api/integrations/telegram"


@pytest.fixture(scope="module")
def api_overrides() -> dict[str, str]:
    # A key: 5 at once, then one every 5 s (slow enough that a slow machine's calls do not
    # earn a new one meanwhile). The tenant: 8 at once over all its keys.
    return {
        "RATE_LIMIT_KEY_PER_SECOND": "0.2",
        "RATE_LIMIT_KEY_BURST": "5",
        "RATE_LIMIT_TENANT_PER_SECOND": "0.2",
        "RATE_LIMIT_TENANT_BURST": "8",
    }


def test_a_key_gets_429_past_its_burst_then_recovers(api: ApiProcess, make_key: KeyMaker) -> None:
    key = make_key("tenant-limited", "accounts:read")
    answers = [api.call("GET", f"{T}/accounts", token=key) for _ in range(6)]
    assert [a.status for a in answers[:5]] == [200] * 5
    refused = answers[5]
    assert refused.status == 429, refused.body
    assert refused.code == "rate_limited"
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-policy"] == '"key";q=5;w=25'
    assert refused.headers["ratelimit"].startswith('"key";r=0;')
    # Allowed again once the wait is over (one emission interval: 5 s).
    started = time.monotonic()
    wait_for(
        lambda: api.call("GET", f"{T}/accounts", token=key).status == 200,
        timeout=15,
        interval=0.5,
        what="the key to be served again",
    )
    assert time.monotonic() - started <= float(refused.headers["retry-after"]) + 2


def test_the_tenant_limit_holds_over_all_its_keys(api: ApiProcess, make_key: KeyMaker) -> None:
    first = make_key("tenant-many-keys", "accounts:read")
    second = make_key("tenant-many-keys", "accounts:read")
    statuses = [api.call("GET", f"{T}/accounts", token=first).status for _ in range(5)]
    statuses += [api.call("GET", f"{T}/accounts", token=second).status for _ in range(5)]
    # 8 for the tenant in all, though each key alone would allow 5.
    assert statuses.count(200) == 8, statuses
    refused = api.call("GET", f"{T}/accounts", token=second)
    assert refused.status == 429 and '"tenant"' in refused.headers["ratelimit"]
    # Another tenant is not held back by this one.
    other = make_key("tenant-unrelated", "accounts:read")
    assert api.call("GET", f"{T}/accounts", token=other).status == 200
