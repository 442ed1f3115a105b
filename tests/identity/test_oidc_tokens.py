"""Token introspection (RFC 7662) and revocation (RFC 7009) driven over HTTP as resource servers and relying
parties would, on tokens obtained by a full sign-in."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

import standards
from dpi.keys import SigningKey
from dpi.openapi import undocumented_bodies
from identity import oidc
from identity.service import Actor
from tests.identity.conftest import LABOUR, Provider
from tests.identity.test_oidc import (
    assertion_fields,
    authorize_query,
    client_assertion,
    code_of,
    exchange,
    key_client_code,
    pkce,
    redeem_with_assertion,
    register_key_client,
    sign_in,
)

INTROSPECT = "/identity/introspect"
REVOKE = "/identity/revoke"
ENDPOINTS = (INTROSPECT, REVOKE)


async def signed_in_tokens(provider: Provider) -> dict[str, Any]:
    """The labour portal's tokens after Amina signs in."""
    verifier, challenge = pkce()
    redirect = await sign_in(
        provider,
        authorize_query(code_challenge=challenge, code_challenge_method="S256", scope="openid profile"),
    )
    response = await exchange(provider, code_of(redirect), verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def call(
    provider: Provider, path: str, token: str | None, client_id: str = "labour-portal"
) -> httpx.Response:
    data = {"token": token} if token is not None else {}
    return await provider.http.post(path, data=data, auth=(client_id, provider.secrets[client_id]))


async def userinfo_status(provider: Provider, access: str) -> int:
    response = await provider.http.get("/identity/userinfo", headers={"Authorization": f"Bearer {access}"})
    return response.status_code


def valid(ref: str, instance: Any) -> bool:
    return standards.validator(ref).issues(instance) == []


async def test_an_active_token_introspects_with_the_sector_pseudonym_and_no_uin(provider: Provider) -> None:
    tokens = await signed_in_tokens(provider)
    response = await call(provider, INTROSPECT, tokens["access_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert valid("identity-oidc-introspection@1.0.0", body)
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert body == {
        "active": True,
        "scope": "openid profile",
        "client_id": "labour-portal",
        "sub": await provider.register.sector_pseudonym_for(provider.uin, LABOUR),
        "exp": access["exp"],
        "iat": access["iat"],
        "token_type": "Bearer",
    }
    assert provider.uin not in response.text


async def test_a_revoked_token_is_inactive_and_refused_by_userinfo(provider: Provider) -> None:
    access = (await signed_in_tokens(provider))["access_token"]
    assert await userinfo_status(provider, access) == 200

    revoked = await call(provider, REVOKE, access)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {}
    assert valid("identity-oidc-revocation@1.0.0", revoked.json())

    assert (await call(provider, INTROSPECT, access)).json() == {"active": False}
    assert await userinfo_status(provider, access) == 401
    # Revoking again changes nothing and still answers 200 (RFC 7009 section 2.2).
    assert (await call(provider, REVOKE, access)).status_code == 200


async def test_an_expired_token_is_inactive(provider: Provider) -> None:
    access = (await signed_in_tokens(provider))["access_token"]
    provider.clock.now += oidc.ACCESS_TOKEN_TTL - timedelta(seconds=1)
    assert (await call(provider, INTROSPECT, access)).json()["active"] is True
    provider.clock.now += timedelta(seconds=2)
    assert (await call(provider, INTROSPECT, access)).json() == {"active": False}


async def test_another_clients_token_is_inactive_to_it_and_not_revoked_by_it(provider: Provider) -> None:
    access = (await signed_in_tokens(provider))["access_token"]
    foreign = await call(provider, INTROSPECT, access, client_id="health-portal")
    assert foreign.json() == {"active": False}
    assert (await call(provider, REVOKE, access, client_id="health-portal")).status_code == 200
    assert (await call(provider, INTROSPECT, access)).json()["active"] is True
    assert await userinfo_status(provider, access) == 200


async def test_a_token_of_a_deactivated_person_is_inactive(provider: Provider) -> None:
    access = (await signed_in_tokens(provider))["access_token"]
    await provider.register.deactivate(
        provider.uin, actor=Actor("authority", "civil-registrar-01"), reason="identity fraud investigation"
    )
    assert (await call(provider, INTROSPECT, access)).json() == {"active": False}


def _forged_token(issuer: str, audience: str) -> str:
    now = int(time.time())
    key = SigningKey.generate("EdDSA")
    claims = {
        "iss": issuer,
        "sub": "someone",
        "aud": audience,
        "client_id": "labour-portal",
        "scope": "openid",
        "iat": now,
        "exp": now + 300,
        "jti": "forged",
    }
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"})


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000, "forged", "id_token"],
)
async def test_tokens_that_are_not_active_access_tokens_are_inactive_and_revoke_answers_200(
    provider: Provider, token: str
) -> None:
    tokens = await signed_in_tokens(provider)
    if token == "forged":
        token = _forged_token(provider.issuer, provider.issuer.removesuffix("/identity"))
    elif token == "id_token":  # signed by the provider's own key, but not an access token
        token = tokens["id_token"]
    assert (await call(provider, INTROSPECT, token)).json() == {"active": False}
    revoked = await call(provider, REVOKE, token)
    assert revoked.status_code == 200
    assert revoked.json() == {}
    assert (await call(provider, INTROSPECT, tokens["access_token"])).json()["active"] is True


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "wrong-secret",
        "unknown-client",
        "Bearer abc",
        "Basic !!!not-base64",
        _basic(b"\xff\xfe:\xff"),
        _basic(b"labour-portal"),
    ],
)
async def test_unauthenticated_clients_get_invalid_client(
    provider: Provider, path: str, authorization: str | None
) -> None:
    headers: dict[str, str] = {}
    if authorization == "wrong-secret":
        headers["Authorization"] = _basic(b"labour-portal:not-the-secret")
    elif authorization == "unknown-client":
        headers["Authorization"] = _basic(b"nobody:" + provider.secrets["labour-portal"].encode())
    elif authorization is not None:
        headers["Authorization"] = authorization
    response = await provider.http.post(path, data={"token": "anything"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert valid("oauth-error@1.0.0", response.json())


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "form",
    [{}, {"token": ""}, {"token_type_hint": "access_token"}, {"token": ["a", "b"]}],
    ids=["no-token", "empty-token", "hint-only", "repeated-token"],
)
async def test_requests_without_one_token_get_invalid_request(
    provider: Provider, path: str, form: dict[str, Any]
) -> None:
    response = await provider.http.post(
        path, data=form, auth=("labour-portal", provider.secrets["labour-portal"])
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert valid("oauth-error@1.0.0", response.json())


async def test_the_endpoints_are_documented_by_their_schemas(provider: Provider) -> None:
    document = (await provider.http.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    for path, request, success in (
        (INTROSPECT, "identity-oidc-introspection-request-1.1.0", "identity-oidc-introspection-1.0.0"),
        (REVOKE, "identity-oidc-revocation-request-1.1.0", "identity-oidc-revocation-1.0.0"),
    ):
        operation = document["paths"][path]["post"]
        content = operation["requestBody"]["content"]
        assert content == {
            "application/x-www-form-urlencoded": {"schema": {"$ref": f"#/components/schemas/{request}"}}
        }
        responses = operation["responses"]
        assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith(success)
        for status in ("400", "401"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith(
                "oauth-error-1.0.0"
            )


_ACTIVE: dict[str, Any] = {
    "active": True,
    "scope": "openid profile",
    "client_id": "labour-portal",
    "sub": "pseudonym",
    "exp": 1800000300,
    "iat": 1800000000,
    "token_type": "Bearer",
}


@pytest.mark.parametrize(
    ("ref", "instance"),
    [
        ("identity-oidc-introspection@1.0.0", {}),
        ("identity-oidc-introspection@1.0.0", {"active": True}),
        ("identity-oidc-introspection@1.0.0", {"active": False, "sub": "pseudonym"}),
        ("identity-oidc-introspection@1.0.0", {"active": "false"}),
        ("identity-oidc-introspection@1.0.0", {**_ACTIVE, "uin": "1234567890"}),
        ("identity-oidc-introspection@1.0.0", {**_ACTIVE, "token_type": "mac"}),
        ("identity-oidc-introspection@1.0.0", {**_ACTIVE, "exp": "1800000300"}),
        ("identity-oidc-introspection-request@1.0.0", {}),
        ("identity-oidc-introspection-request@1.0.0", {"token": "a b"}),
        ("identity-oidc-introspection-request@1.0.0", {"token": "t", "client_secret": "s"}),
        ("identity-oidc-revocation-request@1.0.0", {"token": ""}),
        ("identity-oidc-revocation-request@1.0.0", {"token": "t", "token_type_hint": "Access Token"}),
        ("identity-oidc-revocation@1.0.0", {"revoked": True}),
    ],
)
def test_schemas_refuse_what_the_endpoints_do_not_accept_or_send(ref: str, instance: Any) -> None:
    assert not valid(ref, instance)


@pytest.mark.parametrize(
    ("ref", "instance"),
    [
        ("identity-oidc-introspection@1.0.0", {"active": False}),
        ("identity-oidc-introspection@1.0.0", _ACTIVE),
        ("identity-oidc-introspection@1.0.0", {**_ACTIVE, "scope": ""}),
        (
            "identity-oidc-introspection-request@1.0.0",
            {"token": "eyJ.e30.sig", "token_type_hint": "access_token"},
        ),
        ("identity-oidc-revocation-request@1.0.0", {"token": "eyJ.e30.sig"}),
        ("identity-oidc-revocation@1.0.0", {}),
    ],
)
def test_schemas_accept_what_the_endpoints_take_and_answer(ref: str, instance: Any) -> None:
    assert valid(ref, instance)


async def test_discovery_names_the_introspection_and_revocation_endpoints(provider: Provider) -> None:
    discovery = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert discovery["introspection_endpoint"].endswith(INTROSPECT)
    assert discovery["revocation_endpoint"].endswith(REVOKE)
    for endpoint in ("introspection", "revocation"):
        assert discovery[f"{endpoint}_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "private_key_jwt",
        ]
        assert set(discovery[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]) == {
            "EdDSA",
            "ES256",
            "PS256",
        }
    assert set(discovery["token_endpoint_auth_signing_alg_values_supported"]) == {"EdDSA", "ES256", "PS256"}


# --- private_key_jwt at introspection and revocation (RFC 7523, OpenID Connect Core 1.0 section 9) ----------


async def key_client_tokens(provider: Provider, alg: str = "EdDSA") -> tuple[SigningKey, dict[str, Any]]:
    """``jobs-portal``'s tokens, the client authenticating with assertions signed by the returned key."""
    key = await register_key_client(provider, alg)
    code, verifier = await key_client_code(provider)
    response = await redeem_with_assertion(
        provider, code, verifier, assertion_fields(client_assertion(provider, key))
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return key, tokens


async def call_with_assertion(provider: Provider, path: str, token: str, assertion: str) -> httpx.Response:
    return await provider.http.post(path, data={"token": token, **assertion_fields(assertion)})


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
async def test_a_private_key_jwt_client_introspects_and_revokes_its_token(
    provider: Provider, alg: str
) -> None:
    key, tokens = await key_client_tokens(provider, alg)
    access = tokens["access_token"]
    audience = f"{provider.issuer}/introspect"
    introspected = await call_with_assertion(
        provider, INTROSPECT, access, client_assertion(provider, key, aud=audience)
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == "jobs-portal"
    revoked = await call_with_assertion(provider, REVOKE, access, client_assertion(provider, key))
    assert revoked.status_code == 200, revoked.text
    assert await userinfo_status(provider, access) == 401
    again = await call_with_assertion(
        provider, INTROSPECT, access, client_assertion(provider, key, aud=provider.issuer)
    )
    assert again.json() == {"active": False}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "case", ["replayed", "wrong audience", "wrong key", "HTTP Basic as well", "spent at the token endpoint"]
)
async def test_bad_client_assertions_at_introspection_and_revocation_are_invalid_client(
    provider: Provider, path: str, case: str
) -> None:
    key, tokens = await key_client_tokens(provider)
    access = tokens["access_token"]
    auth: Any = httpx.USE_CLIENT_DEFAULT
    assertion = client_assertion(provider, key)
    if case == "replayed":
        assert (await call_with_assertion(provider, INTROSPECT, access, assertion)).status_code == 200
    elif case == "spent at the token endpoint":
        code, verifier = await key_client_code(provider)
        spent = await redeem_with_assertion(provider, code, verifier, assertion_fields(assertion))
        assert spent.status_code == 200, spent.text
    elif case == "wrong audience":
        assertion = client_assertion(provider, key, aud="https://elsewhere.example/introspect")
    elif case == "wrong key":
        assertion = client_assertion(provider, SigningKey.generate("EdDSA", kid=key.kid))
    else:
        auth = ("labour-portal", provider.secrets["labour-portal"])
    response = await provider.http.post(
        path, data={"token": access, **assertion_fields(assertion)}, auth=auth
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert valid("oauth-error@1.0.0", response.json())
    assert await userinfo_status(provider, access) == 200
