"""A producer waiting on a failed job gets the project error back: class, code, attributes.

The failure is stored in Redis the way a worker stores it (the worker app's result
backend, JSON), then read through ``IntegrationClient.wait`` by producers whose Celery
app knows nothing of the project's result format, as another service's would not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from integration_service.client import IntegrationClient, JobHandle
from integration_service.errors import RetryableError, UnexpectedError
from integration_service.jobs.results import ServiceLoader, ServiceRedisBackend
from integration_service.messaging.pacing import PacingDelay
from integration_service.settings import Settings
from integration_service.store.errors import SaveErrorCode, StoreError
from integration_service.telegram.terminated import SessionTerminated

REDIS_DB = 4
RESULTS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture
def results() -> Iterator[redis.Redis]:
    client = redis.Redis(db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def worker_backend(results: redis.Redis) -> Iterator[ServiceRedisBackend]:
    """The backend a worker writes with (its app is built with ServiceLoader)."""
    app = Celery("worker-side", loader=ServiceLoader, set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.result_backend = RESULTS_URL
    assert isinstance(app.backend, ServiceRedisBackend)
    yield app.backend
    app.close()


@pytest.fixture
def producer(
    settings: Settings, engine: object, results: redis.Redis
) -> Iterator[IntegrationClient]:
    app = Celery("another-service", set_as_current=False)  # no ServiceLoader
    app.config_from_object("celeryconfig")
    app.conf.result_backend = RESULTS_URL
    client = IntegrationClient(settings=settings, app=app, engine=engine, redis_client=results)  # type: ignore[arg-type]
    yield client
    app.close()


def failed_job(backend: ServiceRedisBackend, error: BaseException) -> JobHandle:
    job_id = str(uuid.uuid4())
    backend.mark_as_failure(job_id, error, traceback=None)
    return JobHandle(job_id, "tasks.messages.send_message", "mid", "tenant", "app")


def test_a_terminated_session_comes_back_with_its_state_and_code(
    worker_backend: ServiceRedisBackend, producer: IntegrationClient, results: redis.Redis
) -> None:
    handle = failed_job(worker_backend, SessionTerminated("revoked", "AUTH_KEY_UNREGISTERED"))
    stored = results.get(f"celery-task-meta-{handle.job_id}")
    assert stored is not None and b"pickle" not in stored and b"session_revoked" in stored
    with pytest.raises(SessionTerminated) as caught:
        producer.wait(handle, timeout=10)
    assert caught.value.code == "session_revoked"
    assert (caught.value.state, caught.value.rpc_message) == ("revoked", "AUTH_KEY_UNREGISTERED")


def test_retry_declarations_and_enum_codes_come_back(
    worker_backend: ServiceRedisBackend, producer: IntegrationClient
) -> None:
    with pytest.raises(PacingDelay) as paced:
        producer.wait(failed_job(worker_backend, PacingDelay(1.5, "chat")), timeout=10)
    assert (paced.value.retry_after, paced.value.exact, paced.value.limit) == (1.5, True, "chat")
    assert isinstance(paced.value, RetryableError) and not paced.value.counts_against_limit
    error = StoreError(SaveErrorCode.STALE_EPOCH, "stale lease epoch 3", "IS001")
    with pytest.raises(StoreError) as stored:
        producer.wait(failed_job(worker_backend, error), timeout=10)
    assert stored.value.error_code is SaveErrorCode.STALE_EPOCH
    assert stored.value.sqlstate == "IS001"


def test_an_unexpected_failure_is_a_project_error_with_a_code(
    worker_backend: ServiceRedisBackend, producer: IntegrationClient
) -> None:
    error = UnexpectedError("AuthKeyNotFound", "the server does not know this key")
    with pytest.raises(UnexpectedError) as caught:
        producer.wait(failed_job(worker_backend, error), timeout=10)
    assert caught.value.code == "unexpected_error"
    assert caught.value.exception_type == "AuthKeyNotFound"
