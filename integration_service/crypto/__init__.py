"""Encryption of session strings: one SessionCipher contract, local and Vault backends."""

from integration_service.crypto.cipher import (
    BatchResult,
    CipherError,
    CipherMisconfigured,
    Ciphertext,
    CipherUnavailable,
    DecryptionFailed,
    EncryptItem,
    RewrapItem,
    SessionCipher,
    UnknownKey,
)
from integration_service.crypto.factory import build_cipher
from integration_service.crypto.local_keyring import LocalKeyring
from integration_service.crypto.vault_transit import VaultTransitCipher

__all__ = [
    "BatchResult",
    "CipherError",
    "CipherMisconfigured",
    "CipherUnavailable",
    "Ciphertext",
    "DecryptionFailed",
    "EncryptItem",
    "LocalKeyring",
    "RewrapItem",
    "SessionCipher",
    "UnknownKey",
    "VaultTransitCipher",
    "build_cipher",
]
