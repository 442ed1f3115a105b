"""The published signature vectors (standards/vectors/signature-vectors.json) match our implementation."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dpi.keys import SigningKey
from dpi.signing import (
    SignatureError,
    canonical_json,
    sign_compact,
    sign_detached,
    sign_request,
    verify_compact,
    verify_detached,
    verify_request,
)
from standards import validator

VECTORS_PATH = Path(__file__).resolve().parents[2] / "standards" / "vectors" / "signature-vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
JWKS: dict[str, Any] = VECTORS["jwks"]


def _key(name: str) -> SigningKey:
    return SigningKey.from_jwk(VECTORS["keys"][name]["private_jwk"])


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _named(cases: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in cases]


def test_test_keys_have_their_thumbprint_as_kid_and_are_in_the_jwks() -> None:
    for name, entry in VECTORS["keys"].items():
        key = _key(name)
        assert key.kid == entry["private_jwk"]["kid"]
        assert key.public_jwk() in JWKS["keys"]
    # RFC 8037 Appendix A.3 publishes the thumbprint of its Ed25519 key.
    assert _key("ed25519").kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("case", _named(VECTORS["canonicalization"]))
def test_canonical_json_reproduces_every_vector(case: dict[str, Any]) -> None:
    produced = canonical_json(case["input"])
    assert produced == case["canonical"].encode("utf-8")
    assert hashlib.sha256(produced).hexdigest() == case["canonical_sha256"]


@pytest.mark.parametrize("case", _named(VECTORS["detached_jws"]))
def test_detached_jws_vectors(case: dict[str, Any]) -> None:
    header = verify_detached(case["payload"], case["jws"], JWKS)
    assert header["kid"] == VECTORS["keys"][case["key"]]["private_jwk"]["kid"]
    assert header.get("typ") == case.get("typ")
    if case["deterministic"]:
        assert sign_detached(case["payload"], _key(case["key"]), typ=case.get("typ")) == case["jws"]
    if "signing_input" in case:
        protected, _, signature = case["jws"].partition("..")
        assert case["signing_input"].split(".")[0] == protected
        payload = base64.urlsafe_b64decode(case["signing_input"].split(".")[1] + "==")
        assert payload == canonical_json(case["payload"])
        _key(case["key"]).public_key().verify(
            base64.urlsafe_b64decode(signature + "=="), case["signing_input"].encode("ascii")
        )


@pytest.mark.parametrize("case", _named(VECTORS["compact_jws"]))
def test_compact_jws_vectors(case: dict[str, Any]) -> None:
    header, payload = verify_compact(case["jws"], JWKS)
    assert payload == case["payload"]
    assert header.get("typ") == case.get("typ")
    if case["deterministic"]:
        assert sign_compact(case["payload"], _key(case["key"]), typ=case.get("typ")) == case["jws"]


@pytest.mark.parametrize("case", _named(VECTORS["http_signatures"]))
def test_http_signature_vectors(case: dict[str, Any]) -> None:
    request = case["request"]
    body = request["body"].encode("utf-8")
    headers = {**request["headers"], **case["expected_headers"]}
    kid = verify_request(
        request["method"],
        request["url"],
        headers,
        body,
        JWKS,
        max_age=timedelta(seconds=case["max_age_seconds"]),
        now=_moment(case["verify_at"]),
    )
    assert kid == VECTORS["keys"][case["key"]]["private_jwk"]["kid"]
    if case["deterministic"]:
        produced = sign_request(
            request["method"],
            request["url"],
            request["headers"],
            body,
            _key(case["key"]),
            created=datetime.fromtimestamp(case["created"], UTC),
            nonce=case["nonce"],
        )
        assert produced == case["expected_headers"]
        signature = case["expected_headers"]["Signature"].removeprefix("dpi=:").removesuffix(":")
        _key(case["key"]).public_key().verify(
            base64.b64decode(signature), case["signature_base"].encode("ascii")
        )
        assert case["signature_base"].endswith(
            case["expected_headers"]["Signature-Input"].removeprefix("dpi=")
        )


def _verify_negative(case: dict[str, Any]) -> None:
    if case["kind"] == "detached_jws":
        verify_detached(case["payload"], case["jws"], JWKS)
        return
    request = case["request"]
    verify_request(
        request["method"],
        request["url"],
        request["headers"],
        request["body"].encode("utf-8"),
        JWKS,
        max_age=timedelta(seconds=case["max_age_seconds"]),
        now=_moment(case["verify_at"]),
    )


@pytest.mark.parametrize("case", _named(VECTORS["negative"]))
def test_negative_vectors_fail_with_their_reason_code(case: dict[str, Any]) -> None:
    with pytest.raises(SignatureError) as caught:
        _verify_negative(case)
    assert caught.value.reason_code == case["reason_code"]


def test_every_negative_reason_code_is_in_the_vocabulary() -> None:
    vocabulary_path = VECTORS_PATH.parents[1] / "vocabularies" / "reason-codes.json"
    vocabulary = json.loads(vocabulary_path.read_text(encoding="utf-8"))["reason_codes"]
    assert {case["reason_code"] for case in VECTORS["negative"]} <= set(vocabulary)


def test_the_vector_jwks_is_valid_against_the_jwks_schema() -> None:
    assert validator("jwks").issues(JWKS) == []
