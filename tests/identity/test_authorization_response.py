"""The issuer in every authorization response (RFC 9207), success and error redirects alike."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.identity.conftest import Provider
from tests.identity.test_oidc import authorize_query, pkce, sign_in


async def test_a_successful_response_names_the_issuer(provider: Provider) -> None:
    _, challenge = pkce()
    redirect = await sign_in(
        provider, authorize_query(code_challenge=challenge, code_challenge_method="S256")
    )
    assert redirect.status_code == 302
    params = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert params["iss"] == [provider.issuer]
    assert set(params) == {"code", "state", "iss"}


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"request": "eyJ"}, "request_not_supported"),
    ],
)
async def test_an_error_response_names_the_issuer(
    provider: Provider, extra: dict[str, str], error: str
) -> None:
    query = {**authorize_query(), **extra}
    if extra:
        _, challenge = pkce()
        query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    response = await provider.http.get("/identity/authorize", params=query)
    assert response.status_code == 302
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["error"] == [error]
    assert params["iss"] == [provider.issuer]
    assert params["state"] == ["state-123"]


async def test_a_redirect_uri_with_a_query_keeps_it(provider: Provider) -> None:
    await provider.clients.add(
        {
            "client_id": "query-portal",
            "client_name": "Query portal",
            "redirect_uris": ["https://query.example/callback?tenant=7"],
            "sector": "DPI/GOV/MOL/jobseekers",
            "scope": ["openid"],
        }
    )
    query = authorize_query("query-portal", "https://query.example/callback?tenant=7", scope="openid")
    response = await provider.http.get("/identity/authorize", params=query)
    location = response.headers["location"]
    assert location.startswith("https://query.example/callback?tenant=7&")
    params = parse_qs(urlsplit(location).query)
    assert params["tenant"] == ["7"]
    assert params["iss"] == [provider.issuer]


async def test_discovery_announces_the_iss_parameter(provider: Provider) -> None:
    document = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert document["authorization_response_iss_parameter_supported"] is True
