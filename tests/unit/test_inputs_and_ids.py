"""Input validation and derived random ids (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_service import inputs
from integration_service.messaging.random_ids import random_id_for
from integration_service.store import SessionKey


@pytest.mark.parametrize("value", ["+4915112345678", "+12025550123"])
def test_valid_phones(value: str) -> None:
    assert inputs.phone(value) == value


@pytest.mark.parametrize("value", ["4915112345678", "+0123456789", "+1 202 555", "", 4915112345678])
def test_invalid_phones(value: object) -> None:
    with pytest.raises(inputs.InvalidInput) as caught:
        inputs.phone(value)
    assert caught.value.field == "phone"


def test_peers() -> None:
    assert inputs.peer("@Some_User").username == "@some_user"
    assert inputs.peer(12345).peer_id == 12345
    assert inputs.peer("-1001234567890").peer_id == -1001234567890
    for bad in ["", "@ab", "user", 0, True, 2**64, "@with space", None]:
        with pytest.raises(inputs.InvalidInput):
            inputs.peer(bad)


def test_text_limits() -> None:
    assert inputs.message_text("x" * 4096)
    for bad in ["", "   ", "x" * 4097, None]:
        with pytest.raises(inputs.InvalidInput):
            inputs.message_text(bad)


def test_secrets_are_not_echoed() -> None:
    with pytest.raises(inputs.InvalidInput) as caught:
        inputs.bot_token("123:short-secret")
    assert "short-secret" not in str(caught.value)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=60))
def test_random_id_is_stable_nonzero_int64(app_id: str, key: str) -> None:
    session = SessionKey("t", app_id)
    first = random_id_for(session, key)
    assert first == random_id_for(session, key)
    assert first != 0 and -(2**63) <= first < 2**63


def test_random_ids_differ_per_session_and_key() -> None:
    a, b = SessionKey("t", "a"), SessionKey("t", "b")
    assert random_id_for(a, "k") != random_id_for(b, "k")
    assert random_id_for(a, "k1") != random_id_for(a, "k2")
