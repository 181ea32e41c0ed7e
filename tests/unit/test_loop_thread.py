"""The worker's loop thread: a call past its deadline is a project error, and cancelled.

``LoopThread.run`` used to raise the builtin ``TimeoutError``, outside the error tree.
Its own deadline is now ``LoopCallTimedOut`` (retryable: a timed-out Telegram call is
retried like any transient failure, also a ``TimeoutError``); a ``TimeoutError`` the
coroutine raises itself (a network timeout inside Telethon) is not that deadline and
still goes to the Telegram mapping as a connection failure.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from integration_service.errors import RetryableError, ServiceError
from integration_service.runtime.loop_thread import LoopCallTimedOut, LoopNotRunning, LoopThread
from integration_service.telegram.error_mapping import to_service_error
from integration_service.telegram.errors import TelegramUnavailable


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread(name="loop-test")
    thread.start()
    yield thread
    thread.stop()


def test_a_call_past_its_deadline_is_cancelled_and_raises_loop_call_timed_out(
    loop: LoopThread,
) -> None:
    cancelled = threading.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started = time.monotonic()
    with pytest.raises(LoopCallTimedOut) as caught:
        loop.run(hangs(), timeout=0.2)
    assert time.monotonic() - started < 3  # the loop-side deadline, not the slack
    assert cancelled.wait(timeout=5), "the coroutine was not cancelled on the loop"
    error = caught.value
    assert isinstance(error, RetryableError) and isinstance(error, TimeoutError)
    assert error.code == "loop_call_timed_out"
    assert str(error) == "loop-test: coroutine did not finish within 0.2s"
    # A job that meets it retries it as itself (jobs/base.py maps through this).
    assert to_service_error(error) is error


def test_a_timeout_error_of_the_coroutine_itself_goes_through(loop: LoopThread) -> None:
    async def network_timeout() -> None:
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError) as caught:
        loop.run(network_timeout(), timeout=10)
    assert type(caught.value) is TimeoutError and str(caught.value) == "read timed out"
    mapped = to_service_error(caught.value)
    assert isinstance(mapped, TelegramUnavailable) and mapped.retryable


def test_results_and_other_errors_come_back_unchanged(loop: LoopThread) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fails() -> None:
        raise KeyError("x")

    assert loop.run(answer(), timeout=5) == 42
    with pytest.raises(KeyError):
        loop.run(fails(), timeout=5)


def test_a_stopped_loop_refuses_without_leaving_the_coroutine_unawaited() -> None:
    thread = LoopThread(name="never-started")

    async def work() -> None:
        await asyncio.sleep(0)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            thread.run(work(), timeout=1)
        except LoopNotRunning as error:
            assert isinstance(error, ServiceError) and error.retryable
        else:
            raise AssertionError("a loop that is not running accepted a call")
        gc.collect()  # an unawaited coroutine warns when it is collected
    assert not [w for w in seen if "never awaited" in str(w.message)], seen
