"""A key the data centre does not know (transport error -404) is a terminal, classified state."""

from __future__ import annotations

import pickle
import struct

import pytest
from telethon import errors as tg

from integration_service.errors import PermanentError
from integration_service.telegram.errors import (
    AUTH_KEY_UNKNOWN,
    SessionTerminated,
    TelegramUnavailable,
    classify_telethon,
)


def _transport_error(code: int) -> tg.InvalidBufferError:
    # What Telethon raises for a 4-byte packet: the negative error code, little-endian.
    return tg.InvalidBufferError(struct.pack("<i", -code))


@pytest.mark.parametrize(
    "raw",
    [tg.AuthKeyNotFound(), _transport_error(404)],
    ids=["AuthKeyNotFound", "InvalidBufferError-404"],
)
def test_an_unknown_auth_key_is_revoked_with_its_reason(raw: BaseException) -> None:
    error = classify_telethon(raw)
    assert isinstance(error, SessionTerminated) and isinstance(error, PermanentError)
    assert (error.state, error.auth_error, error.code) == (
        "revoked",
        AUTH_KEY_UNKNOWN,
        "session_revoked",
    )
    assert "-404" in str(error)


def test_other_transport_errors_stay_transient() -> None:
    # -429 is transport flood: the key is fine, the connection is throttled.
    assert isinstance(classify_telethon(_transport_error(429)), TelegramUnavailable)


@pytest.mark.parametrize(
    ("raw", "state", "auth_error"),
    [
        (tg.AuthKeyUnregisteredError(None), "revoked", "auth_key_unregistered"),
        (tg.SessionRevokedError(None), "revoked", "session_revoked"),
        (tg.UserDeactivatedBanError(None), "banned", "user_deactivated_ban"),
        (tg.AuthKeyDuplicatedError(None), "duplicated", "auth_key_duplicated"),
    ],
)
def test_rpc_terminal_errors_carry_telegrams_error_as_their_reason(
    raw: BaseException, state: str, auth_error: str
) -> None:
    error = classify_telethon(raw)
    assert isinstance(error, SessionTerminated)
    assert (error.state, error.auth_error) == (state, auth_error)


def test_a_stored_terminal_state_has_no_telegram_reason() -> None:
    assert SessionTerminated("revoked", "stored state").auth_error is None


def test_the_classified_error_survives_pickling_with_its_reason() -> None:
    error = classify_telethon(tg.AuthKeyNotFound())
    assert isinstance(error, SessionTerminated)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is SessionTerminated
    assert (copy.state, copy.auth_error, copy.code, str(copy)) == (
        error.state,
        error.auth_error,
        error.code,
        str(error),
    )
