"""Where Telethon connects: real Telegram's defaults, or an emulator described by emulator.json.

Workers and tests reach the emulator by configuration alone: load its ``emulator.json``,
register its RSA key with Telethon, and point a session at its address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telethon.crypto import rsa as telethon_rsa

from integration_service.errors import PermanentError


class EndpointConfigError(PermanentError, ValueError):
    """emulator.json is missing a field or holds a malformed one."""

    code = "endpoint_config_invalid"


@dataclass(frozen=True)
class TelegramEndpoint:
    """A data centre to connect to and the RSA key it proves itself with."""

    host: str
    port: int
    dc_id: int
    rsa_public_key_pem: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TelegramEndpoint:
        try:
            host, port, dc_id = str(data["host"]), int(data["port"]), int(data["dc_id"])
            pem = str(data["rsa_public_key_pem"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EndpointConfigError(f"emulator config lacks or mangles {exc}") from exc
        if not 0 < port < 65536 or "BEGIN RSA PUBLIC KEY" not in pem:
            raise EndpointConfigError("emulator config has a bad port or RSA key")
        return cls(host=host, port=port, dc_id=dc_id, rsa_public_key_pem=pem)


def load_endpoint(path: Path | str) -> TelegramEndpoint:
    """Read an emulator.json written by the emulator's runner."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EndpointConfigError(f"cannot read emulator config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise EndpointConfigError(f"emulator config {path} is not a JSON object")
    return TelegramEndpoint.from_dict(data)


def register_rsa_key(endpoint: TelegramEndpoint) -> None:
    """Make Telethon trust the endpoint's RSA key in this process.

    Idempotent: Telethon files keys by fingerprint, so registering twice changes nothing.
    """
    telethon_rsa.add_key(endpoint.rsa_public_key_pem, old=False)


def apply_to_session(session: Any, endpoint: TelegramEndpoint) -> None:
    """Point a Telethon session (StringSession, SQLiteSession, ...) at the endpoint."""
    session.set_dc(endpoint.dc_id, endpoint.host, endpoint.port)
