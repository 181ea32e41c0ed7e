"""Migration 0004: rewrap_session_material, a compare-and-set for key rotation."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError

from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.support.database import downgrade, migrate, scratch_database

SIGNATURE = "rewrap_session_material(text, text, text, text, text)"
KEY = SessionKey("tenant-cas", "app-1")
CAS = text("SELECT rewrap_session_material(:t, :a, :expected, :new_enc, :new_key)")


def has_execute(url: str, role: str) -> bool | None:
    """None when the function does not exist."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT to_regprocedure(:sig) IS NOT NULL"), {"sig": SIGNATURE}
            ).scalar_one()
            if not exists:
                return None
            return bool(
                conn.execute(
                    text("SELECT has_function_privilege(:role, :sig, 'EXECUTE')"),
                    {"role": role, "sig": SIGNATURE},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_grants() -> None:
    with scratch_database("is_mig4") as url:
        migrate(url)
        assert has_execute(url, "integration_service_worker") is True
        # PUBLIC's default EXECUTE is revoked: the tenant role may not call it.
        assert has_execute(url, "integration_service_tenant") is False
        migrate(url, "head")
        downgrade(url, "0003_row_level_security")
        assert has_execute(url, "integration_service_worker") is None
        downgrade(url)
        migrate(url)
        assert has_execute(url, "integration_service_worker") is True


def save(store: SessionStore, ciphertext: str, *, epoch: int = 3) -> None:
    store.ensure_tenant(KEY.tenant_id)
    store.save(
        SessionMaterial(
            key=KEY,
            kind="user",
            state="authorized",
            lease_epoch=epoch,
            session_string_enc=ciphertext,
            key_id="k1",
        )
    )


def test_writes_only_while_the_expected_ciphertext_is_stored(
    store: SessionStore, engine: Engine
) -> None:
    save(store, "local:k1:old")
    params = {"t": KEY.tenant_id, "a": KEY.app_id, "new_enc": "local:k2:new", "new_key": "k2"}
    with engine.begin() as conn:
        refused = conn.execute(CAS, {**params, "expected": "local:k1:other"}).scalar_one()
    assert refused is False
    assert store.require(KEY).session_string_enc == "local:k1:old"

    with engine.begin() as conn:
        written = conn.execute(CAS, {**params, "expected": "local:k1:old"}).scalar_one()
    assert written is True
    row = store.require(KEY)
    # Rotation changes ciphertext and key id only: state and fence belong to the owner.
    assert (row.session_string_enc, row.key_id, row.state, row.lease_epoch) == (
        "local:k2:new",
        "k2",
        "authorized",
        3,
    )


def test_unknown_session_is_not_written(store: SessionStore, engine: Engine) -> None:
    with engine.begin() as conn:
        answer = conn.execute(
            CAS, {"t": "nobody", "a": "none", "expected": "x", "new_enc": "y", "new_key": "k2"}
        ).scalar_one()
    assert answer is False


def test_the_tenant_role_may_not_call_it(store: SessionStore, admin_engine: Engine) -> None:
    save(store, "local:k1:old")
    with admin_engine.connect() as conn, pytest.raises(ProgrammingError) as caught:
        conn.execute(text("SET ROLE integration_service_tenant"))
        conn.execute(
            CAS,
            {
                "t": KEY.tenant_id,
                "a": KEY.app_id,
                "expected": "local:k1:old",
                "new_enc": "z",
                "new_key": "k9",
            },
        )
    assert getattr(caught.value.orig, "sqlstate", None) == "42501"
    assert store.require(KEY).session_string_enc == "local:k1:old"
