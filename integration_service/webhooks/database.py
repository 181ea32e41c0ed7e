"""One transaction helper for the webhook stores: database errors become StoreErrors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from integration_service.store.errors import to_store_error
from integration_service.store.guard import DatabaseGuard


@contextmanager
def transaction(engine: Engine, guard: DatabaseGuard, operation: str) -> Iterator[Connection]:
    with guard.call():
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as error:
            raise to_store_error(error, operation) from None
