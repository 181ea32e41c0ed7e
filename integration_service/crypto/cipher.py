"""The contract every session-string cipher keeps, and the errors it raises.

A ciphertext is bound to the row it belongs to through `context` (associated data, the
caller passes f"{tenant_id}/{app_id}".encode()), so a ciphertext copied into another
tenant's row fails to decrypt instead of handing one tenant another tenant's account.

Error messages never contain plaintext, keys or tokens: they travel into logs, task
results and the dead-letter queue.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from integration_service.errors import PermanentError, RetryableError, ServiceError


class CipherError(ServiceError):
    """Root of every cipher failure; never carries plaintext or key material.

    Raised as itself for a backend answer nobody classified: not retried.
    """

    code = "cipher_error"


class DecryptionFailed(CipherError, PermanentError):
    """The ciphertext is malformed, tampered with, or bound to another context."""

    code = "decryption_failed"


class UnknownKey(CipherError, PermanentError):
    """The ciphertext names a key (version) this cipher does not hold."""

    code = "unknown_key"


class CipherMisconfigured(CipherError, PermanentError):
    """The backend refuses us for good: bad token, missing mount, unsuitable key."""

    code = "cipher_misconfigured"


class CipherUnavailable(CipherError, RetryableError):
    """The backend cannot be reached or failed on its side; retry later."""

    code = "cipher_unavailable"


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """A ciphertext as stored, and the id of the key version that produced it."""

    text: str
    key_id: str

    def __repr__(self) -> str:
        # Ciphertext is not secret, but repr stays short so logs of whole rows stay readable.
        return f"Ciphertext(key_id={self.key_id!r}, length={len(self.text)})"


@dataclass(frozen=True, slots=True)
class RewrapItem:
    """One stored ciphertext and the context it is bound to, for batch re-wrapping."""

    text: str
    context: bytes


@dataclass(frozen=True, slots=True)
class EncryptItem:
    """One plaintext and the context to bind it to, for batch encryption."""

    plaintext: str
    context: bytes

    def __repr__(self) -> str:
        return f"EncryptItem(context={self.context!r}, length={len(self.plaintext)})"


def require_context(context: bytes) -> None:
    """Refuse a missing binding: an unbound ciphertext could be pasted into any row."""
    if not isinstance(context, bytes) or not context:
        raise ValueError("context must be non-empty bytes, e.g. b'tenant_id/app_id'")


# A batch answers item by item: one damaged row must not stop a rotation of a million.
BatchResult = Ciphertext | CipherError


class SessionCipher(abc.ABC):
    """Encrypts session strings; implementations: local AES-GCM keyring, Vault transit."""

    @abc.abstractmethod
    def encrypt(self, plaintext: str, *, context: bytes) -> Ciphertext:
        """Encrypt under the newest key version, bound to `context`."""

    @abc.abstractmethod
    def decrypt(self, text: str, *, context: bytes) -> str:
        """Decrypt a ciphertext produced by any key version this cipher still holds."""

    @abc.abstractmethod
    def rewrap(self, text: str, *, context: bytes) -> Ciphertext:
        """Re-encrypt under the newest key version, without exposing plaintext if possible."""

    @abc.abstractmethod
    def current_key_id(self) -> str:
        """Id of the key version new ciphertexts are made with."""

    @abc.abstractmethod
    def rotate(self) -> str:
        """Create a new key version, make it current and return its id."""

    @abc.abstractmethod
    def key_id_of(self, text: str) -> str:
        """The key id a stored ciphertext names, read from its prefix (no decryption)."""

    def encrypt_batch(self, items: Sequence[EncryptItem]) -> list[BatchResult]:
        """Encrypt many; result i answers item i, a failure is returned, not raised.

        CipherUnavailable is still raised: when the backend is down, no item can succeed.
        """
        results: list[BatchResult] = []
        for item in items:
            try:
                results.append(self.encrypt(item.plaintext, context=item.context))
            except CipherUnavailable:
                raise
            except CipherError as error:
                results.append(error)
        return results

    def rewrap_batch(self, items: Sequence[RewrapItem]) -> list[BatchResult]:
        """Re-wrap many under the newest key; result i answers item i, as encrypt_batch."""
        results: list[BatchResult] = []
        for item in items:
            try:
                results.append(self.rewrap(item.text, context=item.context))
            except CipherUnavailable:
                raise
            except CipherError as error:
                results.append(error)
        return results
