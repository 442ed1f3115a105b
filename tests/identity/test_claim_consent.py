"""Claim by claim consent at the OpenID provider, driven as a browser and a relying party would: the
``claims`` parameter, the consent page, the stored choice with its expiry, withdrawal, and the signed
receipts the consent block issues when it runs in the same app."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from consent.block import consent_block
from consent.client import ClaimRelease, InProcessClaimReleaseRecorder, ReleaseReceipt
from consent.receipts import verify_receipt
from consent.service import ConsentService
from dpi.blocks import BlockContext
from dpi.errors import DpiError
from dpi.keys import KeyStore
from dpi.settings import Settings
from identity import oidc
from identity.claim_consent import ClaimConsents
from identity.oidc_models import AuthorizationCodeRow, ClaimConsentRow
from tests.identity.conftest import HEALTH_REDIRECT, LABOUR, REDIRECT, Provider, open_provider
from tests.identity.test_oidc import authorize_query, code_of, exchange, form_of, jwks, pkce, verify_id_token

IDENTITY_SUBSYSTEM = "DPI/GOV/MOI/identity"
AGE_ONLY = json.dumps({"id_token": {"age_over_18": {"essential": True}}})


async def until_consent(provider: Provider, asked: dict[str, str]) -> httpx.Response:
    """Sign in from the authorization request up to what follows the one-time code."""
    page = await provider.http.get("/identity/authorize", params=asked)
    assert page.status_code == 200, page.text
    action, csrf = form_of(page.text)
    otp_page = await provider.http.post(action, data={"csrf_token": csrf, "identifier": provider.uin})
    code = re.search(r"\b(\d{6})\b", provider.sender.messages[-1].text)
    assert code is not None
    action, csrf = form_of(otp_page.text)
    return await provider.http.post(action, data={"csrf_token": csrf, "otp": code.group(1)})


def listed(page: str) -> list[str]:
    return re.findall(r'name="claim" value="([^"]+)"', page)


async def choose(
    provider: Provider, page: httpx.Response, claims: Iterable[str], decision: str = "allow"
) -> httpx.Response:
    assert page.status_code == 200, page.text
    action, csrf = form_of(page.text)
    assert action == "/identity/authorize/consent"
    return await provider.http.post(
        action, data={"csrf_token": csrf, "decision": decision, "claim": list(claims)}
    )


async def tokens_for(provider: Provider, redirect: httpx.Response, asked: dict[str, str]) -> dict[str, Any]:
    verifier = _verifiers[asked["code_challenge"]]
    response = await exchange(provider, code_of(redirect), verifier)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


_verifiers: dict[str, str] = {}


def pkce_query(claims: str | None = None, scope: str = "openid", **extra: str) -> dict[str, str]:
    verifier, challenge = pkce()
    _verifiers[challenge] = verifier
    built = authorize_query(code_challenge=challenge, code_challenge_method="S256", scope=scope, **extra)
    if claims is not None:
        built["claims"] = claims
    return built


async def userinfo(provider: Provider, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await provider.http.get(
        "/identity/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def redirect_error(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def stored(provider: Provider) -> list[ClaimConsentRow]:
    async with provider.clients.sessions() as session:
        return list((await session.scalars(select(ClaimConsentRow))).all())


async def codes(provider: Provider) -> int:
    async with provider.clients.sessions() as session:
        return len((await session.scalars(select(AuthorizationCodeRow))).all())


# --- the claims parameter and the page ---------------------------------------------------------------------


async def test_an_essential_age_claim_is_released_in_the_id_token_without_the_birth_date(
    provider: Provider,
) -> None:
    asked = pkce_query(AGE_ONLY)
    page = await until_consent(provider, asked)
    assert listed(page.text) == ["age_over_18"]
    assert "(needed by the service)" in page.text or "(nécessaire au service)" in page.text
    assert "Labour Portal" in page.text
    tokens = await tokens_for(provider, await choose(provider, page, ["age_over_18"]), asked)
    claims = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "labour-portal")
    assert claims["age_over_18"] is True
    assert "birthdate" not in claims
    assert await userinfo(provider, tokens) == {"sub": claims["sub"]}


async def test_only_the_ticked_claims_are_released(provider: Provider) -> None:
    asked = pkce_query(scope="openid profile phone")
    page = await until_consent(provider, asked)
    assert sorted(listed(page.text)) == ["birthdate", "family_name", "given_name", "name", "phone_number"]
    # A claim the page did not offer is not released by adding it to the form.
    tokens = await tokens_for(provider, await choose(provider, page, ["name", "age_over_65"]), asked)
    released = await userinfo(provider, tokens)
    assert set(released) == {"sub", "name"}
    claims = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "labour-portal")
    assert "name" not in claims
    (row,) = await stored(provider)
    assert (row.requested, row.granted) == (
        ["birthdate", "family_name", "given_name", "name", "phone_number"],
        ["name"],
    )
    assert row.subject == claims["sub"]
    assert row.receipt is None  # no recorder in this app: the choice is stored without a receipt


async def test_claims_asked_for_userinfo_go_to_userinfo(provider: Provider) -> None:
    asked = pkce_query(json.dumps({"userinfo": {"age_over_18": None, "given_name": {"essential": True}}}))
    page = await until_consent(provider, asked)
    assert listed(page.text) == ["given_name", "age_over_18"]  # essential claims first
    tokens = await tokens_for(provider, await choose(provider, page, ["given_name", "age_over_18"]), asked)
    assert (await userinfo(provider, tokens)).keys() == {"sub", "given_name", "age_over_18"}


async def test_deny_redirects_with_access_denied_and_stores_nothing(provider: Provider) -> None:
    page = await until_consent(provider, pkce_query(AGE_ONLY))
    refused = await choose(provider, page, ["age_over_18"], decision="deny")
    params = redirect_error(refused)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["state-123"]
    assert await stored(provider) == []
    assert await codes(provider) == 0


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"id_token": ["age_over_18"]}', "claims.id_token must be an object"),
        ('{"userinfo": {"name": {"essential": 1}}}', "claims.userinfo.name.essential must be true or false"),
    ],
)
async def test_a_malformed_claims_parameter_redirects_invalid_request(
    provider: Provider, claims: str, description: str
) -> None:
    response = await provider.http.get("/identity/authorize", params=pkce_query(claims))
    params = redirect_error(response)
    assert params["error"] == ["invalid_request"]
    assert description in params["error_description"][0]
    assert params["state"] == ["state-123"]
    assert provider.sender.messages == []
    assert await codes(provider) == 0


async def test_an_essential_acr_the_provider_cannot_meet_is_refused_before_sign_in(
    provider: Provider,
) -> None:
    impossible = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:dpi:acr:biometrics"}}})
    params = redirect_error(await provider.http.get("/identity/authorize", params=pkce_query(impossible)))
    assert params["error"] == ["unmet_authentication_requirements"]
    assert params["state"] == ["state-123"]
    assert provider.sender.messages == []
    possible = json.dumps({"id_token": {"acr": {"essential": True, "values": [oidc.ACR_SMS_OTP]}}})
    asked = pkce_query(possible)
    # Nothing beyond sub and acr is asked: no consent page, the code comes straight after sign-in.
    tokens = await tokens_for(provider, await until_consent(provider, asked), asked)
    claims = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "labour-portal")
    assert claims["acr"] == oidc.ACR_SMS_OTP


async def test_the_consent_form_needs_its_csrf_token_and_a_session(provider: Provider) -> None:
    page = await until_consent(provider, pkce_query(AGE_ONLY))
    action, _csrf = form_of(page.text)
    forged = await provider.http.post(action, data={"csrf_token": "forged", "decision": "allow"})
    assert forged.status_code == 400
    assert await stored(provider) == []
    provider.http.cookies.delete("dpi_oidc_session")
    _action, csrf = form_of(page.text)
    no_session = await provider.http.post(action, data={"csrf_token": csrf, "decision": "allow"})
    assert no_session.status_code == 400
    assert await stored(provider) == []


# --- the stored choice -------------------------------------------------------------------------------------


async def test_the_same_or_fewer_claims_skip_the_page_and_more_ask_again(provider: Provider) -> None:
    first = pkce_query(scope="openid profile")
    await tokens_for(provider, await choose(provider, await until_consent(provider, first), ["name"]), first)

    subset = pkce_query(json.dumps({"userinfo": {"name": None}}))
    direct = await provider.http.get("/identity/authorize", params=subset)
    assert (await userinfo(provider, await tokens_for(provider, direct, subset))).keys() == {"sub", "name"}

    same = pkce_query(scope="openid profile", prompt="none")
    silent = await provider.http.get("/identity/authorize", params=same)
    assert (await userinfo(provider, await tokens_for(provider, silent, same))).keys() == {"sub", "name"}

    larger = pkce_query(scope="openid profile phone", prompt="none")
    params = redirect_error(await provider.http.get("/identity/authorize", params=larger))
    assert params["error"] == ["consent_required"]
    del larger["prompt"]
    page = await provider.http.get("/identity/authorize", params=larger)
    assert "phone_number" in listed(page.text)
    assert 'value="name" checked' in page.text  # what the person released before is ticked
    assert 'value="birthdate">' in page.text


async def test_prompt_consent_asks_again_and_the_new_choice_replaces_the_old(provider: Provider) -> None:
    first = pkce_query(scope="openid profile")
    await tokens_for(
        provider, await choose(provider, await until_consent(provider, first), ["name", "birthdate"]), first
    )
    again = pkce_query(scope="openid profile", prompt="consent")
    page = await provider.http.get("/identity/authorize", params=again)
    tokens = await tokens_for(provider, await choose(provider, page, ["given_name"]), again)
    assert (await userinfo(provider, tokens)).keys() == {"sub", "given_name"}
    (row,) = await stored(provider)
    assert row.granted == ["given_name"]


async def test_a_choice_expires_after_its_lifetime(provider: Provider) -> None:
    first = pkce_query(AGE_ONLY)
    await tokens_for(
        provider, await choose(provider, await until_consent(provider, first), ["age_over_18"]), first
    )
    provider.clock.now += timedelta(days=180)
    again = pkce_query(AGE_ONLY)
    page = await until_consent(provider, again)
    assert listed(page.text) == ["age_over_18"]


async def test_a_withdrawal_stops_the_release_at_once_and_asks_again(provider: Provider) -> None:
    asked = pkce_query(scope="openid profile")
    tokens = await tokens_for(
        provider, await choose(provider, await until_consent(provider, asked), ["name"]), asked
    )
    subject = (await userinfo(provider, tokens))["sub"]
    consents = ClaimConsents(provider.clients.sessions, clock=provider.clock)
    assert await consents.withdraw(subject, "labour-portal") is None  # no recorder, no receipt
    assert await userinfo(provider, tokens) == {"sub": subject}
    assert await consents.withdraw(subject, "labour-portal") is None
    again = pkce_query(scope="openid profile")
    page = await provider.http.get("/identity/authorize", params=again)
    assert page.status_code == 200
    assert "name" in listed(page.text)


# --- receipts through the consent block ---------------------------------------------------------------------


class _Failing:
    async def record_release(self, release: ClaimRelease) -> ReleaseReceipt:
        raise DpiError("service.not_ready", "the consent service could not be reached")

    async def withdraw_release(self, consent_id: str, subject: str) -> ReleaseReceipt:
        raise DpiError("service.not_ready", "the consent service could not be reached")


def _recorder(context: BlockContext) -> InProcessClaimReleaseRecorder:
    return InProcessClaimReleaseRecorder.over(context, provider=IDENTITY_SUBSYSTEM)


@pytest.fixture
async def recording(settings: Settings) -> AsyncIterator[Provider]:
    async for provider in open_provider(settings, _recorder, [consent_block()]):
        yield provider


@pytest.fixture
async def failing(settings: Settings) -> AsyncIterator[Provider]:
    async for provider in open_provider(settings, lambda _context: _Failing(), [consent_block()]):
        yield provider


async def test_a_release_and_its_withdrawal_get_signed_receipts_naming_the_pseudonym(
    recording: Provider, settings: Settings
) -> None:
    asked = pkce_query(AGE_ONLY, scope="openid profile", ui_locales="ar")
    page = await until_consent(recording, asked)
    tokens = await tokens_for(recording, await choose(recording, page, ["age_over_18", "name"]), asked)
    subject = (await userinfo(recording, tokens))["sub"]
    (row,) = await stored(recording)
    assert row.receipt is not None
    assert row.consent_id is not None
    keys = (await recording.http.get("/consent/.well-known/jwks.json")).json()
    receipt = verify_receipt(row.receipt, keys)
    assert receipt["subject"] == subject != recording.uin
    assert receipt["consumer"] == LABOUR
    assert receipt["providers"] == [{"provider": IDENTITY_SUBSYSTEM, "service": "userinfo"}]
    assert receipt["purpose"] == "identity-verification"
    assert receipt["fields"] == ["/age_over_18", "/name", "/sub"]
    assert receipt["action"] == "approve"
    assert receipt["notice"]["language"] == "ar"
    assert recording.uin not in json.dumps(receipt)

    # The person withdraws through the service (the same tables and keys as the app's, in this loop).
    service = ConsentService(
        recording.clients.sessions, KeyStore(settings.key_directory), settings.public_url
    )
    recorder = InProcessClaimReleaseRecorder(service, provider=IDENTITY_SUBSYSTEM)
    consents = ClaimConsents(recording.clients.sessions, recorder=recorder, clock=recording.clock)
    withdrawal = await consents.withdraw(subject, "labour-portal")
    assert withdrawal is not None
    withdrawn = verify_receipt(withdrawal, keys)
    assert (withdrawn["action"], withdrawn["consent_id"]) == ("withdraw", row.consent_id)
    assert await userinfo(recording, tokens) == {"sub": subject}
    (row,) = await stored(recording)
    assert row.withdrawal_receipt == withdrawal


async def test_a_release_that_cannot_be_recorded_releases_nothing(failing: Provider) -> None:
    asked = pkce_query(AGE_ONLY)
    page = await until_consent(failing, asked)
    answer = await choose(failing, page, ["age_over_18"])
    assert answer.status_code == 503
    assert "could not be recorded" in answer.text or "n'a pas pu" in answer.text
    assert await stored(failing) == []
    assert await codes(failing) == 0


async def test_a_client_the_consent_block_cannot_name_gets_the_refusal_page_not_a_500(
    recording: Provider,
) -> None:
    # A sector that is a plain name, not a subsystem id, cannot be a consent's consumer.
    _, secret = await recording.clients.add(
        {
            "client_id": "clinic",
            "client_name": "Clinic",
            "redirect_uris": [HEALTH_REDIRECT],
            "sector": "health-clinics",
            "scope": ["openid", "profile"],
        }
    )
    assert secret is not None
    asked = pkce_query(scope="openid profile", client_id="clinic", redirect_uri=HEALTH_REDIRECT)
    page = await until_consent(recording, asked)
    answer = await choose(recording, page, ["name"])
    assert answer.status_code == 503
    assert "location" not in answer.headers
    assert await stored(recording) == []
    assert await codes(recording) == 0
