"""ISO 20022 external status and reason codes, mapped to the payments vocabulary as data.

The tables are the ISO 20022 part of the ``payment-reasons`` vocabulary of :mod:`standards` (from the
ISO 20022 External Code Sets,
https://www.iso20022.org/catalogue-messages/additional-content-messages/external-code-sets): a status
code of a pain.002 (``ACSC``, ``RJCT``...) becomes a :class:`~payments_adapter.contract.ProviderState`;
a status reason (pain.002) or return reason (camt.054) such as ``AC04`` or ``AM04`` becomes a
``payments.*`` reason code. A code missing from the table is kept in the message, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from payments_adapter.contract import ProviderState
from standards import iso20022_statuses, payment_reasons_inbound

__all__ = ["UNMAPPED_REASON", "IsoReason", "iso_reason", "iso_state", "mapped_reason_codes"]

UNMAPPED_REASON: Final = "payments.provider.error"
"""Our code for an ISO 20022 reason that the table does not name (or no reason at all)."""


@dataclass(frozen=True)
class IsoReason:
    """One ISO 20022 reason as this block reports it: our ``reason_code`` and the ISO code and name."""

    iso_code: str
    reason_code: str
    name: str


@cache
def _table() -> tuple[dict[str, ProviderState], dict[str, IsoReason]]:
    states = {code: ProviderState(entry["state"]) for code, entry in iso20022_statuses().items()}
    reasons = {
        code: IsoReason(code, entry["reason_code"], entry["name"])
        for code, entry in payment_reasons_inbound("iso20022").items()
    }
    return states, reasons


def iso_state(status_code: str) -> ProviderState | None:
    """The state a pain.002 status code reports, or ``None`` for a code the table does not hold."""
    return _table()[0].get(status_code)


def iso_reason(code: str | None) -> IsoReason:
    """Our reason for an ISO 20022 status or return reason code (``None``: the report gave none)."""
    if code is None:
        return IsoReason("", UNMAPPED_REASON, "no reason given")
    return _table()[1].get(code, IsoReason(code, UNMAPPED_REASON, "not in the table"))


def mapped_reason_codes() -> frozenset[str]:
    """Every ``payments.*`` code the table can produce (each must exist in the reason-code vocabulary)."""
    return frozenset({UNMAPPED_REASON} | {reason.reason_code for reason in _table()[1].values()})
