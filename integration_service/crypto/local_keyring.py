"""AES-256-GCM keyring: the development default cipher, and the fallback without Vault.

The keyring comes from LOCAL_KEYRING ("id1:base64key,id2:base64key"; the last key
encrypts, every key decrypts) or, when that is unset, from a key file under a state
directory that is created on first use with a fresh random key. No key ever lives in the
repository. A ciphertext names its key: `local:<key_id>:<base64(nonce | ciphertext+tag)>`.

A key file is local to one machine, so it suits one-host development; a fleet shares
LOCAL_KEYRING or uses Vault.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from integration_service.crypto.cipher import (
    CipherMisconfigured,
    Ciphertext,
    DecryptionFailed,
    SessionCipher,
    UnknownKey,
    require_context,
)

PREFIX = "local"
KEY_FILE_NAME = "session-keyring"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NUMBERED_ID = re.compile(r"^k(\d+)$")


def parse_keyring(spec: str, *, source: str = "LOCAL_KEYRING") -> list[tuple[str, bytes]]:
    """Parse "id:base64key,..." (commas or newlines); errors name the entry, never the key."""
    entries = [part.strip() for part in re.split(r"[,\n]", spec) if part.strip()]
    if not entries:
        raise CipherMisconfigured(f"{source} holds no keys")
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.partition(":")
        if not separator or not _KEY_ID.match(key_id):
            raise CipherMisconfigured(f"{source} entry {number}: expected id:base64key")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CipherMisconfigured(f"{source} entry {number}: key is not base64") from None
        if len(key) != KEY_BYTES:
            raise CipherMisconfigured(f"{source} entry {number}: key must be {KEY_BYTES} bytes")
        if any(existing == key_id for existing, _ in keys):
            raise CipherMisconfigured(f"{source} entry {number}: duplicate key id {key_id!r}")
        keys.append((key_id, key))
    return keys


def format_keyring(keys: Sequence[tuple[str, bytes]]) -> str:
    """The LOCAL_KEYRING / key-file form of a keyring, one entry per line."""
    return "".join(f"{key_id}:{base64.b64encode(key).decode()}\n" for key_id, key in keys)


def _next_key_id(existing: Sequence[str]) -> str:
    numbers = [int(match.group(1)) for match in map(_NUMBERED_ID.match, existing) if match]
    candidate = f"k{max(numbers, default=len(existing)) + 1}"
    while candidate in existing:
        candidate = f"k{secrets.token_hex(4)}"
    return candidate


class LocalKeyring(SessionCipher):
    """AES-256-GCM with a list of keys; the context is the GCM associated data."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], *, key_file: Path | None = None):
        if not keys:
            raise CipherMisconfigured("a local keyring needs at least one key")
        self._lock = threading.Lock()
        self._key_file = key_file
        self._install(keys)

    @classmethod
    def from_spec(cls, spec: str) -> LocalKeyring:
        """Keyring from the LOCAL_KEYRING value; rotation then happens in that variable."""
        return cls(parse_keyring(spec))

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> LocalKeyring:
        """Keyring from `<state_dir>/session-keyring`, created (0600, dir 0700) if missing."""
        key_file = state_dir / KEY_FILE_NAME
        with _file_lock(key_file):
            if not key_file.exists():
                _write_key_file(key_file, [("k1", AESGCM.generate_key(bit_length=256))])
            keys = _read_key_file(key_file)
        return cls(keys, key_file=key_file)

    @property
    def key_file(self) -> Path | None:
        return self._key_file

    def _install(self, keys: Sequence[tuple[str, bytes]]) -> None:
        # Replace whole objects so readers on other threads never see a half-built keyring.
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        self._keys = list(keys)
        self._current = keys[-1][0]

    def current_key_id(self) -> str:
        return self._current

    def key_ids(self) -> list[str]:
        return [key_id for key_id, _ in self._keys]

    def key_id_of(self, text: str) -> str:
        prefix, _, rest = text.partition(":")
        key_id, separator, _ = rest.partition(":")
        if prefix != PREFIX or not separator or not key_id:
            raise DecryptionFailed("not a local keyring ciphertext")
        return key_id

    def encrypt(self, plaintext: str, *, context: bytes) -> Ciphertext:
        require_context(context)
        key_id = self._current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, plaintext.encode("utf-8"), context)
        blob = base64.b64encode(nonce + sealed).decode("ascii")
        return Ciphertext(text=f"{PREFIX}:{key_id}:{blob}", key_id=key_id)

    def decrypt(self, text: str, *, context: bytes) -> str:
        require_context(context)
        key_id = self.key_id_of(text)
        aead = self._cipher_for(key_id)
        try:
            raw = base64.b64decode(text.split(":", 2)[2], validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionFailed("ciphertext is not valid base64") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("ciphertext is too short")
        try:
            data = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        except InvalidTag:
            raise DecryptionFailed(
                "authentication failed: ciphertext tampered with or bound to another context"
            ) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionFailed("decrypted data is not UTF-8 text") from None

    def rewrap(self, text: str, *, context: bytes) -> Ciphertext:
        # Locally there is no key service to re-wrap for us: the plaintext exists only
        # inside this call, which is the most a process-local keyring can offer.
        return self.encrypt(self.decrypt(text, context=context), context=context)

    def rotate(self) -> str:
        """Append a fresh key and make it current; persisted first when file-backed.

        An env-configured keyring refuses: a key born in one process's memory dies with
        it, and every row re-wrapped under it would be lost to the rest of the fleet.
        Add a key to LOCAL_KEYRING and restart instead.
        """
        if self._key_file is None:
            raise CipherMisconfigured(
                "LOCAL_KEYRING keyrings rotate by appending a key to LOCAL_KEYRING"
            )
        with self._lock, _file_lock(self._key_file):
            # Another process may have rotated since we loaded: build on the file's keys.
            keys = _read_key_file(self._key_file)
            new_id = _next_key_id([key_id for key_id, _ in keys])
            keys.append((new_id, AESGCM.generate_key(bit_length=256)))
            _write_key_file(self._key_file, keys)
            self._install(keys)
        return new_id

    def _cipher_for(self, key_id: str) -> AESGCM:
        aead = self._ciphers.get(key_id)
        if aead is None and self._key_file is not None:
            # A sibling process may have rotated the shared key file after we loaded it.
            with self._lock, _file_lock(self._key_file):
                self._install(_read_key_file(self._key_file))
            aead = self._ciphers.get(key_id)
        if aead is None:
            raise UnknownKey(f"key {key_id!r} is not in the local keyring")
        return aead


@contextmanager
def _file_lock(key_file: Path) -> Iterator[None]:
    """Serialise creation and rotation of a key file across processes."""
    key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_path = key_file.with_name(key_file.name + ".lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _read_key_file(key_file: Path) -> list[tuple[str, bytes]]:
    mode = stat.S_IMODE(key_file.stat().st_mode)
    if mode & 0o077:
        # Like ssh with a private key: a key others can read is not a secret any more.
        raise CipherMisconfigured(f"key file {key_file} has mode {mode:o}; it must be 0600")
    return parse_keyring(key_file.read_text(encoding="ascii"), source=str(key_file))


def _write_key_file(key_file: Path, keys: Sequence[tuple[str, bytes]]) -> None:
    # Write a sibling then rename, so a crash never leaves a truncated keyring behind.
    temporary = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a leftover temporary file may carry a looser mode
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(format_keyring(keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, key_file)
