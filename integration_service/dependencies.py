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

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from integration_service.errors import RetryableError

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


def reason_of(error: BaseException, timeout: float) -> str:
    """A short, secret-free account of why a connection failed, from its cause chain."""
    chain = list(_chain(error))
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return "host name not resolved"
        if isinstance(item, TimeoutError):
            return f"no answer within {timeout:g}s"
    text = " ".join(str(item) for item in chain).lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timeout expired", f"no answer within {timeout:g}s"),
        ("timed out", f"no answer within {timeout:g}s"),
        ("timeout", f"no answer within {timeout:g}s"),
        ("name or service not known", "host name not resolved"),
        ("nodename nor servname", "host name not resolved"),
        ("authentication failed", "authentication failed"),
        ("access_refused", "authentication failed"),
        ("connection reset", "connection reset"),
        ("closed", "connection closed"),
    ):
        if needle in text:
            return reason
    return type(chain[-1]).__name__


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
