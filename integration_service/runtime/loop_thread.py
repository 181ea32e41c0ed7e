"""The one asyncio loop of a worker process, on its own thread.

Why: a Telethon client is bound to the loop it connected on, so ``asyncio.run`` per task
could never reuse a warm client. Every Telethon object of the process lives on this loop;
task threads hand it coroutines and wait for the result with a timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from integration_service.errors import RetryableError

T = TypeVar("T")


class LoopNotRunning(RetryableError, RuntimeError):
    """The worker's loop thread is not running (not started yet, or shut down)."""

    code = "loop_not_running"


class LoopCallTimedOut(RetryableError, TimeoutError):
    """A coroutine run on the loop did not finish within its timeout; it was cancelled.

    Transient (a Telegram call that got no answer in time): the job retries. Also the
    builtin ``TimeoutError``, which callers of ``run`` used to catch.
    """

    code = "loop_call_timed_out"


class LoopThread:
    """Owns an event loop running forever on a daemon thread until ``stop``."""

    def __init__(self, name: str = "telethon-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or not self.is_alive():
            raise LoopNotRunning(f"{self._name} is not running")
        return self._loop

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.is_alive():
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise LoopNotRunning(f"{self._name} did not start")

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop from any thread."""
        try:
            loop = self.loop
        except LoopNotRunning:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for it; cancelled there after ``timeout``.

        The timeout is enforced on the loop (``asyncio.timeout``) so the coroutine is
        really cancelled (its client calls abandoned), not merely stopped being waited on;
        it raises ``LoopCallTimedOut``. A ``TimeoutError`` the coroutine raises itself (a
        network timeout inside Telethon) is not this deadline and goes through as it is.
        """
        expired = f"{self._name}: coroutine did not finish within {timeout:g}s"

        async def bounded() -> T:
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    return await coro
            except TimeoutError:
                if scope.expired():
                    raise LoopCallTimedOut(expired) from None
                raise

        try:
            future = self.submit(bounded())
        except LoopNotRunning:
            coro.close()  # never started: no "coroutine was never awaited" warning
            raise
        try:
            # A little slack so the loop-side cancellation reports first.
            return future.result(timeout=timeout + 5)
        except concurrent.futures.TimeoutError as error:
            if future.done() and not future.cancelled() and future.exception() is error:
                raise  # the coroutine's own, or its LoopCallTimedOut
            # The loop did not answer even with the slack (blocked): stop waiting on it.
            future.cancel()
            raise LoopCallTimedOut(expired) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is still running, stop the loop and join the thread."""
        if not self.is_alive() or self._loop is None:
            return
        loop = self._loop

        async def _cancel_all() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
