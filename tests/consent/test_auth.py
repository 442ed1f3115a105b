"""Access tokens: what the verifier accepts (RFC 9068 JWT access tokens from the configured issuer) and
everything it refuses, the JWKS cache, and the bearer challenge the API answers with."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from consent.auth import (
    JwtTokenVerifier,
    Principal,
    TokenVerifier,
    bearer_token,
    operator_id,
    require_scope,
)
from consent.block import jwt_verifier
from dpi.errors import DpiError
from dpi.keys import SigningKey
from dpi.settings import Settings
from tests.consent.conftest import CONSUMER, TokenIssuer

JWKS_URL = "https://identity.test.example/.well-known/jwks.json"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _reason(error: pytest.ExceptionInfo[DpiError]) -> str:
    return error.value.reason_code


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
async def test_a_valid_access_token_gives_its_principal(alg: str) -> None:
    issuer = TokenIssuer(key=SigningKey.generate(alg))
    verifier: TokenVerifier = issuer.verifier()
    token = issuer.token("mol-client", "consent:request", "consent:revoke", member=CONSUMER)
    assert await verifier.verify(token) == Principal(
        subject="mol-client",
        scopes=frozenset({"consent:request", "consent:revoke"}),
        member=CONSUMER,
    )
    assert operator_id(await verifier.verify(token)) is None


async def test_an_operator_token_names_the_operator() -> None:
    issuer = TokenIssuer()
    principal = await issuer.verifier().verify(issuer.token("op-centre-17", "consent:operator"))
    assert operator_id(principal) == "op-centre-17"


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def _hs256(issuer: TokenIssuer) -> str:
    now = int(time.time())
    payload = {"iss": issuer.issuer, "sub": "x", "iat": now, "exp": now + 60}
    return jwt.encode(
        payload,
        "a-shared-secret-long-enough-for-hs256!",
        algorithm="HS256",
        headers={"typ": "at+jwt", "kid": issuer.key.kid},
    )


def _tampered(issuer: TokenIssuer) -> str:
    header, payload, signature = issuer.token("citizen-pseudonym-01", "consent:self").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "consent:admin"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


REFUSED: list[tuple[str, Any]] = [
    ("expired", lambda i: i.token("s", "consent:self", lifetime=-120)),
    ("not yet valid", lambda i: i.token("s", "consent:self", nbf=int(time.time()) + 3600)),
    ("issued in the future", lambda i: i.token("s", "consent:self", iat=int(time.time()) + 3600)),
    ("another issuer", lambda i: i.token("s", "consent:self", iss="https://evil.example")),
    ("no expiry", lambda i: i.token("s", "consent:self", exp=None)),
    ("no subject", lambda i: i.token("", "consent:self")),
    ("scope not a string", lambda i: i.token("s", scope=["consent:admin"])),
    ("member not a subsystem", lambda i: i.token("s", "consent:request", member="DPI/GOV")),
    ("an id token, not an access token", lambda i: i.token("s", "consent:self", header={"typ": "JWT"})),
    ("no type", lambda i: i.token("s", "consent:self", header={"typ": None})),
    ("unknown key", lambda i: i.token("s", "consent:self", key=SigningKey.generate("EdDSA"))),
    (
        "signed by another key under a known kid",
        lambda i: i.token("s", "consent:self", key=SigningKey.generate("EdDSA", kid=i.key.kid)),
    ),
    ("tampered claims", _tampered),
    (
        "alg none",
        lambda i: _unsigned(
            {"alg": "none", "typ": "at+jwt", "kid": i.key.kid}, {"iss": i.issuer, "sub": "s"}
        ),
    ),
    ("symmetric algorithm", _hs256),
    ("not a JWT", lambda _i: "not-a-token"),
    ("garbage segments", lambda _i: "a.b.c"),
    ("too long", lambda i: i.token("s", "consent:self", padding="x" * 20000)),
]


@pytest.mark.parametrize(("case", "make"), REFUSED, ids=[case for case, _ in REFUSED])
async def test_tokens_that_do_not_hold_are_refused_as_invalid(case: str, make: Any) -> None:
    issuer = TokenIssuer()
    with pytest.raises(DpiError) as refused:
        await issuer.verifier().verify(make(issuer))
    assert _reason(refused) == "auth.token_invalid", case
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_audience_is_checked_when_one_is_configured() -> None:
    issuer = TokenIssuer()
    token = issuer.token("s", "consent:self")
    assert (
        await JwtTokenVerifier(issuer.issuer, jwks=issuer.jwks, audience="dpi").verify(token)
    ).subject == "s"
    with pytest.raises(DpiError) as refused:
        await JwtTokenVerifier(issuer.issuer, jwks=issuer.jwks, audience="payments").verify(token)
    assert _reason(refused) == "auth.token_invalid"


class _Issuer:
    """A JWKS endpoint that counts its fetches and can rotate keys or go down."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer
        self.published = [issuer.key]
        self.fetches = 0
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [key.public_jwk() for key in self.published]})


async def test_keys_are_fetched_once_cached_and_refetched_for_a_rotated_key() -> None:
    issuer = TokenIssuer()
    endpoint = _Issuer(issuer)
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handle)) as client:
        verifier = JwtTokenVerifier(
            issuer.issuer, jwks_url=JWKS_URL, client=client, refresh_interval_seconds=0.0
        )
        for _ in range(3):
            await verifier.verify(issuer.token("s", "consent:self"))
        assert endpoint.fetches == 1
        rotated = SigningKey.generate("ES256")
        endpoint.published.append(rotated)
        assert (await verifier.verify(issuer.token("s", "consent:self", key=rotated))).subject == "s"
        assert endpoint.fetches == 2


async def test_unknown_key_ids_cannot_make_the_verifier_hammer_the_issuer() -> None:
    issuer = TokenIssuer()
    endpoint = _Issuer(issuer)
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handle)) as client:
        verifier = JwtTokenVerifier(
            issuer.issuer, jwks_url=JWKS_URL, client=client, refresh_interval_seconds=3600
        )
        await verifier.verify(issuer.token("s", "consent:self"))
        for _ in range(20):
            with pytest.raises(DpiError):
                await verifier.verify(issuer.token("s", "consent:self", key=SigningKey.generate("EdDSA")))
        assert endpoint.fetches == 1


async def test_an_issuer_outage_keeps_known_keys_and_without_any_is_not_ready() -> None:
    issuer = TokenIssuer()
    endpoint = _Issuer(issuer)
    endpoint.down = True
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handle)) as client:
        cold = JwtTokenVerifier(issuer.issuer, jwks_url=JWKS_URL, client=client)
        with pytest.raises(DpiError) as refused:
            await cold.verify(issuer.token("s", "consent:self"))
        assert _reason(refused) == "service.not_ready"
        endpoint.down = False
        warm = JwtTokenVerifier(
            issuer.issuer, jwks_url=JWKS_URL, client=client, max_age_seconds=0.0, refresh_interval_seconds=0.0
        )
        await warm.verify(issuer.token("s", "consent:self"))
        endpoint.down = True
        assert (await warm.verify(issuer.token("s", "consent:self"))).subject == "s"


def test_the_production_verifier_follows_the_kernel_settings() -> None:
    verifier = jwt_verifier(Settings(base_url="https://dpi.gov.example"))
    assert isinstance(verifier, JwtTokenVerifier)
    assert verifier.issuer == "https://dpi.gov.example/identity"


def test_a_verifier_takes_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JwtTokenVerifier("https://id.example")
    with pytest.raises(ValueError, match="exactly one"):
        JwtTokenVerifier("https://id.example", jwks={"keys": []}, jwks_url=JWKS_URL)


@pytest.mark.parametrize(
    ("header", "reason_code"),
    [
        (None, "auth.token_missing"),
        ("", "auth.token_missing"),
        ("Basic dXNlcjpwYXNz", "auth.token_invalid"),
        ("Bearer", "auth.token_invalid"),
        ("Bearer   ", "auth.token_invalid"),
    ],
)
def test_the_authorization_header_must_be_a_bearer_token(header: str | None, reason_code: str) -> None:
    with pytest.raises(DpiError) as refused:
        bearer_token(header)
    assert _reason(refused) == reason_code
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="dpi"')


def test_bearer_token_takes_the_token_whatever_the_scheme_case() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"


def test_a_missing_scope_is_a_403_naming_it() -> None:
    principal = Principal(subject="s", scopes=frozenset({"consent:self"}))
    require_scope(principal, "consent:self")
    with pytest.raises(DpiError) as refused:
        require_scope(principal, "consent:admin")
    assert (refused.value.status_code, _reason(refused)) == (403, "auth.scope_missing")
    assert 'scope="consent:admin"' in refused.value.headers["WWW-Authenticate"]


async def test_the_api_answers_401_with_a_bearer_challenge(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    missing = await consent_client.get("/consent/v1/me/consents")
    assert (missing.status_code, missing.json()["reason_code"]) == (401, "auth.token_missing")
    assert missing.headers["www-authenticate"] == 'Bearer realm="dpi"'
    stranger = TokenIssuer(issuer="https://another-idp.example")
    invalid = await consent_client.get(
        "/consent/v1/me/consents", headers=stranger.headers("s", "consent:self")
    )
    assert (invalid.status_code, invalid.json()["reason_code"]) == (401, "auth.token_invalid")
    assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
    scoped = await consent_client.get("/consent/v1/me/consents", headers=token_issuer.headers("s", "openid"))
    assert (scoped.status_code, scoped.json()["reason_code"]) == (403, "auth.scope_missing")
