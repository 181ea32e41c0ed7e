"""JWTs and Telegram Mini App initData through the real API process: a JWT signed by a key
of the local JWKS server is served as its tenant with its scopes; expired, wrong-audience
and forged ones are 401. initData signed for the Mini App's bot is served for the user's
own account only; tampered and stale initData is 401."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from integration_service.api.auth.miniapp import sign_init_data
from tests.api.conftest import AccountMaker
from tests.support.api_process import ApiProcess
from tests.support.jwks import JwksServer, JwksState, jwk, start_jwks_server

T = "/api/integrations/telegram"
AUDIENCE = "integration-service"
ISSUER = "https://users.example"
BOT_TOKEN = "7000001:miniapp-bot-token-for-the-tests-only"
TENANT = "tenant-api-tokens"
MINIAPP_TENANT = "tenant-api-miniapp"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    server = start_jwks_server(JwksState({"keys": [jwk(RSA_KEY.public_key(), "k1")]}))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_overrides(jwks: JwksServer) -> dict[str, str]:
    return {
        "JWT_JWKS_URL": jwks.url,
        "JWT_AUDIENCE": AUDIENCE,
        "JWT_ISSUER": ISSUER,
        "MINIAPP_HMAC_SECRET": BOT_TOKEN,
        "MINIAPP_TENANT_ID": MINIAPP_TENANT,
    }


def token(key: Any = RSA_KEY, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": "user-17",
        "tenant_id": TENANT,
        "scope": "accounts:read",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def init_data(user_id: int, *, age: int = 0) -> str:
    fields = {
        "auth_date": str(int(time.time()) - age),
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps({"id": user_id, "first_name": "Ann"}),
    }
    return sign_init_data(fields, BOT_TOKEN)


def test_a_jwt_from_the_user_service_is_served_as_its_tenant(
    api: ApiProcess, make_account: AccountMaker
) -> None:
    make_account(TENANT, "acct")
    reply = api.call("GET", f"{T}/accounts", token=token())
    assert reply.status == 200, reply.body
    assert [a["id"] for a in reply.body["items"]] == ["acct"]
    # Its scopes hold: accounts:read does not send.
    send = api.call(
        "POST", f"{T}/accounts/acct/send", token=token(), body={"peer": "@abcde", "text": "x"}
    )
    assert send.status == 403 and send.code == "scope_missing"


@pytest.mark.parametrize(
    ("made", "why"),
    [
        (lambda: token(exp=int(time.time()) - 120), "expired"),
        (lambda: token(aud="another-service"), "audience"),
        (lambda: token(iss="https://evil.example"), "issuer"),
        (
            lambda: token(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "signature",
        ),
        (lambda: token(kid="unknown"), "key"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "forged", "unknown-kid"],
)
def test_bad_jwts_are_401(api: ApiProcess, made: Any, why: str) -> None:
    reply = api.call("GET", f"{T}/accounts", token=made())
    assert reply.status == 401, reply.body
    assert reply.code == "unauthenticated"
    assert why in reply.body["detail"], reply.body


def test_mini_app_init_data_serves_the_user_s_own_account_only(
    api: ApiProcess, make_account: AccountMaker
) -> None:
    make_account(MINIAPP_TENANT, "tg-4242")
    make_account(MINIAPP_TENANT, "tg-5151")
    mine = api.call("GET", f"{T}/accounts", headers={"Authorization": f"tma {init_data(4242)}"})
    assert mine.status == 200, mine.body
    assert [a["id"] for a in mine.body["items"]] == ["tg-4242"]
    as_bearer = api.call("GET", f"{T}/accounts/tg-4242", token=init_data(4242))
    assert as_bearer.status == 200
    theirs = api.call("GET", f"{T}/accounts/tg-5151", token=init_data(4242))
    assert theirs.status == 404
    # A Mini App user may connect their own account, nothing more.
    connect = api.call(
        "POST", f"{T}/connect", token=init_data(4242), body={"method": "qr", "app_id": "tg-4242"}
    )
    assert connect.status == 202, connect.body
    other = api.call(
        "POST", f"{T}/connect", token=init_data(4242), body={"method": "qr", "app_id": "tg-5151"}
    )
    assert other.status == 404
    send = api.call(
        "POST",
        f"{T}/accounts/tg-4242/send",
        token=init_data(4242),
        body={"peer": "@abcde", "text": "x"},
    )
    assert send.status == 403


def test_tampered_or_stale_init_data_is_401(api: ApiProcess) -> None:
    tampered = init_data(4242).replace("4242", "5151")
    stale = init_data(4242, age=301)
    for bad in (tampered, stale):
        reply = api.call("GET", f"{T}/accounts", headers={"Authorization": f"tma {bad}"})
        assert reply.status == 401, reply.body
        assert bad not in str(reply.body)
