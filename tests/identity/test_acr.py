"""Authentication context classes: the rules as data, and ``acr_values`` over HTTP."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from identity import acr
from tests.identity.conftest import Provider
from tests.identity.test_oidc import authorize_query, code_of, exchange, jwks, pkce, sign_in, verify_id_token

OTP = acr.ACR_SMS_OTP


@pytest.mark.parametrize(
    ("acr_values", "issued"),
    [
        (None, OTP),
        ("", OTP),
        (OTP, OTP),
        (f"urn:other:acr:biometric {OTP}", OTP),
        ("urn:other:acr:biometric", OTP),
        ("0 1 2", OTP),
    ],
)
def test_acr_values_are_voluntary(acr_values: str | None, issued: str) -> None:
    assert acr.acr_for_acr_values(acr_values, OTP) == issued


@pytest.mark.parametrize(
    ("request_", "issued"),
    [
        (None, OTP),
        ({}, OTP),
        ({"essential": True}, OTP),
        ({"essential": True, "values": [OTP]}, OTP),
        ({"essential": True, "values": ["urn:other:acr:biometric", OTP]}, OTP),
        ({"essential": True, "value": OTP}, OTP),
        ({"values": ["urn:other:acr:biometric"]}, OTP),
        ({"essential": False, "values": ["urn:other:acr:biometric"]}, OTP),
        ({"essential": True, "values": ["urn:other:acr:biometric"]}, None),
        ({"essential": True, "value": "urn:other:acr:biometric"}, None),
        ({"essential": True, "values": [1, None, {"a": 1}]}, None),
        ({"essential": True, "values": "not-a-list"}, OTP),
        ("not-an-object", OTP),
    ],
)
def test_an_acr_claim_request_is_answered_or_refused_when_essential(
    request_: Any, issued: str | None
) -> None:
    assert acr.acr_for_claim_request(request_, OTP) == issued


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
