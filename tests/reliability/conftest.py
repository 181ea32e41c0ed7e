"""Reliability cases share one system with short leases (takeovers within seconds)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import emulator, system  # noqa: F401 - shared fixtures
from tests.support.system import FAST_TAKEOVER

REPORT = Path(os.environ.get("RELIABILITY_REPORT", ".state/reliability-results.json"))


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return dict(FAST_TAKEOVER)


@pytest.fixture(scope="session")
def results() -> Iterator[list[dict[str, object]]]:
    """Each case appends its row; written for the README's results table."""
    rows: list[dict[str, object]] = []
    yield rows
    if rows:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(rows, indent=2))
