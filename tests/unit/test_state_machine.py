"""The state machine table: consistent with the schema, illegal moves refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from integration_service.sessions import state_machine as sm

MIGRATION = Path(__file__).resolve().parents[2] / "alembic/versions/0001_sessions_schema.py"


def schema_states() -> tuple[str, ...]:
    spec = importlib.util.spec_from_file_location("m0001", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.SESSION_STATES)


def test_table_covers_exactly_the_states_the_schema_allows() -> None:
    assert set(schema_states()) == sm.STATES
    for targets in sm.TRANSITIONS.values():
        assert targets <= sm.STATES


def test_terminal_and_final_states() -> None:
    assert sm.FINAL <= sm.TERMINAL
    for state in sm.FINAL:
        assert sm.TRANSITIONS[state] == frozenset()
    for state in sm.TERMINAL:
        assert sm.AUTHORIZED not in sm.TRANSITIONS[state] or state not in sm.FINAL


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("new", "code_sent"),
        ("code_sent", "password_required"),
        ("qr_pending", "authorized"),
        ("authorized", "revoked"),
        ("revoked", "code_sent"),
        ("failed", "qr_pending"),
    ],
)
def test_allowed(source: str, target: str) -> None:
    sm.check(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("authorized", "code_sent"),
        ("banned", "authorized"),
        ("deactivated", "new"),
        ("new", "revoked"),
        ("new", "bogus"),
    ],
)
def test_illegal_raises(source: str, target: str) -> None:
    with pytest.raises(sm.IllegalTransition):
        sm.check(source, target)
