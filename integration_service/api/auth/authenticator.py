"""Who a request comes from: ``Authorization: Bearer <token>``, where the token is a
tenant API key (``isk_...``), a JWT from the platform's user service, or a Telegram Mini
App's initData (also accepted as ``Authorization: tma <initData>``, the Mini Apps'
convention). Each kind is tried only when it is configured; anything else is a 401 that
says why, never echoing the token."""

from __future__ import annotations

from integration_service.api.auth.api_keys import ApiKeyStore, looks_like_api_key
from integration_service.api.auth.jwt_tokens import JwtVerifier
from integration_service.api.auth.miniapp import verify_init_data
from integration_service.api.auth.principal import MINIAPP, Principal
from integration_service.api.errors import Unauthenticated
from integration_service.settings import Settings

# A Mini App user may start a login for their own account and read it: nothing else.
MINIAPP_SCOPES = frozenset({"connect", "accounts:read"})
MAX_TOKEN_LENGTH = 8192


def miniapp_app_id(user_id: int) -> str:
    """The session a Mini App user's own account lives in."""
    return f"tg-{user_id}"


class Authenticator:
    def __init__(self, settings: Settings, api_keys: ApiKeyStore, jwt: JwtVerifier | None) -> None:
        self._settings = settings
        self._api_keys = api_keys
        self._jwt = jwt

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing Authorization: Bearer <token>")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("malformed Authorization header")
        scheme = scheme.lower()
        if scheme == "tma":
            return self._miniapp(token)
        if scheme != "bearer":
            raise Unauthenticated("the Authorization scheme must be Bearer")
        if looks_like_api_key(token):
            return self._api_keys.verify(token)
        if "auth_date=" in token and "hash=" in token:
            return self._miniapp(token)
        if token.count(".") == 2:
            if self._jwt is None:
                raise Unauthenticated(
                    "JWTs are not accepted here (neither JWT_JWKS_URL nor JWT_HS256_SECRET is set)"
                )
            return self._jwt.verify(token)
        raise Unauthenticated("the token is neither an API key, a JWT nor Mini App initData")

    def _miniapp(self, init_data: str) -> Principal:
        settings = self._settings
        secret, tenant = settings.miniapp_hmac_secret, settings.miniapp_tenant_id
        if secret is None or tenant is None:
            raise Unauthenticated(
                "Mini App sign-in is not enabled (MINIAPP_HMAC_SECRET, MINIAPP_TENANT_ID)"
            )
        user = verify_init_data(
            init_data,
            bot_token=secret.get_secret_value(),
            tolerance=settings.miniapp_timestamp_tolerance,
        )
        return Principal(
            tenant_id=tenant,
            scopes=MINIAPP_SCOPES,
            kind=MINIAPP,
            subject=str(user.user_id),
            app_id=miniapp_app_id(user.user_id),
        )
