"""Importing a tenant's legacy `.session` directory: dry run, real run, bad files."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from telethon.sessions import StringSession

from integration_service.crypto import LocalKeyring
from integration_service.maintenance import ImportOutcome, ImportReport, import_sessions
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from integration_service.telegram.fingerprint import fingerprint_of
from tests.maintenance.conftest import DC_ADDRESS, TENANT, snapshot, write_telethon_session


def run(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    cipher: LocalKeyring,
    settings: Settings,
    *,
    dry_run: bool,
    tenant_id: str = TENANT,
) -> ImportReport:
    return import_sessions(
        legacy_dir,
        store=store,
        engine=engine,
        cipher=cipher,
        settings=settings,
        tenant_id=tenant_id,
        dry_run=dry_run,
    )


def outcomes(report: ImportReport) -> dict[str, str]:
    return {item.file_name: item.outcome.value for item in report.files}


def table_dump(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        sessions = conn.execute(text("SELECT * FROM telegram_sessions ORDER BY id")).all()
        tenants = conn.execute(text("SELECT * FROM tenants ORDER BY id")).all()
    return [tuple(row) for row in [*sessions, *tenants]]


def assert_no_secrets(report: ImportReport, keys: list[bytes], strings: list[str]) -> None:
    rendered = repr(report) + json.dumps(report.to_dict())
    if report.report_path:
        rendered += Path(report.report_path).read_text()
    for key in keys:
        assert key.hex() not in rendered
    for string in strings:
        assert string not in rendered


def test_dry_run_reports_and_writes_nothing(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    admin_engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
    tenant: str,
) -> None:
    write_telethon_session(legacy_dir, "new-app")
    same_key = write_telethon_session(legacy_dir, "same-app")
    write_telethon_session(legacy_dir, "changed-app")
    (legacy_dir / "broken.session").write_bytes(b"\x00garbage")
    (legacy_dir / "notes.txt").write_text("not a session file")
    for app_id, fingerprint in (("same-app", fingerprint_of(same_key)), ("changed-app", None)):
        store.save(
            SessionMaterial(
                key=SessionKey(tenant, app_id),
                kind="user",
                state="authorized",
                lease_epoch=2,
                fingerprint=fingerprint,
            )
        )
    files_before = snapshot(legacy_dir.parent)
    rows_before = table_dump(admin_engine)

    report = run(legacy_dir, store, engine, local_cipher, settings, dry_run=True)

    assert report.dry_run and report.report_path is None and report.tenant_existed
    assert outcomes(report) == {
        "broken.session": "invalid",
        "changed-app.session": "would_update",
        "new-app.session": "would_create",
        "same-app.session": "unchanged",
    }
    assert report.counts() == {"invalid": 1, "would_update": 1, "would_create": 1, "unchanged": 1}
    broken = next(item for item in report.files if item.file_name == "broken.session")
    assert broken.reason == "not a SQLite database"
    assert snapshot(legacy_dir.parent) == files_before
    assert table_dump(admin_engine) == rows_before


def test_dry_run_for_an_unknown_tenant_registers_nothing(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
) -> None:
    write_telethon_session(legacy_dir, "app-1")
    report = run(legacy_dir, store, engine, local_cipher, settings, dry_run=True)
    assert not report.tenant_existed
    assert outcomes(report) == {"app-1.session": "would_create"}
    assert store.list_sessions(tenant_id=TENANT) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 0


def test_real_run_stores_decryptable_sessions_and_is_idempotent(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
) -> None:
    keys = {
        "app-a": write_telethon_session(legacy_dir, "app-a", dc_id=2),
        "app-b": write_telethon_session(legacy_dir, "app-b", dc_id=4, port=8443),
    }
    first = run(legacy_dir, store, engine, local_cipher, settings, dry_run=False)

    assert not first.tenant_existed
    assert outcomes(first) == {"app-a.session": "created", "app-b.session": "created"}
    strings = []
    for app_id, key in keys.items():
        row = store.require(SessionKey(TENANT, app_id))
        assert row.state == "disconnected" and row.lease_epoch == 0 and row.kind == "user"
        assert row.fingerprint == fingerprint_of(key)
        assert row.key_id == local_cipher.current_key_id()
        assert row.session_string_enc is not None
        plaintext = local_cipher.decrypt(
            row.session_string_enc, context=f"{TENANT}/{app_id}".encode()
        )
        strings.append(plaintext)
        loaded = StringSession(plaintext)
        assert loaded.auth_key is not None and loaded.auth_key.key == key
        assert loaded.server_address == DC_ADDRESS
        assert (loaded.dc_id, loaded.port) == ((2, 443) if app_id == "app-a" else (4, 8443))
        assert row.dc_id == loaded.dc_id
    assert first.report_path is not None
    recorded = json.loads(Path(first.report_path).read_text())
    assert recorded["counts"] == {"created": 2}
    assert_no_secrets(first, list(keys.values()), strings)

    rows_after_first = {r.key: r.session_string_enc for r in store.list_sessions()}
    second = run(legacy_dir, store, engine, local_cipher, settings, dry_run=False)
    assert second.tenant_existed
    assert outcomes(second) == {"app-a.session": "unchanged", "app-b.session": "unchanged"}
    assert {r.key: r.session_string_enc for r in store.list_sessions()} == rows_after_first


def test_an_existing_row_is_updated_under_its_stored_epoch(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
    tenant: str,
) -> None:
    key = SessionKey(tenant, "app-up")
    store.save(SessionMaterial(key=key, kind="user", state="failed", lease_epoch=7))
    auth_key = write_telethon_session(legacy_dir, "app-up")
    report = run(legacy_dir, store, engine, local_cipher, settings, dry_run=False)
    assert outcomes(report) == {"app-up.session": "updated"}
    row = store.require(key)
    assert (row.state, row.lease_epoch, row.fingerprint) == (
        "disconnected",
        7,
        fingerprint_of(auth_key),
    )


def test_invalid_files_are_reported_and_valid_ones_still_imported(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
    tenant: str,
) -> None:
    (legacy_dir / "garbage.session").write_bytes(os.urandom(4096))
    sqlite3.connect(legacy_dir / "empty.session").close()
    write_telethon_session(legacy_dir, "short")
    with sqlite3.connect(legacy_dir / "short.session") as conn:
        conn.execute("UPDATE sessions SET auth_key = ?", (os.urandom(255),))
    write_telethon_session(legacy_dir, "bad name!")
    write_telethon_session(legacy_dir, "good")

    report = run(legacy_dir, store, engine, local_cipher, settings, dry_run=False)

    by_name = {item.file_name: item for item in report.files}
    assert outcomes(report) == {
        "bad name!.session": "invalid",
        "empty.session": "invalid",
        "garbage.session": "invalid",
        "good.session": "created",
        "short.session": "invalid",
    }
    assert by_name["bad name!.session"].error_code == "invalid_app_id"
    assert by_name["empty.session"].reason is not None
    assert "no sessions table" in by_name["empty.session"].reason
    assert by_name["short.session"].reason == "auth key is 255 bytes, expected 256"
    assert by_name["garbage.session"].error_code == "invalid_session_file"
    assert [row.key.app_id for row in store.list_sessions(tenant_id=tenant)] == ["good"]


def test_one_auth_key_under_two_app_ids_is_imported_once(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
    tenant: str,
) -> None:
    shared = write_telethon_session(legacy_dir, "first")
    write_telethon_session(legacy_dir, "second", auth_key=shared)

    dry = run(legacy_dir, store, engine, local_cipher, settings, dry_run=True)
    assert outcomes(dry) == {
        "first.session": "would_create",
        "second.session": "duplicate_fingerprint",
    }
    real = run(legacy_dir, store, engine, local_cipher, settings, dry_run=False)
    assert outcomes(real) == {"first.session": "created", "second.session": "duplicate_fingerprint"}
    assert [row.key.app_id for row in store.list_sessions(tenant_id=tenant)] == ["first"]


def test_a_key_already_stored_for_another_session_is_a_duplicate(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
    tenant: str,
) -> None:
    shared = write_telethon_session(legacy_dir, "mine")
    store.ensure_tenant("tenant-other")
    other = SessionKey("tenant-other", "theirs")
    store.save(
        SessionMaterial(
            key=other,
            kind="user",
            state="authorized",
            lease_epoch=1,
            fingerprint=fingerprint_of(shared),
        )
    )
    for dry_run in (True, False):
        report = run(legacy_dir, store, engine, local_cipher, settings, dry_run=dry_run)
        (item,) = report.files
        assert item.outcome is ImportOutcome.DUPLICATE_FINGERPRINT
        assert item.reason is not None and str(other) in item.reason
    assert store.get(SessionKey(tenant, "mine")) is None


def test_readable_files_and_directories_are_warned_about_not_refused(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
    tenant: str,
) -> None:
    write_telethon_session(legacy_dir, "open", mode=0o644)
    write_telethon_session(legacy_dir, "closed", mode=0o600)
    os.chmod(legacy_dir, 0o755)  # noqa: S103 - the too-open directory under test
    report = run(legacy_dir, store, engine, local_cipher, settings, dry_run=False)
    by_name = {item.file_name: item for item in report.files}
    assert by_name["open.session"].outcome is ImportOutcome.CREATED
    assert by_name["open.session"].warnings == (
        "file open.session has mode 0644; group/others can read it, expected 0600",
    )
    assert by_name["closed.session"].warnings == ()
    assert len(report.warnings) == 1 and "0755" in report.warnings[0]
