"""ID tokens and signed userinfo in each algorithm a client may register, keys made at registration and at
start (never by a JWKS read), and key rotation, checked with pyjwt against the published JWKS only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

import standards
from dpi.app import create_app
from dpi.db import create_engine, session_factory
from dpi.errors import DpiError
from dpi.keys import KeyStore, SigningKey
from dpi.settings import Settings
from identity.block import identity_block
from identity.cli import identity_group
from identity.clients import ClientRegistry
from tests.identity.conftest import LABOUR, Provider, install_key
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


def provider_store(provider: Provider, algorithm: str) -> Path:
    return provider.app.runtime.settings.key_directory / "identity" / algorithm.lower()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_id_tokens_and_userinfo_are_signed_with_the_registered_algorithm(
    provider: Provider, algorithm: str, rsa_key: SigningKey
) -> None:
    if algorithm == "PS256":
        install_key(provider_store(provider, algorithm), rsa_key)
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


async def test_the_jwks_has_one_active_key_per_algorithm_in_use_and_reading_it_makes_none(
    provider: Provider, rsa_key: SigningKey
) -> None:
    jwks = await published(provider)
    assert [key["alg"] for key in jwks["keys"]] == ["EdDSA"]
    assert not provider_store(provider, "ES256").exists()
    assert not provider_store(provider, "PS256").exists()

    await register(provider, "alg-es256", id_token_signed_response_alg="ES256")
    assert sorted(key["alg"] for key in (await published(provider))["keys"]) == ["ES256", "EdDSA"]
    install_key(provider_store(provider, "PS256"), rsa_key)
    await register(provider, "alg-ps256", userinfo_signed_response_alg="PS256")

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


async def test_the_block_makes_at_start_the_keys_of_clients_registered_without_them(
    migrated: Settings,
) -> None:
    engine = create_engine(migrated.database)
    try:
        # Registered with no access to the key directory, as straight into the database.
        await ClientRegistry(session_factory(engine)).add(
            {
                "client_id": "alg-es256",
                "client_name": "ES256 portal",
                "redirect_uris": [CALLBACK],
                "sector": LABOUR,
                "scope": ["openid"],
                "id_token_signed_response_alg": "ES256",
            }
        )
    finally:
        await engine.dispose()
    assert not (migrated.key_directory / "identity" / "es256").exists()
    async with AsyncTestClient(app=create_app(migrated, blocks=[identity_block()])) as http:
        jwks = (await http.get("/identity/.well-known/jwks.json")).json()
    assert sorted(key["alg"] for key in jwks["keys"]) == ["ES256", "EdDSA"]


def test_dpi_identity_keys_rotate_keeps_the_old_key_published(tmp_path: Path) -> None:
    environment = {"DPI_VAR_DIR": str(tmp_path / "var"), "DPI_KEY_GRACE_SECONDS": "3600"}
    store = KeyStore(tmp_path / "var" / "keys" / "identity" / "es256")
    old = store.ensure_active("ES256")
    result = CliRunner().invoke(identity_group, ["keys", "rotate", "--alg", "ES256"], env=environment)
    assert result.exit_code == 0, result.output
    new = store.active()
    assert new.kid != old.kid
    assert new.alg == "ES256"
    assert result.output == f"ES256: new active key {new.kid}\n"
    assert {key["kid"] for key in store.jwks()["keys"]} == {old.kid, new.kid}


@pytest.mark.parametrize(
    ("arguments", "environment"),
    [
        (["keys", "rotate", "--alg", "RS256"], {}),
        (["keys", "rotate"], {}),
        (["keys", "rotate", "--alg", "ES256"], {"DPI_KEY_GRACE_SECONDS": "soon"}),
    ],
)
def test_dpi_identity_keys_rotate_refuses_what_it_cannot_do(
    tmp_path: Path, arguments: list[str], environment: dict[str, str]
) -> None:
    result = CliRunner().invoke(
        identity_group, arguments, env={"DPI_VAR_DIR": str(tmp_path / "var"), **environment}
    )
    assert result.exit_code == 2
    assert not (tmp_path / "var" / "keys" / "identity").exists()
