"""The producer API: what other services (and the CLI) call to enqueue jobs.

Every input is validated before anything is enqueued, each failure with its own error
(``integration_service.inputs``); unknown tenants and sessions, and sessions Telegram has
ended, are refused here too, so nothing that cannot succeed reaches a queue. Secrets
(login code, password, bot token) go through a one-time Redis drop, never into a job.
Imports no worker internals (no Telethon, no ``runtime/``: tests/producer checks it): only
settings, validation, the store, Redis, and, when a job is enqueued, Celery and the lease
and queue naming it needs to route a job straight to its session's owner.

Every call waits at most DEPENDENCY_TIMEOUT for PostgreSQL, Redis or the broker, and
fails with ``DependencyUnavailable`` naming the one it could not reach
(``integration_service.dependencies``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service import inputs
from integration_service.dependencies import RABBITMQ, REDIS, Dependencies
from integration_service.errors import PermanentError, RetryableError
from integration_service.secret_drop import put_secret, take_secret
from integration_service.sessions.state_machine import TERMINAL
from integration_service.sessions.tickets import LoginTickets
from integration_service.settings import Settings, get_settings
from integration_service.store import SessionKey, SessionNotFound, SessionStore, build_engine
from integration_service.telegram.terminated import SessionTerminated
from integration_service.tracing.jobs import publishing_span

if TYPE_CHECKING:
    from celery import Celery

    from integration_service.inbound.event_log import EventLog

P = ParamSpec("P")
_APP_LOCK = threading.Lock()
R = TypeVar("R")


# Publishing: one reconnect right away (a pooled connection the broker dropped), no more.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "interval_max": 0,
}


class UnknownTenant(PermanentError):
    """No tenant with this id is registered."""

    code = "unknown_tenant"


class BulkInvalid(inputs.InvalidInput):
    """Items of a bulk send are malformed; nothing was enqueued. ``problems`` lists each:
    ``{"index", "field", "detail"}``."""

    code = "invalid_messages"

    def __init__(self, problems: list[dict[str, object]]) -> None:
        first = problems[0] if problems else {}
        super().__init__(
            "messages",
            f"{len(problems)} invalid item(s), the first #{first.get('index')}: "
            f"{first.get('detail')}",
        )
        self.problems = problems


class PublishUnconfirmed(RetryableError):
    """The broker did not confirm every message of a bulk publish in time (or refused
    some). Some may have been enqueued: send the same items again (same idempotency
    keys), and none is sent twice."""

    code = "publish_unconfirmed"


MAX_BULK = 1000


class WaitTimedOut(RetryableError, TimeoutError):
    """``wait`` or ``wait_for_state`` gave up before the job or the session got there.

    Nothing failed: the job may still finish (waiting again can succeed). Also the builtin
    ``TimeoutError``, so ``except TimeoutError`` keeps working.
    """

    code = "wait_timed_out"


@dataclass(frozen=True, slots=True)
class JobHandle:
    """What enqueueing returns: enough to wait for the job or look it up in Flower."""

    job_id: str
    task: str
    queue: str
    tenant_id: str
    app_id: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SessionStatus:
    tenant_id: str
    app_id: str
    state: str | None
    kind: str | None
    login: dict[str, str] = field(default_factory=dict)
    # Why Telegram ended the authorisation (a terminal state), else the last auth error.
    auth_error: str | None = None
    last_activity_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QrCode:
    """A QR login's code while it waits for its scan. ``url`` (and the image, which encodes
    it) sign in whoever scans them: show them to the user, never log or store them."""

    tenant_id: str
    app_id: str
    ticket_id: str
    url: str
    expires_at: float | None

    def png_base64(self) -> str:
        """The QR as a base64 PNG (drawn here, on the caller's side)."""
        from integration_service.sessions.qr_image import qr_png_base64

        return qr_png_base64(self.url)

    def __repr__(self) -> str:
        return (
            f"QrCode(tenant_id={self.tenant_id!r}, app_id={self.app_id!r}, "
            f"ticket_id={self.ticket_id!r}, url=<hidden>)"
        )


class _Confirms:
    """Publisher confirms of one channel in confirm mode.

    RabbitMQ numbers every publish on the channel from 1 and acks one tag, or with
    ``multiple`` every tag up to one. Every publish is counted, not every job: with
    ``task_send_sent_event`` Celery publishes each job's task-sent event on the same
    producer, two publishes per job. (Counting jobs waited for half of the confirms; the
    connection then closed under messages the broker had not confirmed, and a bulk send
    lost its last job in one run of four.)
    """

    def __init__(self, channel: Any) -> None:
        channel.confirm_select()
        self.published = 0
        self._acked_through = 0  # every tag up to here is acked (a ``multiple`` ack)
        self._acked_singly: set[int] = set()
        self.nacked = 0
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)

    @property
    def acked(self) -> int:
        return self._acked_through + len(self._acked_singly)

    def _ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._acked_through = max(self._acked_through, delivery_tag)
            self._acked_singly = {t for t in self._acked_singly if t > self._acked_through}
        elif delivery_tag > self._acked_through:
            self._acked_singly.add(delivery_tag)

    def _nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked += 1

    def counting(self, producer: Any) -> Any:
        """``producer`` with every publish through it counted."""
        publish = producer.publish

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.published += 1
            return publish(*args, **kwargs)

        producer.publish = counted
        return producer

    def wait(self, connection: Any, timeout: float) -> None:
        """Until the broker confirmed every publish; PublishUnconfirmed if it did not."""
        deadline = time.monotonic() + timeout
        while self.acked < self.published and not self.nacked:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                connection.drain_events(timeout=left)
            except TimeoutError:
                break
        if self.acked < self.published or self.nacked:
            raise PublishUnconfirmed(
                f"the broker confirmed {self.acked} of {self.published} messages "
                f"({self.nacked} refused) within {timeout:g}s"
            )


def _reaching(
    method: Callable[Concatenate[IntegrationClient, P], R],
) -> Callable[Concatenate[IntegrationClient, P], R]:
    """A public call: a dependency it cannot reach raises ``DependencyUnavailable``."""

    @functools.wraps(method)
    def call(self: IntegrationClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.dependencies.reaching():
            return method(self, *args, **kwargs)

    return call


def _masked_phone(phone: str) -> str:
    return phone[:2] + "*" * (len(phone) - 4) + phone[-2:]


class IntegrationClient:
    """Typed functions for every job, plus status and wait helpers."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        app: Celery | None = None,
        engine: Engine | None = None,
        redis_client: redis.Redis | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        timeout = self.settings.dependency_timeout
        self.dependencies = Dependencies(
            self.settings.database_url, self.settings.redis_url, self.settings.broker_url, timeout
        )
        # Built on first use (a status read needs no Celery): ``producer_app``, the broker
        # and Redis of these settings, with bounded waits and none of the worker's hooks.
        self._app = app
        self._owns_app = app is None
        self.engine = engine or build_engine(
            self.settings,
            pool_timeout=timeout,
            connect_args={
                # libpq's minimum is 2 s; covers the whole handshake, per address tried.
                "connect_timeout": max(
                    2, int(min(timeout, self.settings.database_connect_timeout))
                ),
                "application_name": "integration-service",
            },
        )
        self.store = SessionStore(self.engine)
        # Two tries of half the timeout each: one reconnect after a dropped connection,
        # never longer than DEPENDENCY_TIMEOUT (redis-py defaults to 3 retries with backoff).
        self.redis = redis_client or redis.Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=timeout / 2,
            socket_timeout=timeout / 2,
            retry=Retry(NoBackoff(), 1),
        )
        self.tickets = LoginTickets(self.redis, self.settings.qr_ticket_ttl)

    @property
    def app(self) -> Celery:
        """The Celery app jobs are published with (built on first use unless given).

        Built under a lock: callers on several threads (the HTTP API's) would otherwise
        import Celery concurrently, which fails ("cannot import name 'Celery'", seen under
        load), or build an app each."""
        if self._app is None:
            with _APP_LOCK:
                if self._app is None:
                    from integration_service.producer_app import producer_app

                    self._app = producer_app(self.settings)
        return self._app

    # Checks ----------------------------------------------------------------------------

    def _key(self, tenant_id: object, app_id: object) -> SessionKey:
        return inputs.session_key(tenant_id, app_id)

    def _require_tenant(self, tenant_id: str) -> None:
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM tenants WHERE id = :id"), {"id": tenant_id}
            ).first()
        if found is None:
            raise UnknownTenant(f"tenant {tenant_id!r} is not registered")

    def _require_usable_session(self, key: SessionKey) -> None:
        row = self.store.get(key)
        if row is None:
            raise SessionNotFound(f"no session {key}")
        if row.state in TERMINAL:
            raise SessionTerminated(row.state, "stored state")

    # Enqueueing ------------------------------------------------------------------------

    def _enqueue(
        self,
        task: str,
        key: SessionKey,
        kwargs: dict[str, Any],
        *,
        kwargsrepr: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobHandle:
        from integration_service.queues import route_for, worker_queue

        route = route_for(task)
        assert route is not None, task
        job_id = str(uuid.uuid4())
        destination: dict[str, Any] = {}
        queue_name = route["queue"]
        owner = self._owner_queue_prefix(key)
        if owner is not None:
            # Straight to the worker holding the session: no forwarding hop. The queue is
            # declared (once per connection) with the worker's own arguments, so a publish
            # can never vanish into a queue that does not exist.
            queue = worker_queue(owner, route["queue"], self.settings.worker_queue_message_ttl)
            queue_name = queue.name
            destination = {
                "queue": queue,
                "exchange": "",
                "routing_key": queue.name,
                "declare": [queue],
            }
        timeout = self.settings.dependency_timeout
        with self.dependencies.reaching(RABBITMQ), publishing_span(task, job_id, queue_name):
            self.app.send_task(
                task,
                kwargs={"tenant_id": key.tenant_id, "app_id": key.app_id, **kwargs},
                task_id=job_id,
                # What Flower and logs show: never a phone number or secret reference.
                kwargsrepr=kwargsrepr or repr({"tenant_id": key.tenant_id, "app_id": key.app_id}),
                argsrepr="()",
                # Bounded even on an app the caller built: one reconnect, and the
                # publisher confirm within the timeout.
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
                timeout=timeout,
                confirm_timeout=timeout,
                **destination,
            )
        return JobHandle(job_id, task, queue_name, key.tenant_id, key.app_id, idempotency_key)

    def _enqueue_secret(self, task: str, key: SessionKey, argument: str, secret: str) -> JobHandle:
        """Enqueue ``task`` with a one-time reference to ``secret`` as ``argument``."""
        reference = put_secret(self.redis, secret)
        try:
            return self._enqueue(task, key, {argument: reference})
        except BaseException:
            # No job will ever take it (the broker was down, say): not left for its TTL.
            with contextlib.suppress(Exception):
                take_secret(self.redis, reference)
            raise

    def _owner_queue_prefix(self, key: SessionKey) -> str | None:
        # Redis also holds the job's result: an unreachable Redis fails the call here,
        # named and within the timeout, before Celery's result consumer meets it.
        try:
            if not self.settings.route_to_owner:
                self.redis.ping()
                return None
            from integration_service.leases.owner import owner_queue_prefix

            return owner_queue_prefix(self.redis, key.tenant_id, key.app_id)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise self.dependencies.unavailable(REDIS, error) from error
        except redis.RedisError:
            # Only a hint: the shared queue is always a correct destination.
            return None

    @_reaching
    def start_qr_login(self, tenant_id: str, app_id: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        self._require_tenant(key.tenant_id)
        return self._enqueue("tasks.connect.start_qr_login", key, {})

    @_reaching
    def request_code(self, tenant_id: str, app_id: str, phone: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        number = inputs.phone(phone)
        self._require_tenant(key.tenant_id)
        shown = repr(
            {"tenant_id": key.tenant_id, "app_id": key.app_id, "phone": _masked_phone(number)}
        )
        return self._enqueue("tasks.connect.request_code", key, {"phone": number}, kwargsrepr=shown)

    @_reaching
    def submit_code(self, tenant_id: str, app_id: str, code: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        value = inputs.login_code(code)
        self._require_usable_session(key)
        return self._enqueue_secret("tasks.connect.submit_code", key, "code_ref", value)

    @_reaching
    def submit_password(self, tenant_id: str, app_id: str, password: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        value = inputs.password(password)
        self._require_usable_session(key)
        return self._enqueue_secret("tasks.connect.submit_password", key, "password_ref", value)

    @_reaching
    def connect_bot(self, tenant_id: str, app_id: str, bot_token: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        value = inputs.bot_token(bot_token)
        self._require_tenant(key.tenant_id)
        return self._enqueue_secret("tasks.connect.connect_bot", key, "token_ref", value)

    @_reaching
    def reconnect(self, tenant_id: str, app_id: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        self._require_usable_session(key)
        return self._enqueue("tasks.reconnect.reconnect", key, {})

    @_reaching
    def log_out(self, tenant_id: str, app_id: str) -> JobHandle:
        """End the session at Telegram and wipe its material (sessions/logout.py); the
        row, its transitions and its events stay. Raises SessionNotFound if unknown."""
        key = self._key(tenant_id, app_id)
        if self.store.get(key) is None:
            raise SessionNotFound(f"no session {key}")
        return self._enqueue("tasks.reconnect.log_out", key, {})

    @_reaching
    def validate_session(self, tenant_id: str, app_id: str) -> JobHandle:
        key = self._key(tenant_id, app_id)
        if self.store.get(key) is None:
            raise SessionNotFound(f"no session {key}")
        return self._enqueue("tasks.validation.validate_session", key, {})

    @_reaching
    def check_channel(
        self, tenant_id: str, app_id: str, channel_id: str, *, refresh: bool = False
    ) -> JobHandle:
        """Enqueue the check of a connected channel with Telegram: ``mid`` for a new
        connection (someone waits for it), ``low`` for a refresh."""
        key = self._key(tenant_id, app_id)
        self._require_usable_session(key)
        task = "tasks.channels.refresh" if refresh else "tasks.channels.connect"
        return self._enqueue(task, key, {"channel_id": str(channel_id)})

    @_reaching
    def send_message(
        self,
        tenant_id: str,
        app_id: str,
        peer: str | int,
        text: str,
        *,
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Enqueue one send; the same ``idempotency_key`` never sends twice."""
        request = inputs.SendRequest.parse(
            tenant_id,
            app_id,
            peer,
            text,
            idempotency_key if idempotency_key is not None else str(uuid.uuid4()),
        )
        self._require_usable_session(request.key)
        kwargs = request.job_kwargs()
        shown = repr({**kwargs, "text": f"<{len(request.text)} characters>"})
        return self._enqueue(
            "tasks.messages.send_message",
            request.key,
            kwargs,
            kwargsrepr=shown,
            idempotency_key=request.idempotency_key,
        )

    @_reaching
    def send_messages(
        self, tenant_id: str, app_id: str, items: Sequence[Mapping[str, object]]
    ) -> list[JobHandle]:
        """Enqueue up to MAX_BULK sends of one session, all or none: every item is
        validated first (``BulkInvalid`` lists each bad one; nothing is enqueued), then
        all are published on one channel with pipelined publisher confirms (one wait for
        the whole batch instead of one per message). Each item is ``{peer, text,
        idempotency_key?}``; an item without a key gets a random one."""
        key = self._key(tenant_id, app_id)
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise inputs.InvalidInput("messages", "must be a list of messages")
        if not 1 <= len(items) <= MAX_BULK:
            raise inputs.InvalidInput("messages", f"must hold 1 to {MAX_BULK} messages")
        requests: list[inputs.SendRequest] = []
        problems: list[dict[str, object]] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                problems.append({"index": index, "field": "message", "detail": "not an object"})
                continue
            try:
                request = inputs.SendRequest.parse(
                    key.tenant_id,
                    key.app_id,
                    item.get("peer"),
                    item.get("text"),
                    item.get("idempotency_key") or str(uuid.uuid4()),
                )
            except inputs.InvalidInput as error:
                problems.append({"index": index, "field": error.field, "detail": error.detail})
                continue
            if request.idempotency_key in seen:
                problems.append(
                    {
                        "index": index,
                        "field": "idempotency_key",
                        "detail": "idempotency_key: repeats an earlier item's",
                    }
                )
                continue
            seen.add(request.idempotency_key)
            requests.append(request)
        if problems:
            raise BulkInvalid(problems)
        self._require_usable_session(key)
        return self._enqueue_many("tasks.messages.send_message", key, requests)

    def _enqueue_many(
        self, task: str, key: SessionKey, requests: Sequence[inputs.SendRequest]
    ) -> list[JobHandle]:
        from kombu import Connection, Producer

        from integration_service.queues import route_for, worker_queue

        route = route_for(task)
        assert route is not None, task
        queue_name = route["queue"]
        destination: dict[str, Any] = {}
        owner = self._owner_queue_prefix(key)
        if owner is not None:
            queue = worker_queue(owner, route["queue"], self.settings.worker_queue_message_ttl)
            queue_name = queue.name
            destination = {
                "queue": queue,
                "exchange": "",
                "routing_key": queue.name,
                "declare": [queue],
            }
        timeout = self.settings.dependency_timeout
        handles: list[JobHandle] = []
        with (
            self.dependencies.reaching(RABBITMQ),
            # A connection of its own, without the app's confirm-per-publish mode: the
            # channel is put in confirm mode here and the acks are awaited together.
            Connection(self.settings.broker_url, connect_timeout=timeout) as connection,
        ):
            channel = connection.channel()
            confirmed = _Confirms(channel)
            producer = confirmed.counting(Producer(channel))
            for request in requests:
                job_id = str(uuid.uuid4())
                kwargs = request.job_kwargs()
                with publishing_span(task, job_id, queue_name):
                    self.app.send_task(
                        task,
                        kwargs=kwargs,
                        task_id=job_id,
                        kwargsrepr=repr({**kwargs, "text": f"<{len(request.text)} characters>"}),
                        argsrepr="()",
                        producer=producer,
                        # A reconnect would carry on on a channel not in confirm mode:
                        # fail instead (the caller's retry is idempotent).
                        retry=False,
                        **destination,
                    )
                handles.append(
                    JobHandle(
                        job_id,
                        task,
                        queue_name,
                        key.tenant_id,
                        key.app_id,
                        request.idempotency_key,
                    )
                )
            confirmed.wait(connection, timeout)
        return handles

    # Status and waiting ----------------------------------------------------------------

    @_reaching
    def get_status(self, tenant_id: str, app_id: str) -> SessionStatus:
        key = self._key(tenant_id, app_id)
        row = self.store.get(key)
        login = self.tickets.get(key)
        # Neither the phone nor the QR URL (a login secret: see ``qr_code``) is a status.
        login.pop("phone", None)
        login.pop("url", None)
        if row is None:
            return SessionStatus(key.tenant_id, key.app_id, None, None, login)
        auth_error = row.auth_error
        if auth_error is None and row.state in TERMINAL:
            # Rows terminated before the reason was stored: the transition's own reason.
            reasons = [e.reason for e in self.store.events(key) if e.to_state == row.state]
            auth_error = reasons[-1] if reasons else None
        return SessionStatus(
            key.tenant_id,
            key.app_id,
            row.state,
            row.kind,
            login,
            auth_error,
            row.last_activity_at,
            row.updated_at,
        )

    @_reaching
    def set_listening(self, tenant_id: str, app_id: str, listening: bool) -> None:
        """Turn a session's listening on or off: placement connects it with updates on (or
        lets it go) within a round. Raises SessionNotFound for an unknown session."""
        if not isinstance(listening, bool):
            raise inputs.InvalidInput("listening", "must be true or false")
        self.store.set_listening(self._key(tenant_id, app_id), listening)

    @_reaching
    def qr_code(self, tenant_id: str, app_id: str, ticket_id: str | None = None) -> QrCode | None:
        """The QR to show while a QR login waits for its scan, else None.

        ``start_qr_login``'s result names its login ticket (``ticket_id``); pass it to get
        that login's QR only. The QR changes when Telegram's token is recreated (about
        every 30 s): call again to follow it. Once the login has finished, failed or
        expired, the QR is gone.
        """
        key = self._key(tenant_id, app_id)
        pending = self.tickets.pending_qr(key, ticket_id)
        if pending is None:
            return None
        return QrCode(
            key.tenant_id, key.app_id, pending.ticket_id, pending.url, pending.token_expires_at
        )

    @_reaching
    def wait(self, handle: JobHandle, *, timeout: float = 60.0) -> Any:
        """The job's result; raises its error, or ``WaitTimedOut`` after ``timeout``.

        A failed job raises the project error it failed with: its class, ``code`` and
        attributes, rebuilt from the JSON result (``jobs/results.py``).
        """
        from celery.exceptions import TimeoutError as ResultTimeout
        from celery.result import AsyncResult

        from integration_service.jobs.results import results_backend

        backend = results_backend(self.app)
        result: AsyncResult[Any] = AsyncResult(handle.job_id, app=self.app, backend=backend)
        try:
            return result.get(timeout=timeout, propagate=True)
        except ResultTimeout:
            raise WaitTimedOut(
                f"job {handle.job_id} ({handle.task}) has no result after {timeout:g}s"
            ) from None
        finally:
            # Stop listening for it now, while the connection is open. Left to the
            # result's __del__ (a timed-out wait), the unsubscribe would run at
            # interpreter exit and print a traceback under the CLI's one error line.
            with contextlib.suppress(Exception):
                backend.remove_pending_result(result)

    @_reaching
    def wait_for_state(
        self, tenant_id: str, app_id: str, states: Iterable[str], *, timeout: float = 60.0
    ) -> SessionStatus:
        """Poll until the session reaches one of ``states`` (or raise ``WaitTimedOut``)."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            current = self.get_status(tenant_id, app_id)
            if current.state in wanted:
                return current
            if time.monotonic() >= deadline:
                raise WaitTimedOut(
                    f"session {tenant_id}/{app_id} is {current.state}, not {sorted(wanted)}"
                )
            time.sleep(0.1)

    # Events (docs/EVENTS.md) -----------------------------------------------------------

    @_reaching
    def events(
        self,
        tenant_id: str,
        *,
        app_id: str | None = None,
        after: str | int | uuid.UUID | None = None,
        types: Iterable[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The tenant's events after a cursor, as envelopes, in log order.

        ``after``: an event id (any session of the tenant), or with ``app_id`` a
        per-session sequence number; None starts at the oldest event kept
        (EVENT_RETENTION_DAYS). Pass the last envelope's id (or sequence) to get the next
        page: paging never skips an event, even one committed late. ``types`` keeps
        only those types (``EVENT_TYPES``); ``limit`` is 1..1000.
        """
        from integration_service.inbound.event_log import EventLog
        from integration_service.inbound.query import EventQuery

        query = EventQuery.parse(tenant_id, app_id=app_id, after=after, types=types, limit=limit)
        log = EventLog(self.engine)
        self._require_event_scope(log, query.tenant_id, query.app_id, query.after)
        found = log.read(
            query.tenant_id,
            app_id=query.app_id,
            after=query.after,
            types=query.types,
            limit=query.limit,
        )
        return [event.envelope() for event in found]

    @_reaching
    def latest_event_id(self, tenant_id: str, *, app_id: str | None = None) -> str | None:
        """The id of the newest event ``events`` can return now (None: none yet): the
        cursor to follow the log from here on (``events tail``)."""
        from integration_service.inbound.query import EventQuery

        query = EventQuery.parse(tenant_id, app_id=app_id)
        self._require_tenant(query.tenant_id)
        from integration_service.inbound.event_log import READABLE, SETTLE_SECONDS

        # The same rule as EventLog.read: "now" is the newest row a cursor may pass.
        where = f"tenant_id = :tenant_id AND {READABLE}"
        params: dict[str, object] = {"tenant_id": query.tenant_id, "settle": SETTLE_SECONDS}
        if query.app_id is not None:
            where += " AND app_id = :app_id"
            params["app_id"] = query.app_id
        with self.engine.connect() as conn:
            found = conn.execute(
                text(
                    f"SELECT id FROM inbound_events WHERE {where} "  # noqa: S608 - fixed fragments
                    "ORDER BY txid DESC, position DESC LIMIT 1"
                ),
                params,
            ).scalar()
        return None if found is None else str(found)

    def _require_event_scope(
        self, log: EventLog, tenant_id: str, app_id: str | None, after: object
    ) -> None:
        self._require_tenant(tenant_id)
        if app_id is not None and self.store.get(SessionKey(tenant_id, app_id)) is None:
            raise SessionNotFound(f"no session {tenant_id}/{app_id}")
        if isinstance(after, uuid.UUID) and log.get(tenant_id, after) is None:
            raise inputs.InvalidInput(
                "after",
                "names no event of this tenant (older than EVENT_RETENTION_DAYS, or not "
                "an id from this tenant's events)",
            )

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()
        if self._owns_app and self._app is not None:
            self._app.close()
