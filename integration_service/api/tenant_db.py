"""Reads as the tenant: row-level security, not only code, keeps tenants apart.

Every API read runs in a transaction that switches to the ``integration_service_tenant``
role (``SET LOCAL ROLE``: it ends with the transaction, so the pooled connection goes back
as the service role) with ``app.tenant_id`` set to the caller's tenant. A query that
forgot its ``WHERE tenant_id = ...`` still sees only the caller's rows.

Two doors to the same rule:
- ``TenantReader.reading(tenant)``: a read-only transaction for the API's own queries.
- ``TenantEngine``: an engine whose every transaction begins that way for the tenant set
  by ``TenantEngine.scoped(tenant)``, to hand to the library's stores (``EventLog``,
  ``SubscriptionStore``, ``DeliveryLog``) for their reads. Outside ``scoped`` a
  transaction runs as the tenant role for no tenant, so it sees nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from integration_service.store.guard import DatabaseGuard

TENANT_ROLE = "integration_service_tenant"
_SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("api_tenant_scope", default="")


def _become_tenant(conn: Connection, tenant_id: str) -> None:
    conn.exec_driver_sql(f"SET LOCAL ROLE {TENANT_ROLE}")
    conn.execute(text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": tenant_id})


class TenantReader:
    def __init__(self, engine: Engine, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    @contextmanager
    def reading(self, tenant_id: str, operation: str) -> Iterator[Connection]:
        """A read-only transaction that sees ``tenant_id``'s rows only."""
        with self._guard.transaction(self._engine, operation) as conn:
            _become_tenant(conn, tenant_id)
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn


class TenantEngine:
    def __init__(self, engine: Engine) -> None:
        # Its own options engine: the listener below is local to it, the pool is shared.
        self.engine: Engine = engine.execution_options(api_tenant_scoped=True)
        event.listen(self.engine, "begin", self._begin)

    @staticmethod
    def _begin(conn: Connection) -> None:
        _become_tenant(conn, _SCOPE.get())

    @staticmethod
    @contextmanager
    def scoped(tenant_id: str) -> Iterator[None]:
        token = _SCOPE.set(tenant_id)
        try:
            yield
        finally:
            _SCOPE.reset(token)
