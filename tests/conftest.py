"""Shared fixtures: a migrated throwaway database and a store running as the service role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from integration_service.crypto import LocalKeyring, VaultTransitCipher
from integration_service.settings import Settings, load_settings
from integration_service.store import SessionStore, build_engine
from tests.support.database import migrate, scratch_database
from tests.support.openbao import OpenBaoDevServer, VaultEndpoint


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database at Alembic head for the whole test session."""
    with scratch_database() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Pooled engine as the workers use it: SET ROLE integration_service_worker."""
    engine = build_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def admin_engine(database_url: str) -> Iterator[Engine]:
    """Superuser engine for test set-up that the service role may not do."""
    engine = create_engine(database_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine, admin_engine: Engine) -> Iterator[SessionStore]:
    """A session store on an empty schema; rows are removed after each test."""
    yield SessionStore(engine)
    with admin_engine.begin() as conn:
        conn.execute(text("TRUNCATE tenants, integration_logs CASCADE"))


@pytest.fixture(scope="session")
def openbao() -> Iterator[VaultEndpoint]:
    """One real OpenBao dev server for the test session, transit enabled; stopped at the end."""
    with OpenBaoDevServer() as server:
        server.enable_transit()
        yield server.endpoint


@pytest.fixture
def local_cipher(tmp_path: Path) -> LocalKeyring:
    """A local AES-GCM keyring in a fresh state directory (the cipher without Vault)."""
    return LocalKeyring.from_state_dir(tmp_path / "keys")


@pytest.fixture
def vault_cipher(openbao: VaultEndpoint) -> VaultTransitCipher:
    # A key per test, so one test's rotations never change another's expectations.
    cipher = VaultTransitCipher(
        addr=openbao.addr, token=openbao.token, key_name=f"sessions-{uuid.uuid4().hex[:12]}"
    )
    cipher.ensure_key()
    return cipher
