"""The suite as a registered G2P Connect disburse sender (G2P Connect disburse API 0.1.0,
https://github.com/G2P-Connect/specs): who it is, the key it signs with, the accounts it pays from and to,
and where it hears callbacks.

Envelopes are ``{signature, header, message}`` with the signature a detached JWS (RFC 7515 Appendix F,
https://www.rfc-editor.org/rfc/rfc7515) over the RFC 8785 canonical JSON of ``{header, message}``. The
provider's operator registers the suite's sender id with the public keys ``dpi conformance sender-jwks``
prints, the callback URL the suite listens on, and the payer account; the payee account must be payable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from dpi.keys import SigningKey
from dpi.signing import sign_detached

__all__ = ["G2P_VERSION", "PaymentsOptions", "g2p_time"]

G2P_VERSION: Final = "0.1.0"
_ADDRESS: Final = re.compile(r"^[A-Za-z0-9.\-_+]{1,64}@[A-Za-z0-9.\-]{1,64}$")
_AMOUNT: Final = re.compile(r"^[0-9]{1,13}\.[0-9]{1,2}$")


def g2p_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class PaymentsOptions:
    """What the ``payments-provider`` profile needs: the suite's registered ``sender_id`` and signing
    ``key``, the provider's ``receiver_id``, the ``payer_fa`` the suite pays from and a payable ``payee_fa``
    with the ``currency`` and ``amount`` of each test payment, the provider's G2P Connect ``base`` path
    and ``jwks_uri``, and where the suite listens for callbacks (``callback_host``/``callback_port``, the
    address the registered callback URL reaches)."""

    sender_id: str
    key: SigningKey = field(repr=False)
    receiver_id: str
    payer_fa: str
    payee_fa: str
    currency: str = "XOF"
    amount: str = "100.00"
    base: str = "/payments/g2p"
    jwks_uri: str = "/.well-known/jwks.json"
    callback_host: str = "127.0.0.1"
    callback_port: int = 8792

    def __post_init__(self) -> None:
        if not self.sender_id or not self.receiver_id:
            raise ValueError("the sender id and the provider's receiver id are both needed")
        for name in ("payer_fa", "payee_fa"):
            if not _ADDRESS.match(getattr(self, name)):
                raise ValueError(f"{name} must be a financial address account@provider")
        if not re.fullmatch(r"[A-Z]{3}", self.currency) or not _AMOUNT.match(self.amount):
            raise ValueError("the currency is an ISO 4217 code and the amount a decimal such as 100.00")
        if not 0 <= self.callback_port < 65536:
            raise ValueError("the callback port is 0 to 65535")

    def path(self, endpoint: str) -> str:
        return f"{self.base.rstrip('/')}/{endpoint}"

    def header(self, action: str, *, now: datetime | None = None, **members: Any) -> dict[str, Any]:
        """A fresh request header (new message id, our clock) for ``action``."""
        return {
            "version": G2P_VERSION,
            "message_id": str(uuid.uuid4()),
            "timestamp": g2p_time(now or datetime.now(UTC)),
            "action": action,
            "sender_id": self.sender_id,
            "receiver_id": self.receiver_id,
            **members,
        }

    def item(self, reference_id: str, **members: Any) -> dict[str, Any]:
        """A ``disburse_request`` item paying the configured amount to the payable payee."""
        return {
            "reference_id": reference_id,
            "payer_fa": self.payer_fa,
            "payee_fa": self.payee_fa,
            "amount": self.amount,
            "currency_code": self.currency,
            "note": "dpi conformance",
            **members,
        }

    def envelope(
        self, header: Mapping[str, Any], message: Mapping[str, Any], *, key: SigningKey | None = None
    ) -> dict[str, Any]:
        """``header`` and ``message`` signed with the suite's key (or ``key``, to test refusals)."""
        body: dict[str, Any] = {"header": dict(header), "message": dict(message)}
        return {"signature": sign_detached(body, key or self.key), **body}
