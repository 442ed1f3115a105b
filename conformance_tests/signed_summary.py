"""The signed conformance summary: a compact JWS (RFC 7515, https://www.rfc-editor.org/rfc/rfc7515) whose
payload is the `conformance-summary@1.0.0` document of a run, with ``typ`` ``dpi-conformance+jws``.

The exchange verifies it when a member applies to join; ``dpi conformance verify`` does the same checks:
the signature against a JWKS, the header type, the payload against its schema, that no MUST requirement is
``accepted`` (a baseline may accept SHOULD and MAY failures only), and that the counts and the verdict agree
with the results they summarise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import standards
from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_compact, verify_compact

__all__ = [
    "SUMMARY_SCHEMA",
    "SUMMARY_TYP",
    "SummaryVerification",
    "load_jwks",
    "load_signing_key",
    "sign_summary",
    "verify_summary",
]

SUMMARY_SCHEMA = "conformance-summary@1.0.0"
SUMMARY_TYP = "dpi-conformance+jws"


def load_signing_key(path: Path) -> SigningKey:
    """The unencrypted PEM private key in ``path``; the algorithm follows the key type, the kid is its
    RFC 7638 thumbprint. Raises ``ValueError`` with a one-line reason."""
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read the signing key {path}: {error.strerror}") from None
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        alg = "EdDSA"
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        alg = "ES256"
    elif isinstance(private_key, rsa.RSAPrivateKey):
        alg = "PS256"
    else:
        raise ValueError(f"{path} holds a {type(private_key).__name__}; use Ed25519, P-256 or RSA")
    return SigningKey.from_pem(pem, None, alg)


def sign_summary(summary: Mapping[str, Any], key: SigningKey) -> str:
    """The compact JWS of ``summary``; raises ``SchemaValidationError`` if it is not a valid summary."""
    standards.validator(SUMMARY_SCHEMA).check(dict(summary))
    return sign_compact(dict(summary), key, typ=SUMMARY_TYP)


def load_jwks(source: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """A JWKS from a file path or an http(s) URL; raises ``ValueError`` with a one-line reason."""
    try:
        if source.startswith(("http://", "https://")):
            response = httpx.get(source, timeout=timeout, follow_redirects=True)
            response.raise_for_status()
            document = response.json()
        else:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, httpx.HTTPError, ValueError) as error:
        raise ValueError(f"cannot load the JWKS from {source}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source} is not a JWK Set (no keys array)")
    return document


@dataclass(frozen=True)
class SummaryVerification:
    """The outcome of :func:`verify_summary`: valid only when ``problems`` is empty."""

    problems: tuple[str, ...]
    header: Mapping[str, Any] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems


def verify_summary(token: str, jwks: Mapping[str, Any]) -> SummaryVerification:
    """Check a signed summary: signature, ``typ``, payload schema, no accepted MUST, and counts and verdict
    against results."""
    try:
        header, payload = verify_compact(token.strip(), dict(jwks))
    except SignatureError as error:
        return SummaryVerification((f"the signature does not verify ({error.reason_code}): {error}",))
    except ValueError as error:
        return SummaryVerification((f"not a compact JWS: {error}",))
    problems: list[str] = []
    if header.get("typ") != SUMMARY_TYP:
        problems.append(f"the JWS typ is {header.get('typ')!r}, not {SUMMARY_TYP!r}")
    issues = standards.validator(SUMMARY_SCHEMA).issues(payload)
    problems += [f"payload {issue.pointer or '(root)'}: {issue.message}" for issue in issues]
    if not issues:
        problems += _consistency_problems(payload)
    return SummaryVerification(tuple(problems), header, payload)


def _consistency_problems(payload: Mapping[str, Any]) -> list[str]:
    results = payload["results"]
    counts = {status: 0 for status in ("pass", "fail", "skip", "accepted")}
    for result in results:
        counts[result["status"]] += 1
    problems = [
        f"{result['requirement']} is a MUST requirement marked accepted; only SHOULD and MAY failures "
        "may be accepted"
        for result in results
        if result["level"] == "MUST" and result["status"] == "accepted"
    ]
    if {name: payload["counts"].get(name, 0) for name in counts} != counts:
        problems.append(f"the counts {payload['counts']} do not match the results {counts}")
    passing = all(r["status"] == "pass" for r in results if r["level"] == "MUST")
    if payload["verdict"] != ("pass" if passing else "fail"):
        problems.append(f"the verdict {payload['verdict']!r} does not follow from the results")
    return problems
