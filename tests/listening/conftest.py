"""Listening tests: each module gets its own database, emulator and system.

Placement claims every authorised listening session in its database, so these systems
never share one with the other suites (whose sessions point at other emulators).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_service.emulator.testing import EmulatorProcess
from tests.support.database import migrate, scratch_database
from tests.support.system import SystemUnderTest, whole_system

LISTENING = {
    "LISTEN_CAPACITY": "5000",
    "PLACEMENT_INTERVAL": "0.5",
    "SESSION_LOCK_TTL": "10",
    "SESSION_LOCK_HEARTBEAT": "2",
    "WORKER_LIVENESS_TTL": "6",
}


@pytest.fixture(scope="module")
def listening_database() -> Iterator[str]:
    with scratch_database("is_listen") as url:
        migrate(url)
        yield url


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def system(
    listening_database: str,
    emulator: EmulatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
    system_overrides: dict[str, str],
) -> Iterator[SystemUnderTest]:
    with whole_system(
        database_url=listening_database,
        emulator=emulator,
        state_dir=Path(tmp_path_factory.mktemp("system")),
        overrides={**LISTENING, **system_overrides},
    ) as sut:
        yield sut
