"""FSPIOP 1.1 error codes and what each means for a payment, as one table.

Mojaloop FSPIOP API 1.1, "Error Codes"
(https://github.com/mojaloop/mojaloop-specification/blob/master/fspiop-api/documents/v1.1-document-set/API-Definition_v1.1.md):
four digits, the first the high-level category (1 communication, 2 server, 3 client, 4 payer, 5 payee),
the second the low-level category. Each category combination has a generic ``x?00`` code; a receiver that
meets an unknown scheme-specific code (``xx40`` and above) reads it as that generic code.

:data:`FSPIOP_ERROR_CODES` (read from the ``payment-reasons`` vocabulary of :mod:`standards`) maps each
code the specification defines to a reason code of the ``payments``
vocabulary and to a :class:`Disposition`: whether the payment was refused (nothing was paid), whether its
outcome is unknown (only a status query can tell), or whether the call itself was refused.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from standards import payment_reasons_inbound

__all__ = [
    "FSPIOP_ERROR_CODES",
    "Disposition",
    "FspiopErrorCode",
    "fspiop_error",
]


class Disposition(enum.StrEnum):
    """What an FSPIOP error says about the payment it answers."""

    REJECTED = "rejected"
    """The payment (or lookup, or quote) was refused; nothing was paid."""
    UNKNOWN = "unknown"
    """A communication or server failure on the way: a transfer may or may not have been committed."""
    REFUSED = "refused"
    """The call was refused as a whole (unsupported version or service, a conflicting earlier request)."""
    NOT_FOUND = "not_found"
    """The object named does not exist at the hub."""


@dataclass(frozen=True)
class FspiopErrorCode:
    """One FSPIOP error code, its name in the specification, and what it means here."""

    code: str
    name: str
    reason_code: str
    disposition: Disposition


def _table() -> Mapping[str, FspiopErrorCode]:
    return MappingProxyType(
        {
            code: FspiopErrorCode(
                code, entry["name"], entry["reason_code"], Disposition(entry["disposition"])
            )
            for code, entry in payment_reasons_inbound("mojaloop").items()
        }
    )


#: Every error code of FSPIOP 1.1 (tables 105 to 112), its name, our reason code and its disposition: a
#: read-only view of the Mojaloop inbound table of the ``payment-reasons`` vocabulary of :mod:`standards`.
#: Code 3106 (modified request) is refused, not rejected: under our deterministic IDs it is an earlier
#: payment under the same idempotency key, which may have been paid, so it never reads as "not paid".
FSPIOP_ERROR_CODES: Final[Mapping[str, FspiopErrorCode]] = _table()
_CODE_PATTERN: Final = re.compile(r"^[1-9][0-9]{3}$")
_INVALID: Final = FspiopErrorCode(
    "", "Not an FSPIOP error code", "payments.provider.invalid_response", Disposition.REFUSED
)


def fspiop_error(code: str) -> FspiopErrorCode:
    """The table entry for ``code``; an unknown code reads as its category's generic code, as the
    specification says.

    A code outside the five categories, or not four digits, is an invalid response.
    """
    if not isinstance(code, str) or not _CODE_PATTERN.fullmatch(code):
        return _INVALID
    known = FSPIOP_ERROR_CODES.get(code)
    if known is not None:
        return known
    for generic in (code[:2] + "00", code[0] + "000"):
        entry = FSPIOP_ERROR_CODES.get(generic)
        if entry is not None:
            return FspiopErrorCode(code, entry.name, entry.reason_code, entry.disposition)
    return FspiopErrorCode(code, _INVALID.name, _INVALID.reason_code, _INVALID.disposition)
