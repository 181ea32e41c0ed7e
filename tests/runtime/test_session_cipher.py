"""The SessionCipher contract, run against both backends: local keyring and Vault transit."""

from __future__ import annotations

import secrets

import pytest

from integration_service.crypto import (
    CipherError,
    Ciphertext,
    CipherUnavailable,
    DecryptionFailed,
    EncryptItem,
    RewrapItem,
    SessionCipher,
    UnknownKey,
    VaultTransitCipher,
)
from tests.support.openbao import OpenBaoDevServer, free_port

CONTEXT = b"tenant-1/app-1"


def session_string(length: int) -> str:
    """Something shaped like a Telethon StringSession: version digit + urlsafe base64."""
    body = secrets.token_urlsafe(length)
    return ("1" + body)[:length]


def tamper(text: str) -> str:
    """Flip one base64 character in the middle of the ciphertext body."""
    head, body = text.rsplit(":", 1)
    middle = len(body) // 2
    replacement = "A" if body[middle] != "A" else "B"
    return f"{head}:{body[:middle]}{replacement}{body[middle + 1 :]}"


def assert_no_plaintext(error: BaseException, plaintext: str) -> None:
    rendered = f"{error} {error!r} {error.args!r}"
    assert plaintext not in rendered
    # Not even a recognisable fragment of it.
    for start in range(0, len(plaintext) - 12, 7):
        assert plaintext[start : start + 12] not in rendered


@pytest.mark.parametrize("length", [68, 800, 10_000])
def test_round_trip_keeps_the_text_and_names_the_key(cipher: SessionCipher, length: int) -> None:
    plaintext = session_string(length)
    sealed = cipher.encrypt(plaintext, context=CONTEXT)
    assert plaintext not in sealed.text
    assert sealed.key_id == cipher.current_key_id()
    assert cipher.key_id_of(sealed.text) == sealed.key_id
    assert cipher.decrypt(sealed.text, context=CONTEXT) == plaintext


def test_same_plaintext_encrypts_differently_each_time(cipher: SessionCipher) -> None:
    plaintext = session_string(68)
    first = cipher.encrypt(plaintext, context=CONTEXT)
    second = cipher.encrypt(plaintext, context=CONTEXT)
    assert first.text != second.text


def test_ciphertext_moved_to_another_row_fails(cipher: SessionCipher) -> None:
    plaintext = session_string(800)
    sealed = cipher.encrypt(plaintext, context=CONTEXT)
    with pytest.raises(DecryptionFailed) as caught:
        cipher.decrypt(sealed.text, context=b"tenant-2/app-1")
    assert_no_plaintext(caught.value, plaintext)


def test_tampered_ciphertext_fails(cipher: SessionCipher) -> None:
    plaintext = session_string(800)
    sealed = cipher.encrypt(plaintext, context=CONTEXT)
    with pytest.raises(DecryptionFailed) as caught:
        cipher.decrypt(tamper(sealed.text), context=CONTEXT)
    assert_no_plaintext(caught.value, plaintext)


def test_unknown_key_version_is_named_as_such(cipher: SessionCipher) -> None:
    sealed = cipher.encrypt(session_string(68), context=CONTEXT)
    prefix, _, body = sealed.text.split(":", 2)
    with pytest.raises(UnknownKey):
        cipher.decrypt(f"{prefix}:v999:{body}", context=CONTEXT)


def test_foreign_or_garbled_ciphertext_fails(cipher: SessionCipher) -> None:
    for text in ["", "plain session", "vault", "local:k1", "other:v1:AAAA"]:
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(text, context=CONTEXT)


def test_empty_context_is_refused(cipher: SessionCipher) -> None:
    with pytest.raises(ValueError, match="context"):
        cipher.encrypt("x", context=b"")


def test_rotate_then_old_ciphertexts_still_decrypt(cipher: SessionCipher) -> None:
    old_plaintext = session_string(800)
    old = cipher.encrypt(old_plaintext, context=CONTEXT)
    new_key = cipher.rotate()
    assert new_key != old.key_id
    assert cipher.current_key_id() == new_key
    assert cipher.decrypt(old.text, context=CONTEXT) == old_plaintext
    assert cipher.encrypt("fresh", context=CONTEXT).key_id == new_key


def test_rewrap_moves_to_the_new_key(cipher: SessionCipher) -> None:
    plaintext = session_string(10_000)
    old = cipher.encrypt(plaintext, context=CONTEXT)
    new_key = cipher.rotate()
    moved = cipher.rewrap(old.text, context=CONTEXT)
    assert moved.key_id == new_key
    assert cipher.key_id_of(moved.text) == new_key
    assert cipher.decrypt(moved.text, context=CONTEXT) == plaintext
    with pytest.raises(DecryptionFailed) as caught:
        cipher.rewrap(old.text, context=b"tenant-2/app-1")
    assert_no_plaintext(caught.value, plaintext)


def test_batch_rewrap_answers_item_by_item(cipher: SessionCipher) -> None:
    rows = {f"tenant-{n}/app-{n}".encode(): session_string(68 + n * 40) for n in range(25)}
    sealed = {context: cipher.encrypt(text, context=context) for context, text in rows.items()}
    new_key = cipher.rotate()
    items = [RewrapItem(text=c.text, context=context) for context, c in sealed.items()]
    damaged = RewrapItem(text=tamper(items[0].text), context=items[0].context)
    results = cipher.rewrap_batch([*items, damaged])
    assert len(results) == len(items) + 1
    for item, result in zip(items, results, strict=False):
        assert isinstance(result, Ciphertext)
        assert result.key_id == new_key
        assert cipher.decrypt(result.text, context=item.context) == rows[item.context]
    assert isinstance(results[-1], DecryptionFailed)
    assert_no_plaintext(results[-1], rows[damaged.context])


def test_batch_encrypt_matches_single_encrypt(cipher: SessionCipher) -> None:
    items = [EncryptItem(session_string(300), f"t/{n}".encode()) for n in range(12)]
    results = cipher.encrypt_batch(items)
    assert len(results) == len(items)
    for item, result in zip(items, results, strict=True):
        assert isinstance(result, Ciphertext)
        assert result.key_id == cipher.current_key_id()
        assert cipher.decrypt(result.text, context=item.context) == item.plaintext


def test_reprs_never_show_the_plaintext(cipher: SessionCipher) -> None:
    plaintext = session_string(68)
    item = EncryptItem(plaintext, CONTEXT)
    assert plaintext not in repr(item)
    assert plaintext not in repr(cipher.encrypt(plaintext, context=CONTEXT))


def test_vault_on_a_closed_port_is_unavailable_and_retryable() -> None:
    cipher = VaultTransitCipher(addr=f"http://127.0.0.1:{free_port()}", token="t", timeout=2)
    plaintext = session_string(68)
    with pytest.raises(CipherUnavailable) as caught:
        cipher.encrypt(plaintext, context=CONTEXT)
    assert caught.value.retryable
    assert_no_plaintext(caught.value, plaintext)
    with pytest.raises(CipherUnavailable):
        cipher.decrypt("vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", context=CONTEXT)
    with pytest.raises(CipherUnavailable):
        cipher.rewrap_batch([RewrapItem("vault:v1:AAAAAAAA", CONTEXT)])
    with pytest.raises(CipherUnavailable):
        cipher.current_key_id()


def test_vault_stopping_mid_use_is_unavailable() -> None:
    server = OpenBaoDevServer().start()
    try:
        server.enable_transit()
        cipher = VaultTransitCipher(addr=server.addr, token=server.root_token, timeout=2)
        cipher.ensure_key()
        plaintext = session_string(800)
        sealed = cipher.encrypt(plaintext, context=CONTEXT)
    finally:
        server.stop()
    with pytest.raises(CipherUnavailable) as caught:
        cipher.decrypt(sealed.text, context=CONTEXT)
    assert isinstance(caught.value, CipherError)
    assert_no_plaintext(caught.value, plaintext)
