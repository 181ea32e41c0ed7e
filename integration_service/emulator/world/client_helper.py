"""One call to a connected, signed-in Telethon client for a fresh emulator user.

For tests and the demo: create the user through the control API, ask for a login code
over MTProto, read the code back from the control API and sign in, exactly as a person
would with the code from their phone.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import aiohttp
from telethon import TelegramClient
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from integration_service.telegram.endpoint import (
    TelegramEndpoint,
    apply_to_session,
    register_rsa_key,
)

EMULATOR_API_ID = 20_000
EMULATOR_API_HASH = "0123456789abcdef0123456789abcdef"


class ControlApiError(RuntimeError):
    """The control API refused a request (status and its error message)."""


async def control_call(
    control_url: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, control_url.rstrip("/") + path, json=body) as response,
    ):
        data = await response.json()
        if response.status >= 400:
            raise ControlApiError(f"{method} {path}: {response.status} {data.get('error')}")
        return dict(data)


def random_phone() -> str:
    """A Russian mobile number nobody is likely to have taken in this world yet."""
    return "7999" + "".join(secrets.choice("0123456789") for _ in range(7))


def minted_session(minted: dict[str, Any], endpoint: TelegramEndpoint) -> tuple[str, bytes]:
    """(StringSession string, raw auth key) for an answer of the control API's
    ``POST /sessions`` (a key the emulator already signed in, without a login), pointed at
    ``endpoint``, the address clients reach the emulator on."""
    key = base64.b64decode(minted["auth_key"])
    session = StringSession()
    apply_to_session(session, endpoint)
    session.auth_key = AuthKey(key)
    return StringSession.save(session), key


def emulator_client(
    endpoint: TelegramEndpoint, session_string: str | None = None, **client_options: Any
) -> TelegramClient:
    """A Telethon client pointed at the emulator (not connected): an empty session, or the
    saved ``session_string`` (its auth key)."""
    register_rsa_key(endpoint)
    session = StringSession(session_string)
    apply_to_session(session, endpoint)
    client_options.setdefault("connection_retries", 2)
    client_options.setdefault("request_retries", 2)
    return TelegramClient(session, EMULATOR_API_ID, EMULATOR_API_HASH, **client_options)


async def authorized_client(
    control_url: str,
    endpoint: TelegramEndpoint,
    phone: str | None = None,
    *,
    first_name: str = "Тест",
    username: str | None = None,
    **client_options: Any,
) -> TelegramClient:
    """Create a user (``phone`` or a random one) and return a client signed in as them."""
    if phone is None:
        phone = random_phone()
    await control_call(
        control_url,
        "POST",
        "/users",
        {"phone": phone, "first_name": first_name, "username": username},
    )
    client = emulator_client(endpoint, **client_options)
    await client.connect()
    try:
        await client.send_code_request(phone)
        code = await control_call(control_url, "GET", f"/codes/{phone}")
        await client.sign_in(phone, code["code"])
    except BaseException:
        await client.disconnect()
        raise
    return client
