"""Reading Telethon's SQLite session files and turning them into StringSessions."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from telethon.sessions import SQLiteSession, StringSession

from integration_service.maintenance import (
    LegacySessionInvalid,
    read_telethon_session_file,
    to_string_session,
)
from integration_service.telegram.fingerprint import fingerprint_of
from tests.maintenance.conftest import DC_ADDRESS, snapshot, write_telethon_session


def test_fingerprint_is_sha256_hex_of_the_whole_key() -> None:
    key = os.urandom(256)
    fingerprint = fingerprint_of(key)
    assert fingerprint == hashlib.sha256(key).hexdigest()
    assert len(fingerprint) == 64
    assert fingerprint != fingerprint_of(os.urandom(256))


def test_fingerprint_refuses_a_key_of_the_wrong_length_without_echoing_it() -> None:
    short = b"\x17" * 128
    with pytest.raises(ValueError) as caught:
        fingerprint_of(short)
    assert short.hex() not in str(caught.value)
    assert "256" in str(caught.value)


def test_reads_what_telethon_wrote_and_leaves_the_file_alone(tmp_path: Path) -> None:
    key = write_telethon_session(tmp_path, "app-1", dc_id=4, port=8443)
    before = snapshot(tmp_path)
    legacy = read_telethon_session_file(tmp_path / "app-1.session")
    assert (legacy.dc_id, legacy.server_address, legacy.port) == (4, DC_ADDRESS, 8443)
    assert legacy.auth_key == key
    assert legacy.takeout_id is None
    assert key.hex() not in repr(legacy)
    assert snapshot(tmp_path) == before


def test_string_session_carries_the_same_key_dc_address_and_port(tmp_path: Path) -> None:
    key = write_telethon_session(tmp_path, "app-6", dc_id=5, address="2001:b28:f23f:f005::a")
    legacy = read_telethon_session_file(tmp_path / "app-6.session")
    loaded = StringSession(to_string_session(legacy))
    assert loaded.auth_key is not None
    assert loaded.auth_key.key == key
    assert (loaded.dc_id, loaded.server_address, loaded.port) == (5, "2001:b28:f23f:f005::a", 443)


def test_garbage_is_not_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.session"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LegacySessionInvalid, match="not a SQLite database"):
        read_telethon_session_file(path)
    assert path.read_bytes() == b"this is not sqlite at all" * 100


def test_empty_sqlite_has_no_sessions_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.session"
    sqlite3.connect(path).close()
    with pytest.raises(LegacySessionInvalid, match="no sessions table"):
        read_telethon_session_file(path)
    other = tmp_path / "other.session"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE version (version integer)")
    with pytest.raises(LegacySessionInvalid, match="no sessions table"):
        read_telethon_session_file(other)


def test_a_session_table_without_rows_is_refused(tmp_path: Path) -> None:
    write_telethon_session(tmp_path, "norow")
    with sqlite3.connect(tmp_path / "norow.session") as conn:
        conn.execute("DELETE FROM sessions")
    with pytest.raises(LegacySessionInvalid, match="no row"):
        read_telethon_session_file(tmp_path / "norow.session")


def test_a_never_authorised_session_has_no_auth_key(tmp_path: Path) -> None:
    session = SQLiteSession(str(tmp_path / "fresh"))
    session.set_dc(2, DC_ADDRESS, 443)
    session.save()
    session.close()
    with pytest.raises(LegacySessionInvalid, match="auth key missing"):
        read_telethon_session_file(tmp_path / "fresh.session")


def test_an_auth_key_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    write_telethon_session(tmp_path, "short")
    short_key = os.urandom(128)
    with sqlite3.connect(tmp_path / "short.session") as conn:
        conn.execute("UPDATE sessions SET auth_key = ?", (short_key,))
    with pytest.raises(LegacySessionInvalid, match="128 bytes, expected 256") as caught:
        read_telethon_session_file(tmp_path / "short.session")
    assert short_key.hex() not in str(caught.value)


def test_a_hostname_instead_of_an_address_is_refused(tmp_path: Path) -> None:
    write_telethon_session(tmp_path, "named")
    with sqlite3.connect(tmp_path / "named.session") as conn:
        conn.execute("UPDATE sessions SET server_address = 'dc2.example'")
    with pytest.raises(LegacySessionInvalid, match="not an IP address"):
        read_telethon_session_file(tmp_path / "named.session")
