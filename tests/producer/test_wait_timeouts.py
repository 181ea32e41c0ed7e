"""A wait that gives up raises the project's WaitTimedOut, still a builtin TimeoutError.

``IntegrationClient.wait`` used to let Celery's own ``TimeoutError`` through and
``wait_for_state`` the builtin one: neither was a ServiceError with a code. Both now raise
``WaitTimedOut`` (retryable: the job may still finish), which survives pickling and the
JSON result format like every project error, and which ``except TimeoutError`` callers
and the CLI's exit code 5 still recognise.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from integration_service.cli.output import ExitCode, failure_for
from integration_service.client import IntegrationClient, JobHandle, WaitTimedOut
from integration_service.errors import RetryableError, ServiceError
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore

TENANT = "tenant-wait"
# Only read from (no job ever writes here): the DB the producer's result tests use.
RESULTS_URL = "redis://127.0.0.1:6379/4"


@pytest.fixture
def producer(
    settings: Settings, engine: object, store: SessionStore
) -> Iterator[IntegrationClient]:
    app = Celery("waiting-service", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf["result_backend"] = RESULTS_URL
    cache = redis.Redis.from_url(RESULTS_URL)
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(SessionKey(TENANT, "idle"), "user", "authorized", 1))
    client = IntegrationClient(settings=settings, app=app, engine=engine, redis_client=cache)  # type: ignore[arg-type]
    yield client
    client.close()
    app.close()


def assert_wait_timed_out(error: BaseException) -> None:
    assert type(error) is WaitTimedOut
    assert isinstance(error, ServiceError) and isinstance(error, RetryableError)
    assert isinstance(error, TimeoutError)  # callers' `except TimeoutError` still works
    assert error.code == "wait_timed_out"
    # Bytes this test made itself, so unpickling them is safe.
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert type(copy) is WaitTimedOut and str(copy) == str(error)
    failure = failure_for(error)
    assert failure.exit_code == ExitCode.TIMEOUT and str(failure).startswith("timed out: ")


def test_a_job_without_a_result_raises_wait_timed_out(producer: IntegrationClient) -> None:
    handle = JobHandle(str(uuid.uuid4()), "tasks.messages.send_message", "mid", TENANT, "idle")
    started = time.monotonic()
    with pytest.raises(WaitTimedOut) as caught:
        producer.wait(handle, timeout=0.5)
    assert time.monotonic() - started < 5
    assert_wait_timed_out(caught.value)
    assert handle.job_id in str(caught.value) and "0.5s" in str(caught.value)


def test_a_session_that_stays_put_raises_wait_timed_out(producer: IntegrationClient) -> None:
    with pytest.raises(TimeoutError) as caught:
        producer.wait_for_state(TENANT, "idle", {"revoked"}, timeout=0.3)
    assert_wait_timed_out(caught.value)
    assert str(caught.value) == f"session {TENANT}/idle is authorized, not ['revoked']"
    # Reached states still return at once.
    assert producer.wait_for_state(TENANT, "idle", {"authorized"}, timeout=0.3).state == (
        "authorized"
    )
