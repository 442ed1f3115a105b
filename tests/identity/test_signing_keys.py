"""ID tokens and signed userinfo in each algorithm a client may register, and key rotation, checked with
pyjwt against the published JWKS only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

import standards
from dpi.errors import DpiError
from dpi.keys import KeyStore
from tests.identity.conftest import LABOUR, Provider
from tests.identity.test_oidc import authorize_query, code_of, pkce, sign_in

ALGORITHMS = ("EdDSA", "ES256", "PS256")
CALLBACK = "https://alg.example/callback"


async def register(provider: Provider, client_id: str, **metadata: Any) -> str:
    _, secret = await provider.clients.add(
        {
            "client_id": client_id,
            "client_name": client_id,
            "redirect_uris": [CALLBACK],
            "sector": LABOUR,
            "scope": ["openid", "profile"],
            **metadata,
        }
    )
    assert secret is not None
    return secret


async def tokens_for(provider: Provider, client_id: str, secret: str) -> dict[str, Any]:
    verifier, challenge = pkce()
    query = authorize_query(
        client_id,
        CALLBACK,
        scope="openid profile",
        prompt="login",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    code = code_of(await sign_in(provider, query), CALLBACK)
    response = await provider.http.post(
        "/identity/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def published(provider: Provider) -> dict[str, Any]:
    response = await provider.http.get("/identity/.well-known/jwks.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def verify(token: str, jwks: dict[str, Any], algorithm: str, audience: str, issuer: str) -> dict[str, Any]:
    """pyjwt's verification with the key the token's kid names in the published set."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[algorithm], audience=audience, issuer=issuer
    )
    return claims


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_id_tokens_and_userinfo_are_signed_with_the_registered_algorithm(
    provider: Provider, algorithm: str
) -> None:
    client_id = f"alg-{algorithm.lower()}"
    secret = await register(
        provider,
        client_id,
        id_token_signed_response_alg=algorithm,
        userinfo_signed_response_alg=algorithm,
    )
    tokens = await tokens_for(provider, client_id, secret)
    jwks = await published(provider)
    claims = verify(tokens["id_token"], jwks, algorithm, client_id, provider.issuer)
    assert claims["sub"] == await provider.register.sector_pseudonym_for(provider.uin, LABOUR)
    userinfo = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.headers["content-type"].startswith("application/jwt")
    signed = verify(userinfo.text, jwks, algorithm, client_id, provider.issuer)
    assert signed["sub"] == claims["sub"]
    assert signed["name"] == "Amina El Idrissi"


async def test_a_client_without_an_algorithm_gets_eddsa(provider: Provider) -> None:
    secret = await register(provider, "alg-default")
    tokens = await tokens_for(provider, "alg-default", secret)
    verify(tokens["id_token"], await published(provider), "EdDSA", "alg-default", provider.issuer)


async def test_the_jwks_has_one_active_key_per_algorithm_and_discovery_lists_them(provider: Provider) -> None:
    jwks = await published(provider)
    assert standards.validator("jwks@1.0.0").issues(jwks) == []
    assert sorted(key["alg"] for key in jwks["keys"]) == sorted(ALGORITHMS)
    assert all("d" not in key and key["use"] == "sig" for key in jwks["keys"])
    document = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert document["id_token_signing_alg_values_supported"] == list(ALGORITHMS)
    assert document["userinfo_signing_alg_values_supported"] == list(ALGORITHMS)
    # Fetching again creates nothing new.
    assert await published(provider) == jwks


@pytest.mark.parametrize("field", ["id_token_signed_response_alg", "userinfo_signed_response_alg"])
@pytest.mark.parametrize("algorithm", ["RS256", "HS256", "none", "", "eddsa", 256])
async def test_the_client_schema_refuses_algorithms_the_provider_does_not_sign_with(
    provider: Provider, field: str, algorithm: Any
) -> None:
    with pytest.raises(DpiError) as refused:
        await register(provider, "alg-refused", **{field: algorithm})
    assert refused.value.reason_code == "request.invalid"
    assert await provider.clients.client("alg-refused") is None


def _kernel_keys(provider: Provider) -> KeyStore:
    return provider.app.runtime.keys


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
async def test_after_rotation_new_tokens_use_the_new_key_and_old_tokens_still_verify(
    provider: Provider, algorithm: str
) -> None:
    client_id = f"rotating-{algorithm.lower()}"
    secret = await register(provider, client_id, id_token_signed_response_alg=algorithm)
    before = await tokens_for(provider, client_id, secret)
    old_kid = jwt.get_unverified_header(before["id_token"])["kid"]
    kernel = _kernel_keys(provider)
    store = kernel if algorithm == "EdDSA" else KeyStore(kernel.directory / "identity" / algorithm.lower())
    assert store.active().kid == old_kid

    new = store.rotate(timedelta(days=1))
    jwks = await published(provider)
    kids = {key["kid"] for key in jwks["keys"]}
    assert {old_kid, new.kid} <= kids
    assert len([key for key in jwks["keys"] if key["alg"] == algorithm]) == 2

    after = await tokens_for(provider, client_id, secret)
    assert jwt.get_unverified_header(after["id_token"])["kid"] == new.kid
    verify(after["id_token"], jwks, algorithm, client_id, provider.issuer)
    # Signed before the rotation, still good within the grace period.
    verify(before["id_token"], jwks, algorithm, client_id, provider.issuer)
    bearer = {"Authorization": f"Bearer {before['access_token']}"}
    assert (await provider.http.get("/identity/userinfo", headers=bearer)).status_code == 200

    # A rotation without grace takes the key it retires out of the set at once; the older key keeps
    # its own grace.
    newest = store.rotate(timedelta(0))
    kids = {key["kid"] for key in (await published(provider))["keys"]}
    assert new.kid not in kids
    assert {old_kid, newest.kid} <= kids
    discovery = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert discovery["id_token_signing_alg_values_supported"] == list(ALGORITHMS)
    listed = (await provider.http.get(httpx.URL(discovery["jwks_uri"]).path)).json()
    assert {key["kid"] for key in listed["keys"]} == kids
