"""What a legacy import did (or would do), and its JSON record on disk.

A real run leaves a JSON report beside the sources, in `<source_dir>/import-reports/`,
so an operator can see later which files went where. It holds file names, session keys,
fingerprints and outcomes; never an auth key or session string. The directory and the
file are created with the configured session permissions (0700 / 0600) as their
creation mode, so no umask ever makes them wider, not even for an instant; the file is
written under a temporary name and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from integration_service.errors import PermanentError

REPORT_DIR_NAME = "import-reports"


class ReportDirectoryUnusable(PermanentError, NotADirectoryError):
    """The report directory's path is taken by something that is not a directory."""

    code = "report_dir_unusable"


class ImportOutcome(StrEnum):
    """Per-file result; the would_* values only occur in a dry run."""

    WOULD_CREATE = "would_create"
    WOULD_UPDATE = "would_update"
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    INVALID = "invalid"
    DUPLICATE_FINGERPRINT = "duplicate_fingerprint"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FileReport:
    """One `.session` file: where it would go and what happened.

    ``error_code`` is the StoreError code (e.g. "duplicate_session") for FAILED, or
    "invalid_session_file" / "invalid_app_id" for INVALID; ``reason`` is human text.
    """

    file_name: str
    outcome: ImportOutcome
    app_id: str | None = None
    fingerprint: str | None = None
    dc_id: int | None = None
    error_code: str | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The whole run over one tenant's directory."""

    tenant_id: str
    source_dir: str
    dry_run: bool
    # False when the tenant was unknown: a real run registers it, a dry run says it would.
    tenant_existed: bool
    files: tuple[FileReport, ...]
    warnings: tuple[str, ...] = ()
    # Where a real run wrote its JSON record; None for a dry run.
    report_path: str | None = None

    def counts(self) -> dict[str, int]:
        """Number of files per outcome (only outcomes that occurred)."""
        return dict(Counter(item.outcome.value for item in self.files))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [
            {**asdict(item), "outcome": item.outcome.value, "warnings": list(item.warnings)}
            for item in self.files
        ]
        data["warnings"] = list(self.warnings)
        data["counts"] = self.counts()
        return data


def _open_private_dir(path: Path, mode: int) -> None:
    # The owner needs rwx to place the report even when the configured mode is stricter
    # (e.g. 0500); those bits widen nothing for anyone else and are dropped at the end.
    working = mode | stat.S_IRWXU
    try:
        # Created with its mode: a umask can only narrow it, never widen it.
        os.mkdir(path, working)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise ReportDirectoryUnusable(f"{path} exists and is not a directory") from None
    os.chmod(path, working)


def write_report(report: ImportReport, directory: Path, *, file_mode: int, dir_mode: int) -> Path:
    """Write the report as JSON into ``directory`` atomically; returns the final path."""
    _open_private_dir(directory, dir_mode)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = directory / f"import-{report.tenant_id}-{stamp}.json"
    temporary = directory / f".{final.name}.{secrets.token_hex(4)}.tmp"
    payload = json.dumps({**report.to_dict(), "report_path": str(final)}, indent=2)
    # O_EXCL: never follow or reuse a file someone planted under the temporary name.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, file_mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), file_mode)
            handle.write(payload + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        # Exactly the configured mode, also for a pre-existing or umask-narrowed directory.
        os.chmod(directory, dir_mode)
    return final
