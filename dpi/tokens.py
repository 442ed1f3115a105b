"""Bearer access tokens every block accepts: JWT access tokens (RFC 9068,
https://www.rfc-editor.org/rfc/rfc9068) verified against the token issuer's published JWKS (RFC 7517).

The identity block's OpenID provider issues the tokens; blocks only verify them, through the
:class:`TokenVerifier` interface, so another issuer can take its place. :class:`JwtTokenVerifier` is the
implementation used in production: it accepts only asymmetric signatures (EdDSA, ES256, PS256), checks
``iss``, ``exp``, ``nbf``, ``iat`` (and ``aud`` when an audience is configured) and the ``at+jwt`` type,
and keeps the issuer's keys in a cache that is refreshed when a token names a key it does not know (at
most every few seconds, so unknown key ids cannot be used to make a block hammer the issuer).

Each block names its own scopes (``consent:check``, ...); the ``member`` claim names the subsystem an
organisation's token speaks for (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
import jwt

from dpi.errors import DpiError

__all__ = [
    "ACCEPTED_ALGORITHMS",
    "MEMBER_CLAIM",
    "JwtTokenVerifier",
    "Principal",
    "TokenVerifier",
    "bearer_token",
    "require_scope",
]

MEMBER_CLAIM: Final = "member"
"""The claim naming the caller's subsystem (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``)."""

ACCEPTED_ALGORITHMS: Final = frozenset({"EdDSA", "ES256", "PS256"})
_ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_REQUIRED_CLAIMS: Final = ("iss", "sub", "exp", "iat")
_PART: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?"
_SUBSYSTEM: Final = re.compile(rf"^{_PART}/{_PART}/{_PART}/{_PART}$")
_MAX_TOKEN_LENGTH: Final = 16384
_REALM: Final = 'Bearer realm="dpi"'

_log = logging.getLogger("dpi.tokens")


@dataclass(frozen=True)
class Principal:
    """Who calls: the token's subject, its scopes and the subsystem it speaks for."""

    subject: str
    scopes: frozenset[str]
    member: str | None = None


class TokenVerifier(Protocol):
    """Turns a bearer token into a :class:`Principal`.

    Raises :class:`dpi.errors.DpiError` ``auth.token_invalid`` for any token it does not accept (and
    ``service.not_ready`` when it cannot reach what it needs to decide).
    """

    async def verify(self, token: str) -> Principal: ...


def _invalid(message: str) -> DpiError:
    return DpiError(
        "auth.token_invalid", message, headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'}
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 section 2.1), or a 401."""
    if authorization is None or not authorization.strip():
        raise DpiError("auth.token_missing", headers={"WWW-Authenticate": _REALM})
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid("the Authorization header must be 'Bearer <token>'")
    return token


def require_scope(principal: Principal, scope: str) -> None:
    """A 403 ``auth.scope_missing`` unless the token grants ``scope``."""
    if scope not in principal.scopes:
        raise DpiError(
            "auth.scope_missing",
            f"this operation needs the {scope} scope",
            headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{scope}"'},
        )


class JwtTokenVerifier:
    """Verifies RFC 9068 JWT access tokens from ``issuer``.

    The keys come from ``jwks`` (a JWK Set held in memory) or are fetched from ``jwks_url`` with
    ``client`` (a short-lived client when none is given). Fetched keys are kept for ``max_age_seconds``
    and refetched early when a token names an unknown key id, but never more often than every
    ``refresh_interval_seconds``.
    """

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        audience: str | None = None,
        client: httpx.AsyncClient | None = None,
        leeway_seconds: float = 30.0,
        refresh_interval_seconds: float = 5.0,
        max_age_seconds: float = 300.0,
    ) -> None:
        if (jwks_url is None) == (jwks is None):
            raise ValueError("give exactly one of jwks_url and jwks")
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self._client = client
        self._leeway = leeway_seconds
        self._refresh_interval = refresh_interval_seconds
        self._max_age = max_age_seconds
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        if jwks is not None:
            self._keys = _keys_by_id(jwks)

    async def verify(self, token: str) -> Principal:
        if len(token) > _MAX_TOKEN_LENGTH:
            raise _invalid("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("the token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise _invalid("the token's algorithm is not accepted (EdDSA, ES256 or PS256)")
        token_type = header.get("typ")
        if not isinstance(token_type, str) or token_type.lower() not in _ACCESS_TOKEN_TYPES:
            raise _invalid("not an access token (typ at+jwt, RFC 9068)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _invalid("the token names no key (kid)")
        jwk = await self._key(kid)
        if jwk is None:
            raise _invalid("the token is signed with a key the issuer does not publish")
        if jwk.get("alg", algorithm) != algorithm:
            raise _invalid("the token's algorithm does not match its key")
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm)
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self._leeway,
                options={"require": list(_REQUIRED_CLAIMS), "verify_aud": self.audience is not None},
            )
        except (jwt.InvalidTokenError, jwt.PyJWKError):
            raise _invalid("the token's signature or claims do not hold") from None
        return _principal(claims)

    async def _key(self, kid: str) -> dict[str, Any] | None:
        if self._jwks_url is None:
            return self._keys.get(kid)
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._max_age
        unknown = kid not in self._keys and (
            self._fetched_at is None or now - self._fetched_at >= self._refresh_interval
        )
        if stale or unknown:
            async with self._lock:
                # Another request may have refreshed while this one waited.
                if self._fetched_at is None or time.monotonic() - self._fetched_at >= self._refresh_interval:
                    await self._refresh(self._jwks_url)
        return self._keys.get(kid)

    async def _refresh(self, url: str) -> None:
        try:
            if self._client is not None:
                response = await self._client.get(url, timeout=5.0)
            else:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(url)
            response.raise_for_status()
            keys = _keys_by_id(response.json())
        except (httpx.HTTPError, ValueError) as error:
            # Keep the keys already known: a brief outage of the issuer must not log everyone out.
            _log.warning(
                "token issuer keys unavailable",
                extra={"event": "token_jwks_unavailable", "exception_type": type(error).__name__},
            )
            self._fetched_at = time.monotonic()
            if not self._keys:
                raise DpiError("service.not_ready", "the token issuer's keys cannot be fetched") from None
            return
        self._keys = keys
        self._fetched_at = time.monotonic()


def _keys_by_id(jwks: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWK Set")
    return {
        key["kid"]: dict(key)
        for key in jwks["keys"]
        if isinstance(key, Mapping) and isinstance(key.get("kid"), str) and key.get("use", "sig") == "sig"
    }


def _principal(claims: Mapping[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _invalid("the token has no subject")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise _invalid("the scope claim must be a space-separated string")
    member = claims.get(MEMBER_CLAIM)
    if member is not None and (not isinstance(member, str) or not _SUBSYSTEM.match(member)):
        raise _invalid("the member claim must be a subsystem id")
    return Principal(subject=subject, scopes=frozenset(scope.split()), member=member)
