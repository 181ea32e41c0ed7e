"""Import a tenant's legacy Telethon `.session` files into the session store.

Layout (seed 001, "migrate_sessions.py --sessions-dir /app/sessions"): the legacy system
kept one SQLite file per app under a directory per tenant,

    <SESSIONS_BASE_PATH>/<tenant_id>/<app_id>.session

so one call imports one tenant's directory (``legacy_source_dir`` builds its path) and
the app id is the file name without `.session`, checked against IDENTIFIER_PATTERN like
every other app id. Other files and subdirectories are ignored.

Each file becomes a row through ``SessionStore.save`` (upsert_telegram_session): its
Telethon StringSession encrypted and bound to the row, state "disconnected" because
nobody knows whether Telegram still honours the key until a validation runs, the stored
lease epoch (so the write is not refused as stale), and the key's fingerprint, which
the unique index uses to keep one auth key in one row (two rows driving one key would
get it killed with AUTH_KEY_DUPLICATED).

A dry run reads the files and the database and writes nothing anywhere. The sources are
never modified or moved: the legacy system must simply stop using them (one key, one
client). A real run records its report as JSON in `<source_dir>/import-reports/`.
"""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Row, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from integration_service.crypto import CipherError, SessionCipher
from integration_service.errors import PermanentError
from integration_service.maintenance.import_report import (
    REPORT_DIR_NAME,
    FileReport,
    ImportOutcome,
    ImportReport,
    write_report,
)
from integration_service.maintenance.legacy_files import (
    LegacySession,
    LegacySessionInvalid,
    read_telethon_session_file,
    to_string_session,
)
from integration_service.maintenance.metrics import LEGACY_IMPORT_FILES
from integration_service.runtime.session_runtime import session_context
from integration_service.settings import Settings
from integration_service.store import (
    SessionKey,
    SessionMaterial,
    SessionStore,
    StoreError,
    StoreUnavailable,
)
from integration_service.store.errors import to_store_error
from integration_service.store.records import IDENTIFIER_PATTERN, SessionKind
from integration_service.telegram.fingerprint import fingerprint_of


class LegacySourceMissing(PermanentError, FileNotFoundError):
    """The directory to import legacy session files from does not exist."""

    code = "legacy_source_missing"


SESSION_SUFFIX = ".session"
IMPORTED_STATE = "disconnected"
logger = structlog.get_logger(__name__)


def legacy_source_dir(settings: Settings, tenant_id: str) -> Path:
    """`<SESSIONS_BASE_PATH>/<tenant_id>`: where the legacy system kept a tenant's files."""
    if not IDENTIFIER_PATTERN.match(tenant_id):
        raise ValueError("tenant_id is not a valid identifier")
    return settings.sessions_base_path / tenant_id


def _mode_warning(path: Path, what: str, expected: int) -> str | None:
    # Warn, do not refuse: the file is the legacy system's and already exposed; refusing
    # would not protect it, while the imported copy is encrypted at rest.
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return (
            f"{what} {path.name} has mode {mode:04o}; group/others can read it, "
            f"expected {expected:04o}"
        )
    return None


class _Lookups:
    """The two reads the store has no method for: tenant existence and key by fingerprint."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _first(self, query: str, params: dict[str, str]) -> Row[Any] | None:
        try:
            with self._engine.connect() as conn:
                return conn.execute(text(query), params).first()
        except SQLAlchemyError as error:
            raise to_store_error(error, "legacy import lookup") from None

    def tenant_exists(self, tenant_id: str) -> bool:
        return self._first("SELECT 1 FROM tenants WHERE id = :id", {"id": tenant_id}) is not None

    def key_of_fingerprint(self, fingerprint: str) -> SessionKey | None:
        row = self._first(
            "SELECT tenant_id, app_id FROM telegram_sessions WHERE fingerprint = :fp",
            {"fp": fingerprint},
        )
        return SessionKey(row.tenant_id, row.app_id) if row is not None else None


class _TenantImport:
    """One run over one tenant's directory; keeps what earlier files of the run claimed."""

    def __init__(
        self,
        *,
        store: SessionStore,
        lookups: _Lookups,
        cipher: SessionCipher,
        tenant_id: str,
        dry_run: bool,
        kind: SessionKind,
        file_mode: int,
    ) -> None:
        self._file_mode = file_mode
        self._store = store
        self._lookups = lookups
        self._cipher = cipher
        self._tenant_id = tenant_id
        self._dry_run = dry_run
        self._kind = kind
        self._claimed: dict[str, str] = {}  # fingerprint -> file name that claimed it

    def examine(self, path: Path) -> FileReport:
        app_id = path.name[: -len(SESSION_SUFFIX)]
        if not IDENTIFIER_PATTERN.match(app_id):
            return FileReport(
                path.name,
                ImportOutcome.INVALID,
                error_code="invalid_app_id",
                reason="file name is not a valid app id (letters, digits, _ . -; max 64)",
            )
        if path.is_symlink():
            return FileReport(
                path.name,
                ImportOutcome.INVALID,
                app_id=app_id,
                error_code=LegacySessionInvalid.code,
                reason="symbolic link; import the file it points to instead",
            )
        warning = _mode_warning(path, "file", self._file_mode)
        warnings = (warning,) if warning else ()
        try:
            legacy = read_telethon_session_file(path)
        except LegacySessionInvalid as error:
            return FileReport(
                path.name,
                ImportOutcome.INVALID,
                app_id=app_id,
                error_code=error.code,
                reason=str(error),
                warnings=warnings,
            )
        return self._place(path.name, app_id, legacy, warnings)

    def _place(
        self, file_name: str, app_id: str, legacy: LegacySession, warnings: tuple[str, ...]
    ) -> FileReport:
        key = SessionKey(self._tenant_id, app_id)
        fingerprint = fingerprint_of(legacy.auth_key)

        def report(outcome: ImportOutcome, **extra: str | None) -> FileReport:
            return FileReport(
                file_name,
                outcome,
                app_id=app_id,
                fingerprint=fingerprint,
                dc_id=legacy.dc_id,
                warnings=warnings,
                **extra,
            )

        earlier = self._claimed.get(fingerprint)
        if earlier is not None:
            return report(
                ImportOutcome.DUPLICATE_FINGERPRINT,
                reason=f"same auth key as {earlier} in this directory",
            )
        self._claimed[fingerprint] = file_name
        owner = self._lookups.key_of_fingerprint(fingerprint)
        if owner is not None and owner != key:
            return report(
                ImportOutcome.DUPLICATE_FINGERPRINT,
                reason=f"this auth key is already stored for session {owner}",
            )
        existing = self._store.get(key)
        if existing is not None and existing.fingerprint == fingerprint:
            return report(ImportOutcome.UNCHANGED)
        if self._dry_run:
            would = ImportOutcome.WOULD_UPDATE if existing else ImportOutcome.WOULD_CREATE
            return report(would)
        try:
            ciphertext = self._cipher.encrypt(
                to_string_session(legacy), context=session_context(key)
            )
            self._store.save(
                SessionMaterial(
                    key=key,
                    kind=self._kind,
                    state=IMPORTED_STATE,
                    lease_epoch=existing.lease_epoch if existing else 0,
                    session_string_enc=ciphertext.text,
                    key_id=ciphertext.key_id,
                    dc_id=legacy.dc_id,
                    fingerprint=fingerprint,
                )
            )
        except (StoreError, StoreUnavailable) as error:
            return report(
                ImportOutcome.FAILED, error_code=error.error_code.value, reason=str(error)
            )
        except CipherError as error:
            return report(
                ImportOutcome.FAILED, error_code="encryption_failed", reason=type(error).__name__
            )
        return report(ImportOutcome.UPDATED if existing else ImportOutcome.CREATED)


def import_sessions(
    source_dir: Path,
    *,
    store: SessionStore,
    engine: Engine,
    cipher: SessionCipher,
    settings: Settings,
    tenant_id: str,
    dry_run: bool,
    kind: SessionKind = "user",
) -> ImportReport:
    """Import every `<app_id>.session` in ``source_dir`` for ``tenant_id``.

    ``engine`` (the service-role engine behind ``store``) answers the two reads the
    store has no method for. A dry run writes nothing; a real run registers an unknown
    tenant, saves each file's session and writes a JSON report (see import_report).
    """
    if not IDENTIFIER_PATTERN.match(tenant_id):
        raise ValueError("tenant_id is not a valid identifier")
    source = Path(source_dir)
    if not source.is_dir():
        raise LegacySourceMissing(f"legacy session directory {source} does not exist")
    lookups = _Lookups(engine)
    tenant_existed = lookups.tenant_exists(tenant_id)
    if not dry_run and not tenant_existed:
        # The legacy system knew tenants only as directory names; importing one's files
        # is the operator's explicit statement that the tenant exists.
        store.ensure_tenant(tenant_id)
    run = _TenantImport(
        store=store,
        lookups=lookups,
        cipher=cipher,
        tenant_id=tenant_id,
        dry_run=dry_run,
        kind=kind,
        file_mode=settings.session_file_permissions,
    )
    files = tuple(
        run.examine(path)
        for path in sorted(source.iterdir())
        if path.name.endswith(SESSION_SUFFIX) and not path.is_dir()
    )
    directory_warning = _mode_warning(source, "directory", settings.session_dir_permissions)
    report = ImportReport(
        tenant_id=tenant_id,
        source_dir=str(source),
        dry_run=dry_run,
        tenant_existed=tenant_existed,
        files=files,
        warnings=(directory_warning,) if directory_warning else (),
    )
    for item in files:
        LEGACY_IMPORT_FILES.labels(outcome=item.outcome.value).inc()
    if not dry_run:
        written = write_report(
            report,
            source / REPORT_DIR_NAME,
            file_mode=settings.session_file_permissions,
            dir_mode=settings.session_dir_permissions,
        )
        report = replace(report, report_path=str(written))
    logger.info(
        "legacy_import_finished",
        tenant_id=tenant_id,
        dry_run=dry_run,
        counts=report.counts(),
        report_path=report.report_path,
    )
    return report
