"""A send is validated once into a SendRequest, and a job's payload parses back to it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_service import inputs
from integration_service.inputs import InvalidInput, Peer, SendRequest
from integration_service.store import SessionKey


def test_parse_builds_typed_fields() -> None:
    request = SendRequest.parse("acme", "app-1", "@Some_User", "hello", "order-7")
    assert request.key == SessionKey("acme", "app-1")
    assert request.peer == Peer(username="@some_user")
    assert (request.text, request.idempotency_key) == ("hello", "order-7")
    assert SendRequest.parse("acme", "app-1", "-100123", "hi", "k").peer == Peer(peer_id=-100123)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (("bad:tenant", "app", 5, "hi", "k"), "tenant_id"),
        (("t", None, 5, "hi", "k"), "app_id"),
        (("t", "app", "nobody", "hi", "k"), "peer"),
        (("t", "app", 5, "   ", "k"), "text"),
        (("t", "app", 5, "hi", "no spaces allowed"), "idempotency_key"),
    ],
)
def test_parse_names_the_field_that_is_wrong(fields: tuple[object, ...], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SendRequest.parse(*fields)
    assert caught.value.field == field
    assert caught.value.code == f"invalid_{field}"


@given(
    peer=st.one_of(
        st.integers(min_value=-(2**62), max_value=2**62).filter(bool),
        st.from_regex(r"@[A-Za-z][A-Za-z0-9_]{3,31}", fullmatch=True),
    ),
    text=st.text(min_size=1, max_size=200).filter(str.strip),
    key=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}", fullmatch=True),
)
def test_a_job_payload_parses_back_to_the_request_the_producer_made(
    peer: int | str, text: str, key: str
) -> None:
    request = SendRequest.parse("tenant", "app", peer, text, key)
    kwargs = request.job_kwargs()
    assert all(isinstance(value, str) for value in kwargs.values())  # JSON as is
    assert SendRequest.from_job(kwargs) == request


def test_a_payload_missing_a_field_is_invalid_input_naming_it() -> None:
    kwargs = SendRequest.parse("t", "a", 5, "hi", "k").job_kwargs()
    del kwargs["text"]
    with pytest.raises(InvalidInput) as caught:
        SendRequest.from_job(kwargs)
    assert caught.value.field == "text"


def test_session_key_validates_both_parts() -> None:
    assert inputs.session_key("t", "a") == SessionKey("t", "a")
    with pytest.raises(InvalidInput):
        inputs.session_key("t", "a:b")
