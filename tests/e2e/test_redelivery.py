"""Every job type delivered a second time after it finished: a no-op with the first outcome.

RabbitMQ redelivers a job whose acknowledgement it did not get (a broker restart between
the job's end and its ack, a dropped channel), and a producer's publish retry can deliver
one job twice. The second delivery carries the same task id and arguments; here it is
published again exactly as the producer first published it. It must finish without
running the work again, without failing and without a dead letter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kombu import Connection

from integration_service.client import IntegrationClient, JobHandle
from integration_service.emulator.world.client_helper import random_phone
from integration_service.messaging.send import IdempotencyConflict, PeerNotFound
from integration_service.queues import dead_letter_queue
from integration_service.store import SessionKey
from integration_service.store.job_journal import JobJournal
from integration_service.store.outbox import OutboxStore
from tests.support.processes import wait_for
from tests.support.rabbitmq import peek_dead_letters
from tests.support.system import SystemUnderTest, WorkerProcess

TENANT = "tenant-redeliver"


@dataclass
class Published:
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]


@dataclass
class PublishLog:
    """What the producer published, by task id: the exact job to deliver again."""

    jobs: dict[str, Published] = field(default_factory=dict)


@pytest.fixture(scope="module")
def published(system: SystemUnderTest) -> Iterator[PublishLog]:
    log = PublishLog()
    original = system.producer.send_task

    def recording_send_task(name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        log.jobs[options["task_id"]] = Published(
            name, list(args or []), dict(kwargs or {}), dict(options)
        )
        return original(name, args, kwargs, **options)

    system.producer.send_task = recording_send_task  # type: ignore[method-assign]
    yield log
    system.producer.send_task = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> WorkerProcess:
    system.store.ensure_tenant(TENANT)
    return system.start_worker("redeliver")


@pytest.fixture
def client(system: SystemUnderTest, worker: WorkerProcess) -> IntegrationClient:
    return system.client()


def deliver_again(
    system: SystemUnderTest, worker: WorkerProcess, published: PublishLog, task_id: str
) -> str:
    """Publish the finished job again, same id and arguments, and say how the worker
    answered it: ``journal`` (from the job journal, nothing run) or ``ran`` (run again)."""
    job = published.jobs[task_id]
    options = {k: v for k, v in job.options.items() if k in {"kwargsrepr", "argsrepr", "headers"}}
    system.producer.send_task(
        job.name, args=job.args, kwargs=job.kwargs, task_id=task_id, **options
    )

    def answered() -> str | None:
        finished = 0
        for line in worker.log().splitlines():
            if task_id not in line or not line.startswith("{"):
                continue
            event = str(json.loads(line).get("event", ""))
            if event == "job_already_finished":
                return "journal"
            finished += event.startswith("Task ") and ("succeeded" in event or "raised" in event)
        return "ran" if finished >= 2 else None

    return wait_for(answered, timeout=30, what=f"second delivery of {job.name} answered")


def dead_letters(system: SystemUnderTest) -> list[str]:
    """Task ids in this system's dead-letter queue (left in place)."""
    return [d.task_id for d in peek_dead_letters(system.env["CELERY_BROKER_URL"])]


def assert_second_delivery_is_a_no_op(
    system: SystemUnderTest,
    worker: WorkerProcess,
    published: PublishLog,
    handle: JobHandle,
    client: IntegrationClient,
) -> Any:
    first = client.wait(handle, timeout=30)
    # Sends are answered by their outbox row (the run finds it finished and sends
    # nothing); every other job by the journal, without running at all.
    expected = "ran" if handle.task == "tasks.messages.send_message" else "journal"
    assert deliver_again(system, worker, published, handle.job_id) == expected, handle.task
    assert_answered_with(system, handle.job_id, first, handle=handle)
    assert handle.job_id not in dead_letters(system)
    return first


def assert_answered_with(
    system: SystemUnderTest, task_id: str, first: Any, *, handle: JobHandle | None = None
) -> None:
    """What the second delivery answered from: the journal holds the first outcome (a
    send's outbox row instead, tried at Telegram exactly once). The result backend cannot
    tell: Celery never overwrites a SUCCESS."""
    if handle is not None and handle.idempotency_key is not None:
        row = OutboxStore(system.engine).get(
            SessionKey(handle.tenant_id, handle.app_id), handle.idempotency_key
        )
        assert row is not None and (row.status, row.attempts) == ("sent", 1), row
        assert row.telegram_message_id == first["telegram_message_id"]
        return
    entry = JobJournal(system.engine).get(task_id)
    assert entry is not None and entry.status == "succeeded", entry
    assert entry.outcome == first


def qr_url(client: IntegrationClient, app_id: str, started: dict[str, Any]) -> str:
    qr = client.qr_code(TENANT, app_id, started["ticket_id"])
    assert qr is not None, started
    return qr.url


def qr_token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def test_qr_login_finished_then_delivered_again(
    system: SystemUnderTest,
    worker: WorkerProcess,
    published: PublishLog,
    client: IntegrationClient,
) -> None:
    phone = random_phone()
    system.control.create_user(phone, "Again", username=f"ag{phone[-6:]}")
    handle = client.start_qr_login(TENANT, "qr-again")
    started = client.wait(handle, timeout=30)
    system.control.call(
        "POST",
        "/qr/approve",
        {"token": qr_token(qr_url(client, "qr-again", started)), "phone": phone},
    )
    status = client.wait_for_state(TENANT, "qr-again", {"authorized", "failed"}, timeout=30)
    assert status.state == "authorized"
    # The case the reliability suite found: the login is done, the job comes back.
    assert_second_delivery_is_a_no_op(system, worker, published, handle, client)
    assert client.get_status(TENANT, "qr-again").state == "authorized"


def test_code_login_steps_delivered_again(
    system: SystemUnderTest,
    worker: WorkerProcess,
    published: PublishLog,
    client: IntegrationClient,
) -> None:
    phone = "+" + random_phone()
    system.control.create_user(phone, "Code", password="pw-again")
    requested = client.request_code(TENANT, "code-again", phone)
    assert_second_delivery_is_a_no_op(system, worker, published, requested, client)
    # No second code was asked for: the first one still signs in.
    code = system.control.login_code(phone)
    submitted = client.submit_code(TENANT, "code-again", code)
    after_code = assert_second_delivery_is_a_no_op(system, worker, published, submitted, client)
    assert after_code["state"] == "password_required"
    password = client.submit_password(TENANT, "code-again", "pw-again")
    done = assert_second_delivery_is_a_no_op(system, worker, published, password, client)
    assert done["state"] == "authorized"
    assert client.get_status(TENANT, "code-again").state == "authorized"


def test_bot_login_delivered_again(
    system: SystemUnderTest,
    worker: WorkerProcess,
    published: PublishLog,
    client: IntegrationClient,
) -> None:
    bot = system.control.call("POST", "/bots", {"username": f"ag{random_phone()[-6:]}bot"})
    handle = client.connect_bot(TENANT, "bot-again", bot["token"])
    done = assert_second_delivery_is_a_no_op(system, worker, published, handle, client)
    assert done["state"] == "authorized"


def test_session_jobs_delivered_again(
    system: SystemUnderTest,
    worker: WorkerProcess,
    published: PublishLog,
    client: IntegrationClient,
) -> None:
    sender, recipient = system.provision(2, tenant_id=TENANT)
    app_id = sender.key.app_id
    sent = client.send_message(TENANT, app_id, recipient.peer, "once only", idempotency_key="a1")
    outcome = assert_second_delivery_is_a_no_op(system, worker, published, sent, client)
    assert outcome["status"] == "sent"
    texts = [m["text"] for m in system.control.messages(sender_id=sender.user_id)]
    assert texts.count("once only") == 1

    validated = client.validate_session(TENANT, app_id)
    assert assert_second_delivery_is_a_no_op(system, worker, published, validated, client)[
        "outcome"
    ] == ("authorized")
    reconnected = client.reconnect(TENANT, app_id)
    assert assert_second_delivery_is_a_no_op(system, worker, published, reconnected, client)[
        "reconnected"
    ]


def test_periodic_and_maintenance_jobs_delivered_again(
    system: SystemUnderTest, worker: WorkerProcess, published: PublishLog
) -> None:
    producer = system.producer
    for name, kwargs in [
        ("tasks.validation.sweep", {"stale_after": 3600.0}),
        ("tasks.maintenance.rotate_keys", {"rotate_key": False}),
        ("tasks.maintenance.prune_job_journal", {}),
        ("tasks.maintenance.prune_events", {}),
        ("tasks.maintenance.ping", {}),
    ]:
        first = producer.send_task(name, kwargs=kwargs, task_id=f"again-{name}-{random_phone()}")
        outcome = first.get(timeout=60)
        assert deliver_again(system, worker, published, first.id) == "journal", name
        assert_answered_with(system, first.id, outcome)
        assert first.id not in dead_letters(system), name


def test_a_dead_lettered_job_delivered_again_is_not_dead_lettered_twice(
    system: SystemUnderTest, worker: WorkerProcess, published: PublishLog
) -> None:
    task_id = f"again-probe-{random_phone()}"
    system.producer.send_task(
        "tasks.maintenance.dead_letter_probe", args=["probe reason"], task_id=task_id
    )
    wait_for(lambda: task_id in dead_letters(system), timeout=30, what="the first dead letter")
    assert deliver_again(system, worker, published, task_id) == "journal"
    assert dead_letters(system).count(task_id) == 1


def test_failed_sends_delivered_again_keep_their_first_failure(
    system: SystemUnderTest,
    worker: WorkerProcess,
    published: PublishLog,
    client: IntegrationClient,
) -> None:
    """A send that failed for good (unknown peer, a reused idempotency key, a payload that
    never parsed), delivered again: no second dead letter, the first failure stays the
    outcome the caller reads."""
    sender, recipient = system.provision(2, tenant_id=TENANT)
    unknown = client.send_message(TENANT, sender.key.app_id, 987654321, "to nobody")
    with pytest.raises(PeerNotFound):
        client.wait(unknown, timeout=30)
    ok = client.send_message(
        TENANT, sender.key.app_id, recipient.peer, "first", idempotency_key="k"
    )
    assert client.wait(ok, timeout=30)["status"] == "sent"
    conflict = client.send_message(
        TENANT, sender.key.app_id, recipient.peer, "other text", idempotency_key="k"
    )
    with pytest.raises(IdempotencyConflict):
        client.wait(conflict, timeout=30)
    unparsable = f"again-bad-send-{random_phone()}"
    system.producer.send_task(
        "tasks.messages.send_message",
        kwargs={"tenant_id": TENANT, "app_id": sender.key.app_id, "peer": "@x", "text": 5},
        task_id=unparsable,
    )
    wait_for(lambda: unparsable in dead_letters(system), timeout=30, what="bad send dead letter")
    for task_id in (unknown.job_id, conflict.job_id, unparsable):
        assert deliver_again(system, worker, published, task_id) == "journal", task_id
        assert dead_letters(system).count(task_id) == 1, task_id
    with pytest.raises(PeerNotFound):
        client.wait(unknown, timeout=30)
    with pytest.raises(IdempotencyConflict):
        client.wait(conflict, timeout=30)
    texts = [m["text"] for m in system.control.messages(sender_id=sender.user_id)]
    assert texts == ["first"]


def failures_logged(worker: WorkerProcess, task_id: str) -> int:
    return sum(
        1
        for line in worker.log().splitlines()
        if task_id in line and line.startswith("{") and " raised" in line
    )


def test_a_dead_letter_an_operator_re_drives_runs_again(
    system: SystemUnderTest, worker: WorkerProcess, published: PublishLog
) -> None:
    """Re-driving (publishing the dead letter back, headers and all) asks for a new run."""
    task_id = f"redrive-probe-{random_phone()}"
    system.producer.send_task(
        "tasks.maintenance.dead_letter_probe", args=["redrive reason"], task_id=task_id
    )
    wait_for(lambda: task_id in dead_letters(system), timeout=30, what="the first dead letter")
    with Connection(system.env["CELERY_BROKER_URL"]) as conn:
        channel = conn.channel()
        try:
            while message := channel.basic_get(dead_letter_queue().name, no_ack=False):
                if (message.headers or {}).get("id") != task_id:
                    channel.basic_reject(message.delivery_tag, requeue=True)
                    continue
                channel.basic_publish(
                    channel.prepare_message(
                        message.body,
                        content_type=message.content_type,
                        content_encoding=message.content_encoding,
                        headers=message.headers,
                    ),
                    exchange="tasks",
                    routing_key="low.redrive",
                )
                channel.basic_ack(message.delivery_tag)
                break
        finally:
            channel.close()
    # It ran again, and failed again: a new dead letter, the old one re-driven away.
    wait_for(
        lambda: dead_letters(system).count(task_id) == 1 and failures_logged(worker, task_id) >= 2,
        timeout=30,
        what="the re-driven job run again",
    )
