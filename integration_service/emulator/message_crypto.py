"""MTProto 2.0 message encryption as the server does it (core.telegram.org/mtproto/description).

Client messages are checked exactly like a data centre checks them: msg_key must equal the
SHA-256 based key over the decrypted plaintext, the declared length must fit, and padding must
be 12..1024 bytes. A failed check is reported as ``None``, never as partial data.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from hashlib import sha256

from telethon.crypto import AES

from .auth_keys import AuthKeyRecord

_HEADER = struct.Struct("<qqqii")  # salt, session_id, msg_id, seq_no, length
MIN_PADDING = 12
MAX_PADDING = 1024


@dataclass(slots=True)
class ClientMessage:
    """One decrypted client message, before its body is interpreted."""

    salt: int
    session_id: int
    msg_id: int
    seq_no: int
    body: bytes


def _aes_key_iv(auth_key: bytes, msg_key: bytes, x: int) -> tuple[bytes, bytes]:
    sha_a = sha256(msg_key + auth_key[x : x + 36]).digest()
    sha_b = sha256(auth_key[x + 40 : x + 76] + msg_key).digest()
    return sha_a[:8] + sha_b[8:24] + sha_a[24:32], sha_b[:8] + sha_a[8:24] + sha_b[24:32]


def decrypt_client_message(record: AuthKeyRecord, packet: bytes) -> ClientMessage | None:
    """Decrypt key_id + msg_key + ciphertext from a client; None if any check fails."""
    cipher_text = packet[24:]
    if len(cipher_text) < _HEADER.size + MIN_PADDING or len(cipher_text) % 16:
        return None
    msg_key = packet[8:24]
    aes_key, aes_iv = _aes_key_iv(record.key, msg_key, 0)
    plain = AES.decrypt_ige(cipher_text, aes_key, aes_iv)
    if sha256(record.client_msg_key_part + plain).digest()[8:24] != msg_key:
        return None
    salt, session_id, msg_id, seq_no, length = _HEADER.unpack_from(plain)
    padding = len(plain) - _HEADER.size - length
    if length < 0 or length % 4 or not MIN_PADDING <= padding <= MAX_PADDING:
        return None
    return ClientMessage(
        salt, session_id, msg_id, seq_no, plain[_HEADER.size : _HEADER.size + length]
    )


def encrypt_server_message(
    record: AuthKeyRecord,
    salt: int,
    session_id: int,
    msg_id: int,
    seq_no: int,
    body: bytes,
) -> bytes:
    """Encrypt one server message for the client (x = 8 in the key derivation)."""
    plain = _HEADER.pack(salt, session_id, msg_id, seq_no, len(body)) + body
    plain += os.urandom(-(len(plain) + MIN_PADDING) % 16 + MIN_PADDING)
    msg_key = sha256(record.server_msg_key_part + plain).digest()[8:24]
    aes_key, aes_iv = _aes_key_iv(record.key, msg_key, 8)
    encrypted = bytes(AES.encrypt_ige(plain, aes_key, aes_iv))
    return struct.pack("<Q", record.key_id) + msg_key + encrypted
