"""Telegram Mini App initData: Telegram's documented HMAC check, freshness, and shape."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from integration_service.api.auth.miniapp import MiniAppUser, sign_init_data, verify_init_data
from integration_service.api.errors import Unauthenticated

BOT_TOKEN = "123456789:AAE_some-bot-token-of-the-mini-app-bot"
NOW = 1_750_000_000
TOLERANCE = 300


def fields(**overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(
            {"id": 279058397, "first_name": "Ada Lovelace", "username": "ada", "is_premium": True},
            separators=(",", ":"),
        ),
        "auth_date": str(NOW),
        "start_param": "ref-42",
        **overrides,
    }
    return {key: value for key, value in values.items() if value is not None}


def verify(init_data: str, *, now: float = NOW, bot_token: str = BOT_TOKEN) -> MiniAppUser:
    return verify_init_data(init_data, bot_token=bot_token, tolerance=TOLERANCE, now=now)


def refused(init_data: str, **options: Any) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verify(init_data, **options)
    assert BOT_TOKEN not in str(caught.value)
    return str(caught.value)


def test_valid_init_data_gives_its_user() -> None:
    assert verify(sign_init_data(fields(), BOT_TOKEN)) == MiniAppUser(
        user_id=279058397,
        first_name="Ada Lovelace",
        username="ada",
        auth_date=NOW,
        start_param="ref-42",
    )


def test_optional_fields_may_be_absent() -> None:
    user = json.dumps({"id": 7})
    found = verify(sign_init_data(fields(user=user, start_param=None, query_id=None), BOT_TOKEN))
    assert found == MiniAppUser(
        user_id=7, first_name=None, username=None, auth_date=NOW, start_param=None
    )


def test_the_hash_is_the_documented_construction() -> None:
    # Written out by hand from Telegram's text, independent of the module's helper: the
    # secret is HMAC-SHA256(key="WebAppData", msg=bot token), the hash the hex HMAC of the
    # sorted key=value lines (URL-decoded), the `signature` field included.
    user = '{"id":5,"first_name":"Zoë"}'
    data_check_string = f"auth_date={NOW}\nchat_type=private\nsignature=c2ln\nuser={user}"
    secret_key = hmac.new(b"WebAppData", BOT_TOKEN.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret_key, data_check_string.encode(), hashlib.sha256).hexdigest()
    init_data = urlencode(
        {
            "user": user,
            "chat_type": "private",
            "auth_date": str(NOW),
            "signature": "c2ln",
            "hash": digest,
        },
        quote_via=quote,
    )
    assert verify(init_data).first_name == "Zoë"
    # sign_init_data builds the same string.
    signed = sign_init_data(
        {"user": user, "chat_type": "private", "auth_date": str(NOW), "signature": "c2ln"},
        BOT_TOKEN,
    )
    assert f"hash={digest}" in signed


def test_the_signature_field_is_covered_by_the_hash() -> None:
    signed = sign_init_data(fields(signature="c29tZS1lZDI1NTE5"), BOT_TOKEN)
    assert verify(signed).user_id == 279058397
    without = signed.replace("signature=c29tZS1lZDI1NTE5&", "")
    assert without != signed
    assert refused(without) == "initData signature mismatch"


@pytest.mark.parametrize(
    ("original", "changed"),
    [
        ("%22id%22%3A279058397", "%22id%22%3A279058398"),
        ("start_param=ref-42", "start_param=ref-43"),
        (f"auth_date={NOW}", f"auth_date={NOW + 1}"),
    ],
)
def test_tampered_init_data_is_refused(original: str, changed: str) -> None:
    signed = sign_init_data(fields(), BOT_TOKEN)
    assert original in signed
    assert refused(signed.replace(original, changed)) == "initData signature mismatch"


def test_a_field_added_after_signing_is_refused() -> None:
    signed = sign_init_data(fields(), BOT_TOKEN)
    assert refused(f"{signed}&chat_type=private") == "initData signature mismatch"


def test_another_bot_s_token_is_refused() -> None:
    signed = sign_init_data(fields(), "987654321:AAE_another-bot-s-token-entirely")
    assert refused(signed) == "initData signature mismatch"


def test_stale_init_data_is_refused() -> None:
    signed = sign_init_data(fields(), BOT_TOKEN)
    assert verify(signed, now=NOW + TOLERANCE).auth_date == NOW
    assert refused(signed, now=NOW + TOLERANCE + 1) == "initData is stale"


def test_init_data_from_the_future_is_refused() -> None:
    signed = sign_init_data(fields(), BOT_TOKEN)
    # Up to a minute of clock drift is allowed.
    assert verify(signed, now=NOW - 60).auth_date == NOW
    assert refused(signed, now=NOW - 61) == "initData auth_date is in the future"


def test_missing_hash_is_refused() -> None:
    assert refused(urlencode(fields())) == "initData has no hash"
    assert refused("") == "initData has no hash"


def test_an_upper_case_hash_is_refused() -> None:
    # Telegram sends lower-case hex; one spelling only.
    signed = sign_init_data(fields(), BOT_TOKEN)
    body, _, digest = signed.rpartition("hash=")
    assert verify(f"{body}hash={digest}").user_id == 279058397
    assert refused(f"{body}hash={digest.upper()}") == "initData hash is malformed"


@pytest.mark.parametrize("digest", ["", "abc", "g" * 64, "a" * 63, "a" * 65])
def test_a_hash_that_is_no_sha256_hex_is_refused(digest: str) -> None:
    assert refused(f"{urlencode(fields())}&hash={digest}") == "initData hash is malformed"


def test_missing_user_is_refused() -> None:
    assert refused(sign_init_data(fields(user=None), BOT_TOKEN)) == "initData has no user"


def test_missing_auth_date_is_refused() -> None:
    assert refused(sign_init_data(fields(auth_date=None), BOT_TOKEN)) == "initData has no auth_date"


@pytest.mark.parametrize("auth_date", ["", "-5", "1.5", "soon", "1" * 13])
def test_a_malformed_auth_date_is_refused(auth_date: str) -> None:
    signed = sign_init_data(fields(auth_date=auth_date), BOT_TOKEN)
    assert refused(signed) == "initData auth_date is malformed"


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("not json", "initData user is malformed"),
        ("[1, 2]", "initData user is malformed"),
        ('{"first_name": "Ada"}', "initData user has no valid id"),
        ('{"id": "279058397"}', "initData user has no valid id"),
        ('{"id": true}', "initData user has no valid id"),
        ('{"id": 0}', "initData user has no valid id"),
        ('{"id": 1.5}', "initData user has no valid id"),
        ('{"id": 99999999999999999999}', "initData user has no valid id"),
    ],
)
def test_a_user_without_an_integer_id_is_refused(user: str, reason: str) -> None:
    assert refused(sign_init_data(fields(user=user), BOT_TOKEN)) == reason


def test_names_of_another_type_are_ignored() -> None:
    user = json.dumps({"id": 3, "first_name": 12, "username": None})
    found = verify(sign_init_data(fields(user=user), BOT_TOKEN))
    assert (found.first_name, found.username) == (None, None)


@pytest.mark.parametrize("repeated", ["auth_date", "user", "hash", "start_param"])
def test_duplicated_keys_are_refused(repeated: str) -> None:
    signed = sign_init_data(fields(), BOT_TOKEN)
    value = dict(pair.split("=", 1) for pair in signed.split("&"))[repeated]
    assert refused(f"{signed}&{repeated}={value}") == "initData repeats a field"
    assert refused(f"{repeated}={value}&{signed}") == "initData repeats a field"


@pytest.mark.parametrize(
    "init_data",
    [
        "auth_date=1&&hash=00",
        "auth_date",
        "=1&hash=00",
        "user=%ff&hash=00",
        "a=" + "x" * 9000,
        "&".join(f"f{number}=1" for number in range(100)),
    ],
)
def test_malformed_init_data_is_refused(init_data: str) -> None:
    assert refused(init_data) in {"initData is malformed", "initData is too long"}


def test_a_line_feed_in_a_field_is_refused() -> None:
    # "a=1\nb=2" as one field would sign as the two fields a=1 and b=2.
    signed = sign_init_data(fields(query_id="x\nuser=forged"), BOT_TOKEN)
    assert refused(signed) == "initData is malformed"


def test_sign_init_data_ignores_a_hash_among_the_fields() -> None:
    signed = sign_init_data({**fields(), "hash": "0" * 64}, BOT_TOKEN)
    assert signed.count("hash=") == 1
    assert verify(signed).user_id == 279058397
