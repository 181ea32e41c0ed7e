"""The pooled SQLAlchemy engine, created once per process at start-up."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from integration_service.settings import Settings


def build_engine(settings: Settings, *, role: str | None = None, **overrides: Any) -> Engine:
    """A pooled engine whose connections run as the service role (``DATABASE_ROLE``).

    ``SET ROLE`` on connect lets an operator keep one login user while the service runs
    with the narrow grants of ``integration_service_worker``; the role is set once per
    pooled connection, not per statement.
    """
    options: dict[str, Any] = {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "connect_args": {
            "connect_timeout": max(1, int(settings.database_connect_timeout)),
            "application_name": "integration-service",
        },
    }
    options.update(overrides)
    engine = create_engine(settings.database_url, **options)
    run_as = role if role is not None else settings.database_role
    if run_as:
        _set_role_on_connect(engine, run_as)
    return engine


def _set_role_on_connect(engine: Engine, role: str) -> None:
    @event.listens_for(engine, "connect")
    def _set_role(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            # Identifier quoting through the driver: the role name comes from configuration.
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        dbapi_connection.commit()
