"""Server side of the auth key exchange (core.telegram.org/mtproto/auth_key).

req_pq_multi -> resPQ, req_DH_params -> server_DH_params_ok, set_client_DH_params ->
dh_gen_ok. Every step checks the nonces of the previous ones; anything a real data centre
would refuse raises ``HandshakeError`` and the connection is closed.
"""

from __future__ import annotations

import os
import secrets
import time
from hashlib import sha1

from telethon.crypto import AES, AuthKey
from telethon.extensions import BinaryReader
from telethon.helpers import generate_key_data_from_nonce
from telethon.tl import functions, types
from telethon.tl.tlobject import TLObject

from .auth_keys import AuthKeyRecord, AuthKeyStore
from .rsa_keys import ServerRsaKey

# Telegram's 2048-bit safe prime and generator (core.telegram.org/mtproto/auth_key).
DH_PRIME = int(
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d2"
    "2530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454"
    "f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a69581105190"
    "7e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc46"
    "5b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d811"
    "5f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b",
    16,
)
DH_G = 3
DH_PRIME_BYTES = DH_PRIME.to_bytes(256, "big")
# g_a and g_b must lie in (2^(2048-64), dh_prime - 2^(2048-64)).
SAFETY_MARGIN = 2 ** (2048 - 64)


class HandshakeError(Exception):
    """The client broke the key exchange; the connection must be closed."""


def _random_prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if all(pow(base, candidate - 1, candidate) == 1 for base in (2, 3, 5, 7, 11, 13, 17)):
            return candidate


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _nonce_hash(new_nonce: int, number: int, key: AuthKey) -> int:
    return int(key.calc_new_nonce_hash(new_nonce, number))


class Handshake:
    """One client's key exchange on one connection; restarts on a new req_pq_multi."""

    def __init__(self, rsa_key: ServerRsaKey, keys: AuthKeyStore) -> None:
        self._rsa_key = rsa_key
        self._keys = keys
        self._reset()

    def _reset(self) -> None:
        self._nonce: int | None = None
        self._server_nonce = 0
        self._p = self._q = 0
        self._new_nonce: int | None = None
        self._a = 0
        self._tmp_key = self._tmp_iv = b""

    def answer(self, request: object) -> tuple[TLObject, AuthKeyRecord | None]:
        """The reply to one plain-text request, and the new key once the exchange is done."""
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._res_pq(request.nonce), None
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._server_dh_params(request), None
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._dh_gen(request)
        raise HandshakeError(f"{type(request).__name__} is not allowed without an auth key")

    def _res_pq(self, nonce: int) -> types.ResPQ:
        self._reset()
        self._nonce = nonce
        self._server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
        self._p, self._q = sorted((_random_prime(31), _random_prime(31)))
        return types.ResPQ(
            nonce=nonce,
            server_nonce=self._server_nonce,
            pq=_int_bytes(self._p * self._q),
            server_public_key_fingerprints=[self._rsa_key.fingerprint],
        )

    def _check_nonces(self, nonce: int, server_nonce: int) -> None:
        if self._nonce is None or nonce != self._nonce or server_nonce != self._server_nonce:
            raise HandshakeError("nonce mismatch")

    def _server_dh_params(self, request: functions.ReqDHParamsRequest) -> types.ServerDHParamsOk:
        self._check_nonces(request.nonce, request.server_nonce)
        if self._new_nonce is not None:
            raise HandshakeError("req_DH_params repeated")
        if request.public_key_fingerprint != self._rsa_key.fingerprint:
            raise HandshakeError("unknown RSA fingerprint")
        if (request.p, request.q) != (_int_bytes(self._p), _int_bytes(self._q)):
            raise HandshakeError("wrong factorisation of pq")
        inner = self._decrypt_pq_inner_data(request.encrypted_data)
        self._check_nonces(inner.nonce, inner.server_nonce)
        if (inner.pq, inner.p, inner.q) != (_int_bytes(self._p * self._q), request.p, request.q):
            raise HandshakeError("p_q_inner_data does not match")
        self._new_nonce = inner.new_nonce
        while True:
            self._a = int.from_bytes(os.urandom(256), "big")
            g_a = pow(DH_G, self._a, DH_PRIME)
            if SAFETY_MARGIN <= g_a <= DH_PRIME - SAFETY_MARGIN:
                break
        answer = bytes(
            types.ServerDHInnerData(
                nonce=inner.nonce,
                server_nonce=inner.server_nonce,
                g=DH_G,
                dh_prime=DH_PRIME_BYTES,
                g_a=g_a.to_bytes(256, "big"),
                server_time=int(time.time()),
            )
        )
        with_hash = sha1(answer).digest() + answer  # noqa: S324 (MTProto mandates SHA-1)
        with_hash += os.urandom(-len(with_hash) % 16)
        self._tmp_key, self._tmp_iv = generate_key_data_from_nonce(
            self._server_nonce, self._new_nonce
        )
        return types.ServerDHParamsOk(
            nonce=inner.nonce,
            server_nonce=inner.server_nonce,
            encrypted_answer=AES.encrypt_ige(with_hash, self._tmp_key, self._tmp_iv),
        )

    def _decrypt_pq_inner_data(self, encrypted: bytes) -> types.PQInnerData:
        plain = self._rsa_key.decrypt_raw(encrypted)
        if plain is None:
            raise HandshakeError("RSA block out of range")
        inner = self._read_hashed(plain)
        if not isinstance(inner, types.PQInnerData | types.PQInnerDataDc):
            raise HandshakeError("encrypted data is not p_q_inner_data")
        return inner

    @staticmethod
    def _read_hashed(plain: bytes) -> object:
        """Parse "sha1(data) + data + padding" and verify the hash."""
        reader = BinaryReader(plain[20:])
        try:
            obj = reader.tgread_object()
        except Exception as exc:  # any parse failure means tampered or garbage input
            raise HandshakeError("undecodable handshake payload") from exc
        length = reader.tell_position()
        digest = sha1(plain[20 : 20 + length]).digest()  # noqa: S324 (MTProto mandates SHA-1)
        if digest != plain[:20]:
            raise HandshakeError("handshake payload hash mismatch")
        return obj

    def _dh_gen(
        self, request: functions.SetClientDHParamsRequest
    ) -> tuple[TLObject, AuthKeyRecord | None]:
        self._check_nonces(request.nonce, request.server_nonce)
        if self._new_nonce is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        encrypted = request.encrypted_data
        if not encrypted or len(encrypted) % 16:
            raise HandshakeError("client DH data not block aligned")
        inner = self._read_hashed(AES.decrypt_ige(encrypted, self._tmp_key, self._tmp_iv))
        if not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError("encrypted data is not client_DH_inner_data")
        self._check_nonces(inner.nonce, inner.server_nonce)
        g_b = int.from_bytes(inner.g_b, "big")
        if not SAFETY_MARGIN <= g_b <= DH_PRIME - SAFETY_MARGIN:
            raise HandshakeError("g_b outside the safe range")
        key = AuthKey(pow(g_b, self._a, DH_PRIME).to_bytes(256, "big"))
        new_nonce = self._new_nonce
        # Telethon drops leading zero bytes of g^ab, so for such a key (1 in 256) its own
        # hash check fails whatever we answer and its sender starts a new exchange. We answer
        # dh_gen_retry and store nothing, so no key the client cannot use is kept; Telegram
        # itself would store the key and answer dh_gen_ok. The same answer serves an
        # auth_key_aux_hash collision, where the spec asks for it.
        record = self._keys.add(key.key) if key.key[0] else None
        if record is None:
            self._new_nonce = None
            return (
                types.DhGenRetry(
                    nonce=inner.nonce,
                    server_nonce=inner.server_nonce,
                    new_nonce_hash2=_nonce_hash(new_nonce, 2, key),
                ),
                None,
            )
        self._nonce = None  # the exchange is finished; its nonces are spent
        return (
            types.DhGenOk(
                nonce=inner.nonce,
                server_nonce=inner.server_nonce,
                new_nonce_hash1=_nonce_hash(new_nonce, 1, key),
            ),
            record,
        )
