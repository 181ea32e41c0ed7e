"""Fixtures for maintenance tests: real Telethon session files, ciphers, OpenBao."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from telethon.crypto import AuthKey
from telethon.sessions import SQLiteSession

from integration_service.store import SessionStore

TENANT = "tenant-legacy"
DC_ADDRESS = "149.154.167.51"


def write_telethon_session(
    directory: Path,
    app_id: str,
    *,
    auth_key: bytes | None = None,
    dc_id: int = 2,
    address: str = DC_ADDRESS,
    port: int = 443,
    mode: int = 0o600,
) -> bytes:
    """A `<app_id>.session` file written by Telethon's own SQLiteSession; returns its key."""
    key = auth_key if auth_key is not None else os.urandom(256)
    session = SQLiteSession(str(directory / app_id))
    session.set_dc(dc_id, address, port)
    session.auth_key = AuthKey(key)
    session.save()
    session.close()
    os.chmod(directory / f"{app_id}.session", mode)
    return key


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Everything under ``root``: mode, size, mtime and content hash per path."""
    found: dict[str, tuple[int, int, int, str]] = {}
    for path in sorted([root, *root.rglob("*")]):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return found


@pytest.fixture
def legacy_dir(tmp_path: Path) -> Path:
    """`<base>/<tenant>`: the legacy layout, 0700 as the seeds require."""
    directory = tmp_path / "sessions" / TENANT
    directory.mkdir(parents=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


@pytest.fixture
def tenant(store: SessionStore) -> str:
    store.ensure_tenant(TENANT)
    return TENANT
