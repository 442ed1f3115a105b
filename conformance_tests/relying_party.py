"""The suite as a relying party of an OpenID provider: the clients the operator registered for the run,
how each authenticates at the token endpoint, PKCE pairs and ID token validation.

Client authentication follows RFC 6749 section 2.3.1 (HTTP Basic, ``client_secret_basic``) or OpenID
Connect Core 1.0 section 9 (``private_key_jwt``, a client assertion per RFC 7523,
https://www.rfc-editor.org/rfc/rfc7523). PKCE is RFC 7636 (https://www.rfc-editor.org/rfc/rfc7636) with
S256. ID tokens are checked as OpenID Connect Core 1.0 section 3.1.3.7 says
(https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jwt

from dpi.keys import SigningKey

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "OidcClient",
    "OidcOptions",
    "Pkce",
    "id_token_problems",
    "load_client",
]

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# How far a provider's clock may run ahead of the suite's before ``iat`` counts as "in the future".
CLOCK_LEEWAY_SECONDS: Final = 120
_ASSERTION_LIFETIME: Final = 60
_HASHES: Final[Mapping[str, Any]] = {
    "EdDSA": hashlib.sha512,
    "Ed25519": hashlib.sha512,
    "ES256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "RS256": hashlib.sha256,
    "ES384": hashlib.sha384,
    "PS384": hashlib.sha384,
    "RS384": hashlib.sha384,
    "ES512": hashlib.sha512,
    "PS512": hashlib.sha512,
    "RS512": hashlib.sha512,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class OidcClient:
    """A client the operator registered on the provider for the run: its id, one registered redirect URI,
    and either its secret (``client_secret_basic``) or its private JWK (``private_key_jwt``)."""

    client_id: str
    redirect_uri: str
    secret: str | None = field(default=None, repr=False)
    private_jwk: Mapping[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.client_id or not self.redirect_uri.startswith(("https://", "http://")):
            raise ValueError("a client needs a client_id and an absolute http(s) redirect_uri")
        if (self.secret is None) == (self.private_jwk is None):
            raise ValueError(f"client {self.client_id!r}: give either a client secret or a private JWK")
        if self.private_jwk is not None:
            SigningKey.from_jwk(self.private_jwk)

    @property
    def auth_method(self) -> str:
        return "client_secret_basic" if self.secret is not None else "private_key_jwt"

    def basic_authorization(self, secret: str | None = None) -> str:
        """``Authorization: Basic`` of RFC 6749 section 2.3.1 (both parts form-encoded first)."""
        user = quote(self.client_id, safe="")
        password = quote(secret if secret is not None else self.secret or "", safe="")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    def assertion(self, audience: str, key: SigningKey | None = None) -> str:
        """A client assertion (RFC 7523 section 3) for ``audience``, signed with its key or ``key``."""
        signer = key or SigningKey.from_jwk(self.private_jwk or {})
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + _ASSERTION_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, signer.private_key, algorithm=signer.alg, headers={"kid": signer.kid})

    def authenticate(self, token_endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
        """The headers and form fields that authenticate this client at ``token_endpoint``."""
        if self.secret is not None:
            return {"authorization": self.basic_authorization()}, {}
        return {}, {
            "client_id": self.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(token_endpoint),
        }


def load_client(path: Path) -> OidcClient:
    """A client registration from a JSON file: ``client_id``, ``redirect_uri`` and either
    ``client_secret`` or ``private_jwk``; raises ``ValueError`` naming the file when it is unusable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the client file {path}: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a client file holds a JSON object")
    try:
        return OidcClient(
            client_id=str(document.get("client_id", "")),
            redirect_uri=str(document.get("redirect_uri", "")),
            secret=document.get("client_secret"),
            private_jwk=document.get("private_jwk"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass(frozen=True)
class OidcOptions:
    """What the ``identity-oidc`` profile needs to sign a person in without a browser.

    ``clients``: at least two clients registered in *different* sectors; a third, when given, is in the
    same sector as the first. ``person``: the UIN or virtual ID the test person signs in with; ``uin``:
    their UIN, searched for in everything a client or user agent can read (the person identifier is
    used when it is not given and ``person`` is a UIN). ``issuer``: the provider's issuer URL
    (``<target>/identity`` when not given). One-time codes are read from the SMS gateway the suite plays:
    the provider must be configured to post them to ``http://<sms_host>:<sms_port>/``.
    """

    clients: tuple[OidcClient, ...]
    person: str
    uin: str | None = field(default=None, repr=False)
    issuer: str | None = None
    sms_host: str = "127.0.0.1"
    sms_port: int = 8790

    def __post_init__(self) -> None:
        if len(self.clients) < 2:
            raise ValueError("the identity-oidc profile needs two clients registered in different sectors")
        if len({client.client_id for client in self.clients}) != len(self.clients):
            raise ValueError("the clients must have different client ids")
        if not self.person.strip():
            raise ValueError("the test person's identifier is empty")


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair (RFC 7636 section 4.1 and 4.2): a fresh verifier and its S256 challenge."""

    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        return _b64(hashlib.sha256(self.verifier.encode("ascii")).digest())


def token_hash(value: str, algorithm: str) -> str | None:
    """``at_hash`` of ``value`` for a JWS ``algorithm`` (left half of the hash), None for an unknown one."""
    function = _HASHES.get(algorithm)
    if function is None:
        return None
    digest = function(value.encode("ascii")).digest()
    return _b64(digest[: len(digest) // 2])


def id_token_problems(
    token: str, jwks: Mapping[str, Any], *, issuer: str, client_id: str, access_token: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The ID token's claims (unverified when it does not verify) and every validation problem found."""
    problems: list[str] = []
    try:
        header = jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as error:
        return {}, [f"the ID token is not a JWT ({error})"]
    algorithm = str(header.get("alg", ""))
    keys = [key for key in jwks.get("keys", []) if isinstance(key, dict)]
    key = next((k for k in keys if "kid" in header and k.get("kid") == header["kid"]), None)
    if key is None and "kid" not in header and len(keys) == 1:
        key = keys[0]
    if key is None:
        problems.append(f"no key of the JWKS has the ID token's kid {header.get('kid')!r}")
    elif algorithm in ("none", "") or algorithm.startswith("HS"):
        problems.append(f"the ID token is signed with {algorithm or 'no algorithm'}, not a public key")
    else:
        try:
            jwt.decode(
                token,
                jwt.PyJWK(key, algorithm=algorithm).key,
                algorithms=[algorithm],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except (jwt.InvalidTokenError, jwt.PyJWKError) as error:
            problems.append(f"the ID token's signature does not verify with the JWKS ({error})")
    if claims.get("iss") != issuer:
        problems.append(f"iss is {claims.get('iss')!r}, not the issuer {issuer!r}")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences:
        problems.append(f"aud {audience!r} does not hold the client id")
    elif len(audiences) > 1 and claims.get("azp") != client_id:
        problems.append("aud holds other audiences but azp is not the client id")
    now = int(time.time())
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        problems.append(f"exp {claims.get('exp')!r} is not in the future")
    if not isinstance(claims.get("iat"), int | float) or claims["iat"] > now + CLOCK_LEEWAY_SECONDS:
        problems.append(f"iat {claims.get('iat')!r} is missing or in the future")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        problems.append("sub is missing")
    if "at_hash" in claims and access_token is not None:
        expected = token_hash(access_token, algorithm)
        if expected is not None and claims["at_hash"] != expected:
            problems.append("at_hash is not the hash of the access token")
    return claims, problems
