"""Operator jobs over many sessions: key rotation and legacy `.session` file import.

Plain functions the Celery tasks (`tasks.maintenance`) and the CLI call; each returns a
frozen report and never puts a session string or auth key into it or into a log.
"""

from integration_service.maintenance.import_report import (
    FileReport,
    ImportOutcome,
    ImportReport,
)
from integration_service.maintenance.legacy_files import (
    LegacySession,
    LegacySessionInvalid,
    read_telethon_session_file,
    to_string_session,
)
from integration_service.maintenance.legacy_import import import_sessions, legacy_source_dir
from integration_service.maintenance.rotation import (
    RotationFailure,
    RotationReport,
    rotate_session_keys,
)

__all__ = [
    "FileReport",
    "ImportOutcome",
    "ImportReport",
    "LegacySession",
    "LegacySessionInvalid",
    "RotationFailure",
    "RotationReport",
    "import_sessions",
    "legacy_source_dir",
    "read_telethon_session_file",
    "rotate_session_keys",
    "to_string_session",
]
