"""Vault (or OpenBao) transit: the production cipher; keys never leave Vault.

Binding to the row: the transit key is created with `derived=true` and every call passes
`context`, so Vault derives a per-row key (HKDF) from it. `associated_data` was the other
candidate, but OpenBao 2.x ignores it on rewrap (every rewrap of an AAD-bound ciphertext
fails authentication), and rotation without rewrap would expose every plaintext to us.

key_id is the version Vault writes into the ciphertext: "vault:v3:..." -> "v3".
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hvac
import requests
from hvac import exceptions as vault_errors

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
    require_context,
)

PREFIX = "vault"
_T = TypeVar("_T")
# Vault's own words for failures the caller handles differently; anything else is generic.
_UNKNOWN_KEY_MARKERS = ("version is too new", "disallowed by policy")
# What hvac raises for a failed request: HTTP status errors and transport errors.
_VAULT_FAILURES = (vault_errors.VaultError, requests.RequestException)
_BAD_CIPHERTEXT_MARKERS = ("authentication failed", "invalid ciphertext", "could not decode")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _version_id(version: int) -> str:
    return f"v{version}"


def classify_vault_message(message: str, operation: str) -> CipherError:
    """Turn one Vault error string (top-level or a batch item's) into our error type."""
    # Vault's messages describe the request, never echo its plaintext; still, keep it short.
    detail = f"Vault {operation} failed: {message[:200]}"
    lowered = message.lower()
    if any(marker in lowered for marker in _UNKNOWN_KEY_MARKERS):
        return UnknownKey(detail)
    if any(marker in lowered for marker in _BAD_CIPHERTEXT_MARKERS):
        return DecryptionFailed(detail)
    if "key not found" in lowered or "missing 'context'" in lowered:
        return CipherMisconfigured(detail)
    return CipherError(detail)


def translate_error(error: Exception, operation: str) -> CipherError:
    """Map transport failures and HTTP status classes onto the cipher error tree."""
    if isinstance(error, requests.RequestException):
        return CipherUnavailable(f"Vault unreachable during {operation}: {type(error).__name__}")
    if isinstance(error, vault_errors.Unauthorized | vault_errors.Forbidden):
        return CipherMisconfigured(f"Vault refused the token for {operation} (permission denied)")
    if isinstance(error, vault_errors.InvalidPath):
        return CipherMisconfigured(f"Vault {operation}: transit mount or key not found")
    if isinstance(
        error,
        vault_errors.VaultDown
        | vault_errors.InternalServerError
        | vault_errors.BadGateway
        | vault_errors.RateLimitExceeded
        | vault_errors.VaultNotInitialized,
    ):
        return CipherUnavailable(
            f"Vault {operation} failed on the server side ({type(error).__name__})"
        )
    if isinstance(error, vault_errors.VaultError):
        message = ", ".join(error.errors) if error.errors else type(error).__name__
        return classify_vault_message(message, operation)
    return CipherError(f"Vault {operation} failed: {type(error).__name__}")


class VaultTransitCipher(SessionCipher):
    """Session cipher backed by a derived transit key (default `transit/telegram-sessions`)."""

    def __init__(
        self,
        *,
        addr: str,
        token: str,
        mount: str = "transit",
        key_name: str = "telegram-sessions",
        timeout: float = 5.0,
        batch_size: int = 100,
        client: hvac.Client | None = None,
    ):
        # hvac documents the timeout as int; it hands it to requests, which takes a float.
        self._client = client or hvac.Client(
            url=addr,
            token=token,
            timeout=timeout,  # type: ignore[arg-type]
        )
        self._mount = mount
        self._key_name = key_name
        # Batches keep each request well below Vault's 32 MiB request limit even for
        # 10k-character session strings, and bound the work lost to one failed request.
        self._batch_size = batch_size

    @property
    def key_name(self) -> str:
        return self._key_name

    def _call(self, operation: str, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except _VAULT_FAILURES as error:
            raise translate_error(error, operation) from None

    def _transit(self) -> Any:
        return self._client.secrets.transit

    def ensure_key(self) -> None:
        """Create the derived transit key if missing; refuse an existing non-derived one."""
        try:
            info = self._transit().read_key(name=self._key_name, mount_point=self._mount)
        except vault_errors.InvalidPath:
            self._call(
                "create key",
                lambda: self._transit().create_key(
                    name=self._key_name, derived=True, mount_point=self._mount
                ),
            )
            return
        except _VAULT_FAILURES as error:
            raise translate_error(error, "read key") from None
        if not info["data"].get("derived"):
            raise CipherMisconfigured(
                f"transit key {self._key_name!r} is not derived; it cannot bind a row context"
            )

    def current_key_id(self) -> str:
        info = self._call(
            "read key",
            lambda: self._transit().read_key(name=self._key_name, mount_point=self._mount),
        )
        return _version_id(int(info["data"]["latest_version"]))

    def rotate(self) -> str:
        self._call(
            "rotate",
            lambda: self._transit().rotate_key(name=self._key_name, mount_point=self._mount),
        )
        return self.current_key_id()

    def key_id_of(self, text: str) -> str:
        parts = text.split(":", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1].startswith("v"):
            raise DecryptionFailed("not a Vault transit ciphertext")
        return parts[1]

    def encrypt(self, plaintext: str, *, context: bytes) -> Ciphertext:
        require_context(context)
        response = self._call(
            "encrypt",
            lambda: self._transit().encrypt_data(
                name=self._key_name,
                plaintext=_b64(plaintext.encode("utf-8")),
                context=_b64(context),
                mount_point=self._mount,
            ),
        )
        return self._ciphertext(response["data"])

    def decrypt(self, text: str, *, context: bytes) -> str:
        require_context(context)
        self.key_id_of(text)  # a foreign format fails here, without a round trip
        response = self._call(
            "decrypt",
            lambda: self._transit().decrypt_data(
                name=self._key_name, ciphertext=text, context=_b64(context), mount_point=self._mount
            ),
        )
        try:
            return base64.b64decode(response["data"]["plaintext"]).decode("utf-8")
        except (ValueError, KeyError):
            raise DecryptionFailed("Vault returned a plaintext that is not UTF-8 text") from None

    def rewrap(self, text: str, *, context: bytes) -> Ciphertext:
        """Vault decrypts and re-encrypts inside itself: the plaintext never reaches us."""
        require_context(context)
        self.key_id_of(text)
        response = self._call(
            "rewrap",
            lambda: self._transit().rewrap_data(
                name=self._key_name, ciphertext=text, context=_b64(context), mount_point=self._mount
            ),
        )
        return self._ciphertext(response["data"])

    def encrypt_batch(self, items: Sequence[EncryptItem]) -> list[BatchResult]:
        for item in items:
            require_context(item.context)
        inputs = [
            {"plaintext": _b64(item.plaintext.encode("utf-8")), "context": _b64(item.context)}
            for item in items
        ]
        return self._batched("encrypt", "encrypt_data", inputs)

    def rewrap_batch(self, items: Sequence[RewrapItem]) -> list[BatchResult]:
        """Re-wrap many in a few requests; result i answers item i (Ciphertext or error)."""
        for item in items:
            require_context(item.context)
        inputs = [{"ciphertext": item.text, "context": _b64(item.context)} for item in items]
        return self._batched("rewrap", "rewrap_data", inputs)

    def _batched(
        self, operation: str, method: str, inputs: list[dict[str, str]]
    ) -> list[BatchResult]:
        results: list[BatchResult] = []
        for start in range(0, len(inputs), self._batch_size):
            chunk = inputs[start : start + self._batch_size]
            arguments: dict[str, Any] = {
                "name": self._key_name,
                "batch_input": chunk,
                "mount_point": self._mount,
            }
            if method == "rewrap_data":
                arguments["ciphertext"] = None  # hvac's signature wants it; batch_input rules
            answers = self._batch_answers(operation, method, arguments)
            if len(answers) != len(chunk):
                raise CipherError(f"Vault {operation} batch answered {len(answers)}/{len(chunk)}")
            for answer in answers:
                if answer.get("error"):
                    results.append(classify_vault_message(str(answer["error"]), operation))
                else:
                    results.append(self._ciphertext(answer))
        return results

    def _batch_answers(
        self, operation: str, method: str, arguments: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            response = getattr(self._transit(), method)(**arguments)
        except vault_errors.InvalidRequest as error:
            # HashiCorp Vault answers 400 when every item failed, with per-item reasons.
            body = error.json if isinstance(error.json, dict) else {}
            answers = (body.get("data") or {}).get("batch_results")
            if isinstance(answers, list):
                return answers
            raise translate_error(error, operation) from None
        except _VAULT_FAILURES as error:
            raise translate_error(error, operation) from None
        return list(response["data"]["batch_results"])

    def _ciphertext(self, data: dict[str, Any]) -> Ciphertext:
        text = str(data["ciphertext"])
        version = data.get("key_version")
        key_id = _version_id(int(version)) if version is not None else self.key_id_of(text)
        return Ciphertext(text=text, key_id=key_id)
