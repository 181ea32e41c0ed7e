"""PostgreSQL, Redis and RabbitMQ as a producer meets them: bounded waits, named failures.

A producer call (and so every CLI command) gives each dependency DEPENDENCY_TIMEOUT
seconds; past that, or on a refused connection, it raises ``DependencyUnavailable``
naming the dependency and its address (host, port, database or vhost: never a user
name or password), for example ``redis unreachable at 127.0.0.1:6379/0: connection
refused``. The CLI turns it into exit code 4.

The libraries' own retry loops are what made a dead Redis cost a CLI caller 22 s and
20 log lines; ``bounded_celery_config`` caps them for producer apps only (workers keep
their patient defaults: they outlive a dependency's restart).

Imports nothing heavy at module level: the CLI's error mapping imports this module.
"""

from __future__ import annotations

import concurrent.futures
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from integration_service.errors import RetryableError

if TYPE_CHECKING:
    import redis
    from celery import Celery
    from kombu import Connection
    from sqlalchemy.engine import Engine

    from integration_service.settings import Settings

POSTGRESQL = "postgresql"
REDIS = "redis"
RABBITMQ = "rabbitmq"

_DEFAULT_PORTS = {
    "postgresql": 5432,
    "postgresql+psycopg": 5432,
    "postgres": 5432,
    "redis": 6379,
    "rediss": 6380,
    "amqp": 5672,
    "pyamqp": 5672,
    "amqps": 5671,
}


class DependencyUnavailable(RetryableError):
    """PostgreSQL, Redis or the broker could not be reached within DEPENDENCY_TIMEOUT.

    ``dependency`` is ``postgresql``, ``redis`` or ``rabbitmq``; ``address`` is where it
    was looked for, without credentials; ``reason`` is what happened (``connection
    refused``, ``no answer within 5s``, ...).
    """

    code = "dependency_unavailable"

    def __init__(self, dependency: str, address: str, reason: str) -> None:
        super().__init__(f"{dependency} unreachable at {address}: {reason}")
        self.dependency = dependency
        self.address = address
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.dependency, self.address, self.reason))


def address_of(url: str) -> str:
    """``host:port/path`` of a service URL: no scheme, user, password or query.

    ``redis://:pw@127.0.0.1:6379/0`` -> ``127.0.0.1:6379/0``; an AMQP URL keeps its
    vhost path as written (``127.0.0.1:5672//`` is the vhost ``/``); a Unix socket is
    its path.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if parts.scheme == "unix":
        return unquote(parts.path) or "<unix socket>"
    if not host:
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme)
    path = unquote(parts.path)
    return f"{host}:{port}{path}" if port is not None else f"{host}{path}"


# SQLSTATEs a server sends before or while refusing a connection, when it sends one.
_REASON_BY_SQLSTATE = {
    "3D000": "database does not exist",  # invalid_catalog_name
    "28P01": "authentication failed",  # invalid_password
    "28000": "authentication failed",  # invalid_authorization_specification
    "53300": "too many connections",  # too_many_connections
    "57P03": "database is starting up or shutting down",  # cannot_connect_now
    "57P01": "database is shutting down",  # admin_shutdown
}
# libpq reports a refused connection as text only (no SQLSTATE reaches psycopg for it):
# the server's own message, in English unless lc_messages says otherwise. Matched after
# the SQLSTATE and the exception types; never echoed (it may name the user).
_REASON_BY_TEXT = (
    (re.compile(r'database ".*" does not exist'), "database does not exist"),
    (re.compile(r'role ".*" does not exist'), "authentication failed (no such role)"),
    (re.compile(r"password authentication failed"), "authentication failed"),
    (re.compile(r"authentication failed"), "authentication failed"),
    (re.compile(r"no pg_hba\.conf entry"), "authentication failed (not allowed by pg_hba.conf)"),
    (re.compile(r"access_refused"), "authentication failed"),
    (re.compile(r"too many (clients|connections)"), "too many connections"),
    (
        re.compile(r"the database system is (starting up|shutting down|in recovery)"),
        "database is starting up or shutting down",
    ),
    (re.compile(r"connection refused"), "connection refused"),
    (re.compile(r"timeout expired|timed out|timeout"), "{timed_out}"),
    (re.compile(r"name or service not known|nodename nor servname"), "host name not resolved"),
    (re.compile(r"connection reset"), "connection reset"),
    (re.compile(r"closed"), "connection closed"),
)


def reason_of(error: BaseException, timeout: float) -> str:
    """A short, secret-free account of why a connection failed, from its cause chain.

    ``connection refused``, ``no answer within 5s``, ``database does not exist``,
    ``authentication failed``, ...; the last exception's type name when nothing says.
    """
    known = known_reason(error, timeout)
    return known if known is not None else type(list(_chain(error))[-1]).__name__


def known_reason(error: BaseException, timeout: float) -> str | None:
    """``reason_of`` when the chain says why, else None (an error of another kind)."""
    chain = list(_chain(error))
    timed_out = f"no answer within {timeout:g}s"
    for item in chain:
        sqlstate = getattr(item, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate in _REASON_BY_SQLSTATE:
            return _REASON_BY_SQLSTATE[sqlstate]
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return "host name not resolved"
        if isinstance(item, TimeoutError):
            return timed_out
    text = " ".join(str(item) for item in chain).lower()
    for pattern, reason in _REASON_BY_TEXT:
        if pattern.search(text):
            return reason.format(timed_out=timed_out)
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@dataclass(frozen=True, slots=True)
class Dependencies:
    """Where a producer's dependencies are, and how long it waits for each."""

    database_url: str
    redis_url: str
    broker_url: str
    timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Dependencies:
        """The dependencies ``settings`` name, with their DEPENDENCY_TIMEOUT."""
        return cls(
            settings.database_url,
            settings.redis_url,
            settings.broker_url,
            settings.dependency_timeout,
        )

    def unavailable(self, dependency: str, error: BaseException) -> DependencyUnavailable:
        urls = {POSTGRESQL: self.database_url, REDIS: self.redis_url, RABBITMQ: self.broker_url}
        unavailable = DependencyUnavailable(
            dependency, address_of(urls[dependency]), reason_of(error, self.timeout)
        )
        unavailable.__cause__ = error
        return unavailable

    def classify(self, error: BaseException, *, talking_to: str | None = None) -> str | None:
        """Which dependency ``error`` says is unreachable, or None if it says no such thing.

        ``talking_to`` names the dependency for errors that carry no type of their own
        (a bare ``ConnectionRefusedError`` from a socket).
        """
        if isinstance(error, DependencyUnavailable):
            return None
        dependency = _typed_dependency(error)
        if dependency is not None:
            return dependency
        if talking_to is not None and isinstance(error, OSError | EOFError):
            return talking_to
        return None

    @contextmanager
    def reaching(self, talking_to: str | None = None) -> Iterator[None]:
        """Turn a connection failure raised inside into ``DependencyUnavailable``."""
        try:
            yield
        except Exception as error:
            dependency = self.classify(error, talking_to=talking_to)
            if dependency is None:
                raise
            raise self.unavailable(dependency, error) from error

    def check(self, probes: Mapping[str, Probe], *, within: float | None = None) -> None:
        """Reach every dependency in ``probes`` at once, in parallel, within ``within`` s.

        ``probes`` maps a dependency (``postgresql``, ``redis``, ``rabbitmq``) to a call
        that reaches it (``probe_postgresql`` and the others below). ``within`` defaults
        to ``timeout``; the CLI passes what is left of its command's budget. Raises
        ``DependencyUnavailable`` as soon as a probe fails (the first in ``probes``
        order among those failed by then), or for the first probe still waiting when
        the time is up; its reason then says ``no answer within`` ``timeout``.

        Each probe runs in a daemon thread, so a probe stuck in a library's own wait
        (libpq never waits less than 2 s) is abandoned at the deadline, not waited for,
        and does not hold up the interpreter's exit.
        """
        limit = self.timeout if within is None else within
        futures = {name: _in_thread(name, probe) for name, probe in probes.items()}
        concurrent.futures.wait(
            futures.values(), timeout=limit, return_when=concurrent.futures.FIRST_EXCEPTION
        )
        for name, future in futures.items():
            if future.done() and future.exception() is not None:
                error = future.exception()
                assert error is not None
                if self.classify(error, talking_to=name) is None:
                    raise error
                raise self.unavailable(name, error) from error
        for name, future in futures.items():
            if not future.done():
                error = TimeoutError(f"no answer from {name} within {limit:.2f}s")
                raise self.unavailable(name, error) from None


Probe = Callable[[], object]


def _in_thread(name: str, probe: Probe) -> concurrent.futures.Future[object]:
    future: concurrent.futures.Future[object] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = probe()
        except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
            future.set_exception(error)
        else:
            future.set_result(result)

    # Not a ThreadPoolExecutor: its threads are joined at interpreter exit.
    threading.Thread(target=run, name=f"probe-{name}", daemon=True).start()
    return future


def probe_postgresql(engine: Engine) -> None:
    """Open (or check out and ping) one of ``engine``'s connections; it stays pooled."""
    with engine.connect():
        pass


def probe_redis(client: redis.Redis) -> None:
    """PING over ``client``'s pool; the connection stays pooled for the command."""
    client.ping()


def probe_broker(app: Celery) -> None:
    """Connect one of ``app``'s pooled broker connections: publishing reuses it.

    Two attempts at most, right after each other (the producer's publish policy).
    """
    # celery-types has ``Celery.pool`` as a ProducerPool: it is kombu's ConnectionPool.
    pooled = cast("Connection", app.pool.acquire(block=True))
    with pooled as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, interval_max=0
        )


def _typed_dependency(error: BaseException) -> str | None:
    # Imported here: the libraries are loaded by whoever raised the error anyway, and the
    # CLI maps errors without loading all of them first.
    import redis.exceptions
    import sqlalchemy.exc

    from integration_service.store.errors import SaveErrorCode, StoreUnavailable, classify

    if isinstance(error, StoreUnavailable):
        return POSTGRESQL if error.error_code == SaveErrorCode.CONNECTION_ERROR else None
    if isinstance(error, sqlalchemy.exc.DBAPIError | sqlalchemy.exc.TimeoutError):
        return POSTGRESQL if classify(error) == SaveErrorCode.CONNECTION_ERROR else None
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return REDIS
    if isinstance(error, RuntimeError) and any(
        isinstance(item, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError)
        for item in _chain(error)
    ):
        # Celery's Redis result consumer gives up with a bare RuntimeError.
        return REDIS
    import amqp.exceptions
    import kombu.exceptions

    if isinstance(
        error,
        kombu.exceptions.OperationalError
        | amqp.exceptions.RecoverableConnectionError
        | amqp.exceptions.ConnectionError,
    ):
        return RABBITMQ
    return None


def bounded_celery_config(timeout: float, base: Mapping[str, Any]) -> dict[str, Any]:
    """Celery settings for a producer app: every broker and result-backend wait within
    ``timeout`` (two attempts of half of it each), and no retry loop that logs.

    ``base`` is the app's current configuration (for the transport options to keep).
    """
    half = timeout / 2
    once_more = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
    return {
        "broker_connection_timeout": half,
        "broker_transport_options": {
            **dict(base.get("broker_transport_options") or {}),
            **once_more,
            "connect_retries_timeout": timeout,
        },
        "task_publish_retry_policy": once_more,
        "redis_socket_connect_timeout": half,
        "redis_socket_timeout": timeout,
        "redis_retry_on_timeout": False,
        "result_backend_transport_options": {
            **dict(base.get("result_backend_transport_options") or {}),
            "retry_policy": {**once_more, "timeout": timeout},
        },
    }
