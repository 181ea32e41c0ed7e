"""Fixtures for end-to-end tests: a whole system per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_service.emulator.testing import EmulatorProcess
from tests.support.system import SystemUnderTest, whole_system


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    """Settings a test module wants for its workers (override in the module)."""
    return {}


@pytest.fixture(scope="module")
def system(
    database_url: str,
    emulator: EmulatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
    system_overrides: dict[str, str],
) -> Iterator[SystemUnderTest]:
    with whole_system(
        database_url=database_url,
        emulator=emulator,
        state_dir=Path(tmp_path_factory.mktemp("system")),
        overrides=system_overrides,
    ) as sut:
        yield sut
