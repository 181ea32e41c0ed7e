"""A retried or forwarded job keeps the argument reprs its producer chose.

Flower (and Celery's own log lines) show a job's ``argsrepr``/``kwargsrepr``. The
producer sets them to ids and a masked phone; Celery rebuilds them from the real
arguments on every publish it is not handed them for, so without care a retry or a
forward would show the whole phone number, the message text or a secret reference.
On Celery's in-memory broker: no RabbitMQ, no worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import Ignore, Retry
from kombu import Connection, Exchange, Queue

from integration_service.errors import RetryableError
from integration_service.jobs.base import ServiceTask
from integration_service.jobs.carried_headers import carried_reprs
from integration_service.jobs.session_task import SessionTask
from integration_service.runtime.forwarding import worker_queue_prefix
from integration_service.runtime.ownership import OwnedElsewhere

QUEUE = "reprs-test-retries"
RETRIES = Queue(QUEUE, Exchange("tasks", type="topic"), routing_key="high")
OWNER = worker_queue_prefix("owner@host.abc123")
PHONE = "+4915112345678"
SHOWN = "{'tenant_id': 't', 'app_id': 'a', 'phone': '+2**********78'}"


class Flaky(ServiceTask):
    abstract = True
    journalled = False


class Pinned(SessionTask):
    abstract = True
    journalled = False

    @property
    def runtime(self) -> Any:  # only what forwarding reads
        return SimpleNamespace(
            settings=SimpleNamespace(forward_max_hops=3, worker_queue_message_ttl=60)
        )


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    app = Celery("reprs-test", broker="memory://", backend="cache+memory://")
    app.conf.task_default_queue = QUEUE
    app.conf.task_publish_retry = False
    yield app
    app.close()


def drain(queue: Queue | str) -> list[Any]:
    with Connection("memory://") as conn:
        channel = conn.default_channel
        declared = queue if isinstance(queue, Queue) else Queue(queue)
        declared(channel).declare()
        messages = []
        while (message := channel.basic_get(declared.name, no_ack=True)) is not None:
            messages.append(message)
    return messages


def deliver(task: Any, *, kwargsrepr: str | None = SHOWN) -> None:
    """Call ``task`` as a worker would for a delivery carrying the producer's reprs."""
    request: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "retries": 0,
        "headers": {},
        "called_directly": False,
        "is_eager": False,
        "delivery_info": {"routing_key": "high", "exchange": "tasks"},
        "kwargs": {"tenant_id": "t", "app_id": "a", "phone": PHONE},
    }
    if kwargsrepr is not None:
        request.update(argsrepr="()", kwargsrepr=kwargsrepr)
    task.push_request(**request)
    try:
        task(tenant_id="t", app_id="a", phone=PHONE)
    finally:
        task.pop_request()


def test_a_retry_keeps_the_producers_reprs(app: Celery) -> None:
    @app.task(name="tests.reprs.flaky", base=Flaky, bind=True)
    def flaky(self: Flaky, **kwargs: Any) -> None:
        raise RetryableError("not yet")

    drain(RETRIES)
    with pytest.raises(Retry):
        deliver(flaky)
    [retry] = drain(RETRIES)
    assert retry.headers["kwargsrepr"] == SHOWN and retry.headers["argsrepr"] == "()"
    assert PHONE not in str(retry.headers)


def test_a_forward_keeps_the_producers_reprs(app: Celery) -> None:
    @app.task(name="tests.reprs.pinned", base=Pinned, bind=True)
    def pinned(self: Pinned, **kwargs: Any) -> None:
        raise OwnedElsewhere("owner@host.abc123", OWNER)

    with pytest.raises(Ignore):
        deliver(pinned)
    [forwarded] = drain(f"{OWNER}_high")
    assert forwarded.headers["kwargsrepr"] == SHOWN
    assert PHONE not in str(forwarded.headers)


def test_without_producer_reprs_celery_builds_its_own() -> None:
    # A job published without reprs (beat, a test) carries none over: Celery's default.
    assert carried_reprs(SimpleNamespace()) == {}
    assert carried_reprs(SimpleNamespace(argsrepr="()", kwargsrepr=None)) == {"argsrepr": "()"}
