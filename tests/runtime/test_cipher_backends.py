"""What only one backend does: key files and LOCAL_KEYRING, Vault key checks, the factory."""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path

import pytest

from integration_service.crypto import (
    CipherMisconfigured,
    LocalKeyring,
    VaultTransitCipher,
    build_cipher,
)
from integration_service.crypto.local_keyring import KEY_FILE_NAME, format_keyring
from integration_service.settings import load_settings
from tests.support.openbao import VaultEndpoint

CONTEXT = b"tenant-1/app-1"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def spec(*ids: str) -> tuple[str, list[bytes]]:
    keys = [os.urandom(32) for _ in ids]
    return ",".join(
        f"{i}:{base64.b64encode(k).decode()}" for i, k in zip(ids, keys, strict=True)
    ), keys


def test_development_key_file_is_created_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    keyring = LocalKeyring.from_state_dir(state)
    key_file = state / KEY_FILE_NAME
    assert keyring.key_file == key_file
    assert mode_of(key_file) == 0o600
    assert mode_of(state) == 0o700
    assert keyring.current_key_id() == "k1"
    # A second process loading the same state dir gets the same key, not a new one.
    again = LocalKeyring.from_state_dir(state)
    sealed = keyring.encrypt("session", context=CONTEXT)
    assert again.decrypt(sealed.text, context=CONTEXT) == "session"


def test_rotation_is_persisted_and_seen_by_a_sibling_process(tmp_path: Path) -> None:
    first = LocalKeyring.from_state_dir(tmp_path)
    sibling = LocalKeyring.from_state_dir(tmp_path)
    new_key = first.rotate()
    assert new_key == "k2"
    assert mode_of(tmp_path / KEY_FILE_NAME) == 0o600
    sealed = first.encrypt("session", context=CONTEXT)
    # The sibling loaded before the rotation; it reloads the file on an unknown key id.
    assert sibling.decrypt(sealed.text, context=CONTEXT) == "session"
    assert sibling.current_key_id() == "k2"
    assert LocalKeyring.from_state_dir(tmp_path).key_ids() == ["k1", "k2"]


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    LocalKeyring.from_state_dir(tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(CipherMisconfigured, match="0600"):
        LocalKeyring.from_state_dir(tmp_path)


def test_env_keyring_last_key_encrypts_and_all_decrypt() -> None:
    text, _ = spec("old", "new")
    keyring = LocalKeyring.from_spec(text)
    assert keyring.current_key_id() == "new"
    assert keyring.key_ids() == ["old", "new"]
    sealed = keyring.encrypt("session", context=CONTEXT)
    assert sealed.text.startswith("local:new:")
    assert keyring.decrypt(sealed.text, context=CONTEXT) == "session"


def test_env_keyring_refuses_in_memory_rotation() -> None:
    text, _ = spec("k1")
    keyring = LocalKeyring.from_spec(text)
    with pytest.raises(CipherMisconfigured, match="LOCAL_KEYRING"):
        keyring.rotate()
    assert keyring.current_key_id() == "k1"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "no keys"),
        ("k1", "expected id:base64key"),
        ("k1:***", "not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes"),
        ("k1:{key},k1:{key}", "duplicate"),
    ],
)
def test_bad_env_keyring_names_the_problem_not_the_key(bad: str, reason: str) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    value = bad.format(key=key)
    with pytest.raises(CipherMisconfigured, match=reason) as caught:
        LocalKeyring.from_spec(value)
    assert key not in str(caught.value)


def test_format_keyring_round_trips(tmp_path: Path) -> None:
    text, keys = spec("a", "b")
    assert LocalKeyring.from_spec(
        format_keyring(list(zip(["a", "b"], keys, strict=True)))
    ).key_ids() == ["a", "b"]
    assert LocalKeyring.from_spec(text).key_ids() == ["a", "b"]


def test_vault_refuses_a_key_without_derivation(openbao: VaultEndpoint) -> None:
    name = f"plain-{uuid.uuid4().hex[:8]}"
    cipher = VaultTransitCipher(addr=openbao.addr, token=openbao.token, key_name=name)
    cipher._client.secrets.transit.create_key(name=name)  # an operator's mistake
    with pytest.raises(CipherMisconfigured, match="not derived"):
        cipher.ensure_key()


def test_vault_bad_token_is_a_permanent_error(openbao: VaultEndpoint) -> None:
    cipher = VaultTransitCipher(addr=openbao.addr, token="wrong-token")
    with pytest.raises(CipherMisconfigured) as caught:
        cipher.encrypt("session", context=CONTEXT)
    assert not caught.value.retryable
    assert "wrong-token" not in str(caught.value)


def test_vault_key_ids_are_transit_versions(vault_cipher: VaultTransitCipher) -> None:
    assert vault_cipher.current_key_id() == "v1"
    assert vault_cipher.rotate() == "v2"
    assert vault_cipher.encrypt("s", context=CONTEXT).text.startswith("vault:v2:")


def test_factory_builds_a_local_keyring_by_default(tmp_path: Path) -> None:
    settings = load_settings(session_cipher="local", local_keyring=None)
    cipher = build_cipher(settings, state_dir=tmp_path)
    assert isinstance(cipher, LocalKeyring)
    assert (tmp_path / KEY_FILE_NAME).exists()


def test_factory_prefers_local_keyring_variable(tmp_path: Path) -> None:
    text, _ = spec("env1")
    cipher = build_cipher(load_settings(local_keyring=text), state_dir=tmp_path)
    assert cipher.current_key_id() == "env1"
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_factory_builds_vault_and_creates_the_key(openbao: VaultEndpoint) -> None:
    key = f"factory-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        session_cipher="vault",
        vault_addr=openbao.addr,
        vault_token=openbao.token,
        vault_transit_key=key,
    )
    cipher = build_cipher(settings)
    assert isinstance(cipher, VaultTransitCipher)
    sealed = cipher.encrypt("session", context=CONTEXT)
    assert cipher.decrypt(sealed.text, context=CONTEXT) == "session"


def test_factory_vault_without_token_is_misconfigured() -> None:
    with pytest.raises(CipherMisconfigured, match="VAULT_TOKEN"):
        build_cipher(load_settings(session_cipher="vault", vault_token=None))
