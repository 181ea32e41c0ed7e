"""The session store against the real PostgreSQL, as the service role."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.store import (
    SessionKey,
    SessionMaterial,
    SessionNotFound,
    SessionStore,
    StoreError,
    TransitionConflict,
)

KEY = SessionKey("tenant-a", "app-1")


def material(epoch: int = 1, **fields: object) -> SessionMaterial:
    values: dict[str, object] = {"kind": "user", "state": "new", "lease_epoch": epoch}
    values.update(fields)
    key = values.pop("key", KEY)
    return SessionMaterial(key=key, **values)  # type: ignore[arg-type]


@pytest.fixture
def tenant(store: SessionStore) -> str:
    store.ensure_tenant("tenant-a")
    store.ensure_tenant("tenant-b")
    return "tenant-a"


def test_save_returns_row_id_and_reads_back(store: SessionStore, tenant: str) -> None:
    row_id = store.save(
        material(session_string_enc="ct", key_id="local:k1", dc_id=2, telegram_user_id=42)
    )
    row = store.require(KEY)
    assert row.id == row_id
    assert (row.session_string_enc, row.key_id, row.dc_id, row.telegram_user_id) == (
        "ct",
        "local:k1",
        2,
        42,
    )
    assert row.last_activity_at is not None


@pytest.mark.parametrize("length", [68, 800, 10_000])
def test_session_strings_round_trip(store: SessionStore, tenant: str, length: int) -> None:
    value = ("AbC+/9=" * (length // 7 + 1))[:length]
    store.save(material(session_string_enc=value))
    assert store.require(KEY).session_string_enc == value


def test_fifty_concurrent_upserts_of_one_key_give_one_row(
    store: SessionStore, tenant: str, admin_engine: Engine
) -> None:
    barrier = threading.Barrier(50)

    def write(i: int) -> object:
        barrier.wait()
        return store.save(material(epoch=1, session_string_enc=f"value-{i}"))

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = set(pool.map(write, range(50)))
    assert len(ids) == 1
    with admin_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM telegram_sessions WHERE tenant_id = 'tenant-a'")
        ).scalar_one()
    assert count == 1
    assert store.require(KEY).session_string_enc in {f"value-{i}" for i in range(50)}


def test_last_committed_write_wins(store: SessionStore, tenant: str, admin_engine: Engine) -> None:
    """Commit order is observed through a sequence drawn while the row lock is held."""
    engine = admin_engine
    store.save(material(epoch=1))
    barrier = threading.Barrier(20)
    order: dict[int, int] = {}

    def write(i: int) -> None:
        barrier.wait()
        with engine.begin() as conn:
            conn.execute(
                text("SELECT upsert_telegram_session('tenant-a', 'app-1', 'user', 'new', 1, :enc)"),
                {"enc": f"value-{i}"},
            )
            # The upsert holds the row lock until commit, so the draw order is commit order.
            order[i] = conn.execute(text("SELECT nextval('public.write_order_seq')")).scalar_one()

    with engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE IF NOT EXISTS public.write_order_seq"))
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(write, range(20)))
        last = max(order, key=order.__getitem__)
        assert store.require(KEY).session_string_enc == f"value-{last}"
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP SEQUENCE IF EXISTS public.write_order_seq"))


def test_stale_epoch_write_is_refused_and_changes_nothing(store: SessionStore, tenant: str) -> None:
    store.save(material(epoch=5, session_string_enc="owner-5", state="authorized"))
    before = store.require(KEY)
    with pytest.raises(StoreError) as caught:
        store.save(material(epoch=4, session_string_enc="stale-owner", state="failed"))
    assert caught.value.code == "stale_epoch"
    assert caught.value.sqlstate == "IS001"
    after = store.require(KEY)
    assert after.session_string_enc == "owner-5"
    assert after.state == "authorized"
    assert after.updated_at == before.updated_at


def test_newer_epoch_takes_over(store: SessionStore, tenant: str) -> None:
    store.save(material(epoch=1, session_string_enc="old"))
    store.save(material(epoch=2, session_string_enc="new"))
    row = store.require(KEY)
    assert (row.lease_epoch, row.session_string_enc) == (2, "new")


def test_null_material_keeps_stored_values(store: SessionStore, tenant: str) -> None:
    store.save(material(session_string_enc="ct", key_id="k1", fingerprint="f" * 64))
    store.save(material(state="authorized", auth_error=None))
    row = store.require(KEY)
    assert (row.session_string_enc, row.key_id, row.fingerprint, row.state) == (
        "ct",
        "k1",
        "f" * 64,
        "authorized",
    )


def test_list_by_tenant_and_state(store: SessionStore, tenant: str) -> None:
    for i in range(5):
        store.save(material(key=SessionKey("tenant-a", f"app-{i}"), state="authorized"))
    store.save(material(key=SessionKey("tenant-a", "app-9"), state="revoked"))
    store.save(material(key=SessionKey("tenant-b", "app-0"), state="authorized"))

    authorized = store.list_sessions(tenant_id="tenant-a", states=("authorized",))
    assert [r.key.app_id for r in authorized] == [f"app-{i}" for i in range(5)]
    page = store.list_sessions(tenant_id="tenant-a", limit=2, after_app_id="app-1")
    assert [r.key.app_id for r in page] == ["app-2", "app-3"]
    assert {r.key.tenant_id for r in store.list_sessions()} == {"tenant-a", "tenant-b"}


def test_record_transition_persists_event(store: SessionStore, tenant: str) -> None:
    store.save(material(epoch=3))
    event = store.record_transition(
        KEY, from_state="new", to_state="code_sent", reason="code requested", lease_epoch=3
    )
    assert (event.from_state, event.to_state, event.reason) == (
        "new",
        "code_sent",
        "code requested",
    )
    assert store.require(KEY).state == "code_sent"
    assert [e.to_state for e in store.events(KEY)] == ["code_sent"]


def test_transition_from_wrong_state_or_stale_epoch_changes_nothing(
    store: SessionStore, tenant: str
) -> None:
    store.save(material(epoch=3))
    with pytest.raises(TransitionConflict):
        store.record_transition(
            KEY, from_state="qr_pending", to_state="authorized", reason="x", lease_epoch=3
        )
    with pytest.raises(TransitionConflict):
        store.record_transition(
            KEY, from_state="new", to_state="code_sent", reason="x", lease_epoch=2
        )
    with pytest.raises(SessionNotFound):
        store.record_transition(
            SessionKey("tenant-a", "missing"),
            from_state="new",
            to_state="code_sent",
            reason="x",
            lease_epoch=3,
        )
    assert store.require(KEY).state == "new"
    assert store.events(KEY) == []
