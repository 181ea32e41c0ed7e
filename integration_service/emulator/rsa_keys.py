"""The data centre's RSA key: the client encrypts its half of the key exchange with it.

Clients only trust keys they were given out of band, so the public half is published in
``emulator.json`` and registered in each Telethon process (``telethon.crypto.rsa.add_key``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from telethon.tl.tlobject import TLObject

RSA_BITS = 2048
# Telethon pads "sha1(data) + data" to 255 bytes before the raw RSA operation.
RSA_PLAINTEXT_BYTES = 255


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass(frozen=True)
class ServerRsaKey:
    """A private RSA key with Telegram's fingerprint of its public half."""

    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        """PKCS#1 PEM ("BEGIN RSA PUBLIC KEY"), the form Telegram clients embed."""
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
            .decode("ascii")
        )

    @property
    def fingerprint(self) -> int:
        """Lower 64 bits of sha1(n, e) serialised as TL bytes, as a signed long."""
        numbers = self.private_key.public_key().public_numbers()
        blob = TLObject.serialize_bytes(_int_bytes(numbers.n)) + TLObject.serialize_bytes(
            _int_bytes(numbers.e)
        )
        digest = sha1(blob).digest()  # noqa: S324 (Telegram's fingerprint is SHA-1 based)
        return int(struct.unpack("<q", digest[-8:])[0])

    def decrypt_raw(self, cipher_text: bytes) -> bytes | None:
        """Textbook RSA decryption of one 256-byte block; None if it is out of range."""
        numbers = self.private_key.private_numbers()
        modulus = numbers.public_numbers.n
        value = int.from_bytes(cipher_text, "big")
        if len(cipher_text) != RSA_BITS // 8 or value >= modulus:
            return None
        # Chinese remainder theorem: two half-size exponentiations instead of one.
        m1 = pow(value, numbers.dmp1, numbers.p)
        m2 = pow(value, numbers.dmq1, numbers.q)
        plain = m2 + numbers.q * ((numbers.iqmp * (m1 - m2)) % numbers.p)
        if plain.bit_length() > RSA_PLAINTEXT_BYTES * 8:
            return None
        return plain.to_bytes(RSA_PLAINTEXT_BYTES, "big")


def generate_rsa_key() -> ServerRsaKey:
    return ServerRsaKey(rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS))


def load_or_create_rsa_key(path: Path) -> ServerRsaKey:
    """Keep one key per state directory so workers' registered key survives restarts."""
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size != RSA_BITS:
            raise ValueError(f"{path} does not hold a {RSA_BITS}-bit RSA private key")
        return ServerRsaKey(loaded)
    key = generate_rsa_key()
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)
    return key
