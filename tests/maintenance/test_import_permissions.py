"""Everything a real import writes is 0600 in 0700, whatever the process umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from integration_service.crypto import LocalKeyring
from integration_service.maintenance import ImportReport, import_sessions
from integration_service.maintenance.import_report import REPORT_DIR_NAME
from integration_service.settings import Settings
from integration_service.store import SessionStore
from tests.maintenance.conftest import TENANT, snapshot, write_telethon_session


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def run(
    legacy_dir: Path, store: SessionStore, engine: Engine, cipher: LocalKeyring, settings: Settings
) -> ImportReport:
    return import_sessions(
        legacy_dir,
        store=store,
        engine=engine,
        cipher=cipher,
        settings=settings,
        tenant_id=TENANT,
        dry_run=False,
    )


def written_paths(before: Mapping[str, object], root: Path) -> list[Path]:
    return [root / name for name in snapshot(root) if name not in before]


def test_report_directory_and_file_are_private_under_any_umask(
    umask: int,
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
) -> None:
    write_telethon_session(legacy_dir, "app-1")
    before = snapshot(legacy_dir)
    report = run(legacy_dir, store, engine, local_cipher, settings)
    assert report.report_path is not None
    created = written_paths(before, legacy_dir)
    # The report directory and one report: nothing else (no temporary file left behind).
    assert sorted(p.name for p in created) == sorted(
        [REPORT_DIR_NAME, Path(report.report_path).name]
    )
    for path in created:
        expected = 0o700 if path.is_dir() else 0o600
        assert mode_of(path) == expected, (path.name, oct(mode_of(path)), oct(umask))
    # The source file is untouched (still the mode Telethon's file was given).
    assert mode_of(legacy_dir / "app-1.session") == 0o600


def test_a_preexisting_open_report_directory_is_narrowed(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
) -> None:
    reports = legacy_dir / REPORT_DIR_NAME
    reports.mkdir()
    os.chmod(reports, 0o755)  # noqa: S103 - the too-open directory under test
    write_telethon_session(legacy_dir, "app-2")
    first = run(legacy_dir, store, engine, local_cipher, settings)
    second = run(legacy_dir, store, engine, local_cipher, settings)
    assert mode_of(reports) == 0o700
    assert first.report_path != second.report_path
    for report in (first, second):
        assert report.report_path is not None
        assert mode_of(Path(report.report_path)) == 0o600


def test_configured_permissions_are_used(
    legacy_dir: Path,
    store: SessionStore,
    engine: Engine,
    local_cipher: LocalKeyring,
    settings: Settings,
) -> None:
    stricter = settings.model_copy(
        update={"session_file_permissions": 0o400, "session_dir_permissions": 0o500}
    )
    write_telethon_session(legacy_dir, "app-3")
    old_umask = os.umask(0)
    try:
        report = run(legacy_dir, store, engine, local_cipher, stricter)
    finally:
        os.umask(old_umask)
    assert report.report_path is not None
    assert mode_of(Path(report.report_path)) == 0o400
    assert mode_of(legacy_dir / REPORT_DIR_NAME) == 0o500
    os.chmod(legacy_dir / REPORT_DIR_NAME, 0o700)  # let tmp_path clean-up delete it
