"""The relay: committed rows of the event log, published to the ``events`` exchange.

A transactional outbox. Each round, in one database transaction, the relay locks the
oldest unpublished rows (``FOR UPDATE SKIP LOCKED``, so several relays share the work
and never take the same row), publishes each as a persistent JSON message on the
durable topic exchange ``events`` with publisher confirms, and sets ``published_at`` on
exactly the rows the broker confirmed before committing. A crash between the confirm and
the commit re-publishes those rows (at least once, same message id); a row is never
marked without its confirm, so none is ever skipped.

With the broker down the rows stay unpublished; the relay backs off and retries, logging
the outage once when it starts and once when it ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import amqp
import kombu
import kombu.exceptions
import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from integration_service.dependencies import address_of, reason_of
from integration_service.errors import RetryableError
from integration_service.inbound.event_log import EVENT_COLUMNS, event_from
from integration_service.inbound.events import Event
from integration_service.settings import Settings
from integration_service.store.errors import to_store_error
from integration_service.tracing.propagation import inject_into

logger = structlog.get_logger(__name__)

EXCHANGE = "events"
CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery mode: written to disk by the broker
# How often the backlog gauge is refreshed (a count over the partial index).
BACKLOG_SAMPLE_SECONDS = 5.0
# Backoff while the broker or the database is unreachable.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0

EVENTS_PUBLISHED = Counter(
    "events_published",
    "Events the broker confirmed on the events exchange, by type (a re-publish after a "
    "crash counts again).",
    ["type"],
)
EVENT_RELAY_BACKLOG = Gauge(
    "event_relay_backlog",
    "Rows of the event log not yet published to the events exchange (sampled).",
)
EVENT_PUBLISH_SECONDS = Histogram(
    "event_publish_seconds",
    "Time from publishing an event to the broker's confirm.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_UNPUBLISHED = text(
    f"SELECT {EVENT_COLUMNS} FROM inbound_events WHERE published_at IS NULL "  # noqa: S608 - constant columns
    "ORDER BY position LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_MARK = text(
    "UPDATE inbound_events SET published_at = now() WHERE id = ANY(:ids) AND published_at IS NULL"
)
_BACKLOG = text("SELECT count(*) FROM inbound_events WHERE published_at IS NULL")

# What a broker that went away raises from py-amqp and kombu.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    amqp.exceptions.AMQPError,
    kombu.exceptions.OperationalError,
)


class EventPublishFailed(RetryableError):
    """The broker could not be reached, refused a message or did not confirm it in time.
    The rows it did not confirm stay unpublished and are tried again."""

    code = "event_publish_failed"


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The events of a batch the broker confirmed, and why the rest were not (None: all
    were)."""

    confirmed: list[Event]
    failure: str | None = None


def message_for(event: Event) -> amqp.Message:
    """The AMQP message of an event: the envelope as JSON, persistent, id = event id."""
    body = json.dumps(event.envelope(), separators=(",", ":"), default=str).encode()
    headers: dict[str, object] = {
        "sequence": event.sequence,
        "type": event.type,
        "tenant_id": event.tenant_id,
        "app_id": event.app_id,
    }
    # The current span (the publish's own, see event_span) when the event was traced.
    trace_headers: dict[str, str] = {}
    if event.traceparent is not None:
        inject_into(trace_headers)
    headers.update(trace_headers)
    return amqp.Message(
        body,
        content_type=CONTENT_TYPE,
        content_encoding="utf-8",
        delivery_mode=PERSISTENT,
        message_id=str(event.id),
        type=event.type,
        timestamp=int(event.occurred_at.timestamp()),
        application_headers=headers,
    )


class ConfirmingPublisher:
    """One AMQP channel in confirm mode on the ``events`` exchange.

    A batch is published without waiting message by message; the broker's acks
    (``multiple`` ones included) are then collected until every message of the batch is
    acked or nacked, or the timeout passes.
    """

    def __init__(self, broker_url: str, *, timeout: float, exchange: str = EXCHANGE) -> None:
        self._url = broker_url
        self._timeout = timeout
        self.exchange = exchange
        self._connection: kombu.Connection | None = None
        self._channel: Any = None
        self._last_tag = 0
        # Delivery tag -> when it was published, for tags not yet acked or nacked.
        self._outstanding: dict[int, float] = {}
        self._acked: set[int] = set()
        self._nacked: set[int] = set()

    @property
    def address(self) -> str:
        return address_of(self._url)

    def _open(self) -> Any:
        if self._channel is not None:
            return self._channel
        connection = kombu.Connection(self._url, connect_timeout=self._timeout)
        try:
            # One attempt: the relay's own loop does the backing off.
            connection.ensure_connection(max_retries=0, timeout=self._timeout)  # type: ignore[arg-type]
            # py-amqp's channel (kombu types it as the transport-neutral StdChannel).
            channel: Any = connection.channel()
            channel.exchange_declare(
                exchange=self.exchange, type="topic", durable=True, auto_delete=False
            )
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
        except BaseException:
            connection.release()
            raise
        self._connection, self._channel = connection, channel
        # Confirm-mode delivery tags count from 1 on every new channel.
        self._last_tag = 0
        self._outstanding.clear()
        return channel

    def _resolve(self, delivery_tag: int, multiple: bool, into: set[int]) -> None:
        tags = (
            [tag for tag in self._outstanding if tag <= delivery_tag]
            if multiple
            else [delivery_tag]
        )
        now = time.perf_counter()
        for tag in tags:
            sent = self._outstanding.pop(tag, None)
            if sent is not None:
                into.add(tag)
                EVENT_PUBLISH_SECONDS.observe(now - sent)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._resolve(delivery_tag, multiple, self._acked)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._resolve(delivery_tag, multiple, self._nacked)

    def publish(self, events: Sequence[Event]) -> PublishResult:
        """Publish ``events`` and wait for their confirms; never raises for the broker."""
        by_tag: dict[int, Event] = {}
        self._acked.clear()
        self._nacked.clear()
        try:
            channel = self._open()
            for event in events:
                with event.span("publish event", SpanKind.PRODUCER):
                    channel.basic_publish(
                        message_for(event), exchange=self.exchange, routing_key=event.routing_key
                    )
                self._last_tag += 1
                by_tag[self._last_tag] = event
                self._outstanding[self._last_tag] = time.perf_counter()
            self._await_confirms(by_tag)
        except BROKER_ERRORS as error:
            # The channel's state is unknown: start over on a new connection next time.
            self.close()
            confirmed = [event for tag, event in by_tag.items() if tag in self._acked]
            return PublishResult(confirmed, reason_of(error, self._timeout))
        confirmed = [event for tag, event in by_tag.items() if tag in self._acked]
        if any(tag in self._outstanding for tag in by_tag):
            self.close()  # confirms may still come, for tags a new channel reuses
            return PublishResult(confirmed, f"no confirm within {self._timeout:g}s")
        nacked = len(by_tag) - len(confirmed)
        return PublishResult(confirmed, f"broker nacked {nacked} messages" if nacked else None)

    def _await_confirms(self, by_tag: dict[int, Event]) -> None:
        """Read the broker's acks and nacks until the batch is resolved or time is up."""
        deadline = time.monotonic() + self._timeout
        while any(tag in self._outstanding for tag in by_tag):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._connection is None:
                return
            try:
                self._connection.drain_events(timeout=remaining)
            except TimeoutError:  # socket.timeout: nothing more within the deadline
                return

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._outstanding.clear()
        if connection is not None:
            try:
                connection.release()
            except BROKER_ERRORS:
                pass  # already gone: nothing left to close


class EventRelay:
    """Publishes the event log to RabbitMQ on its own thread (``start``/``stop``), or
    one batch at a time (``run_once``, for tests and tools)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        publisher: ConfirmingPublisher | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._publisher = publisher or ConfirmingPublisher(
            settings.broker_url, timeout=settings.dependency_timeout
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage: str | None = None
        self._next_backlog_sample = 0.0
        # Last time a round finished (succeeded or failed): liveness of the loop.
        self.last_round_at = time.monotonic()
        # Events this relay had confirmed and marked (a re-publish counts again).
        self.published = 0

    # One round ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Publish one batch of unpublished rows; the number the broker confirmed.

        Raises ``EventPublishFailed`` (after marking what was confirmed) when the broker
        failed part of the batch, and a ``StoreError`` when the database did.
        """
        try:
            with self._engine.begin() as conn:
                rows = conn.execute(_UNPUBLISHED, {"limit": self.settings.relay_batch})
                events = [event_from(row) for row in rows.mappings()]
                if not events:
                    return 0
                result = self._publisher.publish(events)
                if result.confirmed:
                    conn.execute(_MARK, {"ids": [event.id for event in result.confirmed]})
        except SQLAlchemyError as error:
            raise to_store_error(error, "publish events") from None
        self.published += len(result.confirmed)
        for event in result.confirmed:
            EVENTS_PUBLISHED.labels(event.type).inc()
        if result.failure is not None:
            raise EventPublishFailed(
                f"events exchange at {self._publisher.address}: {result.failure} "
                f"({len(result.confirmed)} of {len(events)} confirmed)"
            )
        return len(result.confirmed)

    def sample_backlog(self) -> int:
        """Count the unpublished rows into ``event_relay_backlog``."""
        try:
            with self._engine.connect() as conn:
                backlog = int(conn.execute(_BACKLOG).scalar_one())
        except SQLAlchemyError as error:
            raise to_store_error(error, "count unpublished events") from None
        EVENT_RELAY_BACKLOG.set(backlog)
        return backlog

    # The loop -------------------------------------------------------------------------

    def start(self) -> EventRelay:
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="event-relay", daemon=True)
        self._thread.start()
        logger.info(
            "event_relay_started",
            exchange=self._publisher.exchange,
            broker=self._publisher.address,
            batch=self.settings.relay_batch,
        )
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the round in progress (bounded by its confirm timeout) and stop."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout)
        self._publisher.close()
        if thread is not None:
            logger.info("event_relay_stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def outage(self) -> str | None:
        """What kind of failure the loop is backing off from (None: it is not)."""
        return self._outage

    def _loop(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stopping.is_set():
            try:
                published = self.run_once()
                self._maybe_sample_backlog()
            except Exception as error:  # noqa: BLE001 - every failure is retried
                self.last_round_at = time.monotonic()
                self._note_outage(error)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.last_round_at = time.monotonic()
            backoff = FIRST_BACKOFF
            self._note_recovery()
            if published < self.settings.relay_batch:
                # Caught up: poll. A full batch means more is waiting: go on at once.
                self._stopping.wait(self.settings.relay_poll_interval)

    def _maybe_sample_backlog(self) -> None:
        now = time.monotonic()
        if now >= self._next_backlog_sample:
            self._next_backlog_sample = now + BACKLOG_SAMPLE_SECONDS
            self.sample_backlog()

    def _note_outage(self, error: Exception) -> None:
        if self._outage is None:
            self._outage = type(error).__name__
            # Once per outage; the rows wait in the log, nothing is lost meanwhile.
            logger.warning(
                "event_relay_unavailable",
                error=str(error),
                error_type=self._outage,
                retrying_every_max_s=MAX_BACKOFF,
            )

    def _note_recovery(self) -> None:
        if self._outage is not None:
            logger.info("event_relay_recovered", after=self._outage)
            self._outage = None
