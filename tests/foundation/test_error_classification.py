"""Every save error code, produced by a real failing statement on the real database."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.settings import Settings
from integration_service.store import (
    SessionKey,
    SessionMaterial,
    SessionStore,
    StoreError,
    StoreUnavailable,
    build_engine,
)
from tests.support.database import migrate, scratch_database

KEY = SessionKey("tenant-a", "app-1")


def material(**fields: object) -> SessionMaterial:
    values: dict[str, object] = {"key": KEY, "kind": "user", "state": "new", "lease_epoch": 1}
    values.update(fields)
    return SessionMaterial(**values)  # type: ignore[arg-type]


def errors_counted(error_type: str) -> float:
    value = REGISTRY.get_sample_value("session_save_errors_total", {"error_type": error_type})
    return value or 0.0


@pytest.fixture
def tenant(store: SessionStore) -> None:
    store.ensure_tenant("tenant-a")


def expect_save_error(store: SessionStore, item: SessionMaterial, code: str) -> StoreError:
    before = errors_counted(code)
    with pytest.raises(StoreError) as caught:
        store.save(item)
    assert caught.value.code == code, caught.value
    assert errors_counted(code) == before + 1
    return caught.value


def test_session_too_long(store: SessionStore, tenant: None) -> None:
    error = expect_save_error(store, material(session_string_enc="x" * 65_537), "session_too_long")
    assert error.sqlstate == "22001"
    assert "x" * 100 not in str(error)
    assert store.get(KEY) is None


def test_duplicate_session_same_auth_key_twice(store: SessionStore, tenant: None) -> None:
    store.save(material(fingerprint="a" * 64))
    other = material(key=SessionKey("tenant-a", "app-2"), fingerprint="a" * 64)
    assert expect_save_error(store, other, "duplicate_session").sqlstate == "23505"
    assert store.get(SessionKey("tenant-a", "app-2")) is None


def test_invalid_tenant(store: SessionStore) -> None:
    item = material(key=SessionKey("no-such-tenant", "app-1"))
    assert expect_save_error(store, item, "invalid_tenant_or_user").sqlstate == "23503"


def test_missing_required_field(store: SessionStore, tenant: None) -> None:
    assert expect_save_error(store, material(kind=None), "missing_required_field").sqlstate == (
        "23502"
    )


def test_invalid_value(store: SessionStore, tenant: None) -> None:
    assert expect_save_error(store, material(state="bogus"), "invalid_value").sqlstate == "23514"


def test_permission_denied_for_role_without_grants(
    settings: Settings, store: SessionStore, tenant: None
) -> None:
    # The tenant role may read its rows but has no EXECUTE on the write path.
    engine = build_engine(settings, role="integration_service_tenant")
    try:
        error = expect_save_error(SessionStore(engine), material(), "permission_denied")
        assert error.sqlstate == "42501"
    finally:
        engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_error_is_retryable(settings: Settings) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nothing"
    engine = build_engine(settings.model_copy(update={"database_url": url}))
    before = errors_counted("connection_error")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            SessionStore(engine).save(material())
    finally:
        engine.dispose()
    assert caught.value.code == "connection_error"
    assert errors_counted("connection_error") == before + 1


def test_stale_epoch(store: SessionStore, tenant: None) -> None:
    store.save(material(lease_epoch=7))
    assert expect_save_error(store, material(lease_epoch=6), "stale_epoch").sqlstate == "IS001"


@pytest.fixture
def old_schema_engine(settings: Settings) -> Iterator[tuple[Engine, Engine]]:
    """A database at head whose table then loses a column, as an unmigrated replica would."""
    with scratch_database("is_old") as url:
        migrate(url)
        from sqlalchemy import create_engine

        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text("INSERT INTO tenants (id, name) VALUES ('tenant-a', 'a')"))
        engine = build_engine(settings.model_copy(update={"database_url": url}))
        try:
            yield engine, admin
        finally:
            engine.dispose()
            admin.dispose()


def test_missing_column(old_schema_engine: tuple[Engine, Engine]) -> None:
    engine, admin = old_schema_engine
    with admin.begin() as conn:
        conn.execute(text("ALTER TABLE telegram_sessions DROP COLUMN fingerprint"))
    assert expect_save_error(SessionStore(engine), material(), "missing_column").sqlstate == "42703"


def test_other_failures_are_database_error(old_schema_engine: tuple[Engine, Engine]) -> None:
    engine, admin = old_schema_engine
    with admin.begin() as conn:
        conn.execute(text("ALTER TABLE telegram_sessions RENAME TO telegram_sessions_old"))
    error = expect_save_error(SessionStore(engine), material(), "database_error")
    assert error.sqlstate == "42P01"


def test_successful_saves_are_counted(store: SessionStore, tenant: None) -> None:
    before = REGISTRY.get_sample_value("session_save_attempts_total", {"status": "success"}) or 0
    store.save(material())
    after = REGISTRY.get_sample_value("session_save_attempts_total", {"status": "success"})
    assert after == before + 1
    assert REGISTRY.get_sample_value("session_save_duration_seconds_count", {"status": "success"})
