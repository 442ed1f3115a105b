"""Pushed authorization requests (RFC 9126) driven over HTTP as a relying party and a browser would."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

import standards
from identity import par
from identity.acr import ACR_SMS_OTP as OTP
from tests.identity.conftest import Provider
from tests.identity.test_claim_consent import until_consent
from tests.identity.test_oidc import (
    JOBS_REDIRECT,
    assertion_fields,
    authorize_query,
    client_assertion,
    code_of,
    consent_to_all,
    exchange,
    form_of,
    jwks,
    pkce,
    redeem_with_assertion,
    register_key_client,
    sign_in,
    verify_id_token,
)

PAR = "/identity/par"


def valid(ref: str, instance: Any) -> bool:
    return standards.validator(ref).issues(instance) == []


def labour_auth(provider: Provider) -> tuple[str, str]:
    return ("labour-portal", provider.secrets["labour-portal"])


async def push(
    provider: Provider, form: dict[str, Any], auth: Any = httpx.USE_CLIENT_DEFAULT
) -> httpx.Response:
    return await provider.http.post(PAR, data=form, auth=auth)


async def stored_requests(provider: Provider) -> int:
    async with provider.clients.sessions() as session:
        return int(await session.scalar(text("SELECT count(*) FROM identity_oidc_pushed_request")) or 0)


async def pushed_labour_request(provider: Provider, **extra: str) -> tuple[str, str]:
    """Push the labour portal's request; returns its request_uri and the PKCE verifier."""
    verifier, challenge = pkce()
    query = authorize_query(code_challenge=challenge, code_challenge_method="S256", **extra)
    del query["client_id"]
    response = await push(provider, query, labour_auth(provider))
    assert response.status_code == 201, response.text
    body = response.json()
    assert valid("identity-oidc-par-response@1.0.0", body)
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert response.headers["cache-control"] == "no-store"
    return str(body["request_uri"]), verifier


async def test_a_pushed_request_signs_in_and_parameters_beside_the_reference_are_ignored(
    provider: Provider,
) -> None:
    request_uri, verifier = await pushed_labour_request(provider)
    reference = {
        "client_id": "labour-portal",
        "request_uri": request_uri,
        # RFC 9126 section 4: only client_id counts beside the reference.
        "redirect_uri": "https://evil.example/callback",
        "state": "forged",
        "scope": "openid",
    }
    assert valid(
        "identity-oidc-authorize-request@1.2.0", {"client_id": "labour-portal", "request_uri": request_uri}
    )
    redirect = await sign_in(provider, reference)
    code = code_of(redirect)  # the pushed redirect URI and state
    tokens = await exchange(provider, code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert set(tokens.json()["scope"].split()) == {"openid", "profile", "phone"}


async def test_a_private_key_jwt_client_pushes_with_an_assertion_spent_once(provider: Provider) -> None:
    key = await register_key_client(provider)
    verifier, challenge = pkce()
    query = authorize_query(
        "jobs-portal",
        JOBS_REDIRECT,
        scope="openid profile",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assertion = client_assertion(provider, key, aud=f"{provider.issuer}/par")
    pushed = await push(provider, {**query, **assertion_fields(assertion)})
    assert pushed.status_code == 201, pushed.text
    replayed = await push(provider, {**query, **assertion_fields(assertion)})
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_client"

    redirect = await sign_in(
        provider, {"client_id": "jobs-portal", "request_uri": pushed.json()["request_uri"]}
    )
    code = code_of(redirect, JOBS_REDIRECT)
    tokens = await redeem_with_assertion(
        provider, code, verifier, assertion_fields(client_assertion(provider, key))
    )
    assert tokens.status_code == 200, tokens.text


def _refused_case(provider: Provider, case: str) -> tuple[dict[str, Any], Any]:
    _, challenge = pkce()
    good = authorize_query(code_challenge=challenge, code_challenge_method="S256")
    auth = labour_auth(provider)
    return {
        "unregistered redirect": ({**good, "redirect_uri": "https://evil.example/callback"}, auth),
        "no PKCE": ({k: v for k, v in good.items() if not k.startswith("code_challenge")}, auth),
        "plain PKCE": ({**good, "code_challenge_method": "plain"}, auth),
        "no openid scope": ({**good, "scope": "profile"}, auth),
        "implicit flow": ({**good, "response_type": "token"}, auth),
        "a request object": ({**good, "request": "eyJhbGciOiJub25lIn0.e30."}, auth),
        "a request_uri": (
            {**good, "request_uri": "urn:ietf:params:oauth:request_uri:abcdefghijklmnopq"},
            auth,
        ),
        "repeated scope": ({**good, "scope": ["openid", "openid profile"]}, auth),
        "another client_id": ({**good, "client_id": "health-portal"}, auth),
        "bad max_age": ({**good, "max_age": "soon"}, auth),
        "too long": ({**good, "state": "s" * 5000}, auth),
        "claims not JSON": ({**good, "claims": "{id_token"}, auth),
        "claims not an object": ({**good, "claims": "[]"}, auth),
        "claims member not an object": ({**good, "claims": '{"userinfo": []}'}, auth),
        "claims essential not a boolean": (
            {**good, "claims": '{"id_token": {"age_over_18": {"essential": "yes"}}}'},
            auth,
        ),
        "unmet essential acr": (
            {**good, "claims": '{"id_token": {"acr": {"essential": true, "value": "urn:x:biometric"}}}'},
            auth,
        ),
        "wrong secret": (good, ("labour-portal", "not-the-secret")),
        "unknown client": (good, ("nobody", "secret")),
        "no authentication": (good, httpx.USE_CLIENT_DEFAULT),
    }[case]


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("unregistered redirect", 400, "invalid_request"),
        ("no PKCE", 400, "invalid_request"),
        ("plain PKCE", 400, "invalid_request"),
        ("no openid scope", 400, "invalid_scope"),
        ("implicit flow", 400, "unsupported_response_type"),
        ("a request object", 400, "request_not_supported"),
        ("a request_uri", 400, "invalid_request"),
        ("repeated scope", 400, "invalid_request"),
        ("another client_id", 400, "invalid_request"),
        ("bad max_age", 400, "invalid_request"),
        ("too long", 400, "invalid_request"),
        ("claims not JSON", 400, "invalid_request"),
        ("claims not an object", 400, "invalid_request"),
        ("claims member not an object", 400, "invalid_request"),
        ("claims essential not a boolean", 400, "invalid_request"),
        ("unmet essential acr", 400, "unmet_authentication_requirements"),
        ("wrong secret", 401, "invalid_client"),
        ("unknown client", 401, "invalid_client"),
        ("no authentication", 401, "invalid_client"),
    ],
)
async def test_refused_pushed_requests_get_the_rfc_error_and_store_nothing(
    provider: Provider, case: str, status: int, error: str
) -> None:
    form, auth = _refused_case(provider, case)
    response = await push(provider, form, auth)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert valid("oauth-error@1.0.0", response.json())
    assert await stored_requests(provider) == 0


async def test_a_prompt_none_request_is_pushed_and_answered_at_the_authorization_endpoint(
    provider: Provider,
) -> None:
    request_uri, _ = await pushed_labour_request(provider, prompt="none")
    response = await provider.http.get(
        "/identity/authorize", params={"client_id": "labour-portal", "request_uri": request_uri}
    )
    assert response.status_code == 302
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["error"] == ["login_required"]
    assert params["state"] == ["state-123"]


async def _authorize(provider: Provider, client_id: str, request_uri: str) -> httpx.Response:
    return await provider.http.get(
        "/identity/authorize", params={"client_id": client_id, "request_uri": request_uri}
    )


async def test_a_reference_is_used_once(provider: Provider) -> None:
    request_uri, _ = await pushed_labour_request(provider)
    assert (await _authorize(provider, "labour-portal", request_uri)).status_code == 200
    again = await _authorize(provider, "labour-portal", request_uri)
    assert again.status_code == 400
    assert "location" not in again.headers
    assert again.headers["content-type"].startswith("text/html")


async def test_an_expired_reference_is_refused(provider: Provider) -> None:
    request_uri, _ = await pushed_labour_request(provider)
    provider.clock.now += par.PUSHED_REQUEST_TTL + timedelta(seconds=1)
    response = await _authorize(provider, "labour-portal", request_uri)
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize("client_id", ["health-portal", "nobody", ""])
async def test_a_reference_serves_only_the_client_that_pushed_it(provider: Provider, client_id: str) -> None:
    request_uri, _ = await pushed_labour_request(provider)
    refused = await _authorize(provider, client_id, request_uri)
    assert refused.status_code == 400
    assert "location" not in refused.headers
    # The attempt did not spend it.
    assert (await _authorize(provider, "labour-portal", request_uri)).status_code == 200


async def test_an_unknown_reference_is_refused(provider: Provider) -> None:
    response = await _authorize(provider, "labour-portal", "urn:ietf:params:oauth:request_uri:" + "A" * 43)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_request_uri_that_is_not_a_pushed_reference_is_not_supported(provider: Provider) -> None:
    _, challenge = pkce()
    query = authorize_query(
        code_challenge=challenge,
        code_challenge_method="S256",
        request_uri="https://labour.example/request.jwt",
    )
    response = await provider.http.get("/identity/authorize", params=query)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["request_uri_not_supported"]


async def strict_client_request(provider: Provider) -> tuple[str, str, dict[str, str]]:
    """Register ``strict-portal``, which requires pushed requests; its secret, a PKCE verifier and the
    authorization request's parameters."""
    _, secret = await provider.clients.add(
        {
            "client_id": "strict-portal",
            "client_name": "Strict portal",
            "redirect_uris": ["https://strict.example/callback"],
            "sector": "DPI/GOV/MOL/jobseekers",
            "scope": ["openid", "profile"],
            "require_pushed_authorization_requests": True,
        }
    )
    assert secret is not None
    verifier, challenge = pkce()
    query = authorize_query(
        "strict-portal",
        "https://strict.example/callback",
        scope="openid profile",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    return secret, verifier, query


async def test_a_client_that_requires_pushed_requests_cannot_send_them_plain(provider: Provider) -> None:
    secret, verifier, query = await strict_client_request(provider)
    plain = await provider.http.get("/identity/authorize", params=query)
    assert plain.status_code == 302
    params = parse_qs(urlsplit(plain.headers["location"]).query)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == ["state-123"]

    pushed = await push(
        provider, {k: v for k, v in query.items() if k != "client_id"}, ("strict-portal", secret)
    )
    assert pushed.status_code == 201, pushed.text
    redirect = await sign_in(
        provider, {"client_id": "strict-portal", "request_uri": pushed.json()["request_uri"]}
    )
    code = code_of(redirect, "https://strict.example/callback")
    tokens = await provider.http.post(
        "/identity/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://strict.example/callback",
            "code_verifier": verifier,
        },
        auth=("strict-portal", secret),
    )
    assert tokens.status_code == 200, tokens.text


async def test_discovery_announces_pushed_requests(provider: Provider) -> None:
    document = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert document["pushed_authorization_request_endpoint"] == f"{provider.issuer}/par"
    assert document["require_pushed_authorization_requests"] is False
    assert valid("identity-oidc-discovery@1.2.0", document)


async def test_the_endpoint_is_documented_by_its_schemas(provider: Provider) -> None:
    document = (await provider.http.get("/openapi.json")).json()
    operation = document["paths"][PAR]["post"]
    assert operation["requestBody"]["content"] == {
        "application/x-www-form-urlencoded": {
            "schema": {"$ref": "#/components/schemas/identity-oidc-par-request-1.1.0"}
        }
    }
    success = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert success.endswith("identity-oidc-par-response-1.0.0")
    for status in ("400", "401"):
        error = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert error.endswith("oauth-error-1.0.0")


@pytest.mark.parametrize(
    ("ref", "instance"),
    [
        ("identity-oidc-par-response@1.0.0", {"request_uri": "https://x.example/r", "expires_in": 60}),
        ("identity-oidc-par-response@1.0.0", {"request_uri": "urn:ietf:params:oauth:request_uri:abc"}),
        ("identity-oidc-par-request@1.0.0", {**authorize_query(), "request_uri": "urn:x"}),
        ("identity-oidc-par-request@1.0.0", {**authorize_query(), "client_secret": "s"}),
        ("identity-oidc-par-request@1.0.0", {"client_id": "labour-portal"}),
        ("identity-oidc-par-request@1.1.0", {**authorize_query(), "claims": "{"}),
        ("identity-oidc-par-request@1.1.0", {**authorize_query(), "prompt": "select_account"}),
        ("identity-oidc-par-request@1.1.0", {**authorize_query(), "request_uri": "urn:x"}),
        (
            "identity-oidc-authorize-request@1.2.0",
            {"client_id": "labour-portal", "request_uri": "https://x/r"},
        ),
        (
            "identity-oidc-authorize-request@1.2.0",
            {"request_uri": "urn:ietf:params:oauth:request_uri:" + "a" * 43},
        ),
    ],
)
def test_schemas_refuse_what_the_endpoint_does_not_take_or_send(ref: str, instance: Any) -> None:
    assert not valid(ref, instance)


async def test_a_pushed_request_with_claims_goes_through_consent_and_releases_only_the_choice(
    provider: Provider,
) -> None:
    claims = json.dumps(
        {
            "id_token": {"age_over_18": {"essential": True}, "acr": {"values": [OTP]}},
            "userinfo": {"birthdate": None},
        }
    )
    form = {**authorize_query(scope="openid profile"), "claims": claims, "prompt": "consent"}
    assert valid("identity-oidc-par-request@1.1.0", form)
    request_uri, verifier = await pushed_labour_request(
        provider, scope="openid profile", claims=claims, prompt="consent"
    )
    page = await until_consent(provider, {"client_id": "labour-portal", "request_uri": request_uri})
    assert page.status_code == 200, page.text
    assert set(re.findall(r'name="claim" value="([^"]+)"', page.text)) == {
        "age_over_18",
        "birthdate",
        "family_name",
        "given_name",
        "name",
    }
    action, csrf = form_of(page.text)
    redirect = await provider.http.post(
        action, data={"csrf_token": csrf, "decision": "allow", "claim": ["age_over_18", "name"]}
    )
    tokens = await exchange(provider, code_of(redirect), verifier)
    assert tokens.status_code == 200, tokens.text
    id_token = verify_id_token(
        tokens.json()["id_token"], await jwks(provider), provider.issuer, "labour-portal"
    )
    assert id_token["age_over_18"] is True
    assert id_token["acr"] == OTP
    assert "birthdate" not in id_token
    userinfo = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert set(userinfo.json()) == {"sub", "name"}

    # prompt=consent was pushed too: the next pushed request asks again even though the choice covers it.
    again, _ = await pushed_labour_request(provider, scope="openid profile", claims=claims, prompt="consent")
    shown = await provider.http.get(
        "/identity/authorize", params={"client_id": "labour-portal", "request_uri": again}
    )
    assert shown.status_code == 200
    assert 'action="/identity/authorize/consent"' in shown.text


async def test_start_again_on_the_code_page_restarts_a_pushed_sign_in(provider: Provider) -> None:
    secret, verifier, query = await strict_client_request(provider)
    del query["client_id"]
    pushed = await push(provider, query, ("strict-portal", secret))
    page = await _authorize(provider, "strict-portal", pushed.json()["request_uri"])
    action, csrf = form_of(page.text)
    otp_page = await provider.http.post(action, data={"csrf_token": csrf, "identifier": provider.uin})
    assert otp_page.status_code == 200, otp_page.text
    link = re.search(r'<a href="([^"]+)">', otp_page.text)
    assert link is not None
    assert link.group(1) == "/identity/authorize/restart"

    again = await provider.http.get(link.group(1))
    assert again.status_code == 200
    assert "Strict portal" in again.text
    action, csrf = form_of(again.text)
    assert action == "/identity/authorize/identifier"
    otp_page = await provider.http.post(action, data={"csrf_token": csrf, "identifier": provider.uin})
    code = re.search(r"\b(\d{6})\b", provider.sender.messages[-1].text)
    assert code is not None
    action, csrf = form_of(otp_page.text)
    answer = await provider.http.post(action, data={"csrf_token": csrf, "otp": code.group(1)})
    code_value = code_of(await consent_to_all(provider, answer), "https://strict.example/callback")
    tokens = await provider.http.post(
        "/identity/token",
        data={
            "grant_type": "authorization_code",
            "code": code_value,
            "redirect_uri": "https://strict.example/callback",
            "code_verifier": verifier,
        },
        auth=("strict-portal", secret),
    )
    assert tokens.status_code == 200, tokens.text


async def test_start_again_without_a_sign_in_in_progress_is_an_error_page(provider: Provider) -> None:
    response = await provider.http.get("/identity/authorize/restart")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
