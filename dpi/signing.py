"""The dpi signature profile (standards/profiles/signature.md): RFC 8785 JSON, RFC 7515 JWS, RFC 9421.

- Canonical JSON: RFC 8785 JCS, https://www.rfc-editor.org/rfc/rfc8785
- JSON Web Signature, compact and detached (Appendix F): RFC 7515, https://www.rfc-editor.org/rfc/rfc7515
- HTTP Message Signatures: RFC 9421, https://www.rfc-editor.org/rfc/rfc9421
- Content-Digest: RFC 9530, https://www.rfc-editor.org/rfc/rfc9530

Only ``EdDSA`` (Ed25519), ``ES256`` (P-256) and ``PS256`` (RSA) are accepted. Verification keys are found by
``kid`` in a JWK Set (RFC 7517), or through a resolver callable for stores that hold many members' keys.
Every failure raises :class:`SignatureError` whose ``reason_code`` comes from the reason-code vocabulary.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import http_sf
import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
)
from http_message_signatures.algorithms import (
    ECDSA_P256_SHA256,
    ED25519,
    RSA_PSS_SHA512,
    HTTPSignatureAlgorithm,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from dpi.keys import PublicKey, SigningKey

__all__ = [
    "ALLOWED_JWS_ALGORITHMS",
    "HTTP_SIGNATURE_ALGORITHMS",
    "HTTP_SIGNATURE_LABEL",
    "KeyResolver",
    "SignatureError",
    "SignatureReason",
    "canonical_json",
    "jwks_key_resolver",
    "sign_compact",
    "sign_detached",
    "sign_request",
    "verification_algorithm",
    "verify_compact",
    "verify_detached",
    "verify_request",
]

SignatureReason = Literal[
    "auth.signature_missing",
    "auth.signature_invalid",
    "auth.key_unknown",
    "auth.digest_mismatch",
    "auth.signature_expired",
]
KeyResolver = Callable[[str], Mapping[str, Any]]
"""Given a ``kid``, the public JWK it names; raises :class:`SignatureError` (``auth.key_unknown``) if none."""

ALLOWED_JWS_ALGORITHMS: tuple[str, ...] = ("EdDSA", "ES256", "PS256")
#: RFC 9421 section 6.2.2 algorithm names, per JWS algorithm of the key.
HTTP_SIGNATURE_ALGORITHMS: dict[str, str] = {
    "EdDSA": "ed25519",
    "ES256": "ecdsa-p256-sha256",
    "PS256": "rsa-pss-sha512",
}
HTTP_SIGNATURE_LABEL = "dpi"
_HTTP_ALGORITHM_CLASSES: dict[str, type[HTTPSignatureAlgorithm]] = {
    "EdDSA": ED25519,
    "ES256": ECDSA_P256_SHA256,
    "PS256": RSA_PSS_SHA512,
}
_REQUIRED_COMPONENTS = ("@method", "@target-uri", "content-digest")
# A sender's clock may run slightly ahead of ours; a created time further in the future is refused.
_CLOCK_SKEW = timedelta(seconds=30)
_RSA_MIN_BITS = 2048
_JWS = jwt.PyJWS(algorithms=list(ALLOWED_JWS_ALGORITHMS))


class SignatureError(Exception):
    """A signature is missing, invalid, made with an unknown key, expired, or its body digest does not match.

    ``reason_code`` is one of the ``auth.*`` codes of ``standards/vocabularies/reason-codes.json``.
    """

    def __init__(self, reason_code: SignatureReason, message: str) -> None:
        super().__init__(message)
        self.reason_code: SignatureReason = reason_code
        self.message = message


# --- canonical JSON ---------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 (JCS) canonical UTF-8 bytes of a JSON value.

    Raises ``ValueError`` (``rfc8785.CanonicalizationError``) for values JCS cannot represent: NaN,
    infinities, integers beyond the I-JSON range, non-string keys. Money is never a float: schemas require
    decimal strings.
    """
    return rfc8785.dumps(obj)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- keys -------------------------------------------------------------------------------------------------


def jwks_key_resolver(jwks: Mapping[str, Any]) -> KeyResolver:
    """A :data:`KeyResolver` over a JWK Set ``{"keys": [...]}`` (RFC 7517 section 5)."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError('a JWK Set must be an object with a "keys" array')
    by_kid: dict[str, Mapping[str, Any]] = {}
    for jwk in keys:
        if isinstance(jwk, Mapping) and isinstance(jwk.get("kid"), str):
            by_kid.setdefault(jwk["kid"], jwk)

    def resolve(kid: str) -> Mapping[str, Any]:
        try:
            return by_kid[kid]
        except KeyError:
            raise SignatureError("auth.key_unknown", f"no key with kid {kid!r} in the JWK Set") from None

    return resolve


@dataclass(frozen=True)
class _VerificationKey:
    kid: str
    alg: str
    public_key: PublicKey


def _resolve_key(keys: Mapping[str, Any] | KeyResolver, kid: str) -> _VerificationKey:
    resolver = jwks_key_resolver(keys) if isinstance(keys, Mapping) else keys
    jwk = resolver(kid)
    invalid = SignatureError("auth.signature_invalid", f"key {kid!r} is not a usable signature key")
    if jwk.get("use", "sig") != "sig":
        raise invalid
    kty, crv = jwk.get("kty"), jwk.get("crv")
    # Only the public members are read, so a JWK that wrongly carries "d" can never yield a private key.
    try:
        public_key: object
        if kty == "OKP" and crv == "Ed25519":
            alg, public_key = "EdDSA", OKPAlgorithm.from_jwk({"kty": kty, "crv": crv, "x": jwk["x"]})
        elif kty == "EC" and crv == "P-256":
            alg = "ES256"
            public_key = ECAlgorithm.from_jwk({"kty": kty, "crv": crv, "x": jwk["x"], "y": jwk["y"]})
        elif kty == "RSA":
            alg, public_key = "PS256", RSAAlgorithm.from_jwk({"kty": kty, "n": jwk["n"], "e": jwk["e"]})
        else:
            raise invalid
    except (KeyError, ValueError, TypeError, jwt.InvalidKeyError):
        raise invalid from None
    if jwk.get("alg", alg) != alg:
        raise invalid
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < _RSA_MIN_BITS:
        raise invalid
    if not isinstance(public_key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise invalid
    return _VerificationKey(kid=kid, alg=alg, public_key=public_key)


def verification_algorithm(jwk: Mapping[str, Any]) -> str:
    """The JWS algorithm a public JWK verifies under this profile (``EdDSA``, ``ES256``, ``PS256``);
    :class:`SignatureError` for a key the profile cannot use (other curves, short RSA, ``use`` other
    than ``sig``)."""
    return _resolve_key(lambda _kid: jwk, str(jwk.get("kid", ""))).alg


# --- JWS --------------------------------------------------------------------------------------------------


def _protected_header(key: SigningKey, typ: str | None) -> dict[str, Any]:
    # PyJWS defaults typ to "JWT"; None removes it, so the header is exactly {alg, kid[, typ]}.
    return {"kid": key.kid, "typ": typ}


def sign_compact(payload: Mapping[str, Any], key: SigningKey, typ: str | None = None) -> str:
    """A compact JWS (RFC 7515 section 7.1) whose payload is the canonical JSON of ``payload``."""
    return _JWS.encode(canonical_json(payload), key.private_key, key.alg, headers=_protected_header(key, typ))


def sign_detached(obj: Any, key: SigningKey, typ: str | None = None) -> str:
    """A detached JWS (RFC 7515 Appendix F) over ``canonical_json(obj)``: ``"<protected>..<signature>"``.

    The payload is base64url-encoded for signing as in any JWS (no RFC 7797 ``b64``), then left out.
    """
    protected, _, signature = _JWS.encode(
        canonical_json(obj), key.private_key, key.alg, headers=_protected_header(key, typ)
    ).split(".")
    return f"{protected}..{signature}"


def _verify_jws(token: str, keys: Mapping[str, Any] | KeyResolver) -> tuple[dict[str, Any], bytes]:
    if not token:
        raise SignatureError("auth.signature_missing", "no JWS was given")
    try:
        header = _JWS.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise SignatureError("auth.signature_invalid", "the JWS is malformed") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALLOWED_JWS_ALGORITHMS:
        raise SignatureError("auth.signature_invalid", f"JWS algorithm {alg!r} is not allowed")
    if not isinstance(kid, str) or not kid:
        raise SignatureError("auth.signature_invalid", "the JWS header has no kid")
    if "crit" in header or "b64" in header:
        raise SignatureError("auth.signature_invalid", "the JWS header uses extensions this profile forbids")
    key = _resolve_key(keys, kid)
    if key.alg != alg:
        raise SignatureError("auth.signature_invalid", f"JWS algorithm {alg} does not match key {kid!r}")
    try:
        decoded = _JWS.decode_complete(token, key.public_key, algorithms=[key.alg])
    except jwt.InvalidTokenError:
        raise SignatureError("auth.signature_invalid", "the JWS signature does not verify") from None
    payload = decoded["payload"]
    assert isinstance(payload, bytes)
    return header, payload


def verify_detached(obj: Any, jws: str, jwks: Mapping[str, Any] | KeyResolver) -> dict[str, Any]:
    """Verify a detached JWS made by :func:`sign_detached` over ``obj``; returns its protected header."""
    if not jws:
        raise SignatureError("auth.signature_missing", "no detached JWS was given")
    parts = jws.split(".")
    if len(parts) != 3 or parts[1]:
        raise SignatureError(
            "auth.signature_invalid", 'a detached JWS has the form "<protected>..<signature>"'
        )
    try:
        payload = _b64url(canonical_json(obj))
    except ValueError:
        raise SignatureError(
            "auth.signature_invalid", "the signed object has no canonical JSON form"
        ) from None
    header, _ = _verify_jws(f"{parts[0]}.{payload}.{parts[2]}", jwks)
    return header


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def verify_compact(
    token: str, jwks: Mapping[str, Any] | KeyResolver
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS; returns ``(protected header, payload)``. The payload must be a JSON object."""
    header, raw = _verify_jws(token, jwks)
    try:
        payload = json.loads(raw, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
    except ValueError:
        raise SignatureError("auth.signature_invalid", "the JWS payload is not JSON") from None
    if not isinstance(payload, dict):
        raise SignatureError("auth.signature_invalid", "the JWS payload is not a JSON object")
    return header, payload


# --- HTTP Message Signatures ------------------------------------------------------------------------------
# The http-message-signatures library (v3) builds and checks the RFC 9421 signature base, serialises the
# Structured Fields and computes Content-Digest; it fits our needs, so nothing of RFC 9421 is re-implemented
# here. This module adds the profile around it: which components must be covered, which parameters, the
# time window against an injectable clock, key lookup by kid in a JWKS, and distinct reason codes.


@dataclass
class _Request:
    """The request view the library reads: method, absolute URL and header fields."""

    method: str
    url: str
    headers: dict[str, str]


class _SingleKey(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, private_key: object = None, public_key: object = None) -> None:
        self._key_id, self._private_key, self._public_key = key_id, private_key, public_key

    def resolve_private_key(self, key_id: str) -> object:
        if key_id != self._key_id or self._private_key is None:
            raise KeyError(key_id)
        return self._private_key

    def resolve_public_key(self, key_id: str) -> object:
        return self._public_key if key_id == self._key_id else None


class _ProfileVerifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: object, max_age: object = None) -> None:
        # verify_request checks the time window itself, against the caller's clock, before verifying.
        return None


def _aware_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key: SigningKey,
    *,
    created: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign an HTTP request (RFC 9421) under the label ``dpi``; returns the header fields to add.

    The result holds ``Content-Digest`` (RFC 9530, sha-256 of ``body``), ``Signature-Input`` and
    ``Signature``. Covered components: ``@method``, ``@target-uri``, ``content-digest`` and, when the request
    has one, ``content-type``; parameters ``created``, ``keyid``, ``alg`` and ``nonce`` when given.
    """
    moment = datetime.now(UTC) if created is None else _aware_utc(created, "created")
    fields = {
        name: value
        for name, value in headers.items()
        if name.lower() not in {"content-digest", "signature", "signature-input"}
    }
    covered = list(_REQUIRED_COMPONENTS)
    if any(name.lower() == "content-type" for name in fields):
        covered.append("content-type")
    message = _Request(method=method.upper(), url=url, headers=fields)
    signer = HTTPMessageSigner(
        signature_algorithm=_HTTP_ALGORITHM_CLASSES[key.alg],
        key_resolver=_SingleKey(key.kid, private_key=key.private_key),
    )
    try:
        signer.sign(
            message,
            key_id=key.kid,
            created=moment,
            nonce=nonce,
            label=HTTP_SIGNATURE_LABEL,
            covered_component_ids=covered,
            body=body,
        )
    except HTTPMessageSignaturesException as error:
        raise ValueError(f"the request cannot be signed: {error}") from None
    return {name: message.headers[name] for name in ("Content-Digest", "Signature-Input", "Signature")}


def _parse_dictionary(
    value: str, name: str, reason: SignatureReason = "auth.signature_invalid"
) -> dict[str, Any]:
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except (ValueError, UnicodeEncodeError):
        raise SignatureError(reason, f"the {name} header is not a structured field") from None
    assert isinstance(parsed, dict)
    return parsed


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    jwks: Mapping[str, Any] | KeyResolver,
    *,
    max_age: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> str:
    """Verify the ``dpi`` HTTP message signature of a request; returns the signer's ``kid``.

    Checks, in this order (the first failure decides the reason code): the signature is present
    (``auth.signature_missing``), well formed with keyid, alg and created (``auth.signature_invalid``), its
    key is known (``auth.key_unknown``), alg matches the key, the required components are covered
    (``auth.signature_invalid``), created lies within ``max_age`` and not in the future
    (``auth.signature_expired``), Content-Digest is present (``auth.digest_mismatch``), the signature verifies
    (``auth.signature_invalid``), and the sha-256 Content-Digest matches ``body`` (``auth.digest_mismatch``).
    """
    moment = datetime.now(UTC) if now is None else _aware_utc(now, "now")
    fields: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        fields[lowered] = f"{fields[lowered]}, {value}" if lowered in fields else value
    if "signature" not in fields or "signature-input" not in fields:
        raise SignatureError("auth.signature_missing", "the request has no Signature and Signature-Input")
    inputs = _parse_dictionary(fields["signature-input"], "Signature-Input")
    signatures = _parse_dictionary(fields["signature"], "Signature")
    if HTTP_SIGNATURE_LABEL not in inputs or HTTP_SIGNATURE_LABEL not in signatures:
        raise SignatureError(
            "auth.signature_missing", f'the request has no signature labelled "{HTTP_SIGNATURE_LABEL}"'
        )
    members, params = inputs[HTTP_SIGNATURE_LABEL]
    keyid, alg, created = params.get("keyid"), params.get("alg"), params.get("created")
    if not isinstance(members, list) or not isinstance(keyid, str) or not isinstance(alg, str):
        raise SignatureError("auth.signature_invalid", "the signature input lacks keyid or alg")
    if type(created) is not int:
        raise SignatureError("auth.signature_invalid", "the signature input lacks an integer created")
    key = _resolve_key(jwks, keyid)
    if HTTP_SIGNATURE_ALGORITHMS[key.alg] != alg:
        raise SignatureError(
            "auth.signature_invalid", f"signature algorithm {alg!r} does not match key {keyid!r}"
        )
    covered = {component for component, _ in members}
    required = [*_REQUIRED_COMPONENTS, *(["content-type"] if "content-type" in fields else [])]
    uncovered = [component for component in required if component not in covered]
    if uncovered:
        raise SignatureError("auth.signature_invalid", f"the signature does not cover {', '.join(uncovered)}")

    created_at = datetime.fromtimestamp(created, UTC)
    if created_at > moment + _CLOCK_SKEW:
        raise SignatureError("auth.signature_expired", "the signature was created in the future")
    if created_at + max_age < moment:
        raise SignatureError("auth.signature_expired", f"the signature is older than {max_age}")
    expires = params.get("expires")
    if type(expires) is int and datetime.fromtimestamp(expires, UTC) < moment:
        raise SignatureError("auth.signature_expired", "the signature has expired")
    if "content-digest" not in fields:
        raise SignatureError("auth.digest_mismatch", "the request has no Content-Digest")

    # Only the dpi member is handed to the library: other labels are not ours to judge.
    only_ours = {
        name: value for name, value in headers.items() if name.lower() not in {"signature", "signature-input"}
    }
    only_ours["Signature-Input"] = http_sf.ser({HTTP_SIGNATURE_LABEL: inputs[HTTP_SIGNATURE_LABEL]})
    only_ours["Signature"] = http_sf.ser({HTTP_SIGNATURE_LABEL: signatures[HTTP_SIGNATURE_LABEL]})
    verifier = _ProfileVerifier(
        signature_algorithm=_HTTP_ALGORITHM_CLASSES[key.alg],
        key_resolver=_SingleKey(keyid, public_key=key.public_key),
    )
    try:
        verifier.verify(_Request(method=method.upper(), url=url, headers=only_ours), max_age=None)
    except (HTTPMessageSignaturesException, ValueError):
        raise SignatureError("auth.signature_invalid", "the HTTP message signature does not verify") from None

    digests = _parse_dictionary(fields["content-digest"], "Content-Digest", "auth.digest_mismatch")
    if "sha-256" not in digests:
        raise SignatureError("auth.digest_mismatch", "the Content-Digest has no sha-256 member")
    try:
        ContentDigest.verify(fields["content-digest"], body)
    except (InvalidSignature, HTTPMessageSignaturesException, binascii.Error):
        raise SignatureError("auth.digest_mismatch", "the Content-Digest does not match the body") from None
    return keyid
