"""Queue topology and dead-lettering, with a real worker process on a private vhost."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from celery import Celery
from kombu import Connection

from integration_service.queues import DEAD_LETTER_QUEUE, JOB_QUEUES, dead_letter_queue, route_for
from tests.support.processes import celery_worker_args, running, wait_for
from tests.support.rabbitmq import private_vhost


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture(scope="module")
def producer(broker_url: str) -> Iterator[Celery]:
    app = Celery("test-producer")
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker_url
    app.conf.result_backend = "redis://127.0.0.1:6379/15"
    yield app
    app.close()


@pytest.fixture(scope="module")
def worker(
    broker_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    # The migrated test database: every job reads and writes the job journal.
    env = {
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "DATABASE_URL": database_url,
    }
    with running(celery_worker_args("queues", "high,mid,low"), env=env, log_path=log):
        with Connection(broker_url) as conn:
            # Ready once the worker has declared the topology and consumes every job queue.
            wait_for(lambda: _consumers(conn, JOB_QUEUES), timeout=60, what="worker consuming")
        yield


def _consumers(conn: Connection, queues: tuple[str, ...]) -> bool:
    channel = conn.channel()
    try:
        return all(channel.queue_declare(q, passive=True).consumer_count > 0 for q in queues)
    finally:
        channel.close()


def _queue_table(vhost: str) -> dict[str, str]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type", "durable", "arguments"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return {line.split("\t")[0]: line for line in out.splitlines() if "\t" in line}


def test_routes_by_job_family() -> None:
    assert route_for("tasks.connect.start_qr_login")["queue"] == "high"  # type: ignore[index]
    assert route_for("tasks.messages.send_message")["queue"] == "mid"  # type: ignore[index]
    assert route_for("tasks.reconnect.reconnect")["queue"] == "mid"  # type: ignore[index]
    assert route_for("tasks.validation.sweep")["queue"] == "low"  # type: ignore[index]
    assert route_for("something.else") is None


def test_worker_declares_durable_quorum_queues_with_dead_letter(
    broker_url: str, worker: None
) -> None:
    table = _queue_table(broker_url.rsplit("/", 1)[1])
    for name in JOB_QUEUES:
        row = table[name]
        assert "\tquorum\ttrue\t" in row
        assert '{"x-dead-letter-exchange","dead_letter"}' in row
        assert '{"x-delivery-limit",5}' in row
    assert "\tquorum\ttrue\t" in table[DEAD_LETTER_QUEUE]


def test_job_round_trip_through_worker(producer: Celery, worker: None) -> None:
    result = producer.send_task("tasks.maintenance.ping")
    assert result.get(timeout=30)["task_id"] == result.id


def test_failed_job_lands_in_dead_letter_queue_with_reason(
    producer: Celery, broker_url: str, worker: None
) -> None:
    result = producer.send_task("tasks.maintenance.dead_letter_probe", args=["probe-reason"])
    with pytest.raises(Exception, match="probe-reason"):
        result.get(timeout=30)
    with Connection(broker_url) as conn:
        queue = conn.SimpleQueue(dead_letter_queue(), no_ack=False)
        try:
            message = wait_for(lambda: _get(queue), timeout=30, what="dead letter")
            headers = message.headers  # type: ignore[attr-defined]
            message.ack()  # type: ignore[attr-defined]
        finally:
            queue.close()
    assert headers["id"] == result.id
    assert headers["task"] == "tasks.maintenance.dead_letter_probe"
    assert headers["x-failure-reason"] == "probe-reason"
    assert headers["x-failure-exception"] == "PermanentError"
    assert headers["x-failure-original-queue"] == "low"


def _get(queue: object) -> object:
    try:
        return queue.get(block=True, timeout=0.5)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - kombu raises Empty on timeout
        return None


def test_publish_to_missing_exchange_fails_loudly(producer: Celery) -> None:
    # Publisher confirms: the broker's refusal reaches the caller instead of vanishing.
    with pytest.raises(Exception, match="NOT_FOUND"):
        producer.send_task(
            "tasks.maintenance.ping", exchange="no-such-exchange", routing_key="x", retry=False
        )
