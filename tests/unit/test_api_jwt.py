"""JWT verification against a real JWKS server on loopback, and in HS256 mode."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from integration_service.api.auth import jwt_tokens
from integration_service.api.auth.jwt_tokens import JwtVerifier, usable_keys
from integration_service.api.auth.principal import JWT, Principal
from integration_service.api.errors import TokenServiceUnavailable, Unauthenticated
from integration_service.settings import SettingsError, load_settings
from tests.support.jwks import JwksServer, JwksState, jwk, start_jwks_server

AUDIENCE = "integration-service"
ISSUER = "https://users.example"
HS_SECRET = "an-hs256-secret-of-at-least-32-bytes!"


# Keys and the JWKS server -------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    # Another RSA key, published under nobody's kid: it signs the forged tokens.
    impostor: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
        impostor=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture
def jwks(keys: Keys) -> Iterator[JwksServer]:
    published = [jwk(keys.rsa_key.public_key(), "rsa-1"), jwk(keys.ec_key.public_key(), "ec-1")]
    document = {"keys": published}
    server = start_jwks_server(JwksState(document))
    yield server
    server.stop()


class FakeClock:
    """The JWKS cache's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_verifier(jwks: JwksServer, clock: FakeClock) -> Callable[..., JwtVerifier]:
    def make(**overrides: Any) -> JwtVerifier:
        values: dict[str, Any] = {
            "jwt_jwks_url": jwks.url,
            "jwt_audience": AUDIENCE,
            "jwt_issuer": ISSUER,
            **overrides,
        }
        verifier = JwtVerifier.from_settings(load_settings(**values), clock=clock)
        assert verifier is not None
        return verifier

    return make


@pytest.fixture
def verifier(make_verifier: Callable[..., JwtVerifier]) -> JwtVerifier:
    return make_verifier()


# Tokens ---------------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "user-1",
        "tenant_id": "acme",
        "scope": "send accounts:read billing:write",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    return {name: value for name, value in values.items() if value is not None}


def rs256(keys: Keys, kid: str = "rsa-1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), keys.rsa_key, algorithm="RS256", headers={"kid": kid})


def es256(keys: Keys, kid: str = "ec-1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), keys.ec_key, algorithm="ES256", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], hmac_secret: bytes | None) -> str:
    """A token PyJWT would refuse to build: ``alg: none``, or an HMAC under any bytes."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if hmac_secret is None:
        return f"{signing_input}."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def refused(verifier: JwtVerifier, token: str) -> str:
    """The reason ``token`` is refused; it never quotes the token."""
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    message = str(caught.value)
    for part in token.split("."):
        assert len(part) < 8 or part not in message
    return message


# Valid tokens ---------------------------------------------------------------------------


def test_a_valid_rs256_token_gives_its_principal(keys: Keys, verifier: JwtVerifier) -> None:
    # billing:write is another service's scope: dropped.
    assert verifier.verify(rs256(keys)) == Principal(
        tenant_id="acme", scopes=frozenset({"send", "accounts:read"}), kind=JWT, subject="user-1"
    )


def test_a_valid_es256_token_gives_its_principal(keys: Keys, verifier: JwtVerifier) -> None:
    principal = verifier.verify(es256(keys, sub="user-2", tenant_id="other.tenant"))
    assert (principal.subject, principal.tenant_id, principal.kind) == (
        "user-2",
        "other.tenant",
        JWT,
    )
    assert principal.actor == "jwt:user-2"


def test_the_scope_claim_may_be_a_list(keys: Keys, verifier: JwtVerifier) -> None:
    principal = verifier.verify(rs256(keys, scope=["webhooks:read", "unknown", "*"]))
    assert principal.scopes == frozenset({"webhooks:read", "*"})
    assert principal.allows("send")


def test_no_scope_claim_means_no_scopes(keys: Keys, verifier: JwtVerifier) -> None:
    assert verifier.verify(rs256(keys, scope=None)).scopes == frozenset()


def test_the_claim_names_come_from_the_settings(
    keys: Keys, make_verifier: Callable[..., JwtVerifier]
) -> None:
    verifier = make_verifier(jwt_tenant_claim="org", jwt_scope_claim="scp")
    principal = verifier.verify(rs256(keys, tenant_id=None, org="org-7", scope=None, scp="send"))
    assert (principal.tenant_id, principal.scopes) == ("org-7", frozenset({"send"}))
    assert refused(verifier, rs256(keys)) == "missing claim org"


@pytest.mark.parametrize("scope", [["send", 3], {"send": True}, 7])
def test_a_scope_claim_of_another_shape_is_refused(
    keys: Keys, verifier: JwtVerifier, scope: object
) -> None:
    assert (
        refused(verifier, rs256(keys, scope=scope)) == "claim scope is no string or list of strings"
    )


# Time, audience, issuer, claims ---------------------------------------------------------


def test_an_expired_token_is_refused(keys: Keys, verifier: JwtVerifier) -> None:
    now = int(time.time())
    assert refused(verifier, rs256(keys, exp=now - 120)) == "token expired"
    # Within the leeway (30 s by default) it is still good.
    assert verifier.verify(rs256(keys, exp=now - 10)).subject == "user-1"


def test_a_token_not_yet_valid_is_refused(keys: Keys, verifier: JwtVerifier) -> None:
    now = int(time.time())
    assert refused(verifier, rs256(keys, nbf=now + 120)) == "token not yet valid"
    assert refused(verifier, es256(keys, iat=now + 120)) == "token not yet valid"
    assert verifier.verify(rs256(keys, nbf=now + 10)).subject == "user-1"


def test_the_audience_is_checked(keys: Keys, verifier: JwtVerifier) -> None:
    assert refused(verifier, rs256(keys, aud="another-service")) == "wrong audience"
    assert refused(verifier, rs256(keys, aud=None)) == "missing claim aud"
    assert verifier.verify(rs256(keys, aud=["another-service", AUDIENCE])).subject == "user-1"


def test_the_audience_is_not_checked_when_none_is_configured(
    keys: Keys, make_verifier: Callable[..., JwtVerifier]
) -> None:
    verifier = make_verifier(jwt_audience=None)
    assert verifier.verify(rs256(keys, aud="anything")).subject == "user-1"
    assert verifier.verify(rs256(keys, aud=None)).subject == "user-1"


def test_the_issuer_is_checked(keys: Keys, verifier: JwtVerifier) -> None:
    assert refused(verifier, rs256(keys, iss="https://evil.example")) == "wrong issuer"
    assert refused(verifier, rs256(keys, iss=None)) == "missing claim iss"


@pytest.mark.parametrize("claim", ["exp", "sub", "tenant_id"])
def test_a_required_claim_missing_is_named(keys: Keys, verifier: JwtVerifier, claim: str) -> None:
    without: dict[str, Any] = {claim: None}
    assert refused(verifier, rs256(keys, **without)) == f"missing claim {claim}"


@pytest.mark.parametrize("tenant", ["a:b", "", "x" * 65, 42, ["acme"]])
def test_a_tenant_claim_that_is_no_tenant_id_is_refused(
    keys: Keys, verifier: JwtVerifier, tenant: object
) -> None:
    assert (
        refused(verifier, rs256(keys, tenant_id=tenant)) == "claim tenant_id is no valid tenant id"
    )


def test_a_subject_that_is_no_string_is_refused(keys: Keys, verifier: JwtVerifier) -> None:
    assert refused(verifier, rs256(keys, sub=12)) == "bad claim sub"
    assert refused(verifier, rs256(keys, sub="")) == "bad claim sub"


# Signatures, keys and algorithms --------------------------------------------------------


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(
    keys: Keys, verifier: JwtVerifier
) -> None:
    forged = jwt.encode(claims(), keys.impostor, algorithm="RS256", headers={"kid": "rsa-1"})
    assert refused(verifier, forged) == "bad signature"


def test_a_changed_payload_breaks_the_signature(keys: Keys, verifier: JwtVerifier) -> None:
    header, _, signature = rs256(keys).split(".")
    payload = b64(json.dumps(claims(tenant_id="victim")).encode())
    assert refused(verifier, f"{header}.{payload}.{signature}") == "bad signature"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(keys: Keys, verifier: JwtVerifier, alg: str) -> None:
    token = handmade({"alg": alg, "kid": "rsa-1", "typ": "JWT"}, claims(), None)
    assert refused(verifier, token) == "algorithm not allowed"


def test_alg_none_is_refused_in_hs256_mode_too() -> None:
    verifier = JwtVerifier.from_settings(load_settings(jwt_hs256_secret=HS_SECRET))
    assert verifier is not None
    assert refused(verifier, handmade({"alg": "none"}, claims(), None)) == "algorithm not allowed"


def test_an_hs256_token_is_refused_when_only_a_jwks_is_configured(
    keys: Keys, verifier: JwtVerifier
) -> None:
    token = jwt.encode(claims(), HS_SECRET, algorithm="HS256", headers={"kid": "rsa-1"})
    assert refused(verifier, token) == "algorithm not allowed"


def test_the_rsa_public_key_never_serves_as_an_hmac_secret(
    keys: Keys, make_verifier: Callable[..., JwtVerifier]
) -> None:
    public_pem = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_json = json.dumps(jwk(keys.rsa_key.public_key(), "rsa-1")).encode()
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    for secret in (public_pem, jwk_json):
        confused = handmade(header, claims(), secret)
        # JWKS only: HS256 is no algorithm of a JWKS key.
        assert refused(make_verifier(), confused) == "algorithm not allowed"
        # Both configured: HS256 is checked against the configured secret only.
        both = make_verifier(jwt_hs256_secret=HS_SECRET)
        assert refused(both, confused) == "bad signature"


def test_a_token_whose_alg_is_not_its_key_s_is_refused(keys: Keys, verifier: JwtVerifier) -> None:
    # An ES256 token naming the RSA key, and an RS256 token naming the EC key.
    assert refused(verifier, es256(keys, kid="rsa-1")) == "algorithm does not match the key"
    assert refused(verifier, rs256(keys, kid="ec-1")) == "algorithm does not match the key"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES384", "EdDSA", "HS512"])
def test_other_algorithms_are_refused(keys: Keys, verifier: JwtVerifier, alg: str) -> None:
    assert refused(verifier, handmade({"alg": alg, "kid": "rsa-1"}, claims(), b"x" * 64)) == (
        "algorithm not allowed"
    )


def test_a_token_without_kid_is_refused(keys: Keys, verifier: JwtVerifier) -> None:
    assert refused(verifier, jwt.encode(claims(), keys.rsa_key, algorithm="RS256")) == (
        "token has no key id"
    )


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "x" * 9000])
def test_malformed_tokens_are_refused(verifier: JwtVerifier, token: str) -> None:
    assert refused(verifier, token) in {"malformed token", "token too long"}


def test_both_modes_pick_the_key_by_alg(
    keys: Keys, make_verifier: Callable[..., JwtVerifier]
) -> None:
    verifier = make_verifier(jwt_hs256_secret=HS_SECRET)
    hs = jwt.encode(claims(sub="service-a"), HS_SECRET, algorithm="HS256")
    assert verifier.verify(hs).subject == "service-a"
    assert verifier.verify(rs256(keys)).subject == "user-1"
    assert verifier.verify(es256(keys)).subject == "user-1"


# HS256 mode -----------------------------------------------------------------------------


@pytest.fixture
def hs_verifier() -> JwtVerifier:
    verifier = JwtVerifier.from_settings(
        load_settings(jwt_hs256_secret=HS_SECRET, jwt_audience=AUDIENCE, jwt_issuer=ISSUER)
    )
    assert verifier is not None
    return verifier


def test_hs256_mode_accepts_a_token_of_its_secret(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(), HS_SECRET, algorithm="HS256")
    assert hs_verifier.verify(token).scopes == frozenset({"send", "accounts:read"})


def test_hs256_mode_refuses_another_secret(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(), "another-secret-also-32-bytes-long!!", algorithm="HS256")
    assert refused(hs_verifier, token) == "bad signature"


def test_hs256_mode_refuses_asymmetric_tokens(keys: Keys, hs_verifier: JwtVerifier) -> None:
    assert refused(hs_verifier, rs256(keys)) == "algorithm not allowed"
    assert refused(hs_verifier, es256(keys)) == "algorithm not allowed"


def test_hs256_mode_checks_time_and_claims(hs_verifier: JwtVerifier) -> None:
    expired = jwt.encode(claims(exp=int(time.time()) - 120), HS_SECRET, algorithm="HS256")
    assert refused(hs_verifier, expired) == "token expired"
    no_tenant = jwt.encode(claims(tenant_id=None), HS_SECRET, algorithm="HS256")
    assert refused(hs_verifier, no_tenant) == "missing claim tenant_id"


def test_the_verifier_s_repr_shows_no_secret(hs_verifier: JwtVerifier) -> None:
    assert HS_SECRET not in repr(hs_verifier)


# Settings -------------------------------------------------------------------------------


def test_no_verifier_without_a_key() -> None:
    assert JwtVerifier.from_settings(load_settings()) is None
    assert JwtVerifier.from_settings(load_settings(jwt_hs256_secret="")) is None


def test_a_short_hs256_secret_is_a_settings_error() -> None:
    with pytest.raises(SettingsError) as caught:
        JwtVerifier.from_settings(load_settings(jwt_hs256_secret="short"))
    assert "short" not in str(caught.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/jwks", "http:///jwks", "jwks"])
def test_a_jwks_url_that_is_not_http_is_a_settings_error(url: str) -> None:
    with pytest.raises(SettingsError):
        JwtVerifier.from_settings(load_settings(jwt_jwks_url=url))


# The JWKS cache -------------------------------------------------------------------------


def test_the_jwks_is_fetched_once_and_cached(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, clock: FakeClock
) -> None:
    for _ in range(5):
        verifier.verify(rs256(keys))
        verifier.verify(es256(keys))
    assert jwks.state.requests == 1
    # Older than JWKS_CACHE_SECONDS (300 by default): fetched again.
    clock.advance(301)
    verifier.verify(rs256(keys))
    assert jwks.state.requests == 2


def test_concurrent_first_calls_share_one_fetch(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier
) -> None:
    jwks.state.delay = 0.2
    token = rs256(keys)
    results: list[str] = []

    def call() -> None:
        results.append(verifier.verify(token).subject)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["user-1"] * 16
    assert jwks.state.requests == 1


def test_an_unknown_kid_refetches_at_most_once_per_ten_seconds(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, clock: FakeClock
) -> None:
    verifier.verify(rs256(keys))
    assert jwks.state.requests == 1
    # Just fetched: an unknown kid is unknown without asking again.
    assert refused(verifier, rs256(keys, kid="rotated-in")) == "unknown key id"
    assert jwks.state.requests == 1

    clock.advance(11)
    assert refused(verifier, rs256(keys, kid="rotated-in")) == "unknown key id"
    assert jwks.state.requests == 2
    # A flood of made-up kids within the next 10 s costs the JWKS server nothing.
    for number in range(50):
        clock.advance(0.1)
        assert refused(verifier, rs256(keys, kid=f"made-up-{number}")) == "unknown key id"
    assert jwks.state.requests == 2


def test_a_key_rotated_in_is_found_by_the_refetch(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, clock: FakeClock
) -> None:
    verifier.verify(rs256(keys))
    jwks.state.document = {
        "keys": [*jwks.state.document["keys"], jwk(keys.impostor.public_key(), "rsa-2")]
    }
    clock.advance(11)
    rotated = jwt.encode(claims(), keys.impostor, algorithm="RS256", headers={"kid": "rsa-2"})
    assert verifier.verify(rotated).subject == "user-1"
    assert jwks.state.requests == 2


def test_a_jwks_server_that_is_down_is_token_service_unavailable(
    keys: Keys, jwks: JwksServer, make_verifier: Callable[..., JwtVerifier]
) -> None:
    url = f"{jwks.url}?access_token=do-not-log-me"
    jwks.stop()
    verifier = make_verifier(jwt_jwks_url=url)
    with pytest.raises(TokenServiceUnavailable) as caught:
        verifier.verify(rs256(keys))
    message = str(caught.value)
    assert "do-not-log-me" not in message and "access_token" not in message
    assert "connection failed" in message and "127.0.0.1" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"oops", "HTTP 500"),
        (404, b"", "HTTP 404"),
        (302, b"", "HTTP 302"),
        (200, b"<html>", "answer is not JSON"),
        (200, b'{"no": "keys"}', "answer has no keys list"),
    ],
)
def test_a_jwks_answer_that_is_no_jwks_is_token_service_unavailable(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, status: int, body: bytes, reason: str
) -> None:
    jwks.state.status, jwks.state.body = status, body
    # A redirect is not followed, to another address of the same server either.
    jwks.state.location = jwks.url.replace("/jwks", "/elsewhere") if status == 302 else None
    with pytest.raises(TokenServiceUnavailable, match=reason):
        verifier.verify(rs256(keys))
    assert jwks.state.paths == ["/jwks"]


def test_a_jwks_that_does_not_answer_in_time_is_token_service_unavailable(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_tokens, "JWKS_TIMEOUT", 0.2)
    jwks.state.delay = 1.0
    with pytest.raises(TokenServiceUnavailable, match="timed out"):
        verifier.verify(rs256(keys))


def test_a_failed_fetch_is_not_retried_at_once(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, clock: FakeClock
) -> None:
    jwks.state.status = 503
    for _ in range(5):
        with pytest.raises(TokenServiceUnavailable):
            verifier.verify(rs256(keys))
    assert jwks.state.requests == 1
    jwks.state.status = 200
    clock.advance(jwt_tokens.FAILURE_BACKOFF)
    assert verifier.verify(rs256(keys)).subject == "user-1"
    assert jwks.state.requests == 2


def test_cached_keys_serve_while_fresh_but_not_after(
    keys: Keys, jwks: JwksServer, verifier: JwtVerifier, clock: FakeClock
) -> None:
    verifier.verify(rs256(keys))
    jwks.state.status = 503
    clock.advance(200)
    assert verifier.verify(rs256(keys)).subject == "user-1"
    clock.advance(101)
    with pytest.raises(TokenServiceUnavailable):
        verifier.verify(rs256(keys))


def test_only_public_rs256_and_es256_signing_keys_are_used(keys: Keys) -> None:
    # Too small on purpose: the JWKS parser must skip it.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    document = {
        "keys": [
            jwk(keys.rsa_key.public_key(), "good-rsa"),
            jwk(keys.ec_key.public_key(), "good-ec"),
            {"kty": "oct", "kid": "symmetric", "k": b64(b"k" * 32)},
            jwk(small.public_key(), "too-small"),
            jwk(keys.rsa_key, "private"),
            jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), "p-384"),
            {**jwk(keys.rsa_key.public_key(), "encryption"), "use": "enc"},
            {**jwk(keys.rsa_key.public_key(), "pss"), "alg": "PS256"},
            {k: v for k, v in jwk(keys.rsa_key.public_key(), "x").items() if k != "kid"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not an object",
        ]
    }
    found = usable_keys(document)
    assert found is not None
    assert sorted(found) == [("good-ec", "ES256"), ("good-rsa", "RS256")]
    assert usable_keys({"keys": "nope"}) is None
    assert usable_keys([]) is None
