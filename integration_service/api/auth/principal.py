"""Who is calling: the tenant every query runs as, what it may do, and for the audit
trail who it is (an API key's id, a JWT's subject, a Mini App user)."""

from __future__ import annotations

from dataclasses import dataclass

from integration_service.api.errors import ScopeMissing

# Every scope a route can require. A key or token may carry any subset; "*" is all.
SCOPES = frozenset(
    {
        "accounts:read",
        "accounts:write",
        "channels:read",
        "channels:write",
        "connect",
        "send",
        "messages:read",
        "webhooks:read",
        "webhooks:write",
        "events:read",
        "audit:read",
    }
)
ALL_SCOPES = "*"

API_KEY = "api_key"
JWT = "jwt"
MINIAPP = "miniapp"


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    scopes: frozenset[str]
    # api_key, jwt or miniapp.
    kind: str
    # The key's id, the JWT's ``sub``, or the Telegram user id: never the secret itself.
    subject: str
    # A Mini App user may act on this one session only (their own account).
    app_id: str | None = None

    def allows(self, scope: str) -> bool:
        return ALL_SCOPES in self.scopes or scope in self.scopes

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            raise ScopeMissing(scope)

    @property
    def actor(self) -> str:
        """For the audit trail: ``api_key:<id>``, ``jwt:<sub>``, ``miniapp:<user id>``."""
        return f"{self.kind}:{self.subject}"
