"""FSPIOP 1.1 error codes and what each means for a payment, as one table.

Mojaloop FSPIOP API 1.1, "Error Codes"
(https://github.com/mojaloop/mojaloop-specification/blob/master/fspiop-api/documents/v1.1-document-set/API-Definition_v1.1.md):
four digits, the first the high-level category (1 communication, 2 server, 3 client, 4 payer, 5 payee),
the second the low-level category. Each category combination has a generic ``x?00`` code; a receiver that
meets an unknown scheme-specific code (``xx40`` and above) reads it as that generic code.

:data:`FSPIOP_ERROR_CODES` maps each code the specification defines to a reason code of the ``payments``
vocabulary and to a :class:`Disposition`: whether the payment was refused (nothing was paid), whether its
outcome is unknown (only a status query can tell), or whether the call itself was refused.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

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


def _table(*rows: tuple[str, str, str, Disposition]) -> Mapping[str, FspiopErrorCode]:
    return {
        code: FspiopErrorCode(code, name, reason, disposition) for code, name, reason, disposition in rows
    }


_R, _U, _F, _N = Disposition.REJECTED, Disposition.UNKNOWN, Disposition.REFUSED, Disposition.NOT_FOUND

#: Every error code of FSPIOP 1.1 (tables 105 to 112), its name, our reason code and its disposition.
FSPIOP_ERROR_CODES: Final[Mapping[str, FspiopErrorCode]] = _table(
    ("1000", "Communication error", "payments.provider.unavailable", _U),
    ("1001", "Destination communication error", "payments.provider.unavailable", _U),
    ("2000", "Generic server error", "payments.provider.error", _U),
    ("2001", "Internal server error", "payments.provider.error", _U),
    ("2002", "Not implemented", "payments.operation.not_supported", _F),
    ("2003", "Service currently unavailable", "payments.provider.unavailable", _U),
    ("2004", "Server timed out", "payments.outcome.unknown", _U),
    ("2005", "Server busy", "payments.provider.unavailable", _U),
    ("3000", "Generic client error", "payments.provider.error", _R),
    ("3001", "Unacceptable version requested", "payments.provider.error", _F),
    ("3002", "Unknown URI", "payments.provider.error", _F),
    ("3003", "Add Party information error", "payments.provider.error", _R),
    ("3100", "Generic validation error", "payments.provider.error", _R),
    ("3101", "Malformed syntax", "payments.provider.error", _R),
    ("3102", "Missing mandatory element", "payments.provider.error", _R),
    ("3103", "Too many elements", "payments.provider.error", _R),
    ("3104", "Too large payload", "payments.provider.error", _R),
    ("3105", "Invalid signature", "payments.provider.error", _R),
    # The ID is taken by a request with other content: under our deterministic IDs that is an earlier
    # payment under the same idempotency key, which may have been paid. Never read it as "not paid".
    ("3106", "Modified request", "payments.request.duplicate", _F),
    ("3107", "Missing mandatory extension parameter", "payments.provider.error", _R),
    ("3200", "Generic ID not found", "payments.address.not_found", _R),
    ("3201", "Destination FSP Error", "payments.address.not_found", _R),
    ("3202", "Payer FSP ID not found", "payments.provider.error", _R),
    ("3203", "Payee FSP ID not found", "payments.address.not_found", _R),
    ("3204", "Party not found", "payments.address.not_found", _R),
    ("3205", "Quote ID not found", "payments.provider.error", _R),
    ("3206", "Transaction request ID not found", "payments.provider.error", _R),
    ("3207", "Transaction ID not found", "payments.provider.error", _R),
    ("3208", "Transfer ID not found", "payments.provider.error", _N),
    ("3209", "Bulk quote ID not found", "payments.provider.error", _R),
    ("3210", "Bulk transfer ID not found", "payments.provider.error", _R),
    ("3300", "Generic expired error", "payments.request.expired", _R),
    ("3301", "Transaction request expired", "payments.request.expired", _R),
    ("3302", "Quote expired", "payments.request.expired", _R),
    ("3303", "Transfer expired", "payments.request.expired", _R),
    ("4000", "Generic Payer error", "payments.provider.error", _R),
    ("4001", "Payer FSP insufficient liquidity", "payments.payer.insufficient_funds", _R),
    ("4100", "Generic Payer rejection", "payments.provider.error", _R),
    ("4101", "Payer rejected transaction request", "payments.provider.error", _R),
    ("4102", "Payer FSP unsupported transaction type", "payments.operation.not_supported", _R),
    ("4103", "Payer unsupported currency", "payments.currency.not_supported", _R),
    ("4200", "Payer limit error", "payments.payer.limit_exceeded", _R),
    ("4300", "Payer permission error", "payments.provider.error", _R),
    ("4400", "Generic Payer blocked error", "payments.account.blocked", _R),
    ("5000", "Generic Payee error", "payments.payee.rejected", _R),
    ("5001", "Payee FSP insufficient liquidity", "payments.payee.rejected", _R),
    ("5100", "Generic Payee rejection", "payments.payee.rejected", _R),
    ("5101", "Payee rejected quote", "payments.payee.rejected", _R),
    ("5102", "Payee FSP unsupported transaction type", "payments.operation.not_supported", _R),
    ("5103", "Payee FSP rejected quote", "payments.payee.rejected", _R),
    ("5104", "Payee rejected transaction", "payments.payee.rejected", _R),
    ("5105", "Payee FSP rejected transaction", "payments.payee.rejected", _R),
    ("5106", "Payee unsupported currency", "payments.currency.not_supported", _R),
    ("5200", "Payee limit error", "payments.payee.limit_exceeded", _R),
    ("5300", "Payee permission error", "payments.payee.rejected", _R),
    ("5400", "Generic Payee blocked error", "payments.account.blocked", _R),
)

_CODE_PATTERN: Final = re.compile(r"^[1-9][0-9]{3}$")
_INVALID: Final = FspiopErrorCode("", "Not an FSPIOP error code", "payments.provider.invalid_response", _F)


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
