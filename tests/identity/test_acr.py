"""Authentication context classes: the rules as data, and ``acr_values`` over HTTP."""

from __future__ import annotations

import jwt
import pytest

from identity import acr
from identity.claims import RequestedClaim, parse_claims_parameter
from tests.identity.conftest import Provider
from tests.identity.test_oidc import authorize_query, code_of, exchange, jwks, pkce, sign_in, verify_id_token

OTP = acr.ACR_SMS_OTP


BIOMETRIC = "urn:other:acr:biometric"


@pytest.mark.parametrize(
    ("acr_values", "issued"),
    [
        (None, OTP),
        ("", OTP),
        (OTP, OTP),
        (f"{BIOMETRIC} {OTP}", OTP),
        (BIOMETRIC, OTP),
        ("0 1 2", OTP),
    ],
)
def test_acr_values_are_voluntary(acr_values: str | None, issued: str) -> None:
    assert acr.acr_to_issue(OTP, acr_values=acr_values) == issued


def _acr_claim(claims: str | None) -> RequestedClaim | None:
    return parse_claims_parameter(claims).id_token.get("acr")


@pytest.mark.parametrize(
    ("claims", "acr_values", "issued"),
    [
        (None, None, OTP),
        ('{"id_token": {"acr": null}}', None, OTP),
        ('{"id_token": {"acr": {"essential": true}}}', None, OTP),
        (f'{{"id_token": {{"acr": {{"essential": true, "values": ["{OTP}"]}}}}}}', None, OTP),
        (f'{{"id_token": {{"acr": {{"essential": true, "values": ["{BIOMETRIC}", "{OTP}"]}}}}}}', None, OTP),
        (f'{{"id_token": {{"acr": {{"essential": true, "value": "{OTP}"}}}}}}', BIOMETRIC, OTP),
        # Voluntary: falls back to acr_values, then to the sign-in's own class.
        (f'{{"id_token": {{"acr": {{"values": ["{BIOMETRIC}"]}}}}}}', None, OTP),
        (f'{{"id_token": {{"acr": {{"essential": false, "values": ["{BIOMETRIC}"]}}}}}}', OTP, OTP),
        # Essential and unmet: a failed sign-in, whatever acr_values says.
        (f'{{"id_token": {{"acr": {{"essential": true, "values": ["{BIOMETRIC}"]}}}}}}', OTP, None),
        (f'{{"id_token": {{"acr": {{"essential": true, "value": "{BIOMETRIC}"}}}}}}', None, None),
        ('{"id_token": {"acr": {"essential": true, "values": [1, null, {"a": 1}]}}}', None, None),
        ('{"id_token": {"acr": {"essential": true, "values": ["urn:x", "urn:y"]}}}', None, None),
        # acr asked of userinfo is not an authentication requirement.
        (f'{{"userinfo": {{"acr": {{"essential": true, "value": "{BIOMETRIC}"}}}}}}', None, OTP),
    ],
)
def test_an_acr_claim_request_is_answered_or_refused_when_essential(
    claims: str | None, acr_values: str | None, issued: str | None
) -> None:
    claim = _acr_claim(claims)
    assert acr.acr_to_issue(OTP, acr_values=acr_values, claim=claim) == issued
    assert acr.can_satisfy(claim) is (issued is not None)


def test_every_class_has_methods_and_discovery_lists_them() -> None:
    assert acr.supported_acr_values() == [OTP]
    assert acr.amr_of(OTP) == ["sms", "otp"]
    assert acr.amr_of("urn:unknown") == []


async def test_the_id_token_carries_the_acr_of_an_acr_values_request(provider: Provider) -> None:
    verifier, challenge = pkce()
    query = authorize_query(
        code_challenge=challenge, code_challenge_method="S256", acr_values=f"urn:other:acr:biometric {OTP}"
    )
    tokens = (await exchange(provider, code_of(await sign_in(provider, query)), verifier)).json()
    claims = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "labour-portal")
    assert claims["acr"] == OTP
    assert claims["amr"] == ["sms", "otp"]
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["acr"] == OTP
    document = (await provider.http.get("/identity/.well-known/openid-configuration")).json()
    assert document["acr_values_supported"] == [OTP]


async def test_a_voluntary_acr_claim_falls_back_and_acr_values_still_count(provider: Provider) -> None:
    verifier, challenge = pkce()
    claims = f'{{"id_token": {{"acr": {{"essential": false, "values": ["{BIOMETRIC}"]}}}}}}'
    query = authorize_query(
        code_challenge=challenge, code_challenge_method="S256", acr_values=OTP, claims=claims
    )
    tokens = (await exchange(provider, code_of(await sign_in(provider, query)), verifier)).json()
    issued = verify_id_token(tokens["id_token"], await jwks(provider), provider.issuer, "labour-portal")
    assert issued["acr"] == OTP
