"""Alembic owns the schema: head -> base -> head on a fresh database."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from tests.support.database import downgrade, migrate, scratch_database

TABLES = {
    "tenants",
    "telegram_sessions",
    "session_events",
    "message_outbox",
    "integration_logs",
    "job_journal",
    "inbound_state",
    "inbound_channel_state",
    "telegram_entities",
    "inbound_events",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
    "api_keys",
    "api_idempotency",
    "api_messages",
    "telegram_channels",
}


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def function_exists(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text("SELECT count(*) FROM pg_proc WHERE proname = 'upsert_telegram_session'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_head_base_head() -> None:
    with scratch_database("is_mig") as url:
        migrate(url)
        assert table_names(url) == TABLES
        assert function_exists(url)
        downgrade(url)
        assert table_names(url) == set()
        assert not function_exists(url)
        migrate(url)
        assert table_names(url) == TABLES


def test_schema_has_the_indexes_the_seeds_list(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        indexes = inspect(engine).get_indexes("telegram_sessions")
    finally:
        engine.dispose()
    leading = {next(iter(i["column_names"])) for i in indexes}
    assert {"tenant_id", "state", "telegram_user_id", "last_activity_at"} <= leading


def test_updated_at_trigger(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO tenants (id, name) VALUES ('trg', 'n')"))
            first = conn.execute(text("SELECT updated_at FROM tenants WHERE id='trg'")).scalar()
        with engine.begin() as conn:
            conn.execute(text("UPDATE tenants SET name = 'm' WHERE id = 'trg'"))
            second = conn.execute(text("SELECT updated_at FROM tenants WHERE id='trg'")).scalar()
            conn.execute(text("DELETE FROM tenants WHERE id = 'trg'"))
    finally:
        engine.dispose()
    assert second > first
