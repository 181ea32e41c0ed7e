"""Operational faults the library used to raise as builtins are project errors now.

Each keeps the builtin its callers may catch (``FileNotFoundError``,
``NotADirectoryError``), gains a stable code, and reads as one line in the CLI. The
whole library is held to this by tests/unit/test_error_tree.py (every ``raise`` read by
AST); these cases show each one as it is met.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from integration_service.cli import database
from integration_service.cli.output import ExitCode, failure_for
from integration_service.crypto.cipher import CipherUnavailable
from integration_service.errors import PermanentError, ServiceError
from integration_service.maintenance.import_report import (
    ImportReport,
    ReportDirectoryUnusable,
    write_report,
)
from integration_service.maintenance.legacy_import import LegacySourceMissing, import_sessions
from integration_service.observability import health
from integration_service.runtime.loop_thread import LoopNotRunning, LoopThread
from integration_service.settings import SettingsError, load_settings


def assert_one_line_failure(error: ServiceError, code: str) -> None:
    failure = failure_for(error)
    assert (failure.exit_code, failure.error) == (ExitCode.FAILED, code)
    assert "\n" not in str(failure) and type(error).__name__ not in str(failure)


def test_a_missing_legacy_directory(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    nothing = cast(Any, None)  # refused before any of these is used
    with pytest.raises(FileNotFoundError) as caught:
        import_sessions(
            missing,
            store=nothing,
            engine=nothing,
            cipher=nothing,
            settings=nothing,
            tenant_id="tenant-x",
            dry_run=True,
        )
    error = caught.value
    assert isinstance(error, LegacySourceMissing) and isinstance(error, PermanentError)
    assert error.code == "legacy_source_missing" and str(missing) in str(error)
    assert_one_line_failure(error, "legacy_source_missing")


def test_a_report_directory_that_is_a_file(tmp_path: Path) -> None:
    taken = tmp_path / "import-reports"
    taken.write_text("not a directory")
    report = ImportReport("tenant-x", str(tmp_path), dry_run=False, tenant_existed=True, files=())
    with pytest.raises(NotADirectoryError) as caught:
        write_report(report, taken, file_mode=0o600, dir_mode=0o700)
    error = caught.value
    assert isinstance(error, ReportDirectoryUnusable) and error.code == "report_dir_unusable"
    assert_one_line_failure(error, "report_dir_unusable")


def test_a_package_without_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "PACKAGE_ROOT", tmp_path / "integration_service")
    with pytest.raises(FileNotFoundError) as caught:
        database.migrations_dir()
    error = caught.value
    assert isinstance(error, database.MigrationsMissing) and error.code == "migrations_missing"
    assert_one_line_failure(error, "migrations_missing")


class SealedVault(http.server.BaseHTTPRequestHandler):
    """Answers sys/health as a sealed Vault does (503)."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sealed_vault() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SealedVault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_health_checks_fail_with_project_errors(sealed_vault: str) -> None:
    stopped = LoopThread(name="never-started")
    with pytest.raises(LoopNotRunning, match="not running"):
        health.check_loop(stopped, 1.0)
    bad_address = load_settings(session_cipher="vault", vault_addr="file:///etc")
    with pytest.raises(SettingsError, match="VAULT_ADDR"):
        health.check_vault(bad_address, 1.0)
    sealed = load_settings(session_cipher="vault", vault_addr=sealed_vault)
    with pytest.raises(CipherUnavailable, match=r"sys/health answered 503 \(sealed\)"):
        health.check_vault(sealed, 2.0)
