"""A circuit breaker around database calls of one process.

While PostgreSQL is down, every job would otherwise open a connection attempt of its own
(and wait out its timeout) on every retry. After repeated connection failures the guard
fails calls at once with a retry time; one trial call probes the database after the
cool-down, and its success closes the circuit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from integration_service.circuit import CircuitBreaker
from integration_service.store.errors import (
    SaveErrorCode,
    StoreUnavailable,
    classify,
    to_store_error,
)


class DatabaseGuard:
    def __init__(self, breaker: CircuitBreaker | None = None) -> None:
        self.breaker = breaker

    @classmethod
    def for_workers(cls) -> DatabaseGuard:
        return cls(CircuitBreaker("database", threshold=5, cooldown=2.0, max_cooldown=30.0))

    @contextmanager
    def call(self) -> Iterator[None]:
        if self.breaker is None:
            yield
            return
        self.breaker.before_connect()
        try:
            yield
        except (StoreUnavailable, SQLAlchemyError) as error:
            code = error.error_code if isinstance(error, StoreUnavailable) else classify(error)
            if code is SaveErrorCode.CONNECTION_ERROR:
                self.breaker.failed()
            else:
                self.breaker.released()
            raise
        except BaseException:
            self.breaker.released()
            raise
        self.breaker.succeeded()

    @contextmanager
    def transaction(self, engine: Engine, operation: str) -> Iterator[Connection]:
        """One transaction on ``engine`` through this guard; a database failure becomes
        the store's error for ``operation`` (what every store's writes share)."""
        with self.call():
            try:
                with engine.begin() as conn:
                    yield conn
            except SQLAlchemyError as error:
                raise to_store_error(error, operation) from None
