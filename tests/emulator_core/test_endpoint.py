"""Loading emulator.json into a TelegramEndpoint and applying it to Telethon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from telethon.crypto import rsa as telethon_rsa
from telethon.sessions import StringSession

from integration_service.emulator.rsa_keys import generate_rsa_key
from integration_service.telegram.endpoint import (
    EndpointConfigError,
    TelegramEndpoint,
    apply_to_session,
    load_endpoint,
    register_rsa_key,
)


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_endpoint_round_trip_registration_and_session(tmp_path: Path) -> None:
    key = generate_rsa_key()
    path = _write(
        tmp_path / "emulator.json",
        {"host": "127.0.0.1", "port": 4444, "dc_id": 2, "rsa_public_key_pem": key.public_pem},
    )
    endpoint = load_endpoint(path)
    assert endpoint == TelegramEndpoint("127.0.0.1", 4444, 2, key.public_pem)
    register_rsa_key(endpoint)
    register_rsa_key(endpoint)  # idempotent
    assert key.fingerprint in telethon_rsa._server_keys
    assert telethon_rsa.encrypt(key.fingerprint, b"x" * 32) is not None
    session = StringSession()
    apply_to_session(session, endpoint)
    assert (session.dc_id, session.server_address, session.port) == (2, "127.0.0.1", 4444)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        json.dumps({"host": "127.0.0.1", "port": 1, "dc_id": 2}),
        json.dumps({"host": "h", "port": 70000, "dc_id": 2, "rsa_public_key_pem": "x"}),
        json.dumps({"host": "h", "port": "abc", "dc_id": 2, "rsa_public_key_pem": "x"}),
    ],
)
def test_malformed_emulator_json_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(content)
    with pytest.raises(EndpointConfigError):
        load_endpoint(path)


def test_missing_emulator_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EndpointConfigError):
        load_endpoint(tmp_path / "absent.json")
