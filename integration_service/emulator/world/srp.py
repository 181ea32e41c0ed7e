"""Two-step verification: the server half of Telegram's SRP-2048 (core.telegram.org/api/srp).

The world never keeps a password: only the verifier v = g^x mod p, where x is the
password run through the PH2 key-derivation. A login proves knowledge of x by the SRP
exchange: account.getPassword hands out B = k*v + g^b with a fresh srp_id, and
auth.checkPassword receives the client's A and M1, which the server recomputes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from telethon.tl import types

# The 2048-bit safe prime Telegram uses for SRP (and for MTProto's DH), with generator 3.
SRP_PRIME_HEX = (
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f"
    "48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c37"
    "20fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64"
    "2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4"
    "a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754"
    "fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4"
    "e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f"
    "0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b"
)
SRP_PRIME_BYTES = bytes.fromhex(SRP_PRIME_HEX)
SRP_PRIME = int(SRP_PRIME_HEX, 16)
SRP_G = 3
PBKDF2_ITERATIONS = 100_000
# every number goes into the hashes as a 256-byte big-endian string
NUM_BYTES = 256


def _h(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _salted(data: bytes, salt: bytes) -> bytes:
    """SH(data, salt) = H(salt | data | salt)."""
    return _h(salt, data, salt)


def _pad(number: int) -> bytes:
    return number.to_bytes(NUM_BYTES, "big")


def password_x(password: str, salt1: bytes, salt2: bytes) -> int:
    """x = PH2(password, salt1, salt2) read as a big-endian integer."""
    ph1 = _salted(_salted(password.encode("utf-8"), salt1), salt2)
    stretched = hashlib.pbkdf2_hmac("sha512", ph1, salt1, PBKDF2_ITERATIONS)
    return int.from_bytes(_salted(stretched, salt2), "big")


def multiplier_k() -> int:
    """k = H(p | g) with both padded to 256 bytes."""
    return int.from_bytes(_h(SRP_PRIME_BYTES, _pad(SRP_G)), "big")


def _is_good_exponent_result(value: int) -> bool:
    # Clients reject g^b values too close to 0 or p (see the SRP page's safety checks),
    # so the server never hands those out.
    low = 2048 - 64
    return value.bit_length() >= low and (SRP_PRIME - value).bit_length() >= low


@dataclass(frozen=True)
class PasswordRecord:
    """What the server keeps of a 2FA password."""

    salt1: bytes
    salt2: bytes
    verifier: int
    hint: str | None = None

    @classmethod
    def create(cls, password: str, hint: str | None = None) -> PasswordRecord:
        # Telegram's salt1 is the server's 8 random bytes extended by 32 from the client
        salt1 = secrets.token_bytes(40)
        salt2 = secrets.token_bytes(16)
        x = password_x(password, salt1, salt2)
        return cls(salt1, salt2, pow(SRP_G, x, SRP_PRIME), hint)

    def algo(self) -> types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow:
        return types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=self.salt1, salt2=self.salt2, g=SRP_G, p=SRP_PRIME_BYTES
        )


@dataclass(frozen=True)
class SrpChallenge:
    """One account.getPassword answer: the server's secret b and public B."""

    srp_id: int
    user_id: int
    auth_key_id: int
    b: int
    big_b: int
    record: PasswordRecord

    @classmethod
    def create(cls, user_id: int, auth_key_id: int, record: PasswordRecord) -> SrpChallenge:
        while True:
            b = int.from_bytes(secrets.token_bytes(NUM_BYTES), "big")
            g_b = pow(SRP_G, b, SRP_PRIME)
            if _is_good_exponent_result(g_b):
                break
        big_b = (multiplier_k() * record.verifier + g_b) % SRP_PRIME
        srp_id = secrets.randbits(63)
        return cls(srp_id, user_id, auth_key_id, b, big_b, record)

    def verify(self, a_bytes: bytes, m1: bytes) -> bool:
        """Recompute M1 from the client's A; constant-time compare with the client's."""
        big_a = int.from_bytes(a_bytes, "big")
        if not 1 < big_a < SRP_PRIME - 1:
            return False
        a_padded = _pad(big_a)
        b_padded = _pad(self.big_b)
        u = int.from_bytes(_h(a_padded, b_padded), "big")
        if u == 0:
            return False
        # S = (A * v^u)^b mod p -- equal to the client's (B - k g^x)^(a + u x)
        shared = pow(big_a * pow(self.record.verifier, u, SRP_PRIME) % SRP_PRIME, self.b, SRP_PRIME)
        session_key = _h(_pad(shared))
        p_g_mix = bytes(x ^ y for x, y in zip(_h(SRP_PRIME_BYTES), _h(_pad(SRP_G)), strict=True))
        expected = _h(
            p_g_mix,
            _h(self.record.salt1),
            _h(self.record.salt2),
            a_padded,
            b_padded,
            session_key,
        )
        return hmac.compare_digest(expected, m1)


def password_info(challenge: SrpChallenge | None) -> types.account.Password:
    """account.password: the current algo + SRP parameters, or 'no password'."""
    new_algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
        salt1=secrets.token_bytes(8), salt2=secrets.token_bytes(16), g=SRP_G, p=SRP_PRIME_BYTES
    )
    new_secure_algo = types.SecurePasswordKdfAlgoPBKDF2HMACSHA512iter100000(
        salt=secrets.token_bytes(8)
    )
    if challenge is None:
        return types.account.Password(
            new_algo=new_algo,
            new_secure_algo=new_secure_algo,
            secure_random=secrets.token_bytes(32),
            has_password=False,
        )
    return types.account.Password(
        new_algo=new_algo,
        new_secure_algo=new_secure_algo,
        secure_random=secrets.token_bytes(32),
        has_password=True,
        current_algo=challenge.record.algo(),
        srp_B=_pad(challenge.big_b),
        srp_id=challenge.srp_id,
        hint=challenge.record.hint,
    )
