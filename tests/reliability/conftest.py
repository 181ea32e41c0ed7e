"""Reliability cases: a whole system each, with short leases (takeovers within seconds)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_service.emulator.testing import EmulatorProcess
from tests.support.database import migrate, scratch_database
from tests.support.system import FAST_TAKEOVER, SystemUnderTest, whole_system

REPORT = Path(os.environ.get("RELIABILITY_REPORT", ".state/reliability-results.json"))


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return dict(FAST_TAKEOVER)


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A data centre of the case's own: its counters (AUTH_KEY_DUPLICATED, deliveries)
    are the case's alone."""
    with EmulatorProcess(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture
def case_database() -> Iterator[str]:
    """A database of the case's own: its workers place (and connect) every authorised
    listening session they find, and in the suite's shared database those are every other
    module's, pointing at emulators long stopped."""
    with scratch_database("is_rel") as url:
        migrate(url)
        yield url


@pytest.fixture
def system(
    case_database: str,
    emulator: EmulatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
    system_overrides: dict[str, str],
) -> Iterator[SystemUnderTest]:
    """A whole system per case: its own vhost (queues, dead letters), Redis data set,
    worker logs, emulator and database. A case sees nothing of
    another case, and a failing case's evidence is its own."""
    with whole_system(
        database_url=case_database,
        emulator=emulator,
        state_dir=Path(tmp_path_factory.mktemp("system")),
        overrides=system_overrides,
    ) as sut:
        yield sut


@pytest.fixture(scope="session")
def results() -> Iterator[list[dict[str, object]]]:
    """Each case appends its row; written for the README's results table."""
    rows: list[dict[str, object]] = []
    yield rows
    if rows:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(rows, indent=2))
