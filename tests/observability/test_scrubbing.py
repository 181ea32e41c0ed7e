"""The scrubber on its own: every secret kind, in text, keys, values and nested structures."""

from __future__ import annotations

import os
import string
import timeit
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_service.observability.scrubbing import (
    SCRUBBER_FAILED,
    key_kind,
    mask_phone,
    scrub_secrets,
    scrub_text,
)

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
VAULT_TOKEN = "hvs.CAESIJ2kX3mNmM3aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"
LEGACY_VAULT_TOKEN = "s.AbCdEfGhIjKlMnOpQrStUvWx"
DEV_VAULT_TOKEN = "dev-root-token"
GENERIC_SECRET = "Zm9vYmFyYmF6cXV4X3NlY3JldF9rZXlfMTIzNDU2Nzg5MA"


def scrub(event: dict[str, Any]) -> dict[str, Any]:
    result = scrub_secrets(None, "info", event)
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("Login code: 12345. Do not give this code to anyone", "12345", "code"),
        ("Код подтверждения: 54321", "54321", "code"),
        ("60321 is your login code", "60321", "code"),
        ("error phone_code=77123 rejected", "77123", "code"),
        (f"bot {BOT_TOKEN} started", BOT_TOKEN, "token"),
        (f"vault answered for {VAULT_TOKEN}", VAULT_TOKEN, "token"),
        (f"legacy {LEGACY_VAULT_TOKEN} here", LEGACY_VAULT_TOKEN, "token"),
        (f"root token {DEV_VAULT_TOKEN} in use", DEV_VAULT_TOKEN, "token"),
        ("password=hunter2 given", "hunter2", "password"),
        ('{"api_hash": "0123456789abcdef0123456789abcdef"}', "0123456789abcdef0123", "token"),
        ("amqp://guest:br0ker-pass@127.0.0.1:5672//", "br0ker-pass", "password"),
        ("Authorization: Bearer abc.def.ghi12345", "abc.def.ghi12345", "token"),
        (f"blob {GENERIC_SECRET} end", GENERIC_SECRET, "secret"),
    ],
)
def test_text_secrets_become_markers(text: str, secret: str, kind: str) -> None:
    cleaned = scrub_text(text)
    assert secret not in cleaned
    assert f"[REDACTED:{kind}]" in cleaned


def test_session_string_and_auth_keys_in_text(session_string: str) -> None:
    hex_key = os.urandom(256).hex()
    cleaned = scrub_text(f"loaded {session_string} with key {hex_key}")
    assert session_string not in cleaned and hex_key not in cleaned
    assert "[REDACTED:session]" in cleaned and "[REDACTED:auth_key]" in cleaned


def test_phone_numbers_keep_their_last_two_digits() -> None:
    assert scrub_text("to +79161234512 now") == "to +*********12 now"
    assert scrub_text("to 79161234512") == "to *********12"
    assert scrub_text("to +7 916 123-45-12") == "to +*********12"


@pytest.mark.parametrize(
    "text",
    [
        "session_runtime_started",
        "channel -1001234567890 sent",
        "/work/main/.venv/lib/python3.11/site-packages/telethon/network/mtprotosender.py",
        "error code=stale_epoch",
        "task 6f1c2b0e-1234-4bcd-9abc-0123456789ab done",
        "decoded 12345 bytes",
    ],
)
def test_ordinary_text_passes_untouched(text: str) -> None:
    assert scrub_text(text) == text


def test_keys_name_secrets_whatever_the_value(session_string: str) -> None:
    event = scrub(
        {
            "event": "login",
            "password": "correct horse",
            "srp_answer": "x",
            "phone_code": 12345,
            "login_code": "12345",
            "code": "54321",
            "bot_token": "not even token-shaped",
            "api_hash": "abc",
            "Authorization": "Basic dXNlcjpwYXNz",
            "cookie": "sid=1",
            "client_secret": "s",
            "auth_key": b"\x01" * 256,
            "session_string": session_string,
            "phone": "+79161234512",
            "phone_number": 79161234599,
        }
    )
    assert event["password"] == "[REDACTED:password]"
    assert event["srp_answer"] == "[REDACTED:password]"
    assert event["phone_code"] == event["login_code"] == event["code"] == "[REDACTED:code]"
    for key in ("bot_token", "api_hash", "Authorization", "cookie", "client_secret"):
        assert event[key] == "[REDACTED:token]", key
    assert event["auth_key"] == "[REDACTED:auth_key]"
    assert event["session_string"] == "[REDACTED:session]"
    assert event["phone"] == "+*********12"
    assert event["phone_number"] == "*********99"


def test_error_codes_and_flags_under_secret_keys_are_kept() -> None:
    event = scrub({"event": "failed", "code": "stale_epoch", "needs_password": True, "token": None})
    assert event == {
        "event": "failed",
        "code": "stale_epoch",
        "needs_password": True,
        "token": None,
    }


def test_nested_structures_keys_and_bytes(session_string: str) -> None:
    event = scrub(
        {
            "event": "batch",
            "items": [
                {"token": "t0ken", "chat": "@someone"},
                (session_string, "+79161234512"),
                {session_string: "value-under-secret-key"},
            ],
            "raw": os.urandom(32),
            "short": b"ok",
            "deep": {"a": {"b": {"c": {"password": "pw"}}}},
        }
    )
    text = repr(event)
    assert session_string not in text and "t0ken" not in text and "pw'" not in text
    assert event["items"][0] == {"token": "[REDACTED:token]", "chat": "@someone"}
    assert event["items"][1] == ("[REDACTED:session]", "+*********12")
    assert event["items"][2] == {"[REDACTED:session]": "value-under-secret-key"}
    assert event["raw"] == "[REDACTED:auth_key]"
    assert event["short"] == "b'ok'"
    assert event["deep"]["a"]["b"]["c"]["password"] == "[REDACTED:password]"


def test_a_failing_value_replaces_the_whole_event() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("boom 1" + "A" * 200)

    event = scrub({"event": "x", "timestamp": "2024-01-01T00:00:00Z", "value": Hostile()})
    assert event["event"] == SCRUBBER_FAILED
    assert event["timestamp"] == "2024-01-01T00:00:00Z"
    assert "value" not in event


def test_key_kinds() -> None:
    assert key_kind("Vault-Token") == "token"
    assert key_kind("new_password") == "password"
    assert key_kind("tenant_id") is None
    assert key_kind("phone_code_hash") == "token"


def test_scrubbing_is_fast_enough(session_string: str) -> None:
    plain = {
        "event": "message_sent",
        "tenant_id": "t1",
        "app_id": "a1",
        "task_id": "6f1c2b0e-1234-4bcd-9abc-0123456789ab",
        "timestamp": "2024-01-01T00:00:00Z",
        "level": "info",
    }
    runs = 10_000
    seconds = timeit.timeit(lambda: scrub_secrets(None, "info", dict(plain)), number=runs)
    per_event_us = seconds / runs * 1e6
    print(f"scrub_secrets: {per_event_us:.1f} us/event (plain event)")
    # Generous bound: the point is precompiled regexes and a clean-text fast path.
    assert per_event_us < 100


# Property-based: any E.164-ish number and any bot token, wherever it sits in a line.
_phones = st.builds(
    lambda plus, digits: ("+" if plus else "") + digits,
    st.booleans(),
    st.text(alphabet=string.digits, min_size=10, max_size=15).filter(lambda d: d[0] != "0"),
)
_bot_tokens = st.builds(
    lambda bot_id, secret: f"{bot_id}:{secret}",
    st.integers(min_value=100, max_value=10**12),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=30, max_size=46),
)
_surroundings = st.sampled_from(["", "to ", "phone=", "(", "звонок на ", "user: "])


@settings(max_examples=200, deadline=None)
@given(phone=_phones, before=_surroundings, after=st.sampled_from(["", " now", ".", ")"]))
def test_any_phone_number_is_masked(phone: str, before: str, after: str) -> None:
    cleaned = scrub_text(f"{before}{phone}{after}")
    digits = phone.lstrip("+")
    assert digits not in cleaned
    assert mask_phone(digits, phone.startswith("+")) in cleaned or "[REDACTED:" in cleaned


@settings(max_examples=200, deadline=None)
@given(token=_bot_tokens, before=_surroundings)
def test_any_bot_token_is_redacted(token: str, before: str) -> None:
    cleaned = scrub_text(f"{before}{token} ok")
    assert token.split(":", 1)[1] not in cleaned
    assert "[REDACTED:" in cleaned


def test_identifier_fields_keep_ids_that_look_like_codes() -> None:
    event = {
        "event": "job_failed",
        "tenant_id": "demo",
        "app_id": "code-001301",
        "task_id": "5b0c2f9e-4f5d-4a8e-9a53-2c1f0d7e8b11",
        "worker": "bulk@vm.0993f6",
    }
    assert scrub_secrets(None, "info", dict(event)) == event


def test_identifier_fields_still_mask_phone_numbers_and_free_text() -> None:
    cleaned = scrub_secrets(
        None, "info", {"event": "x", "app_id": "79161234512", "tenant_id": "code: 12345 ok"}
    )
    assert "79161234512" not in str(cleaned) and "12345" not in str(cleaned)
