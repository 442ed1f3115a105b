"""The person's consent to be paid at an address: the consent block's signed receipt, checked here.

A receipt is a compact JWS (RFC 7515, https://www.rfc-editor.org/rfc/rfc7515) of type
``dpi-consent-receipt+jws`` over a ``consent-receipt`` document (``standards/``), signed with the consent
block's key and verifiable by anyone holding its published JWK Set. The mapper accepts a link only with
a receipt that verifies against that key set, names the beneficiary as its subject, is for the purpose
``benefit-payment``, records an approval that left the consent ``ACTIVE``, and has not expired.

The key set comes from a :class:`ReceiptKeys`: in a deployment where both blocks share the kernel's key
store, :class:`KeyStoreReceiptKeys`; otherwise :class:`HttpReceiptKeys` reads the consent block's
``/consent/.well-known/jwks.json``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import httpx

import standards
from dpi.keys import KeyStore
from dpi.signing import SignatureError, verify_compact

__all__ = [
    "PAYMENT_PURPOSE",
    "RECEIPT_TYPE",
    "ConsentRefused",
    "HttpReceiptKeys",
    "KeyStoreReceiptKeys",
    "PaymentConsent",
    "ReceiptKeys",
    "StaticReceiptKeys",
    "check_receipt",
]

RECEIPT_TYPE: Final = "dpi-consent-receipt+jws"
PAYMENT_PURPOSE: Final = "benefit-payment"
_MAX_RECEIPT_LENGTH: Final = 16384
_MAX_JWKS_BYTES: Final = 65536


class ConsentRefused(Exception):
    """A link refused for its consent receipt; ``reason_code`` is a ``payments.mapper.consent.*`` code."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class PaymentConsent:
    """What the mapper keeps of a verified receipt, beside the receipt itself."""

    consent_id: str
    receipt_id: str
    channel: str


class ReceiptKeys(Protocol):
    """The consent block's published JWK Set."""

    async def jwks(self) -> Mapping[str, Any]: ...


class StaticReceiptKeys:
    """A JWK Set held in memory (configuration, tests)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._jwks = dict(jwks)

    async def jwks(self) -> Mapping[str, Any]:
        return self._jwks


class KeyStoreReceiptKeys:
    """The kernel key store's published keys: the consent block signs receipts with it when both blocks
    run in one deployment."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    async def jwks(self) -> Mapping[str, Any]:
        return self._keys.jwks()


class HttpReceiptKeys:
    """The consent block's JWK Set over HTTP, kept ``max_age_seconds``; redirects are not followed and
    the answer is size-limited."""

    def __init__(
        self, url: str, *, client: httpx.AsyncClient | None = None, max_age_seconds: int = 300
    ) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=10, follow_redirects=False)
        self._max_age_ns = max_age_seconds * 1_000_000_000
        # Integer nanoseconds: this block holds no floats.
        self._cached: tuple[int, dict[str, Any]] | None = None

    async def jwks(self) -> Mapping[str, Any]:
        now = time.monotonic_ns()
        if self._cached is not None and now - self._cached[0] < self._max_age_ns:
            return self._cached[1]
        try:
            response = await self._client.get(self._url, headers={"Accept": "application/json"})
            if response.status_code != 200 or len(response.content) > _MAX_JWKS_BYTES:
                raise ConsentRefused(
                    "payments.mapper.consent.unverifiable", "the consent keys are unavailable"
                )
            document = response.json()
        except (httpx.HTTPError, ValueError):
            raise ConsentRefused(
                "payments.mapper.consent.unverifiable", "the consent keys are unavailable"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ConsentRefused("payments.mapper.consent.unverifiable", "the consent keys are not a JWK Set")
        self._cached = (now, document)
        return document


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_receipt(
    token: str | None, jwks: Mapping[str, Any], *, beneficiary_id: str, now: datetime
) -> PaymentConsent:
    """The consent behind ``token`` if it lets ``beneficiary_id`` be paid, else :class:`ConsentRefused`.

    The checks run in a fixed order; the first that fails gives the reason: missing, signature and
    type (``invalid``), content against ``consent-receipt`` (``invalid``), subject (``other_person``),
    purpose (``wrong_purpose``), an approval leaving the consent active (``not_active``), validity
    (``expired``).
    """
    if token is None or not token.strip():
        raise ConsentRefused("payments.mapper.consent.missing", "a link needs the person's consent receipt")
    if len(token) > _MAX_RECEIPT_LENGTH:
        raise ConsentRefused("payments.mapper.consent.invalid", "the consent receipt is too long")
    try:
        header, payload = verify_compact(token.strip(), jwks)
    except SignatureError as error:
        raise ConsentRefused(
            "payments.mapper.consent.invalid", f"the consent receipt does not verify ({error.reason_code})"
        ) from None
    if header.get("typ") != RECEIPT_TYPE:
        raise ConsentRefused("payments.mapper.consent.invalid", "the token is not a consent receipt")
    if not standards.validator("consent-receipt").is_valid(payload):
        raise ConsentRefused("payments.mapper.consent.invalid", "the consent receipt's content is invalid")
    if payload["subject"] != beneficiary_id:
        raise ConsentRefused(
            "payments.mapper.consent.other_person", "the consent receipt is about another person"
        )
    if payload["purpose"] != PAYMENT_PURPOSE:
        raise ConsentRefused(
            "payments.mapper.consent.wrong_purpose",
            f"the consent receipt is for {payload['purpose']!r}, not {PAYMENT_PURPOSE!r}",
        )
    if payload["action"] != "approve" or payload["state"] != "ACTIVE":
        raise ConsentRefused(
            "payments.mapper.consent.not_active", "the consent receipt does not record an active approval"
        )
    valid_until = payload.get("valid_until")
    if valid_until is not None and _moment(valid_until) <= now:
        raise ConsentRefused("payments.mapper.consent.expired", "the consent has expired")
    return PaymentConsent(payload["consent_id"], payload["receipt_id"], payload["channel"])
