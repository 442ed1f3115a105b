"""Signed consent receipts: a JWS (RFC 7515) over the canonical JSON (RFC 8785) of a
``consent-receipt`` document, issued for every approval, withdrawal and revocation.

Anyone holding the block's published JWKS can verify a receipt offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import standards
from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_compact, verify_compact

__all__ = ["RECEIPT_TYPE", "ReceiptInvalid", "sign_receipt", "verify_receipt"]

RECEIPT_TYPE: Final = "dpi-consent-receipt+jws"


class ReceiptInvalid(Exception):
    """A receipt whose signature, type or content does not hold; ``reason_code`` says which."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


def sign_receipt(receipt: Mapping[str, Any], key: SigningKey) -> str:
    """Sign a receipt document; it must be valid against ``consent-receipt`` first."""
    standards.validator("consent-receipt").check(dict(receipt))
    return sign_compact(dict(receipt), key, typ=RECEIPT_TYPE)


def verify_receipt(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt inside ``token`` once its signature, type and schema are checked."""
    try:
        header, payload = verify_compact(token.strip(), jwks)
    except SignatureError as error:
        raise ReceiptInvalid(error.reason_code, error.message) from None
    if header.get("typ") != RECEIPT_TYPE:
        raise ReceiptInvalid("receipt.invalid", f"not a consent receipt (typ {header.get('typ')!r})")
    issues = standards.validator("consent-receipt").issues(payload)
    if issues:
        first = issues[0]
        raise ReceiptInvalid(
            "receipt.invalid", f"receipt content invalid at {first.pointer or '/'}: {first.message}"
        )
    return payload
