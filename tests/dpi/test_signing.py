"""The signature profile: canonical JSON, JWS (compact and detached) and HTTP message signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from dpi.keys import SigningKey
from dpi.signing import (
    SignatureError,
    canonical_json,
    jwks_key_resolver,
    sign_compact,
    sign_detached,
    sign_request,
    verify_compact,
    verify_detached,
    verify_request,
)

ALGORITHMS = ["EdDSA", "ES256", "PS256"]
CREATED = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
URL = "https://civil-registry.example/registry/v1/search?page=2"
BODY = b'{"purpose":"jobseeker-registration","subject":"sp-7Q2XK9"}'
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
RECORD = {"given_name": "Amina", "family_name_ar": "بن علي", "amount": "1250.50", "age": 24}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: SigningKey.generate(alg) for alg in ALGORITHMS}


@pytest.fixture(scope="module")
def jwks(keys: dict[str, SigningKey]) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys.values()]}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _header(**members: Any) -> str:
    return _b64url(json.dumps(members, separators=(",", ":")).encode())


def _reason(call: Callable[[], object]) -> str:
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value.reason_code


# --- canonical JSON ---------------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": [1, 2.0, "é"], "a": None}) == '{"a":null,"b":[1,2,"é"]}'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**60, {1: "non-string key"}])
def test_canonical_json_refuses_what_jcs_cannot_represent(value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the library raises subclasses of ValueError
        canonical_json(value)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=8)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=12,
    )


def _json_objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=6), _json_values(), max_size=5)


def _reordered(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {name: _reordered(member, rng) for name, member in items}
    if isinstance(value, list):
        return [_reordered(member, rng) for member in value]
    return value


@settings(max_examples=60, deadline=None)
@given(obj=_json_objects(), seed=st.integers())
def test_canonical_json_does_not_depend_on_key_order(obj: dict[str, Any], seed: int) -> None:
    assert canonical_json(_reordered(obj, random.Random(seed))) == canonical_json(obj)


@settings(max_examples=40, deadline=None)
@given(obj=_json_objects())
def test_sign_and_verify_round_trip_for_any_json_object(
    obj: dict[str, Any], keys: dict[str, SigningKey], jwks: dict[str, Any]
) -> None:
    key = keys["EdDSA"]
    assert verify_detached(obj, sign_detached(obj, key), jwks)["kid"] == key.kid
    token = sign_compact(obj, key)
    header, _ = verify_compact(token, jwks)
    assert header["kid"] == key.kid
    # The signed bytes are the canonical form; parsed numbers are compared as doubles by every reader.
    assert base64.urlsafe_b64decode(token.split(".")[1] + "==") == canonical_json(obj)


# --- JWS --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_detached_jws_round_trip(alg: str, keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    jws = sign_detached(RECORD, keys[alg], typ="dpi-receipt+jws")
    protected, payload, signature = jws.split(".")
    assert payload == ""
    assert protected
    assert signature
    header = verify_detached(dict(reversed(list(RECORD.items()))), jws, jwks)
    assert header == {"alg": alg, "kid": keys[alg].kid, "typ": "dpi-receipt+jws"}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_compact_jws_round_trip(alg: str, keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    header, payload = verify_compact(sign_compact(RECORD, keys[alg]), jwks)
    assert header == {"alg": alg, "kid": keys[alg].kid}
    assert payload == RECORD


def test_compact_jws_payload_is_the_canonical_json(keys: dict[str, SigningKey]) -> None:
    token = sign_compact(RECORD, keys["EdDSA"])
    assert base64.urlsafe_b64decode(token.split(".")[1] + "==") == canonical_json(RECORD)


def test_a_resolver_can_stand_in_for_the_jwks(keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    jws = sign_detached(RECORD, keys["ES256"])
    assert verify_detached(RECORD, jws, jwks_key_resolver(jwks))["alg"] == "ES256"


def _detached_attacks(keys: dict[str, SigningKey]) -> dict[str, tuple[Any, str, str]]:
    ed, ec = keys["EdDSA"], keys["ES256"]
    good = sign_detached(RECORD, ed)
    protected, _, signature = good.partition("..")
    public_pem = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = _header(alg="HS256", kid=ed.kid)
    signing_input = f"{hs_header}.{_b64url(canonical_json(RECORD))}".encode()
    hs_signature = _b64url(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    stranger = SigningKey.generate("EdDSA")
    return {
        "tampered payload": ({**RECORD, "amount": "9250.50"}, good, "auth.signature_invalid"),
        "header of another key": (
            RECORD,
            f"{sign_detached(RECORD, ec).split('..')[0]}..{signature}",
            "auth.signature_invalid",
        ),
        "alg none": (RECORD, f"{_header(alg='none', kid=ed.kid)}..", "auth.signature_invalid"),
        "HS256 keyed with the public key": (RECORD, f"{hs_header}..{hs_signature}", "auth.signature_invalid"),
        "alg ES256 on an Ed25519 kid": (
            RECORD,
            f"{_header(alg='ES256', kid=ed.kid)}..{signature}",
            "auth.signature_invalid",
        ),
        "no kid": (RECORD, f"{_header(alg='EdDSA')}..{signature}", "auth.signature_invalid"),
        "unknown kid": (RECORD, sign_detached(RECORD, stranger), "auth.key_unknown"),
        "crit extension": (
            RECORD,
            f"{_header(alg='EdDSA', kid=ed.kid, crit=['exp'])}..{signature}",
            "auth.signature_invalid",
        ),
        "payload not detached": (RECORD, sign_compact(RECORD, ed), "auth.signature_invalid"),
        "not a JWS": (RECORD, "not-a-jws", "auth.signature_invalid"),
        "garbage header": (RECORD, f"!!!..{signature}", "auth.signature_invalid"),
        "empty": (RECORD, "", "auth.signature_missing"),
        "truncated signature": (RECORD, f"{protected}..{signature[:-4]}", "auth.signature_invalid"),
    }


@pytest.mark.parametrize(
    "attack",
    [
        "tampered payload",
        "header of another key",
        "alg none",
        "HS256 keyed with the public key",
        "alg ES256 on an Ed25519 kid",
        "no kid",
        "unknown kid",
        "crit extension",
        "payload not detached",
        "not a JWS",
        "garbage header",
        "empty",
        "truncated signature",
    ],
)
def test_detached_jws_attacks_are_refused(
    attack: str, keys: dict[str, SigningKey], jwks: dict[str, Any]
) -> None:
    obj, jws, expected = _detached_attacks(keys)[attack]
    assert _reason(lambda: verify_detached(obj, jws, jwks)) == expected


def test_a_kid_bound_to_a_key_of_another_type_is_refused(keys: dict[str, SigningKey]) -> None:
    jws = sign_detached(RECORD, keys["EdDSA"])
    impostor = {**keys["ES256"].public_jwk(), "kid": keys["EdDSA"].kid}
    assert _reason(lambda: verify_detached(RECORD, jws, {"keys": [impostor]})) == "auth.signature_invalid"


@pytest.mark.parametrize(
    "change",
    [{"use": "enc"}, {"alg": "ES256"}, {"x": "AAAA"}, {"crv": "X25519"}, {"kty": "oct"}],
    ids=["use enc", "alg of another type", "short x", "unsupported curve", "symmetric key"],
)
def test_unusable_jwks_entries_are_refused(change: dict[str, str], keys: dict[str, SigningKey]) -> None:
    jws = sign_detached(RECORD, keys["EdDSA"])
    entry = {**keys["EdDSA"].public_jwk(), **change}
    assert _reason(lambda: verify_detached(RECORD, jws, {"keys": [entry]})) == "auth.signature_invalid"


def test_a_rsa_key_below_2048_bits_is_refused(keys: dict[str, SigningKey]) -> None:
    jws = sign_detached(RECORD, keys["PS256"])
    weak = {**keys["PS256"].public_jwk(), "n": _b64url(b"\xc1" + b"\x00" * 126 + b"\x01")}
    assert _reason(lambda: verify_detached(RECORD, jws, {"keys": [weak]})) == "auth.signature_invalid"


@pytest.mark.parametrize(
    "payload",
    [b"[1,2]", b'"text"', b"not json", b'{"a":1,"a":2}', b'{"a":NaN}'],
    ids=["array", "string", "not json", "duplicate member", "NaN"],
)
def test_compact_payload_must_be_a_plain_json_object(
    payload: bytes, keys: dict[str, SigningKey], jwks: dict[str, Any]
) -> None:
    key = keys["EdDSA"]
    header = _header(alg="EdDSA", kid=key.kid)
    signing_input = f"{header}.{_b64url(payload)}"
    signature = key.private_key.sign(signing_input.encode())  # type: ignore[call-arg]
    token = f"{signing_input}.{_b64url(signature)}"
    assert _reason(lambda: verify_compact(token, jwks)) == "auth.signature_invalid"


def test_jwks_key_resolver_refuses_a_document_without_keys() -> None:
    with pytest.raises(ValueError, match="keys"):
        jwks_key_resolver({"key": []})


# --- HTTP message signatures ------------------------------------------------------------------------------


def _signed(key: SigningKey, headers: dict[str, str] | None = None, **options: Any) -> dict[str, str]:
    base = HEADERS if headers is None else headers
    return {**base, **sign_request("POST", URL, base, BODY, key, created=CREATED, **options)}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_request_signature_round_trip(alg: str, keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    headers = _signed(keys[alg], nonce="n-1")
    assert (
        verify_request("POST", URL, headers, BODY, jwks, now=CREATED + timedelta(seconds=10)) == keys[alg].kid
    )


def test_request_signature_headers(keys: dict[str, SigningKey]) -> None:
    key = keys["EdDSA"]
    added = sign_request("POST", URL, HEADERS, BODY, key, created=CREATED, nonce="n-1")
    digest = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert added["Content-Digest"] == f"sha-256=:{digest}:"
    assert added["Signature-Input"] == (
        'dpi=("@method" "@target-uri" "content-digest" "content-type");'
        f'created={int(CREATED.timestamp())};keyid="{key.kid}";alg="ed25519";nonce="n-1"'
    )
    assert added["Signature"].startswith("dpi=:")


def test_content_type_is_covered_only_when_present(keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    headers = _signed(keys["ES256"], headers={})
    assert '"content-type"' not in headers["Signature-Input"]
    assert verify_request("POST", URL, headers, BODY, jwks, now=CREATED) == keys["ES256"].kid


def test_header_names_are_case_insensitive(keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    headers = {name.lower(): value for name, value in _signed(keys["EdDSA"]).items()}
    assert verify_request("post", URL, headers, BODY, jwks, now=CREATED) == keys["EdDSA"].kid


def test_other_signature_labels_do_not_disturb_ours(
    keys: dict[str, SigningKey], jwks: dict[str, Any]
) -> None:
    headers = _signed(keys["EdDSA"])
    headers["Signature-Input"] += ', proxy=("@method");created=1;keyid="other"'
    headers["Signature"] += ", proxy=:AAAA:"
    assert verify_request("POST", URL, headers, BODY, jwks, now=CREATED) == keys["EdDSA"].kid


def test_a_caller_supplied_content_digest_is_replaced(keys: dict[str, SigningKey]) -> None:
    headers = {**HEADERS, "Content-Digest": "sha-256=:AAAA:"}
    added = sign_request("POST", URL, headers, BODY, keys["EdDSA"], created=CREATED)
    assert added["Content-Digest"] != "sha-256=:AAAA:"


def test_naive_created_is_refused(keys: dict[str, SigningKey]) -> None:
    with pytest.raises(ValueError, match="timezone"):
        sign_request("POST", URL, HEADERS, BODY, keys["EdDSA"], created=datetime(2026, 11, 23, 10, 0))


Mutation = Callable[[dict[str, Any], SigningKey], None]


def _set(name: str, value: str) -> Mutation:
    def mutate(request: dict[str, Any], _: SigningKey) -> None:
        request["headers"][name] = value

    return mutate


def _drop(*names: str) -> Mutation:
    def mutate(request: dict[str, Any], _: SigningKey) -> None:
        for name in names:
            del request["headers"][name]

    return mutate


def _put(field: str, value: Any) -> Mutation:
    def mutate(request: dict[str, Any], _: SigningKey) -> None:
        request[field] = value

    return mutate


def _edit_input(old: str, new: str) -> Mutation:
    def mutate(request: dict[str, Any], _: SigningKey) -> None:
        request["headers"]["Signature-Input"] = request["headers"]["Signature-Input"].replace(old, new)

    return mutate


def _body_and_its_digest(request: dict[str, Any], _: SigningKey) -> None:
    request["body"] = b'{"purpose":"benefit-eligibility"}'
    digest = base64.b64encode(hashlib.sha256(request["body"]).digest()).decode()
    request["headers"]["Content-Digest"] = f"sha-256=:{digest}:"


def _signed_without_content_type(request: dict[str, Any], key: SigningKey) -> None:
    request["headers"] = {
        **sign_request("POST", URL, {}, BODY, key, created=CREATED),
        "Content-Type": "application/json",
    }


def _other_key_same_kid(request: dict[str, Any], key: SigningKey) -> None:
    impostor = SigningKey.generate("EdDSA", kid=key.kid)
    request["headers"] = _signed(impostor)


HTTP_ATTACKS: list[tuple[str, Mutation, str]] = [
    ("tampered body", _put("body", b'{"purpose":"benefit-eligibility"}'), "auth.digest_mismatch"),
    ("empty body", _put("body", b""), "auth.digest_mismatch"),
    ("missing Content-Digest", _drop("Content-Digest"), "auth.digest_mismatch"),
    ("malformed Content-Digest", _set("Content-Digest", "sha-256=not-bytes"), "auth.signature_invalid"),
    ("body and digest replaced together", _body_and_its_digest, "auth.signature_invalid"),
    ("missing Signature", _drop("Signature"), "auth.signature_missing"),
    ("missing Signature-Input", _drop("Signature-Input"), "auth.signature_missing"),
    ("missing both", _drop("Signature", "Signature-Input"), "auth.signature_missing"),
    ("another label", _edit_input("dpi=", "other="), "auth.signature_missing"),
    ("unknown keyid", _edit_input('keyid="', 'keyid="x'), "auth.key_unknown"),
    ("no keyid", _edit_input(';keyid="', ';foo="'), "auth.signature_invalid"),
    (
        "alg of another key type",
        _edit_input('alg="ed25519"', 'alg="ecdsa-p256-sha256"'),
        "auth.signature_invalid",
    ),
    ("hmac alg", _edit_input('alg="ed25519"', 'alg="hmac-sha256"'), "auth.signature_invalid"),
    ("no created", _edit_input(";created=", ";since="), "auth.signature_invalid"),
    (
        "created moved",
        _edit_input(f"created={int(CREATED.timestamp())}", "created=1795428001"),
        "auth.signature_invalid",
    ),
    ("target-uri not covered", _edit_input('"@target-uri" ', ""), "auth.signature_invalid"),
    ("content-digest not covered", _edit_input(' "content-digest"', ""), "auth.signature_invalid"),
    ("content-type added after signing", _signed_without_content_type, "auth.signature_invalid"),
    ("content-type changed", _set("Content-Type", "text/plain"), "auth.signature_invalid"),
    ("method changed", _put("method", "PUT"), "auth.signature_invalid"),
    ("url changed", _put("url", URL.replace("page=2", "page=3")), "auth.signature_invalid"),
    ("signature of another key under our kid", _other_key_same_kid, "auth.signature_invalid"),
    ("signature not a byte sequence", _set("Signature", 'dpi="abc"'), "auth.signature_invalid"),
    ("signature header garbage", _set("Signature", "dpi=:::"), "auth.signature_invalid"),
    ("signature input garbage", _set("Signature-Input", "dpi=(((("), "auth.signature_invalid"),
    ("non-ASCII signature input", _set("Signature-Input", "dpi=é"), "auth.signature_invalid"),
]


@pytest.mark.parametrize(("mutate", "expected"), [pytest.param(m, e, id=name) for name, m, e in HTTP_ATTACKS])
def test_request_attacks_are_refused(
    mutate: Mutation, expected: str, keys: dict[str, SigningKey], jwks: dict[str, Any]
) -> None:
    key = keys["EdDSA"]
    request: dict[str, Any] = {"method": "POST", "url": URL, "headers": _signed(key), "body": BODY}
    mutate(request, key)
    reason = _reason(
        lambda: verify_request(
            request["method"], request["url"], request["headers"], request["body"], jwks, now=CREATED
        )
    )
    assert reason == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (CREATED + timedelta(minutes=5), None),
        (CREATED + timedelta(minutes=5, seconds=1), "auth.signature_expired"),
        (CREATED - timedelta(seconds=30), None),
        (CREATED - timedelta(seconds=31), "auth.signature_expired"),
        (CREATED - timedelta(days=1), "auth.signature_expired"),
    ],
    ids=["at max age", "past max age", "within clock skew", "beyond clock skew", "a day early"],
)
def test_request_time_window(
    now: datetime, expected: str | None, keys: dict[str, SigningKey], jwks: dict[str, Any]
) -> None:
    headers = _signed(keys["EdDSA"])
    if expected is None:
        assert verify_request("POST", URL, headers, BODY, jwks, now=now) == keys["EdDSA"].kid
    else:
        assert _reason(lambda: verify_request("POST", URL, headers, BODY, jwks, now=now)) == expected


def test_max_age_is_the_callers_choice(keys: dict[str, SigningKey], jwks: dict[str, Any]) -> None:
    headers = _signed(keys["EdDSA"])
    later = CREATED + timedelta(minutes=20)
    assert verify_request("POST", URL, headers, BODY, jwks, now=later, max_age=timedelta(hours=1))
    assert (
        _reason(lambda: verify_request("POST", URL, headers, BODY, jwks, now=later))
        == "auth.signature_expired"
    )


def test_signature_error_is_an_exception_with_a_reason_code() -> None:
    error = SignatureError("auth.key_unknown", "no key")
    assert isinstance(error, Exception)
    assert (error.reason_code, str(error)) == ("auth.key_unknown", "no key")
