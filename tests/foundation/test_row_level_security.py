"""Row-level security: a tenant-scoped connection sees its own tenant only."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.store import SessionKey, SessionMaterial, SessionStore


def seed(store: SessionStore) -> None:
    for tenant in ("tenant-a", "tenant-b"):
        store.ensure_tenant(tenant)
        for app in ("app-1", "app-2"):
            store.save(SessionMaterial(SessionKey(tenant, app), "user", "new", 1))


def visible_tenants(admin_engine: Engine, role: str, tenant: str | None) -> list[str]:
    with admin_engine.connect() as conn:
        conn.execute(text(f"SET ROLE {role}"))
        if tenant is not None:
            conn.execute(text("SELECT set_config('app.tenant_id', :t, false)"), {"t": tenant})
        rows = conn.execute(
            text("SELECT tenant_id FROM telegram_sessions ORDER BY tenant_id, app_id")
        ).scalars()
        result = list(rows)
        conn.execute(text("RESET ROLE"))
        conn.rollback()
    return result


def test_tenant_role_sees_only_its_tenant(store: SessionStore, admin_engine: Engine) -> None:
    seed(store)
    role = "integration_service_tenant"
    assert visible_tenants(admin_engine, role, "tenant-a") == ["tenant-a", "tenant-a"]
    assert visible_tenants(admin_engine, role, "tenant-b") == ["tenant-b", "tenant-b"]
    # No tenant set: nothing at all, never everything.
    assert visible_tenants(admin_engine, role, None) == []


def test_service_role_sees_every_tenant(store: SessionStore, admin_engine: Engine) -> None:
    seed(store)
    tenants = visible_tenants(admin_engine, "integration_service_worker", None)
    assert tenants == ["tenant-a", "tenant-a", "tenant-b", "tenant-b"]


def test_tenant_role_cannot_write(store: SessionStore, admin_engine: Engine) -> None:
    seed(store)
    with admin_engine.connect() as conn:
        conn.execute(text("SET ROLE integration_service_tenant"))
        conn.execute(text("SELECT set_config('app.tenant_id', 'tenant-a', false)"))
        try:
            conn.execute(text("UPDATE telegram_sessions SET state = 'failed'"))
        except Exception as error:  # noqa: BLE001 - asserting on the SQLSTATE below
            assert getattr(getattr(error, "orig", None), "sqlstate", None) == "42501"
        else:
            raise AssertionError("tenant role was allowed to update sessions")
        finally:
            conn.rollback()
