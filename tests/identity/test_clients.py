"""The client registry: metadata refused unless consistent, secrets stored hashed, disabling, the CLI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from dpi.blocks import Block
from dpi.db import create_engine, session_factory
from dpi.errors import DpiError
from dpi.keys import SigningKey
from dpi.settings import Settings
from identity.cli_clients import client_group
from identity.clients import ClientRegistry, validate_client_metadata
from identity.oidc_models import ClientRow

GOOD: dict[str, Any] = {
    "client_id": "labour-portal",
    "client_name": "Labour portal",
    "redirect_uris": ["https://labour.example/callback"],
    "sector": "DPI/GOV/MOL/jobseekers",
    "scope": ["openid", "profile"],
}


@pytest.fixture
async def registry(migrated: Settings, identity_block_under_test: Block) -> AsyncIterator[ClientRegistry]:
    engine = create_engine(migrated.database)
    try:
        yield ClientRegistry(session_factory(engine))
    finally:
        await engine.dispose()


def test_defaults_are_filled_in() -> None:
    document = validate_client_metadata(GOOD)
    assert document["require_pkce"] is True
    assert document["token_endpoint_auth_method"] == "client_secret_basic"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"redirect_uris": ["http://labour.example/callback"]}, "/redirect_uris/0"),
        ({"redirect_uris": ["https://labour.example/callback#x"]}, "/redirect_uris/0"),
        ({"redirect_uris": ["/callback"]}, "/redirect_uris/0"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "/token_endpoint_auth_method"),
        ({"jwks": {"keys": [SigningKey.generate().public_jwk()]}}, "/jwks"),
        ({"scope": ["profile"]}, "/scope"),
        ({"scope": ["openid", "email"]}, "/scope/1"),
        ({"require_pkce": "yes"}, "/require_pkce"),
        ({"colour": "blue"}, "/colour"),
        ({"sector": "has spaces"}, "/sector"),
        ({"userinfo_signed_response_alg": "none"}, "/userinfo_signed_response_alg"),
    ],
)
def test_inconsistent_metadata_is_refused(change: dict[str, Any], pointer: str) -> None:
    with pytest.raises(DpiError) as refused:
        validate_client_metadata({**GOOD, **change})
    assert refused.value.reason_code == "request.invalid"
    assert pointer in [detail.pointer for detail in refused.value.details]


def _key_client(*jwks: dict[str, Any]) -> dict[str, Any]:
    return {**GOOD, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": list(jwks)}}


def test_private_key_jwt_clients_register_their_public_keys() -> None:
    keys = [SigningKey.generate(alg).public_jwk() for alg in ("EdDSA", "ES256", "PS256")]
    document = validate_client_metadata(_key_client(*keys))
    assert document["jwks"] == {"keys": keys}


_ED = SigningKey.generate("EdDSA").public_jwk()
_RSA = SigningKey.generate("PS256").public_jwk()


@pytest.mark.parametrize(
    ("metadata", "pointer"),
    [
        ({**_key_client(_ED), "jwks_uri": "https://labour.example/jwks"}, "/jwks_uri"),
        (
            {
                **GOOD,
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://labour.example/jwks",
            },
            "/jwks_uri",
        ),
        (_key_client({**_RSA, "alg": "RS256"}), "/jwks/keys/0"),
        (_key_client({**_ED, "alg": "ES256"}), "/jwks/keys/0"),
        (_key_client({**_ED, "use": "enc"}), "/jwks/keys/0"),
        (_key_client({**_ED, "x": "AAAA"}), "/jwks/keys/0"),
        (_key_client({**_ED, "crv": "Ed448"}), "/jwks/keys/0"),
        (_key_client(_ED, {**SigningKey.generate("ES256").public_jwk(), "kid": _ED["kid"]}), "/jwks/keys"),
        (_key_client({"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}), "/jwks/keys/0/kty"),
    ],
)
def test_private_key_jwt_keys_are_refused_unless_usable(metadata: dict[str, Any], pointer: str) -> None:
    with pytest.raises(DpiError) as refused:
        validate_client_metadata(metadata)
    assert refused.value.reason_code == "request.invalid"
    assert pointer in [detail.pointer for detail in refused.value.details]


async def test_a_private_key_jwt_client_has_keys_and_no_secret(registry: ClientRegistry) -> None:
    key = SigningKey.generate("ES256")
    stored, secret = await registry.add(_key_client(key.public_jwk()))
    assert secret is None
    assert stored["token_endpoint_auth_method"] == "private_key_jwt"
    client = await registry.client("labour-portal")
    assert client is not None
    assert client.assertion_keys == {key.kid: key.public_jwk()}
    assert not client.check_client_secret("")
    basic = await registry.add({**GOOD, "client_id": "health-portal"})
    assert basic[1] is not None
    other = await registry.client("health-portal")
    assert other is not None
    assert other.assertion_keys == {}


def test_http_is_allowed_for_loopback_only() -> None:
    for uri in ("http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]/cb"):
        assert validate_client_metadata({**GOOD, "redirect_uris": [uri]})["redirect_uris"] == [uri]


async def test_secrets_are_stored_hashed_and_checked(registry: ClientRegistry) -> None:
    stored, secret = await registry.add(GOOD)
    assert secret is not None
    assert stored["status"] == "active"
    async with registry.sessions() as session:
        row = await session.scalar(select(ClientRow))
    assert row is not None
    assert secret not in json.dumps(row.metadata_document)
    assert row.secret_hash != secret
    client = await registry.client("labour-portal")
    assert client is not None
    assert client.check_client_secret(secret)
    assert not client.check_client_secret(secret + "x")


async def test_a_taken_id_is_refused(registry: ClientRegistry) -> None:
    await registry.add(GOOD)
    with pytest.raises(DpiError) as refused:
        await registry.add(GOOD)
    assert refused.value.reason_code == "identity.client_exists"


async def test_a_disabled_client_is_unknown_to_the_provider(registry: ClientRegistry) -> None:
    await registry.add(GOOD)
    await registry.disable("labour-portal")
    assert await registry.client("labour-portal") is None
    assert (await registry.show("labour-portal"))["status"] == "disabled"
    with pytest.raises(DpiError) as refused:
        await registry.disable("nobody")
    assert refused.value.reason_code == "identity.client_not_found"


async def test_disabling_through_another_registry_of_the_process_shows_at_once(
    registry: ClientRegistry,
) -> None:
    await registry.add(GOOD)
    provider_view = ClientRegistry(registry.sessions)
    assert await provider_view.client("labour-portal") is not None
    await registry.disable("labour-portal")
    assert await provider_view.client("labour-portal") is None
    with pytest.raises(DpiError):
        await provider_view.add({**GOOD, "client_id": "labour-portal"})
    assert await provider_view.client("labour-portal") is None


async def test_a_change_by_another_process_shows_once_the_remembered_client_is_stale(
    registry: ClientRegistry,
) -> None:
    await registry.add(GOOD)
    remembering = ClientRegistry(registry.sessions)
    reading = ClientRegistry(registry.sessions, cache_seconds=0)
    assert await remembering.client("labour-portal") is not None
    async with registry.sessions() as session, session.begin():
        await session.execute(update(ClientRow).values(status="disabled"))
    assert await reading.client("labour-portal") is None
    assert await remembering.client("labour-portal") is not None  # within CLIENT_CACHE_SECONDS
    remembering.remembered = {
        key: (float("-inf"), client) for key, (_, client) in remembering.remembered.items()
    }
    assert await remembering.client("labour-portal") is None


def test_the_cli_adds_lists_shows_and_disables(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DPI_DATABASE_URL", migrated.database)
    monkeypatch.setenv("DPI_VAR_DIR", str(migrated.var_dir))
    runner = CliRunner()
    path = tmp_path / "client.json"
    path.write_text(json.dumps(GOOD), encoding="utf-8")
    added = runner.invoke(client_group, ["add", str(path)])
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["client_secret"]
    assert "labour-portal\tactive" in runner.invoke(client_group, ["list"]).output
    assert runner.invoke(client_group, ["disable", "labour-portal"]).exit_code == 0
    assert json.loads(runner.invoke(client_group, ["show", "labour-portal"]).output)["status"] == "disabled"
    refused = runner.invoke(client_group, ["add", "-"], input=json.dumps({**GOOD, "scope": ["profile"]}))
    assert refused.exit_code == 2
    assert "openid" in refused.output
