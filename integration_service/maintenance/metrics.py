"""Maintenance metrics; labelled by outcome only, never by tenant or session."""

from prometheus_client import Counter

KEY_ROTATION_ROWS = Counter(
    "session_key_rotation_rows_total",
    "Rows visited by session key rotation, by outcome.",
    ["outcome"],
)
LEGACY_IMPORT_FILES = Counter(
    "legacy_session_import_files_total",
    "Legacy .session files examined by the import, by outcome.",
    ["outcome"],
)
