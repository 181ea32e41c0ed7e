"""Choose and build the session cipher named by the settings, once per process."""

from __future__ import annotations

from pathlib import Path

from integration_service.crypto.cipher import CipherMisconfigured, SessionCipher
from integration_service.crypto.local_keyring import LocalKeyring
from integration_service.crypto.vault_transit import VaultTransitCipher
from integration_service.settings import Settings


def default_state_dir(settings: Settings) -> Path:
    """Where the development key file lives when no state dir is given: beside sessions."""
    return settings.sessions_base_path.parent


def build_cipher(
    settings: Settings, *, state_dir: Path | None = None, ensure_key: bool = True
) -> SessionCipher:
    """The cipher for SESSION_CIPHER: "local" (default) or "vault".

    For Vault, `ensure_key` creates the derived transit key if it is missing, so a fresh
    OpenBao works with no manual step; it is one request, made at worker start.
    """
    if settings.session_cipher == "vault":
        if settings.vault_token is None:
            raise CipherMisconfigured("SESSION_CIPHER=vault needs VAULT_TOKEN")
        cipher = VaultTransitCipher(
            addr=settings.vault_addr,
            token=settings.vault_token.get_secret_value(),
            mount=settings.vault_transit_mount,
            key_name=settings.vault_transit_key,
        )
        if ensure_key:
            cipher.ensure_key()
        return cipher
    if settings.local_keyring is not None:
        return LocalKeyring.from_spec(settings.local_keyring.get_secret_value())
    return LocalKeyring.from_state_dir(state_dir or default_state_dir(settings))
