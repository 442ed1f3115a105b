"""The OpenID provider driven over HTTP as a browser and a relying party would: forms followed, the code
read from the SMS the person receives, tokens checked against the published keys."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

import standards
from dpi.keys import SigningKey
from dpi.openapi import undocumented_bodies
from identity import oidc
from tests.identity.conftest import (
    HEALTH_REDIRECT,
    LABOUR,
    REDIRECT,
    Provider,
)

JOBS_REDIRECT = "https://jobs.example/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_query(
    client_id: str = "labour-portal", redirect_uri: str = REDIRECT, **extra: str
) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile phone",
        "state": "state-123",
        "nonce": "nonce-456",
        **extra,
    }


def form_of(page: str) -> tuple[str, str]:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert action is not None
    assert token is not None
    return html.unescape(action.group(1)), html.unescape(token.group(1))


async def sign_in(provider: Provider, query: dict[str, str], identifier: str | None = None) -> httpx.Response:
    """Follow the pages from the authorization request to the redirect back to the client."""
    page = await provider.http.get("/identity/authorize", params=query)
    assert page.status_code == 200, page.text
    action, csrf = form_of(page.text)
    otp_page = await provider.http.post(
        action, data={"csrf_token": csrf, "identifier": identifier or provider.uin}
    )
    assert otp_page.status_code == 200, otp_page.text
    code = re.search(r"\b(\d{6})\b", provider.sender.messages[-1].text)
    assert code is not None
    action, csrf = form_of(otp_page.text)
    answer = await provider.http.post(action, data={"csrf_token": csrf, "otp": code.group(1)})
    return await consent_to_all(provider, answer)


async def consent_to_all(provider: Provider, response: httpx.Response) -> httpx.Response:
    """Allow every claim the consent page lists, when the provider shows it."""
    if response.status_code != 200 or "/identity/authorize/consent" not in response.text:
        return response
    action, csrf = form_of(response.text)
    claims = re.findall(r'name="claim" value="([^"]+)"', response.text)
    return await provider.http.post(action, data={"csrf_token": csrf, "decision": "allow", "claim": claims})


def code_of(response: httpx.Response, redirect_uri: str = REDIRECT) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["state-123"]
    return params["code"][0]


async def exchange(
    provider: Provider,
    code: str,
    verifier: str,
    *,
    client_id: str = "labour-portal",
    secret: str | None = None,
) -> httpx.Response:
    redirect = REDIRECT if client_id == "labour-portal" else HEALTH_REDIRECT
    return await provider.http.post(
        "/identity/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": verifier,
        },
        auth=(client_id, secret if secret is not None else provider.secrets[client_id]),
    )


async def jwks(provider: Provider) -> jwt.PyJWKSet:
    response = await provider.http.get("/identity/.well-known/jwks.json")
    assert response.status_code == 200
    return jwt.PyJWKSet.from_dict(response.json())


def verify_id_token(token: str, keys: jwt.PyJWKSet, issuer: str, audience: str) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(key for key in keys.keys if key.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["EdDSA"], audience=audience, issuer=issuer
    )
    return claims


async def test_full_sign_in_with_pkce(provider: Provider) -> None:
    verifier, challenge = pkce()
    redirect = await sign_in(
        provider, authorize_query(code_challenge=challenge, code_challenge_method="S256", ui_locales="fr")
    )
    code = code_of(redirect)
    assert "httponly" in redirect.headers.get("set-cookie", "").lower()

    response = await exchange(provider, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"

    keys = await jwks(provider)
    claims = verify_id_token(tokens["id_token"], keys, provider.issuer, "labour-portal")
    assert claims["nonce"] == "nonce-456"
    assert claims["acr"] == oidc.ACR_SMS_OTP
    assert isinstance(claims["auth_time"], int)
    assert claims["sub"] == await provider.register.sector_pseudonym_for(provider.uin, LABOUR)

    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["sub"] == claims["sub"]
    assert access["client_id"] == "labour-portal"
    assert set(access["scope"].split()) == {"openid", "profile", "phone"}

    userinfo = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 200
    assert userinfo.json() == {
        "sub": claims["sub"],
        "given_name": "Amina",
        "family_name": "El Idrissi",
        "name": "Amina El Idrissi",
        "birthdate": "1990-04-12",
        "phone_number": "+212612345678",
    }
    for body in (redirect.text, response.text, userinfo.text, tokens["id_token"], tokens["access_token"]):
        assert provider.uin not in body
    for token in (tokens["id_token"], tokens["access_token"]):
        assert provider.uin not in str(jwt.decode(token, options={"verify_signature": False}))


async def test_the_session_answers_prompt_none_and_signed_userinfo_for_another_sector(
    provider: Provider,
) -> None:
    _verifier, challenge = pkce()
    code_of(await sign_in(provider, authorize_query(code_challenge=challenge, code_challenge_method="S256")))
    health_verifier, health_challenge = pkce()
    health_query = authorize_query(
        "health-portal",
        HEALTH_REDIRECT,
        prompt="none",
        code_challenge=health_challenge,
        code_challenge_method="S256",
    )
    silent = await provider.http.get("/identity/authorize", params=health_query)
    # Signed in, but the person has not yet chosen what the health portal may receive.
    assert parse_qs(urlsplit(silent.headers["location"]).query)["error"] == ["consent_required"]
    del health_query["prompt"]
    consent_page = await provider.http.get("/identity/authorize", params=health_query)
    code = code_of(await consent_to_all(provider, consent_page), HEALTH_REDIRECT)
    tokens = (await exchange(provider, code, health_verifier, client_id="health-portal")).json()
    claims = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "health-portal")
    labour = await provider.register.sector_pseudonym_for(provider.uin, LABOUR)
    assert claims["sub"] != labour
    userinfo = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.headers["content-type"].startswith("application/jwt")
    signed = verify_id_token(userinfo.text, await jwks(provider), provider.issuer, "health-portal")
    assert signed["name"] == "أمينة الإدريسي"
    assert signed["sub"] == claims["sub"]


async def test_prompt_none_without_a_session_redirects_login_required(provider: Provider) -> None:
    _, challenge = pkce()
    response = await provider.http.get(
        "/identity/authorize",
        params=authorize_query(prompt="none", code_challenge=challenge, code_challenge_method="S256"),
    )
    assert response.status_code == 302
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["error"] == ["login_required"]
    assert params["state"] == ["state-123"]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({}, "invalid_request"),  # PKCE required for this client
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "S256", "scope": "profile"}, "invalid_scope"),
        (
            {"code_challenge": "x" * 43, "code_challenge_method": "S256", "response_type": "token"},
            "unsupported_response_type",
        ),
        (
            {"code_challenge": "x" * 43, "code_challenge_method": "S256", "request": "eyJ"},
            "request_not_supported",
        ),
    ],
)
async def test_bad_authorization_requests_redirect_with_the_standard_error(
    provider: Provider, extra: dict[str, str], error: str
) -> None:
    response = await provider.http.get("/identity/authorize", params={**authorize_query(), **extra})
    assert response.status_code == 302, response.text
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["error"] == [error]


@pytest.mark.parametrize(
    "query",
    [
        authorize_query(redirect_uri="https://evil.example/callback"),
        authorize_query(client_id="nobody"),
        {k: v for k, v in authorize_query().items() if k != "client_id"},
    ],
)
async def test_untrusted_redirects_get_an_error_page(provider: Provider, query: dict[str, str]) -> None:
    response = await provider.http.get("/identity/authorize", params={**query, "ui_locales": "ar"})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert 'dir="rtl"' in response.text


async def test_unknown_parameters_are_ignored_and_pages_are_localised(provider: Provider) -> None:
    _, challenge = pkce()
    query = authorize_query(
        code_challenge=challenge, code_challenge_method="S256", frobnicate="1", ui_locales="ar fr"
    )
    page = await provider.http.get("/identity/authorize", params=query)
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    assert '<label for="identifier">' in page.text
    assert 'id="identifier"' in page.text
    assert "<script" not in page.text


async def test_forms_refuse_a_missing_csrf_token(provider: Provider) -> None:
    _, challenge = pkce()
    page = await provider.http.get(
        "/identity/authorize", params=authorize_query(code_challenge=challenge, code_challenge_method="S256")
    )
    action, _ = form_of(page.text)
    response = await provider.http.post(action, data={"csrf_token": "forged", "identifier": provider.uin})
    assert response.status_code == 400
    assert provider.sender.messages == []


async def _code(provider: Provider) -> tuple[str, str]:
    verifier, challenge = pkce()
    redirect = await sign_in(
        provider, authorize_query(code_challenge=challenge, code_challenge_method="S256")
    )
    return code_of(redirect), verifier


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"code_verifier": "wrong" * 10}, 400, "invalid_grant"),
        ({"code_verifier": None}, 400, "invalid_request"),
        ({"secret": "not-the-secret"}, 401, "invalid_client"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"redirect_uri": "https://labour.example/other"}, 400, "invalid_grant"),
    ],
)
async def test_bad_token_requests_get_the_standard_error(
    provider: Provider, change: dict[str, Any], status: int, error: str
) -> None:
    code, verifier = await _code(provider)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    for name in ("code_verifier", "redirect_uri"):
        if name in change:
            if change[name] is None:
                del data[name]
            else:
                data[name] = change[name]
    auth = (change.get("client_id", "labour-portal"), change.get("secret", provider.secrets["labour-portal"]))
    response = await provider.http.post("/identity/token", data=data, auth=auth)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert standards.validator("oauth-error@1.0.0").issues(response.json()) == []


async def test_a_reused_code_is_refused_and_revokes_its_tokens(provider: Provider) -> None:
    code, verifier = await _code(provider)
    first = await exchange(provider, code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert (await provider.http.get("/identity/userinfo", headers=headers)).status_code == 200

    second = await exchange(provider, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    revoked = await provider.http.get("/identity/userinfo", headers=headers)
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


async def test_an_expired_code_is_refused(provider: Provider) -> None:
    code, verifier = await _code(provider)
    provider.clock.now += oidc.CODE_TTL + timedelta(seconds=1)
    response = await exchange(provider, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
async def test_userinfo_refuses_without_a_valid_token(provider: Provider, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await provider.http.get("/identity/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_discovery_matches_what_is_enforced(provider: Provider) -> None:
    document = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert document["issuer"] == provider.issuer
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "private_key_jwt"]
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["pairwise"]
    assert document["request_uri_parameter_supported"] is False
    keys = (await provider.http.get("/identity/.well-known/jwks.json")).json()["keys"]
    # Keys exist for the algorithms in use: EdDSA always, the others once a client registers them.
    assert {key["alg"] for key in keys} == {"EdDSA"}
    assert set(document["id_token_signing_alg_values_supported"]) == {"EdDSA", "ES256", "PS256"}
    for path in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert document[path].startswith(provider.issuer)
    # A plain challenge, which discovery does not offer, is refused.
    response = await provider.http.get(
        "/identity/authorize",
        params=authorize_query(code_challenge="x" * 43, code_challenge_method="plain"),
    )
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


class _Through(httpx.AsyncBaseTransport):
    """Sends through the test client, which reaches the app in the event loop its database pool lives in
    (``httpx.ASGITransport`` would call the app from this loop, which asyncpg refuses)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.client.send(request)
        return httpx.Response(response.status_code, headers=response.headers, content=response.content)


async def test_a_relying_party_library_signs_in(provider: Provider) -> None:
    """authlib's own OAuth 2 client, which we did not write, as the relying party."""
    with warnings.catch_warnings():
        # authlib announces a move of its httpx integration; the client itself is unchanged.
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client

    transport = _Through(provider.http)
    async with AsyncOAuth2Client(
        client_id="labour-portal",
        client_secret=provider.secrets["labour-portal"],
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=REDIRECT,
        scope="openid profile",
        code_challenge_method="S256",
        transport=transport,
        base_url="http://testserver.local",
    ) as relying_party:
        verifier = secrets.token_urlsafe(48)
        url, state = relying_party.create_authorization_url(
            "http://testserver.local/identity/authorize", code_verifier=verifier, nonce="n-1"
        )
        query = dict(parse_qs(urlsplit(url).query, keep_blank_values=True))
        flat = {name: values[0] for name, values in query.items()}
        redirect = await sign_in(provider, flat)
        assert redirect.status_code == 302
        token = await relying_party.fetch_token(
            "http://testserver.local/identity/token",
            authorization_response=redirect.headers["location"],
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"] == "Bearer"
        claims = verify_id_token(token["id_token"], await jwks(provider), provider.issuer, "labour-portal")
        assert claims["nonce"] == "n-1"
        userinfo = await relying_party.get("http://testserver.local/identity/userinfo")
        assert userinfo.status_code == 200
        assert userinfo.json()["sub"] == claims["sub"]
        assert "phone_number" not in userinfo.json()


def issues(ref: str, instance: Any) -> list[str]:
    return [f"{issue.pointer}: {issue.message}" for issue in standards.validator(ref).issues(instance)]


PAGE = ("text/html", "html-page-1.0.0")
FORM = "application/x-www-form-urlencoded"
OAUTH_ERROR = ("application/json", "oauth-error-1.0.0")
ERROR = ("application/json", "error-1.0.0")
USERINFO = (
    ("application/json", "identity-userinfo-1.1.0"),
    ("application/jwt", "identity-userinfo-jwt-1.0.0"),
)
DOCUMENTED: dict[tuple[str, str], tuple[tuple[str, str] | None, dict[str, tuple[str, str]]]] = {
    ("/identity/.well-known/openid-configuration", "get"): (
        None,
        {"200": ("application/json", "identity-oidc-discovery-1.2.0")},
    ),
    ("/identity/.well-known/jwks.json", "get"): (None, {"200": ("application/json", "jwks-1.0.0")}),
    ("/identity/authorize", "get"): (None, {"200": PAGE, "400": PAGE}),
    ("/identity/authorize", "post"): (
        (FORM, "identity-oidc-authorize-request-1.2.0"),
        {"200": PAGE, "400": PAGE, "413": ERROR},
    ),
    ("/identity/authorize/consent", "post"): (
        (FORM, "identity-oidc-consent-form-1.0.0"),
        {"400": PAGE, "503": PAGE},
    ),
    ("/identity/authorize/identifier", "post"): (
        (FORM, "identity-oidc-identifier-form-1.0.0"),
        {"200": PAGE, "400": PAGE},
    ),
    ("/identity/authorize/otp", "post"): ((FORM, "identity-oidc-otp-form-1.0.0"), {"400": PAGE}),
    ("/identity/token", "post"): (
        (FORM, "identity-oidc-token-request-1.1.0"),
        {
            "200": ("application/json", "identity-oidc-token-response-1.0.0"),
            "400": OAUTH_ERROR,
            "401": OAUTH_ERROR,
            "413": ERROR,
        },
    ),
    ("/identity/userinfo", "get"): (
        None,
        {"200": USERINFO, "401": ERROR},
    ),
    ("/identity/userinfo", "post"): (
        (FORM, "identity-oidc-userinfo-request-1.0.0"),
        {"200": USERINFO, "401": ERROR},
    ),
}


def _content(media_and_key: tuple[str, str] | tuple[tuple[str, str], ...]) -> dict[str, Any]:
    pairs = media_and_key if isinstance(media_and_key[0], tuple) else (media_and_key,)
    return {media: {"schema": {"$ref": f"#/components/schemas/{key}"}} for media, key in pairs}


async def test_every_body_of_the_openid_provider_is_documented_by_its_schema(provider: Provider) -> None:
    document = (await provider.http.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    components = document["components"]["schemas"]
    for (path, method), (request, responses) in DOCUMENTED.items():
        operation = document["paths"][path][method]
        if request is None:
            assert "requestBody" not in operation, (path, method)
        else:
            assert operation["requestBody"]["content"] == _content(request), (path, method)
        for status, body in responses.items():
            assert operation["responses"][status]["content"] == _content(body), (path, method, status)
        # Redirects carry no body: declared, if at all, without content.
        for status in {"302", "303"} & set(operation["responses"]):
            assert "content" not in operation["responses"][status], (path, method, status)
    # The query of GET /authorize is the same object as the POST form, each member its own parameter.
    (parameter,) = document["paths"]["/identity/authorize"]["get"]["parameters"]
    assert parameter["in"] == "query"
    assert parameter["schema"]["$ref"].removeprefix("#/components/schemas/") in components


async def test_what_the_provider_answers_is_valid_against_its_schemas(provider: Provider) -> None:
    discovery = await provider.http.get("/identity/.well-known/openid-configuration")
    assert issues("identity-oidc-discovery@1.2.0", discovery.json()) == []
    keys = await provider.http.get("/identity/.well-known/jwks.json")
    assert issues("jwks@1.0.0", keys.json()) == []

    verifier, challenge = pkce()
    query = authorize_query(code_challenge=challenge, code_challenge_method="S256", ui_locales="fr")
    assert issues("identity-oidc-authorize-request@1.2.0", query) == []
    page = await provider.http.post("/identity/authorize", data=query)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert issues("html-page@1.0.0", page.text) == []
    action, csrf = form_of(page.text)
    identifier_form = {"csrf_token": csrf, "identifier": provider.uin}
    assert issues("identity-oidc-identifier-form@1.0.0", identifier_form) == []
    otp_page = await provider.http.post(action, data=identifier_form)
    assert issues("html-page@1.0.0", otp_page.text) == []
    code = re.search(r"\b(\d{6})\b", provider.sender.messages[-1].text)
    assert code is not None
    action, csrf = form_of(otp_page.text)
    otp_form = {"csrf_token": csrf, "otp": code.group(1)}
    assert issues("identity-oidc-otp-form@1.0.0", otp_form) == []
    consent_page = await provider.http.post(action, data=otp_form)
    assert consent_page.status_code == 200
    assert issues("html-page@1.0.0", consent_page.text) == []
    action, csrf = form_of(consent_page.text)
    consent_form = {"csrf_token": csrf, "decision": "allow", "claim": ["name", "birthdate"]}
    assert issues("identity-oidc-consent-form@1.0.0", consent_form) == []
    assert issues("identity-oidc-consent-form@1.0.0", {**consent_form, "claim": "name"}) == []
    redirect = await provider.http.post(action, data=consent_form)
    assert redirect.status_code == 302
    assert redirect.content == b""  # a redirect carries no body, so the document lists none

    token_request = {
        "grant_type": "authorization_code",
        "code": code_of(redirect),
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    assert issues("identity-oidc-token-request@1.0.0", token_request) == []
    auth = ("labour-portal", provider.secrets["labour-portal"])
    tokens = await provider.http.post("/identity/token", data=token_request, auth=auth)
    assert tokens.status_code == 200
    assert issues("identity-oidc-token-response@1.0.0", tokens.json()) == []
    again = await provider.http.post("/identity/token", data=token_request, auth=auth)
    assert again.status_code == 400
    assert issues("oauth-error@1.0.0", again.json()) == []

    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    refused = await provider.http.get("/identity/userinfo", headers=bearer)
    assert refused.status_code == 401  # the code was replayed: its tokens are revoked
    assert issues("error@1.0.0", refused.json()) == []


async def test_userinfo_by_get_and_post_and_signed_is_valid_against_its_schemas(provider: Provider) -> None:
    code, verifier = await _code(provider)
    tokens = (await exchange(provider, code, verifier)).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    by_get = await provider.http.get("/identity/userinfo", headers=bearer)
    by_post = await provider.http.post("/identity/userinfo", headers=bearer)
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json() == by_post.json()
    assert issues("identity-userinfo@1.1.0", by_get.json()) == []

    health_verifier, challenge = pkce()
    # The session opened for the labour portal signs the person in to the health portal; only the
    # consent page stands between.
    redirect = await consent_to_all(
        provider,
        await provider.http.get(
            "/identity/authorize",
            params=authorize_query(
                "health-portal", HEALTH_REDIRECT, code_challenge=challenge, code_challenge_method="S256"
            ),
        ),
    )
    health = await exchange(
        provider, code_of(redirect, HEALTH_REDIRECT), health_verifier, client_id="health-portal"
    )
    signed = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {health.json()['access_token']}"}
    )
    assert signed.headers["content-type"].startswith("application/jwt")
    assert issues("identity-userinfo-jwt@1.0.0", signed.text) == []
    claims = verify_id_token(signed.text, await jwks(provider), provider.issuer, "health-portal")
    released = {name: value for name, value in claims.items() if name not in {"iss", "aud"}}
    assert issues("identity-userinfo@1.1.0", released) == []
    assert released["name"] == "أمينة الإدريسي"


@pytest.mark.parametrize(
    ("ref", "instance"),
    [
        ("identity-oidc-authorize-request@1.0.0", {**authorize_query(), "response_type": "token"}),
        ("identity-oidc-authorize-request@1.0.0", {**authorize_query(), "code_challenge_method": "plain"}),
        ("identity-oidc-authorize-request@1.0.0", {**authorize_query(), "max_age": "-1"}),
        ("identity-oidc-authorize-request@1.0.0", {**authorize_query(), "request": "eyJ"}),
        ("identity-oidc-authorize-request@1.0.0", {"client_id": "labour-portal"}),
        (
            "identity-oidc-token-request@1.0.0",
            {"grant_type": "password", "code": "c", "redirect_uri": REDIRECT},
        ),
        (
            "identity-oidc-token-request@1.0.0",
            {
                "grant_type": "authorization_code",
                "code": "c",
                "redirect_uri": REDIRECT,
                "code_verifier": "short",
            },
        ),
        ("identity-oidc-otp-form@1.0.0", {"csrf_token": "abc", "otp": "12a456"}),
        ("identity-oidc-identifier-form@1.0.0", {"csrf_token": "abc", "identifier": "12345"}),
        ("identity-oidc-consent-form@1.0.0", {"csrf_token": "abc", "decision": "maybe"}),
        ("identity-oidc-consent-form@1.0.0", {"csrf_token": "abc", "decision": "allow", "claim": ["Name"]}),
        ("identity-oidc-authorize-request@1.2.0", {**authorize_query(), "prompt": "none login"}),
        ("identity-userinfo@1.1.0", {"sub": "x" * 43, "age_over_18": "yes"}),
        ("identity-oidc-userinfo-request@1.0.0", {"access_token": "x"}),
        ("identity-userinfo@1.0.0", {"sub": "x" * 43, "uin": "1234567890"}),
        ("identity-userinfo@1.0.0", {"sub": "not a pseudonym"}),
        ("identity-userinfo-jwt@1.0.0", "header.payload"),
        ("oauth-error@1.0.0", {"error": "Invalid Grant"}),
        ("oauth-error@1.0.0", {"error": "invalid_grant", "error_description": "line\nbreak"}),
        ("html-page@1.0.0", ""),
    ],
)
def test_schemas_refuse_what_the_provider_does_not_accept_or_send(ref: str, instance: Any) -> None:
    assert issues(ref, instance) != []


# --- private_key_jwt (OpenID Connect Core 1.0 section 9, RFC 7523) ---------------------------------------


async def register_key_client(provider: Provider, alg: str = "EdDSA") -> SigningKey:
    """Register ``jobs-portal``, which authenticates with assertions signed by the returned key."""
    key = SigningKey.generate(alg)
    _, secret = await provider.clients.add(
        {
            "client_id": "jobs-portal",
            "client_name": "Jobs portal",
            "redirect_uris": [JOBS_REDIRECT],
            "sector": LABOUR,
            "scope": ["openid", "profile"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk()]},
        }
    )
    assert secret is None
    return key


def client_assertion(
    provider: Provider,
    key: SigningKey,
    client_id: str = "jobs-portal",
    *,
    algorithm: str | None = None,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(provider.clock.now.timestamp())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{provider.issuer}/token",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **claims,
    }
    payload = {name: value for name, value in payload.items() if value is not None}
    header = {"kid": key.kid, **(headers or {})}
    return jwt.encode(payload, key.private_key, algorithm=algorithm or key.alg, headers=header)


async def key_client_code(provider: Provider) -> tuple[str, str]:
    verifier, challenge = pkce()
    query = authorize_query(
        "jobs-portal",
        JOBS_REDIRECT,
        scope="openid profile",
        prompt="login",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    return code_of(await sign_in(provider, query), JOBS_REDIRECT), verifier


async def redeem_with_assertion(
    provider: Provider, code: str, verifier: str, fields: dict[str, str], auth: tuple[str, str] | None = None
) -> httpx.Response:
    return await provider.http.post(
        "/identity/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": JOBS_REDIRECT,
            "code_verifier": verifier,
            **fields,
        },
        auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
    )


def assertion_fields(assertion: str) -> dict[str, str]:
    return {"client_assertion_type": oidc.CLIENT_ASSERTION_TYPE, "client_assertion": assertion}


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "PS256"])
async def test_a_private_key_jwt_client_signs_in(provider: Provider, alg: str) -> None:
    key = await register_key_client(provider, alg)
    code, verifier = await key_client_code(provider)
    response = await redeem_with_assertion(
        provider, code, verifier, assertion_fields(client_assertion(provider, key))
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "jobs-portal")
    assert claims["sub"] == await provider.register.sector_pseudonym_for(provider.uin, LABOUR)
    userinfo = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["name"] == "Amina El Idrissi"


async def test_the_issuer_is_an_accepted_audience_and_discovery_offers_private_key_jwt(
    provider: Provider,
) -> None:
    key = await register_key_client(provider)
    code, verifier = await key_client_code(provider)
    assertion = client_assertion(provider, key, aud=provider.issuer)
    response = await redeem_with_assertion(provider, code, verifier, assertion_fields(assertion))
    assert response.status_code == 200, response.text
    document = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]


def _assertion_case(
    provider: Provider, key: SigningKey, case: str
) -> tuple[dict[str, str], tuple[str, str] | None]:
    now = int(provider.clock.now.timestamp())
    other = SigningKey.generate(key.alg, kid=key.kid)
    signed = {
        "wrong key": lambda: client_assertion(provider, other),
        "unknown kid": lambda: client_assertion(provider, key, headers={"kid": "not-registered"}),
        "wrong audience": lambda: client_assertion(provider, key, aud="https://elsewhere.example/token"),
        "expired": lambda: client_assertion(provider, key, exp=now - 1),
        "lives too long": lambda: client_assertion(provider, key, exp=now + 3600),
        "sub is not the client": lambda: client_assertion(provider, key, sub="labour-portal"),
        "no jti": lambda: client_assertion(provider, key, jti=None),
        "no exp": lambda: client_assertion(provider, key, exp=None),
        "issuer authenticates by secret": lambda: client_assertion(provider, key, "labour-portal"),
        "unknown issuer": lambda: client_assertion(provider, key, "nobody"),
        "alg none": lambda: jwt.encode(
            {
                "iss": "jobs-portal",
                "sub": "jobs-portal",
                "aud": f"{provider.issuer}/token",
                "exp": now + 60,
                "jti": "j-none",
            },
            "",
            algorithm="none",
            headers={"kid": key.kid},
        ),
        "alg HS256": lambda: jwt.encode(
            {
                "iss": "jobs-portal",
                "sub": "jobs-portal",
                "aud": f"{provider.issuer}/token",
                "exp": now + 60,
                "jti": "j-hs",
            },
            "a-shared-secret-of-thirty-two-bytes!",
            algorithm="HS256",
            headers={"kid": key.kid},
        ),
    }
    if case in signed:
        return assertion_fields(signed[case]()), None
    good = client_assertion(provider, key)
    return {
        "missing assertion": (
            {"client_assertion_type": oidc.CLIENT_ASSERTION_TYPE, "client_id": "jobs-portal"},
            None,
        ),
        "missing assertion type": ({"client_assertion": good}, None),
        "wrong assertion type": (
            {
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                "client_assertion": good,
            },
            None,
        ),
        "not a JWT": (assertion_fields("not.a.jwt"), None),
        "client_id differs": ({**assertion_fields(good), "client_id": "labour-portal"}, None),
        "HTTP Basic as well": (assertion_fields(good), ("labour-portal", provider.secrets["labour-portal"])),
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "wrong key",
        "unknown kid",
        "wrong audience",
        "expired",
        "lives too long",
        "sub is not the client",
        "no jti",
        "no exp",
        "issuer authenticates by secret",
        "unknown issuer",
        "alg none",
        "alg HS256",
        "missing assertion",
        "missing assertion type",
        "wrong assertion type",
        "not a JWT",
        "client_id differs",
        "HTTP Basic as well",
    ],
)
async def test_bad_client_assertions_are_invalid_client(provider: Provider, case: str) -> None:
    key = await register_key_client(provider)
    code, verifier = await key_client_code(provider)
    fields, auth = _assertion_case(provider, key, case)
    response = await redeem_with_assertion(provider, code, verifier, fields, auth)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert standards.validator("oauth-error@1.0.0").issues(response.json()) == []
    # Nothing was spent: the code still redeems with a good assertion.
    good = await redeem_with_assertion(
        provider, code, verifier, assertion_fields(client_assertion(provider, key))
    )
    assert good.status_code == 200, good.text


async def test_a_replayed_client_assertion_is_refused(provider: Provider) -> None:
    key = await register_key_client(provider)
    assertion = client_assertion(provider, key)
    first_code, first_verifier = await key_client_code(provider)
    first = await redeem_with_assertion(provider, first_code, first_verifier, assertion_fields(assertion))
    assert first.status_code == 200, first.text
    code, verifier = await key_client_code(provider)
    replayed = await redeem_with_assertion(provider, code, verifier, assertion_fields(assertion))
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_client"
    # A fresh assertion redeems the code the replay could not.
    fresh = assertion_fields(client_assertion(provider, key))
    assert (await redeem_with_assertion(provider, code, verifier, fresh)).status_code == 200


async def test_an_assertion_spent_on_a_refused_grant_cannot_be_used_again(provider: Provider) -> None:
    key = await register_key_client(provider)
    assertion = client_assertion(provider, key)
    code, verifier = await key_client_code(provider)
    wrong = await redeem_with_assertion(provider, code, "wrong" * 10, assertion_fields(assertion))
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    again = await redeem_with_assertion(provider, code, verifier, assertion_fields(assertion))
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"


async def test_a_private_key_jwt_client_cannot_use_http_basic(provider: Provider) -> None:
    await register_key_client(provider)
    code, verifier = await key_client_code(provider)
    response = await redeem_with_assertion(provider, code, verifier, {}, ("jobs-portal", "anything"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
