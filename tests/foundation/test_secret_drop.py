"""One-time secrets: a job run keeps its secret until it has an outcome (real Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from integration_service.errors import PermanentError, RetryableError
from integration_service.secret_drop import SecretExpired, put_secret, secret_for_job

REDIS_URL = "redis://127.0.0.1:6379/3"


@pytest.fixture
def drops() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_a_run_with_a_result_deletes_the_secret(drops: redis.Redis) -> None:
    reference = put_secret(drops, "12345")
    with secret_for_job(drops, reference) as secret:
        assert secret == "12345"
    with pytest.raises(SecretExpired), secret_for_job(drops, reference):
        pass


def test_a_permanent_failure_deletes_the_secret(drops: redis.Redis) -> None:
    reference = put_secret(drops, "hunter2")
    with pytest.raises(PermanentError), secret_for_job(drops, reference):
        raise PermanentError("wrong in a way no retry fixes")
    assert drops.keys("secret_drop:*") == []


@pytest.mark.parametrize(
    "failure",
    [RetryableError("flood wait"), ConnectionError("dropped"), RuntimeError("worker bug")],
)
def test_a_run_that_may_be_retried_keeps_the_secret(drops: redis.Redis, failure: Exception) -> None:
    reference = put_secret(drops, "bot:token")
    with pytest.raises(type(failure)), secret_for_job(drops, reference):
        raise failure
    # The retry (or the redelivery after a crash) still finds it, within its TTL.
    with secret_for_job(drops, reference) as secret:
        assert secret == "bot:token"
    assert drops.keys("secret_drop:*") == []


def test_a_malformed_or_unknown_reference_is_refused(drops: redis.Redis) -> None:
    for reference in [None, 42, "short", "x" * 65, "y" * 32]:
        with pytest.raises(SecretExpired), secret_for_job(drops, reference):
            raise AssertionError("never reached")
