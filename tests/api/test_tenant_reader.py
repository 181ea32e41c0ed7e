"""The API's reads run as the tenant role: row-level security keeps tenants apart even
for a query with no tenant filter, and the read transaction cannot write."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.api.tenant_db import TenantReader
from integration_service.store import SessionKey, SessionMaterial, SessionStore, StoreError


def test_a_query_without_a_tenant_filter_still_sees_one_tenant(
    store: SessionStore, engine: Engine
) -> None:
    for tenant in ("rls-a", "rls-b"):
        store.ensure_tenant(tenant)
        for app in ("one", "two"):
            store.save(
                SessionMaterial(SessionKey(tenant, app), "user", "authorized", lease_epoch=1)
            )
    reader = TenantReader(engine)
    with reader.reading("rls-a", "test read") as conn:
        seen = conn.execute(text("SELECT DISTINCT tenant_id FROM telegram_sessions")).scalars()
        assert list(seen) == ["rls-a"]
        assert conn.execute(text("SELECT current_user")).scalar_one() == (
            "integration_service_tenant"
        )
    # The role ends with the transaction: the pooled connection is the service role again.
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM telegram_sessions")).scalar_one() == 4


def test_the_read_transaction_cannot_write(store: SessionStore, engine: Engine) -> None:
    store.ensure_tenant("rls-w")
    reader = TenantReader(engine)
    with (
        pytest.raises(StoreError),
        reader.reading("rls-w", "test write") as conn,
    ):
        conn.execute(text("UPDATE tenants SET name = 'x' WHERE id = 'rls-w'"))


def test_the_tenant_engine_scopes_the_library_s_own_reads(
    store: SessionStore, engine: Engine
) -> None:
    from integration_service.api.tenant_db import TenantEngine

    for tenant in ("rls-c", "rls-d"):
        store.ensure_tenant(tenant)
        store.save(SessionMaterial(SessionKey(tenant, "app"), "user", "authorized", lease_epoch=1))
    scoped = TenantEngine(engine)
    # A store reading through it: even asked for another tenant, it finds nothing.
    other = SessionStore(scoped.engine)
    with scoped.scoped("rls-c"):
        assert other.get(SessionKey("rls-c", "app")) is not None
        assert other.get(SessionKey("rls-d", "app")) is None
    with scoped.engine.connect() as conn:
        # Outside a scope: the tenant role for no tenant, so nothing at all.
        assert conn.execute(text("SELECT count(*) FROM telegram_sessions")).scalar_one() == 0
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT current_user")).scalar_one() != "integration_service_tenant"
        )
