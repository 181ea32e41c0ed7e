"""Key rotation over real PostgreSQL, with the local keyring and a real OpenBao."""

from __future__ import annotations

import os

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import Engine
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from integration_service.crypto import LocalKeyring, SessionCipher, VaultTransitCipher
from integration_service.maintenance import RotationReport, rotate_session_keys
from integration_service.store import SessionKey, SessionMaterial, SessionStore

TENANTS = ("tenant-r1", "tenant-r2", "tenant-r3")
SESSIONS = 30


def context(key: SessionKey) -> bytes:
    return f"{key.tenant_id}/{key.app_id}".encode()


def session_string(dc_id: int) -> str:
    session = StringSession()
    session.set_dc(dc_id, "149.154.167.51", 443)
    session.auth_key = AuthKey(os.urandom(256))
    encoded: str = session.save()
    return encoded


def store_sessions(store: SessionStore, cipher: SessionCipher) -> dict[SessionKey, str]:
    """30 sessions over three tenants, encrypted under the cipher's current key."""
    plaintexts: dict[SessionKey, str] = {}
    for tenant in TENANTS:
        store.ensure_tenant(tenant)
    for number in range(SESSIONS):
        key = SessionKey(TENANTS[number % 3], f"app-{number:02d}")
        plaintext = session_string(1 + number % 5)
        sealed = cipher.encrypt(plaintext, context=context(key))
        store.save(
            SessionMaterial(
                key=key,
                kind="user",
                state="authorized",
                lease_epoch=number,
                session_string_enc=sealed.text,
                key_id=sealed.key_id,
            )
        )
        plaintexts[key] = plaintext
    return plaintexts


def rows_by_key(store: SessionStore) -> dict[SessionKey, tuple[str | None, str | None, int]]:
    return {
        row.key: (row.session_string_enc, row.key_id, row.lease_epoch)
        for row in store.list_sessions(limit=1000)
    }


def rotation_metric(outcome: str) -> float:
    value = REGISTRY.get_sample_value("session_key_rotation_rows_total", {"outcome": outcome})
    return value or 0.0


def assert_all_rewrapped(
    store: SessionStore, cipher: SessionCipher, plaintexts: dict[SessionKey, str], key_id: str
) -> None:
    for key, (ciphertext, stored_key_id, _) in rows_by_key(store).items():
        assert stored_key_id == key_id
        assert ciphertext is not None and cipher.key_id_of(ciphertext) == key_id
        assert cipher.decrypt(ciphertext, context=context(key)) == plaintexts[key]


def check_full_rotation(store: SessionStore, engine: Engine, cipher: SessionCipher) -> None:
    plaintexts = store_sessions(store, cipher)
    old_key_id = cipher.current_key_id()
    epochs_before = {key: row[2] for key, row in rows_by_key(store).items()}
    rewrapped_before = rotation_metric("rewrapped")

    report = rotate_session_keys(engine, cipher, batch_size=7)

    assert report.key_id == cipher.current_key_id() != old_key_id
    assert report == RotationReport(
        key_id=report.key_id,
        rotated_key=True,
        examined=SESSIONS,
        rewrapped=SESSIONS,
        skipped_concurrent_change=0,
        failed=0,
        batches=5,  # 7 + 7 + 7 + 7 + 2
    )
    assert_all_rewrapped(store, cipher, plaintexts, report.key_id)
    # Rotation never moves the fence.
    assert {key: row[2] for key, row in rows_by_key(store).items()} == epochs_before
    assert rotation_metric("rewrapped") - rewrapped_before == SESSIONS

    again = rotate_session_keys(engine, cipher, rotate_key=False)
    assert (again.examined, again.rewrapped, again.key_id) == (0, 0, report.key_id)


def test_local_keyring_rotation_rewraps_every_row(
    store: SessionStore, engine: Engine, local_cipher: LocalKeyring
) -> None:
    check_full_rotation(store, engine, local_cipher)


def test_vault_rotation_rewraps_every_row(
    store: SessionStore, engine: Engine, vault_cipher: VaultTransitCipher
) -> None:
    check_full_rotation(store, engine, vault_cipher)


@pytest.mark.parametrize("backend", ["local_cipher", "vault_cipher"])
def test_old_ciphertexts_stay_readable_until_rewrapped(
    backend: str, request: pytest.FixtureRequest, store: SessionStore, engine: Engine
) -> None:
    cipher: SessionCipher = request.getfixturevalue(backend)
    plaintexts = store_sessions(store, cipher)
    old_key_id = cipher.current_key_id()
    new_key_id = cipher.rotate()
    # Sessions stay online between the new key and the re-wrap: old rows still open.
    for key, (ciphertext, stored_key_id, _) in rows_by_key(store).items():
        assert stored_key_id == old_key_id
        assert ciphertext is not None
        assert cipher.decrypt(ciphertext, context=context(key)) == plaintexts[key]
    report = rotate_session_keys(engine, cipher, rotate_key=False, batch_size=500)
    assert (report.key_id, report.rotated_key, report.rewrapped) == (new_key_id, False, SESSIONS)
    assert_all_rewrapped(store, cipher, plaintexts, new_key_id)


@pytest.mark.parametrize("backend", ["local_cipher", "vault_cipher"])
def test_a_concurrent_save_wins_and_a_damaged_row_does_not_stop_the_run(
    backend: str,
    request: pytest.FixtureRequest,
    store: SessionStore,
    engine: Engine,
    admin_engine: Engine,
) -> None:
    cipher: SessionCipher = request.getfixturevalue(backend)
    plaintexts = store_sessions(store, cipher)
    keys = sorted(plaintexts, key=lambda k: (k.tenant_id, k.app_id))
    raced, damaged = keys[3], keys[17]
    # Damage: another row's ciphertext pasted in; bound to the wrong context, it can
    # neither be decrypted nor re-wrapped.
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE telegram_sessions SET session_string_enc = ("
                "SELECT session_string_enc FROM telegram_sessions "
                "WHERE tenant_id = :src_t AND app_id = :src_a) "
                "WHERE tenant_id = :t AND app_id = :a"
            ),
            {"src_t": keys[0].tenant_id, "src_a": keys[0].app_id, **_names(damaged)},
        )
    damaged_ciphertext = rows_by_key(store)[damaged][0]
    newer_plaintext = session_string(3)
    concurrent: dict[str, str] = {}

    def owner_saves_meanwhile(key: SessionKey) -> None:
        # The session's owner saves new material between the rotation's read and write.
        if key != raced:
            return
        sealed = cipher.encrypt(newer_plaintext, context=context(key))
        concurrent["text"] = sealed.text
        store.save(
            SessionMaterial(
                key=key,
                kind="user",
                state="authorized",
                lease_epoch=rows_by_key(store)[key][2],
                session_string_enc=sealed.text,
                key_id=sealed.key_id,
            )
        )

    failed_before = rotation_metric("failed")
    report = rotate_session_keys(engine, cipher, batch_size=10, before_write=owner_saves_meanwhile)

    assert (report.examined, report.rewrapped) == (SESSIONS, SESSIONS - 2)
    assert (report.skipped_concurrent_change, report.failed) == (1, 1)
    assert [failure.key for failure in report.failures] == [damaged]
    assert rotation_metric("failed") - failed_before == 1
    rows = rows_by_key(store)
    # The owner's save was not overwritten by the rotation.
    assert rows[raced][0] == concurrent["text"]
    assert cipher.decrypt(concurrent["text"], context=context(raced)) == newer_plaintext
    # The damaged row is left as it was, for an operator to look at.
    assert rows[damaged][0] == damaged_ciphertext
    for key, (ciphertext, key_id, _) in rows.items():
        if key in (raced, damaged):
            continue
        assert key_id == report.key_id and ciphertext is not None
        assert cipher.decrypt(ciphertext, context=context(key)) == plaintexts[key]
    for failure in report.failures:
        assert plaintexts[damaged] not in repr(failure)


def _names(key: SessionKey) -> dict[str, str]:
    return {"t": key.tenant_id, "a": key.app_id}
