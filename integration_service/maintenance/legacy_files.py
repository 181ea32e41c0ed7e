"""Reading Telethon's SQLite `.session` files, as the legacy system left them on disk.

The file is opened through SQLite's read-only URI mode, so the import can never change
a source it may have to fall back to; nothing is written beside it either (a rollback
journal is only created by writers). Errors say what is wrong with the file and never
contain key material.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from integration_service.errors import PermanentError
from integration_service.telegram.fingerprint import AUTH_KEY_BYTES

# The columns every Telethon session file version since takeout support carries.
_REQUIRED_COLUMNS = ("dc_id", "server_address", "port", "auth_key")


class LegacySessionInvalid(PermanentError):
    """A legacy session file cannot be imported; the message says why (never the key)."""

    code = "invalid_session_file"


@dataclass(frozen=True, slots=True)
class LegacySession:
    """What a Telethon session file holds that a StringSession needs (plus takeout id)."""

    dc_id: int
    server_address: str
    port: int
    auth_key: bytes = field(repr=False)
    takeout_id: int | None = None


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # as_uri() percent-encodes the path, so "?" or "#" in a file name cannot inject options.
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        raise LegacySessionInvalid(f"cannot open {path.name}: {error}") from None


def _session_columns(connection: sqlite3.Connection, name: str) -> set[str]:
    try:
        found = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sessions'"
        ).fetchone()
        if found is None:
            raise LegacySessionInvalid("no sessions table (not a Telethon session file)")
        return {row[1] for row in connection.execute("PRAGMA table_info(sessions)")}
    except sqlite3.OperationalError as error:
        # Locked, unreadable, or needing a write to open (e.g. a WAL file without -shm).
        raise LegacySessionInvalid(f"cannot read {name}: {error}") from None
    except sqlite3.DatabaseError:
        raise LegacySessionInvalid("not a SQLite database") from None


def _validated(row: tuple[object, ...]) -> LegacySession:
    dc_id, server_address, port, auth_key, takeout_id = row
    if not auth_key:
        raise LegacySessionInvalid("auth key missing (the session was never authorised)")
    if not isinstance(auth_key, bytes) or len(auth_key) != AUTH_KEY_BYTES:
        size = len(auth_key) if isinstance(auth_key, bytes | str) else 0
        raise LegacySessionInvalid(f"auth key is {size} bytes, expected {AUTH_KEY_BYTES}")
    if not isinstance(dc_id, int) or dc_id <= 0:
        raise LegacySessionInvalid("dc_id is missing or not a positive integer")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise LegacySessionInvalid("port is missing or out of range")
    if not isinstance(server_address, str):
        raise LegacySessionInvalid("server address is missing")
    try:
        # A StringSession packs the address as 4 or 16 bytes; a hostname cannot be kept.
        address = ipaddress.ip_address(server_address).compressed
    except ValueError:
        raise LegacySessionInvalid("server address is not an IP address") from None
    takeout = takeout_id if isinstance(takeout_id, int) else None
    return LegacySession(dc_id, address, port, auth_key, takeout)


def read_telethon_session_file(path: Path) -> LegacySession:
    """Read the one session row of a Telethon `.session` file, read-only.

    Raises LegacySessionInvalid for: a file that is not SQLite, no `sessions` table, no
    row, an auth key that is missing or not 256 bytes, or unusable dc/address/port.
    """
    path = Path(path)
    if not path.is_file():
        raise LegacySessionInvalid(f"{path.name} is not a regular file")
    connection = _connect_read_only(path)
    try:
        columns = _session_columns(connection, path.name)
        missing = [column for column in _REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise LegacySessionInvalid(f"sessions table lacks column(s) {', '.join(missing)}")
        takeout = "takeout_id" if "takeout_id" in columns else "NULL"
        try:
            rows = connection.execute(
                # Only a constant column name is interpolated; there are no values to bind.
                f"SELECT dc_id, server_address, port, auth_key, {takeout} FROM sessions"
            ).fetchall()
        except sqlite3.DatabaseError as error:
            raise LegacySessionInvalid(f"cannot read the sessions table: {error}") from None
    finally:
        connection.close()
    if not rows:
        raise LegacySessionInvalid("the sessions table has no row")
    if len(rows) > 1:
        # Telethon keeps exactly one row; several mean a file we do not understand.
        raise LegacySessionInvalid(f"the sessions table has {len(rows)} rows, expected one")
    return _validated(tuple(rows[0]))


def to_string_session(legacy: LegacySession) -> str:
    """The Telethon StringSession string for a legacy session (takeout id is not kept).

    Built through Telethon's own StringSession, so the format is whatever the client
    that later loads it expects.
    """
    session = StringSession()
    session.set_dc(legacy.dc_id, legacy.server_address, legacy.port)
    session.auth_key = AuthKey(legacy.auth_key)
    encoded = session.save()
    if not isinstance(encoded, str) or not encoded:
        raise LegacySessionInvalid("Telethon produced no session string")
    return encoded
