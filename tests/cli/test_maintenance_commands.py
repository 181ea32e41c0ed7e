"""migrate-sessions (dry run and real) and rotate-keys, on real files and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from telethon.crypto import AuthKey
from telethon.sessions import SQLiteSession

from integration_service.cli.output import ExitCode
from integration_service.store import SessionKey, SessionStore
from tests.cli.conftest import run_cli

TENANT = "tenant-cli-legacy"


def write_session_file(directory: Path, app_id: str) -> None:
    """A `<app_id>.session` written by Telethon's own SQLiteSession, mode 0600."""
    session = SQLiteSession(str(directory / app_id))
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(os.urandom(256))
    session.save()
    session.close()
    os.chmod(directory / f"{app_id}.session", 0o600)


@pytest.fixture
def clean_database(admin_engine: Engine) -> None:
    # Rotation re-wraps every row of the database: start from none, so counts are exact.
    with admin_engine.begin() as conn:
        conn.execute(text("TRUNCATE tenants, integration_logs CASCADE"))


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str | None]:
    base = tmp_path / "sessions"
    (base / TENANT).mkdir(parents=True, mode=0o700)
    for app_id in ("shop-1", "shop-2"):
        write_session_file(base / TENANT, app_id)
    (base / TENANT / "bad name.session").write_bytes(b"not sqlite")
    return {
        "DATABASE_URL": database_url,
        "SESSIONS_BASE_PATH": str(base),
        # No LOCAL_KEYRING: the file-backed keyring in tmp_path (beside sessions/).
        "LOCAL_KEYRING": None,
    }


def test_migrate_sessions_dry_run_writes_nothing(
    clean_database: None, env: dict[str, str | None], store: SessionStore
) -> None:
    result = run_cli(["migrate-sessions", "--tenant", TENANT, "--dry-run", "--json"], env=env)
    assert result.exit_code == ExitCode.OK, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["tenant_existed"] is False
    assert report["counts"] == {"would_create": 2, "invalid": 1}
    assert store.get(SessionKey(TENANT, "shop-1")) is None
    text_run = run_cli(["migrate-sessions", "--tenant", TENANT, "--dry-run"], env=env)
    assert "dry run: nothing written" in text_run.stdout
    assert "files: 3 (invalid=1, would_create=2)" in text_run.stdout


def test_migrate_then_rotate_with_a_file_keyring(
    clean_database: None, env: dict[str, str | None], store: SessionStore, tmp_path: Path
) -> None:
    imported = run_cli(["migrate-sessions", "--tenant", TENANT], env=env)
    assert imported.exit_code == ExitCode.OK, imported.output
    assert "files: 3 (created=2, invalid=1)" in imported.stdout
    rows = [store.require(SessionKey(TENANT, app)) for app in ("shop-1", "shop-2")]
    assert {row.state for row in rows} == {"disconnected"}
    assert {row.key_id for row in rows} == {"k1"}
    key_file = tmp_path / "session-keyring"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    rotated = run_cli(["rotate-keys", "--batch-size", "1", "--json"], env=env)
    assert rotated.exit_code == ExitCode.OK, rotated.output
    report = json.loads(rotated.stdout)
    assert (report["key_id"], report["rotated_key"]) == ("k2", True)
    assert (report["rewrapped"], report["failed"], report["batches"]) == (2, 0, 2)
    assert {store.require(row.key).key_id for row in rows} == {"k2"}
    assert key_file.read_text().count(":") == 2  # k1 and k2
    for row in rows:
        assert row.session_string_enc is not None
        assert row.session_string_enc not in rotated.stdout


def test_rotate_keys_with_env_keyring(
    clean_database: None, env: dict[str, str | None], store: SessionStore
) -> None:
    k1 = "k1:" + base64.b64encode(os.urandom(32)).decode()
    k2 = "k2:" + base64.b64encode(os.urandom(32)).decode()
    first = {**env, "LOCAL_KEYRING": k1}
    assert run_cli(["migrate-sessions", "--tenant", TENANT], env=first).exit_code == 0
    refused = run_cli(["rotate-keys"], env={**env, "LOCAL_KEYRING": f"{k1},{k2}"})
    assert refused.exit_code == ExitCode.FAILED
    assert "appending a key to LOCAL_KEYRING" in refused.stderr
    assert store.require(SessionKey(TENANT, "shop-1")).key_id == "k1"
    rotated = run_cli(["rotate-keys", "--no-new-key"], env={**env, "LOCAL_KEYRING": f"{k1},{k2}"})
    assert rotated.exit_code == ExitCode.OK, rotated.output
    assert rotated.stdout.startswith("key k2\nexamined 2, rewrapped 2,")
    assert store.require(SessionKey(TENANT, "shop-1")).key_id == "k2"
    for output in (refused.output, rotated.output):
        assert k1[3:] not in output and k2[3:] not in output


def test_migrate_sessions_missing_directory_exits_3(env: dict[str, str | None]) -> None:
    result = run_cli(["migrate-sessions", "--tenant", "tenant-without-files"], env=env)
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "does not exist" in result.stderr
