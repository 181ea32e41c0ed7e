"""The base task's retry and dead-letter policy, on Celery's in-memory broker.

No RabbitMQ and no worker: each case pushes the request a worker would (id, retries,
headers, routing key), calls the task, and reads what the policy published (the retry,
the dead letter) from the in-memory broker.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import Reject, Retry
from hypothesis import given
from hypothesis import strategies as st
from kombu import Connection, Exchange, Queue

from integration_service.errors import (
    PermanentError,
    RetryableError,
    ServiceError,
    UnexpectedError,
)
from integration_service.jobs import base
from integration_service.jobs.base import ServiceTask, backoff_delay, retry_countdown
from integration_service.messaging.pacing import PACE_RESERVED_HEADER, PacingDelay
from integration_service.queues import DEAD_LETTER_QUEUE
from integration_service.telegram.errors import TelegramFloodWait

RETRY_QUEUE = "policy-test-retries"
# A retry is re-published where the delivery came from: the topic exchange, its key.
RETRIES = Queue(RETRY_QUEUE, Exchange("tasks", type="topic"), routing_key="mid")


class Wobbly(RetryableError):
    """A retryable error the test task declares it never retries."""

    code = "wobbly"


@dataclass
class Raised:
    """What the policy task raises next, and what it saw when it gave up."""

    error: BaseException | None = None
    gave_up: list[BaseException] = field(default_factory=list)


class PolicyTask(ServiceTask):
    abstract = True
    max_retries = 3
    max_deferrals = 6
    never_retry = (PermanentError, Wobbly)
    journalled = False
    plan = Raised()

    def on_gave_up(self, error: ServiceError, args: Any, kwargs: Any) -> None:
        self.plan.gave_up.append(error)


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    app = Celery("retry-policy-test", broker="memory://", backend="cache+memory://")
    app.conf.task_default_queue = RETRY_QUEUE
    app.conf.task_publish_retry = False
    yield app
    app.close()


@pytest.fixture
def plan() -> Raised:
    PolicyTask.plan = Raised()
    return PolicyTask.plan


@pytest.fixture(scope="module")
def task(app: Celery) -> PolicyTask:
    @app.task(name="tests.policy.job", base=PolicyTask, bind=True)
    def job(self: PolicyTask, **kwargs: Any) -> str:
        if self.plan.error is not None:
            raise self.plan.error
        return "done"

    return job  # type: ignore[return-value]


def drain(app: Celery, queue: str) -> list[Any]:
    """Every message now in ``queue`` (the memory broker's state is process-wide)."""
    messages = []
    with Connection("memory://") as conn:
        channel = conn.default_channel
        RETRIES(channel).declare()
        Queue(queue)(channel).declare()
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            messages.append(message)
    return messages


@pytest.fixture(autouse=True)
def empty_queues(app: Celery) -> None:
    drain(app, RETRY_QUEUE)
    drain(app, DEAD_LETTER_QUEUE)


def run(task: PolicyTask, *, retries: int = 0, headers: dict[str, Any] | None = None) -> str:
    """Call the task as a worker delivery would; returns the job id."""
    job_id = str(uuid.uuid4())
    task.push_request(
        id=job_id,
        retries=retries,
        headers=headers or {},
        called_directly=False,
        is_eager=False,
        delivery_info={"routing_key": "mid", "exchange": "tasks"},
        kwargs={"tenant_id": "t", "app_id": "a"},
    )
    try:
        task(tenant_id="t", app_id="a")
    finally:
        task.pop_request()
    return job_id


def expect(kind: type[BaseException], call: Callable[[], object]) -> Any:
    with pytest.raises(kind) as caught:
        call()
    return caught.value


# Pure policy --------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=40))
def test_backoff_is_full_jitter_within_its_cap(retries: int) -> None:
    delay = backoff_delay(retries)
    assert 0 <= delay <= min(300.0, 2**retries)


def test_backoff_spreads_over_its_whole_range() -> None:
    delays = [backoff_delay(4) for _ in range(2000)]
    assert min(delays) < 1.6 and max(delays) > 14.4  # [0, 16], not bunched at one end


@given(st.floats(min_value=0.0, max_value=3600.0), st.integers(min_value=0, max_value=10))
def test_countdowns_are_whole_seconds_and_never_early(delay: float, retries: int) -> None:
    for error in (
        RetryableError("x", retry_after=delay),
        RetryableError("x", retry_after=delay, exact=True),
        RetryableError("x"),
    ):
        countdown = retry_countdown(error, retries)
        assert countdown == int(countdown) and countdown >= 0
        if error.retry_after is not None:
            assert countdown >= error.retry_after


@given(st.floats(min_value=0.001, max_value=3600.0))
def test_an_exact_delay_is_its_slot_rounded_up_without_jitter(delay: float) -> None:
    error = PacingDelay(delay, "chat")
    assert {retry_countdown(error, 0) for _ in range(20)} == {math.ceil(delay)}


def test_a_named_delay_gets_a_little_jitter_and_is_still_whole_seconds() -> None:
    error = TelegramFloodWait(30)
    countdowns = {retry_countdown(error, 0) for _ in range(200)}
    # 30 s plus up to min(1, 0.1 * 30 + 0.2) = 1 s of jitter, rounded up.
    assert countdowns <= {30.0, 31.0} and 31.0 in countdowns


def test_a_sub_second_delay_becomes_one_second_and_zero_stays_zero() -> None:
    assert retry_countdown(RetryableError("x", retry_after=0.3, exact=True), 0) == 1.0
    assert retry_countdown(RetryableError("x", retry_after=0.0, exact=True), 0) == 0.0
    assert retry_countdown(RetryableError("x", retry_after=-5, exact=True), 0) == 0.0


def test_errors_declare_how_they_are_retried() -> None:
    pacing = PacingDelay(2.5, "chat")
    assert (pacing.retry_after, pacing.exact, pacing.counts_against_limit) == (2.5, True, False)
    assert pacing.retry_headers == {PACE_RESERVED_HEADER: 1}
    flood = TelegramFloodWait(12)
    assert (flood.retry_after, flood.exact, flood.counts_against_limit) == (12.0, False, False)
    plain = RetryableError("x")
    assert (plain.retry_after, plain.exact, plain.counts_against_limit) == (None, False, True)
    assert plain.retry_headers == {}


# The task: retries --------------------------------------------------------------------


def test_a_retryable_error_is_retried_with_backoff(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    plan.error = RetryableError("blip", code="blip")
    retry = expect(Retry, lambda: run(task, retries=2))
    assert retry.exc is plan.error
    assert 0 <= retry.when <= 4 and retry.when == int(retry.when)
    (message,) = drain(app, RETRY_QUEUE)
    assert message.headers["retries"] == 3
    assert drain(app, DEAD_LETTER_QUEUE) == [] and plan.gave_up == []


def test_a_retry_carries_the_errors_headers_and_none_of_the_brokers(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    plan.error = PacingDelay(3.2, "chat")
    retry = expect(
        Retry,
        lambda: run(task, headers={"x-death": [{"queue": "q"}], "x-forward-hops": 1}),
    )
    assert retry.when == 4
    (message,) = drain(app, RETRY_QUEUE)
    assert message.headers[PACE_RESERVED_HEADER] == 1
    assert message.headers["x-forward-hops"] == 1
    assert "x-death" not in message.headers
    assert message.headers["eta"] is not None


def test_a_forwarding_loop_is_deferred_and_starts_over_not_dropped(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    """A job forwarded FORWARD_MAX_HOPS times (its owner alive but not consuming) waits
    5 s and goes round again with no hops; it used to end with no retry and no dead
    letter, a lost send."""
    from integration_service.runtime.forwarding import FORWARD_DEFER_SECONDS, ForwardingLoop

    plan.error = ForwardingLoop("job forwarded 3 times already (limit 3)")
    # Past max_retries too: a deferral, bounded by max_deferrals.
    retry = expect(
        Retry, lambda: run(task, retries=task.max_retries + 1, headers={"x-forward-hops": 3})
    )
    assert FORWARD_DEFER_SECONDS <= retry.when <= FORWARD_DEFER_SECONDS + 2
    (message,) = drain(app, RETRY_QUEUE)
    assert message.headers["x-forward-hops"] == 0
    assert drain(app, DEAD_LETTER_QUEUE) == [] and plan.gave_up == []


def test_retries_stop_at_max_retries_and_the_job_is_dead_lettered(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    plan.error = RetryableError("still down", code="still_down")
    expect(Retry, lambda: run(task, retries=task.max_retries - 1))
    drain(app, RETRY_QUEUE)
    raised = expect(RetryableError, lambda: run(task, retries=task.max_retries))
    assert raised is plan.error
    (dead,) = drain(app, DEAD_LETTER_QUEUE)
    assert dead.headers["x-failure-code"] == "still_down"
    assert dead.headers["x-failure-retries"] == task.max_retries
    assert plan.gave_up == [plan.error]
    assert drain(app, RETRY_QUEUE) == []


def test_deferrals_have_their_own_larger_limit(app: Celery, task: PolicyTask, plan: Raised) -> None:
    plan.error = TelegramFloodWait(5)
    # Past max_retries, a wait Telegram asked for is still deferred...
    expect(Retry, lambda: run(task, retries=task.max_retries + 1))
    expect(Retry, lambda: run(task, retries=task.max_deferrals - 1))
    assert plan.gave_up == []
    # ...until max_deferrals.
    expect(TelegramFloodWait, lambda: run(task, retries=task.max_deferrals))
    assert [m.headers["x-failure-code"] for m in drain(app, DEAD_LETTER_QUEUE)] == ["flood_wait"]


def test_never_retry_wins_over_retryable(app: Celery, task: PolicyTask, plan: Raised) -> None:
    plan.error = Wobbly("declared as never retried")
    expect(Wobbly, lambda: run(task))
    assert drain(app, RETRY_QUEUE) == []
    (dead,) = drain(app, DEAD_LETTER_QUEUE)
    assert dead.headers["x-failure-exception"] == "Wobbly"


# The task: dead letters ---------------------------------------------------------------


def test_a_permanent_error_is_dead_lettered_at_once_with_its_reason(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    plan.error = PermanentError("no such peer", code="peer_unknown")
    expect(PermanentError, lambda: run(task))
    (dead,) = drain(app, DEAD_LETTER_QUEUE)
    assert dead.headers["x-failure-reason"] == "no such peer"
    assert dead.headers["x-failure-code"] == "peer_unknown"
    assert dead.headers["x-failure-exception"] == "PermanentError"
    assert dead.headers["x-failure-original-queue"] == "mid"
    assert dead.headers["task"] == "tests.policy.job"
    assert drain(app, RETRY_QUEUE) == []


def test_a_dead_letter_keeps_the_jobs_id_and_arguments(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    plan.error = PermanentError("nope")
    job_id = str(uuid.uuid4())
    task.push_request(
        id=job_id, retries=0, called_directly=False, delivery_info={"routing_key": "low"}
    )
    try:
        with pytest.raises(PermanentError):
            task(tenant_id="t", app_id="a")
    finally:
        task.pop_request()
    (dead,) = drain(app, DEAD_LETTER_QUEUE)
    assert dead.headers["id"] == job_id
    assert dead.decode()[1] == {"tenant_id": "t", "app_id": "a"}


def test_an_unexpected_exception_fails_as_a_project_error_with_its_cause(
    app: Celery, task: PolicyTask, plan: Raised
) -> None:
    plan.error = KeyError("phone")
    raised = expect(UnexpectedError, lambda: run(task))
    assert raised.code == "unexpected_error"
    assert raised.exception_type == "KeyError" and "phone" in str(raised)
    assert raised.__cause__ is plan.error  # the bug's traceback stays in the log
    assert plan.gave_up == [raised]
    (dead,) = drain(app, DEAD_LETTER_QUEUE)
    assert dead.headers["x-failure-exception"] == "KeyError"
    assert dead.headers["x-failure-code"] == "unexpected_error"
    assert drain(app, RETRY_QUEUE) == []


def test_an_unexpected_exception_message_is_scrubbed(task: PolicyTask, plan: Raised) -> None:
    plan.error = RuntimeError("boom with password=hunter2hunter2")
    raised = expect(UnexpectedError, lambda: run(task))
    assert "hunter2" not in str(raised)


def test_a_mapped_library_error_is_raised_as_its_project_error(
    task: PolicyTask, plan: Raised
) -> None:
    from telethon import errors as tg

    plan.error = tg.FloodWaitError(request=None, capture=7)
    retry = expect(Retry, lambda: run(task))
    assert isinstance(retry.exc, TelegramFloodWait) and retry.exc.retry_after == 7.0


def test_a_failed_dead_letter_publish_rejects_without_requeue(
    monkeypatch: pytest.MonkeyPatch, app: Celery, task: PolicyTask, plan: Raised
) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker went away")

    monkeypatch.setattr(base, "publish_dead_letter", refused)
    plan.error = PermanentError("nope")
    rejected = expect(Reject, lambda: run(task))
    assert rejected.requeue is False
    assert "dead-letter publish failed" in str(rejected.reason)
    assert rejected.__cause__ is plan.error


def test_success_publishes_nothing(app: Celery, task: PolicyTask, plan: Raised) -> None:
    plan.error = None
    run(task)
    assert drain(app, RETRY_QUEUE) == [] and drain(app, DEAD_LETTER_QUEUE) == []


def test_a_failing_give_up_hook_still_dead_letters_the_job(
    monkeypatch: pytest.MonkeyPatch, app: Celery, task: PolicyTask, plan: Raised
) -> None:
    def broken(error: ServiceError, args: Any, kwargs: Any) -> None:
        raise ConnectionError("outbox database went away")

    monkeypatch.setattr(task, "on_gave_up", broken)
    plan.error = PermanentError("nope", code="x_nope")
    raised = expect(PermanentError, lambda: run(task))
    assert raised is plan.error
    (dead,) = drain(app, DEAD_LETTER_QUEUE)
    assert dead.headers["x-failure-code"] == "x_nope"
