"""JWTs from the platform's user service, checked into a ``Principal``.

Two kinds of key, chosen by the token header's ``alg``: RS256/ES256 against the JWKS at
``JWT_JWKS_URL`` (the key named by ``kid``), HS256 against ``JWT_HS256_SECRET``. Each key
verifies its own algorithm only, so an RSA public key can never serve as an HMAC secret
and ``none`` is never accepted.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.types import Options

from integration_service import inputs
from integration_service.api.auth.principal import ALL_SCOPES, JWT, SCOPES, Principal
from integration_service.api.errors import TokenServiceUnavailable, Unauthenticated
from integration_service.settings import Settings, SettingsError

logger = structlog.get_logger(__name__)

HS256 = "HS256"
# What a JWKS key may verify; anything else there (HS*, PS*, EdDSA, other curves) is skipped.
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})
# A bound on what is parsed before the signature is checked.
MAX_TOKEN_LENGTH = 8192
MAX_SUBJECT_LENGTH = 255
JWKS_TIMEOUT = 5.0
MAX_JWKS_BYTES = 1024 * 1024
# An unknown kid refetches the JWKS at most this often, so a flood of made-up kids cannot
# hammer the JWKS server; a failed fetch is not retried sooner than FAILURE_BACKOFF.
MIN_REFETCH_INTERVAL = 10.0
FAILURE_BACKOFF = 2.0
MIN_RSA_BITS = 2048
# RFC 7518 3.2: an HS256 key at least as long as the hash output.
MIN_HS256_SECRET_BYTES = 32

# Each PyJWT failure as a short reason; the subclasses come before their bases.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidIssuedAtError, "bad claim iat"),
    (jwt.exceptions.InvalidSubjectError, "bad claim sub"),
    (jwt.exceptions.InvalidJTIError, "bad claim jti"),
    (jwt.InvalidKeyError, "unusable key"),
    (jwt.DecodeError, "malformed token"),
)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead the key fetch anywhere (another scheme, another host): the
    # operator configures the final address instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy from the environment (like the webhook dispatcher) and no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def _public_address(url: str) -> str:
    """``url`` without user info, query or fragment: what messages may show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class JwksCache:
    """The signing keys of one JWKS endpoint by (kid, alg); thread-safe.

    Fetched on first use and again once ``cache_seconds`` old; an unknown kid refetches
    at most once per ``MIN_REFETCH_INTERVAL`` (keys rotated in since the last fetch).
    """

    def __init__(
        self, url: str, *, cache_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError("JWT_JWKS_URL must be an http:// or https:// URL with a host")
        self._url = url
        self._address = _public_address(url)
        self._cache_seconds = cache_seconds
        self._clock = clock
        # One lock over the keys and the fetch: concurrent callers wait for one fetch
        # instead of each starting their own.
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._failed_at: float | None = None

    def key_for(self, kid: str, alg: str) -> jwt.PyJWK:
        """The key ``kid`` for ``alg``; Unauthenticated if there is none, and
        TokenServiceUnavailable if the JWKS could not be read when it had to be."""
        with self._lock:
            now = self._clock()
            if self._keys is None or now - self._fetched_at >= self._cache_seconds:
                self._keys = self._refresh(now)
            key = self._keys.get((kid, alg))
            if key is None and not self._knows(kid) and self._may_refetch(now):
                self._keys = self._refresh(now)
                key = self._keys.get((kid, alg))
            if key is not None:
                return key
            known = self._knows(kid)
        if known:
            raise Unauthenticated("algorithm does not match the key")
        raise Unauthenticated("unknown key id")

    def _knows(self, kid: str) -> bool:
        return any(known == kid for known, _ in self._keys or {})

    def _may_refetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= MIN_REFETCH_INTERVAL

    def _refresh(self, now: float) -> dict[tuple[str, str], jwt.PyJWK]:
        if self._failed_at is not None and now - self._failed_at < FAILURE_BACKOFF:
            raise TokenServiceUnavailable(f"the JWKS at {self._address} could not be read")
        self._attempted_at = now
        self._failed_at = now
        keys = usable_keys(self._fetch_document())
        if keys is None:
            raise self._unavailable("answer has no keys list")
        self._failed_at = None
        self._fetched_at = now
        return keys

    def _fetch_document(self) -> object:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self._url, headers={"Accept": "application/json", "User-Agent": "integration-service"}
        )
        try:
            with _OPENER.open(request, timeout=JWKS_TIMEOUT) as response:
                body: bytes = response.read(MAX_JWKS_BYTES + 1)
        except urllib.error.HTTPError as error:
            # The error keeps the full URL (query string included): `from None` drops it.
            raise self._unavailable(f"HTTP {error.code}") from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as error:
            timed_out = isinstance(error, TimeoutError) or (
                isinstance(error, urllib.error.URLError) and isinstance(error.reason, TimeoutError)
            )
            raise self._unavailable("timed out" if timed_out else "connection failed") from None
        if len(body) > MAX_JWKS_BYTES:
            raise self._unavailable(f"answer larger than {MAX_JWKS_BYTES} bytes")
        try:
            document: object = json.loads(body)
        except (ValueError, RecursionError):
            raise self._unavailable("answer is not JSON") from None
        return document

    def _unavailable(self, reason: str) -> TokenServiceUnavailable:
        return TokenServiceUnavailable(f"the JWKS at {self._address} could not be read: {reason}")


def usable_keys(document: object) -> dict[tuple[str, str], jwt.PyJWK] | None:
    """The RS256 / ES256 public signing keys of a JWKS document by (kid, alg), or None if
    it is no JWKS (no ``keys`` list)."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return None
    keys: dict[tuple[str, str], jwt.PyJWK] = {}
    skipped = 0
    for entry in entries:
        key = _signing_key(entry)
        if key is None:
            skipped += 1
            continue
        keys.setdefault((entry["kid"], key.algorithm_name), key)
    if skipped:
        # Kids and counts only: a JWKS holds public keys, but nothing of them is logged.
        logger.warning("jwks_keys_skipped", skipped=skipped, usable=len(keys))
    return keys


def _signing_key(entry: object) -> jwt.PyJWK | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
        return None
    if entry.get("use", "sig") != "sig":
        return None
    try:
        key = jwt.PyJWK(entry)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    public = key.key
    if key.algorithm_name == "RS256":
        ok = isinstance(public, rsa.RSAPublicKey) and public.key_size >= MIN_RSA_BITS
    elif key.algorithm_name == "ES256":
        ok = isinstance(public, ec.EllipticCurvePublicKey) and isinstance(
            public.curve, ec.SECP256R1
        )
    else:
        ok = False
    # A private key (a JWK with "d") is refused too: it is not what a JWKS publishes.
    return key if ok else None


class JwtVerifier:
    """Checks a bearer JWT and returns who it speaks for; safe to share between threads."""

    def __init__(
        self,
        *,
        jwks: JwksCache | None,
        hs256_secret: bytes | None,
        audience: str | None,
        issuer: str | None,
        tenant_claim: str,
        scope_claim: str,
        leeway: int,
    ) -> None:
        self._jwks = jwks
        self._hs256_secret = hs256_secret
        self._audience = audience
        self._issuer = issuer
        self._tenant_claim = tenant_claim
        self._scope_claim = scope_claim
        self._leeway = leeway

    def __repr__(self) -> str:
        # Never the secret.
        modes = [name for name, on in (("jwks", self._jwks), (HS256, self._hs256_secret)) if on]
        return f"JwtVerifier(modes={modes}, audience={self._audience!r}, issuer={self._issuer!r})"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> JwtVerifier | None:
        """The verifier the settings describe, or None when they configure no JWT key."""
        secret = settings.jwt_hs256_secret.get_secret_value() if settings.jwt_hs256_secret else ""
        if not settings.jwt_jwks_url and not secret:
            return None
        if secret and len(secret.encode()) < MIN_HS256_SECRET_BYTES:
            raise SettingsError(
                f"JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes long"
            )
        jwks = None
        if settings.jwt_jwks_url:
            jwks = JwksCache(
                settings.jwt_jwks_url, cache_seconds=settings.jwks_cache_seconds, clock=clock
            )
        return cls(
            jwks=jwks,
            hs256_secret=secret.encode() if secret else None,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            tenant_claim=settings.jwt_tenant_claim,
            scope_claim=settings.jwt_scope_claim,
            leeway=settings.jwt_leeway,
        )

    def verify(self, token: str) -> Principal:
        """The principal ``token`` proves; Unauthenticated with a short reason if it proves
        nothing, TokenServiceUnavailable if its key cannot be fetched now."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        alg = header.get("alg")
        key: jwt.PyJWK | bytes
        if alg == HS256 and self._hs256_secret is not None:
            key = self._hs256_secret
        elif isinstance(alg, str) and alg in JWKS_ALGORITHMS and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthenticated("token has no key id")
            key = self._jwks.key_for(kid, alg)
        else:
            raise Unauthenticated("algorithm not allowed")
        return self._principal(self._decode(token, key, alg))

    def _decode(self, token: str, key: jwt.PyJWK | bytes, alg: str) -> dict[str, Any]:
        # The one algorithm allowed is the one the key was chosen for: the secret verifies
        # HS256 only and a JWK only its own algorithm (PyJWT checks that too), so taking it
        # from the header lets no token pick how its key is interpreted.
        options: Options = {"require": ["exp", "sub"], "verify_aud": self._audience is not None}
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                options=options,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"missing claim {error.claim}") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(_reason(error)) from None

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise Unauthenticated("bad claim sub")
        if self._tenant_claim not in claims:
            raise Unauthenticated(f"missing claim {self._tenant_claim}")
        try:
            tenant_id = inputs.identifier("tenant_id", claims[self._tenant_claim])
        except inputs.InvalidInput:
            raise Unauthenticated(f"claim {self._tenant_claim} is no valid tenant id") from None
        return Principal(
            tenant_id=tenant_id, scopes=self._scopes(claims), kind=JWT, subject=subject
        )

    def _scopes(self, claims: Mapping[str, Any]) -> frozenset[str]:
        value = claims.get(self._scope_claim)
        if value is None:
            return frozenset()
        if isinstance(value, str):
            names = value.split()
        elif isinstance(value, list) and all(isinstance(name, str) for name in value):
            names = value
        else:
            raise Unauthenticated(f"claim {self._scope_claim} is no string or list of strings")
        # Scopes of other services may share the claim: only ours are kept.
        return frozenset(name for name in names if name in SCOPES or name == ALL_SCOPES)


def _reason(error: jwt.PyJWTError) -> str:
    # Our own words, never PyJWT's message: some of those quote parts of the token.
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "invalid token"
