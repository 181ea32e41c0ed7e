"""The webhook dispatcher: fans events out, claims due deliveries, makes the calls.

One asyncio loop (on its own thread, or the host's) runs rounds: fan out new events,
claim what is due within this process's free capacity (WEBHOOK_CONCURRENCY) and each
subscription's ``max_in_flight``, start one task per claimed delivery. Outcomes are
recorded by one recorder task in group commits: the outcomes that finish while a commit
is under way share the next one, so a busy subscription's slot costs a share of a
transaction instead of one each (the slot frees only once its outcome is stored: that
round trip bounds a subscription's rate). Database calls run
on a small thread pool, so a slow query never stalls the calls in flight; a call never
waits for another subscription's calls, so a slow receiver only ever holds its own
subscription's slots. Several dispatchers (processes) may run at once: claims are made
with SKIP LOCKED and held until ``claimed_until`` (WEBHOOK_TIMEOUT plus a margin), after
which a crashed dispatcher's deliveries are due again.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
import structlog
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import Engine

from integration_service.crypto import SessionCipher
from integration_service.errors import ServiceError
from integration_service.settings import Settings
from integration_service.store.guard import DatabaseGuard
from integration_service.tracing.propagation import inject_into
from integration_service.tracing.spans import mark_failed
from integration_service.webhooks import metrics
from integration_service.webhooks.errors import DispatcherStartFailed
from integration_service.webhooks.queue import ClaimedDelivery, DeliveryQueue, Recorded
from integration_service.webhooks.records import CANCELLED, DEAD, DELIVERED
from integration_service.webhooks.retry_policy import AttemptResult, Outcome, decide
from integration_service.webhooks.secret_keys import WebhookSecret
from integration_service.webhooks.sender import attempt, http_session
from integration_service.webhooks.signing import body_of, signed_headers
from integration_service.webhooks.subscriptions import decrypt_secret

T = TypeVar("T")
logger = structlog.get_logger(__name__)

# A claim outlives the call's hard cut by this much (recording the outcome takes time).
CLAIM_MARGIN_SECONDS = 15.0
PENDING_GAUGE_PERIOD = 5.0
MAX_ERROR_PAUSE = 5.0
SECRET_CACHE_SIZE = 1024
DB_THREADS = 4
# Outcomes stored per transaction at most (a statement's arrays stay small).
RECORD_BATCH = 200

SecretKeyPair = tuple[WebhookSecret, list[WebhookSecret]]


class WebhookDispatcher:
    """Delivers webhooks until stopped. ``start``/``stop`` run it on a thread of its own;
    ``run`` is the coroutine, for a host that has a loop already."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        cipher: SessionCipher,
        *,
        name: str = "webhook-dispatcher",
        guard: DatabaseGuard | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self._cipher = cipher
        self._queue = DeliveryQueue(engine, guard=guard or DatabaseGuard.for_workers())
        self._secrets: dict[tuple[uuid.UUID, str, str | None], SecretKeyPair] = {}
        self._attempts: dict[asyncio.Task[None], ClaimedDelivery] = {}
        self._outcomes: list[tuple[Recorded, asyncio.Future[bool]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._round_executor: ThreadPoolExecutor | None = None
        self._failures = 0
        self._pending_counted_at = 0.0

    # Lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Run on a new daemon thread; returns once the loop is up."""
        if self.is_alive():
            return
        self._started.clear()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise DispatcherStartFailed(f"{self.name} did not start within {timeout:g}s")

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, let calls in flight finish (up to WEBHOOK_TIMEOUT), give back
        the claims of any that did not, and wait for the thread."""
        self.request_stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout if timeout is not None else self.settings.webhook_timeout + 15)

    def run_forever(self) -> None:
        """Start and block until ``stop`` (from another thread or a signal handler)."""
        self.start()
        while self.is_alive():
            assert self._thread is not None
            self._thread.join(0.5)

    def request_stop(self) -> None:
        """Ask the loop to stop; safe from any thread, returns at once."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop closed meanwhile: it is stopped already

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            asyncio.run(self.run())
        except Exception:  # the thread's last word goes to the log
            logger.exception("webhook_dispatcher_crashed", dispatcher=self.name)

    async def run(self) -> None:
        """Deliver until ``request_stop``."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix=f"{self.name}-db")
        # Fan-out and claims on a thread of their own: a burst of outcomes being recorded
        # (a slow subscription's slots all freeing at once) never delays the next claim.
        self._round_executor = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-claims")
        settings = self.settings
        try:
            async with http_session(settings.webhook_concurrency) as client:
                logger.info(
                    "webhook_dispatcher_started",
                    dispatcher=self.name,
                    concurrency=settings.webhook_concurrency,
                    timeout=settings.webhook_timeout,
                    allow_private=settings.webhook_allow_private,
                )
                self._started.set()
                try:
                    while not self._stop.is_set():
                        pause = await self._round(client)
                        await self._pause(pause)
                finally:
                    await self._drain()
        finally:
            self._executor.shutdown(wait=True)
            self._round_executor.shutdown(wait=True)
            self._started.set()
            logger.info("webhook_dispatcher_stopped", dispatcher=self.name)

    # Rounds ----------------------------------------------------------------------------

    async def _in_db(self, function: Callable[..., T], *args: object) -> T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _in_round(self, function: Callable[..., T], *args: object) -> T:
        assert self._round_executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._round_executor, function, *args)

    async def _round(self, client: aiohttp.ClientSession) -> float:
        """One fan-out and one claim; how long to pause before the next round."""
        settings = self.settings
        free = settings.webhook_concurrency - len(self._attempts)
        try:
            fanned, _created = await self._in_round(self._queue.fan_out, settings.webhook_batch)
            claimed: list[ClaimedDelivery] = []
            if free > 0:
                lease = settings.webhook_timeout + CLAIM_MARGIN_SECONDS
                claimed = await self._in_round(self._queue.claim, free, lease)
            await self._count_pending()
        except Exception as error:  # noqa: BLE001 - a round's failure pauses, never kills
            self._failures += 1
            pause = min(MAX_ERROR_PAUSE, settings.webhook_poll_interval * 2.0**self._failures)
            code = error.code if isinstance(error, ServiceError) else type(error).__name__
            logger.warning(
                "webhook_round_failed",
                dispatcher=self.name,
                error=code,
                detail=error.detail if isinstance(error, ServiceError) else None,
                pause=pause,
            )
            return pause
        self._failures = 0
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(client, delivery))
            self._attempts[task] = delivery
            task.add_done_callback(self._finished)
        metrics.IN_FLIGHT.set(len(self._attempts))
        more = fanned >= settings.webhook_batch or (free > 0 and len(claimed) >= free)
        return 0.0 if more else settings.webhook_poll_interval

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._attempts.pop(task, None)
        metrics.IN_FLIGHT.set(len(self._attempts))
        if self._wake is not None:
            # A freed slot may let the same subscription's next delivery go now.
            self._wake.set()

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None and self._stop is not None
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._stop.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._wake.clear()

    async def _count_pending(self) -> None:
        now = time.monotonic()
        if now - self._pending_counted_at >= PENDING_GAUGE_PERIOD:
            self._pending_counted_at = now
            metrics.PENDING.set(await self._in_round(self._queue.pending_count))

    async def _drain(self) -> None:
        """Let calls in flight finish within the timeout; give back the rest's claims."""
        if self._attempts:
            await asyncio.wait(list(self._attempts), timeout=self.settings.webhook_timeout + 1.0)
        unfinished = dict(self._attempts)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.gather(*unfinished, return_exceptions=True)
        recorder = self._recorder
        if recorder is not None and not recorder.done():
            # Outcomes already queued are stored before any claim is given back (a
            # released claim whose 2xx was then lost would be delivered twice).
            await asyncio.wait([recorder], timeout=self.settings.webhook_timeout)
        if unfinished:
            try:
                await self._in_db(self._queue.release, list(unfinished.values()))
            except Exception as error:  # noqa: BLE001 - the claims expire on their own
                logger.warning("webhook_release_failed", error=type(error).__name__)

    # One delivery ----------------------------------------------------------------------

    def _secret_keys(self, claimed: ClaimedDelivery) -> SecretKeyPair:
        """The signing keys, decrypted once per stored ciphertext (Vault is a network call)."""
        cache_key = (claimed.subscription_id, claimed.secret_enc, claimed.previous_secret_enc)
        found = self._secrets.get(cache_key)
        if found is not None:
            return found
        current = decrypt_secret(
            self._cipher, claimed.tenant_id, claimed.subscription_id, claimed.secret_enc
        )
        previous = []
        if claimed.previous_secret_enc is not None:
            previous.append(
                decrypt_secret(
                    self._cipher,
                    claimed.tenant_id,
                    claimed.subscription_id,
                    claimed.previous_secret_enc,
                )
            )
        if len(self._secrets) >= SECRET_CACHE_SIZE:
            self._secrets.clear()
        self._secrets[cache_key] = (current, previous)
        return current, previous

    async def _deliver(self, client: aiohttp.ClientSession, claimed: ClaimedDelivery) -> None:
        settings = self.settings
        try:
            current, previous = await self._in_db(self._secret_keys, claimed)
        except ServiceError as error:
            result = AttemptResult(None, f"signing secret unavailable: {error.code}", 0.0)
        else:
            body = body_of(claimed.event.envelope())
            headers = signed_headers(
                current, previous, str(claimed.event.id), int(time.time()), body
            )
            with claimed.event.span("webhook delivery", SpanKind.CLIENT) as span:
                # The receiver may continue the event's trace (W3C traceparent).
                inject_into(headers)
                result = await attempt(
                    client,
                    claimed.url,
                    body,
                    headers,
                    timeout=settings.webhook_timeout,
                    allow_private=settings.webhook_allow_private,
                )
                if span is not None:
                    span.set_attribute("webhook.subscription_id", str(claimed.subscription_id))
                    if result.status_code is not None:
                        span.set_attribute("http.response.status_code", result.status_code)
                    if not result.succeeded:
                        mark_failed(span, "webhook_not_delivered")
        outcome = decide(
            result,
            attempts_before=claimed.attempts,
            event_created_at=claimed.event_created_at,
            now=datetime.now(UTC),
            max_age=settings.webhook_max_age,
            base=settings.webhook_backoff_base,
            maximum=settings.webhook_backoff_max,
        )
        metrics.ATTEMPT_SECONDS.observe(result.latency_ms / 1000.0)
        try:
            kept = await self._record(Recorded(claimed, result, outcome))
        except Exception as error:  # noqa: BLE001 - the claim expires; the delivery is retried
            logger.warning(
                "webhook_record_failed",
                delivery_id=str(claimed.id),
                error=error.code if isinstance(error, ServiceError) else type(error).__name__,
                # Store errors carry the server's message, never bound parameters.
                detail=error.detail if isinstance(error, ServiceError) else None,
            )
            return
        self._report(claimed, result, outcome, kept)

    async def _record(self, recorded: Recorded) -> bool:
        """Queue ``recorded`` for the recorder's next commit; whether the claim held."""
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outcomes.append((recorded, stored))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_pending())
        # Shielded: a delivery cancelled at the stop still gets its outcome stored.
        return await asyncio.shield(stored)

    async def _record_pending(self) -> None:
        """Commit queued outcomes, a batch per transaction, until none is left."""
        while self._outcomes:
            batch = self._outcomes[:RECORD_BATCH]
            del self._outcomes[:RECORD_BATCH]
            try:
                kept = await self._in_db(self._queue.record_many, [item for item, _ in batch])
            except Exception as error:  # noqa: BLE001 - each waiting delivery reports it
                for _, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
                continue
            for (_, stored), held in zip(batch, kept, strict=True):
                if not stored.done():
                    stored.set_result(held)

    def _report(
        self, claimed: ClaimedDelivery, result: AttemptResult, outcome: Outcome, kept: bool
    ) -> None:
        fields = {
            "dispatcher": self.name,
            "tenant_id": claimed.tenant_id,
            "subscription_id": str(claimed.subscription_id),
            "delivery_id": str(claimed.id),
            "event_id": str(claimed.event.id),
            "attempt": claimed.attempts + 1,
            "status_code": result.status_code,
            "latency_ms": round(result.latency_ms, 1),
        }
        if not kept:
            # Another dispatcher took the delivery over (our claim had expired).
            logger.warning("webhook_claim_lost", **fields)
        if outcome.status == DELIVERED:
            metrics.DELIVERIES.labels(status="delivered").inc()
            logger.info("webhook_delivered", **fields)
            return
        metrics.DELIVERIES.labels(status="failed_attempt").inc()
        if outcome.status == CANCELLED and outcome.disables_subscription:
            metrics.DELIVERIES.labels(status="disabled").inc()
            logger.warning("webhook_subscription_disabled", reason=outcome.reason, **fields)
        elif outcome.status == DEAD:
            metrics.DELIVERIES.labels(status="dead").inc()
            logger.warning("webhook_dead", reason=outcome.reason, **fields)
        else:
            logger.info(
                "webhook_attempt_failed",
                error=result.summary,
                next_attempt_at=outcome.next_attempt_at,
                **fields,
            )
