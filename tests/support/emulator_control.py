"""A small synchronous client of the emulator's control API, for tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ControlError(RuntimeError):
    pass


class EmulatorControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise ControlError(f"{method} {path}: {error.code} {error.read()!r}") from None

    def create_user(self, phone: str, first_name: str = "Test", **extra: Any) -> dict[str, Any]:
        return dict(
            self.call("POST", "/users", {"phone": phone, "first_name": first_name, **extra})
        )

    def login_code(self, phone: str) -> str:
        return str(self.call("GET", f"/codes/{phone}")["code"])

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items() if v is not None)
        return list(self.call("GET", "/messages" + (f"?{query}" if query else ""))["messages"])

    def revoke(self, user_id: int, mode: str = "AUTH_KEY_UNREGISTERED") -> Any:
        return self.call("POST", "/revoke", {"user_id": user_id, "mode": mode})

    def forget_auth_keys(self, user_id: int) -> Any:
        """The data centre forgets the user's auth keys (their next message gets -404)."""
        return self.call("POST", "/auth_keys/forget", {"user_id": user_id})

    def inject_fault(self, **fault: Any) -> Any:
        return self.call("POST", "/faults", fault)

    def stats(self) -> dict[str, Any]:
        return dict(self.call("GET", "/stats"))
