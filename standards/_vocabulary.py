"""Vocabularies: reason codes, purposes and legal bases (W3C DPV, https://w3id.org/dpv), identifier types.

Each vocabulary is a data file in ``vocabularies/`` validated by its published schema when it is first read.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from standards._validation import validator

__all__ = [
    "PAYMENT_STANDARDS",
    "VOCABULARY_DIRECTORY",
    "ReasonCode",
    "identifier_types",
    "isco08_unit_groups",
    "iso20022_statuses",
    "legal_bases",
    "load_vocabulary",
    "payment_reasons",
    "payment_reasons_inbound",
    "purpose_codes",
    "reason_code",
    "reason_codes",
]

VOCABULARY_DIRECTORY = Path(__file__).parent / "vocabularies"

#: Vocabulary file name -> the member holding its entries.
_ENTRIES = {
    "reason-codes": "reason_codes",
    "purpose-codes": "purpose_codes",
    "legal-bases": "legal_bases",
    "identifier-types": "identifier_types",
    "isco-08": "unit_groups",
    "payment-reasons": "payment_reasons",
}


@cache
def load_vocabulary(name: str) -> Mapping[str, Any]:
    """The whole data file of a vocabulary, checked against the schema it names. Read once."""
    if name not in _ENTRIES:
        raise KeyError(f"no vocabulary named {name!r}")
    document = json.loads((VOCABULARY_DIRECTORY / f"{name}.json").read_text(encoding="utf-8"))
    validator(document["schema"]).check(document)
    return MappingProxyType(document)


def _entries(name: str) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = copy.deepcopy(load_vocabulary(name)[_ENTRIES[name]])
    return entries


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """A reason code of the vocabulary: the HTTP status that carries it and its message in en, fr and ar."""

    code: str
    http_status: int
    messages: Mapping[str, str]

    def message(self, lang: str = "en") -> str:
        """The message in ``lang`` (a BCP 47 tag; ``fr-SN`` falls back to ``fr``), else in English."""
        primary = lang.split("-", 1)[0].lower()
        return self.messages.get(lang) or self.messages.get(primary) or self.messages["en"]


@cache
def _reason_codes() -> Mapping[str, ReasonCode]:
    return MappingProxyType(
        {
            code: ReasonCode(code, entry["http_status"], MappingProxyType(dict(entry["messages"])))
            for code, entry in load_vocabulary("reason-codes")["reason_codes"].items()
        }
    )


def reason_codes() -> dict[str, ReasonCode]:
    """Every reason code, by code."""
    return dict(_reason_codes())


def reason_code(code: str) -> ReasonCode:
    """One reason code; raises KeyError for a code that is not in the vocabulary."""
    try:
        return _reason_codes()[code]
    except KeyError:
        raise KeyError(f"unknown reason code {code!r}") from None


def purpose_codes() -> dict[str, dict[str, Any]]:
    """Purpose codes: ``{code: {dpv_purpose, default_legal_basis, labels}}``."""
    return _entries("purpose-codes")


def legal_bases() -> dict[str, dict[str, Any]]:
    """Legal bases: ``{code: {dpv_legal_basis, requires_consent, gdpr_article, labels}}``."""
    return _entries("legal-bases")


def identifier_types() -> dict[str, dict[str, Any]]:
    """Identifier types: ``{type: {labels, value_pattern, personal, shareable, standard?}}``."""
    return _entries("identifier-types")


def isco08_unit_groups() -> dict[str, str]:
    """ISCO-08 unit groups: ``{code: English title}``
    (ILO, https://www.ilo.org/public/english/bureau/stat/isco/isco08/)."""
    return {code: entry["title"]["en"] for code, entry in load_vocabulary("isco-08")["unit_groups"].items()}


def payment_reasons() -> dict[str, dict[str, Any]]:
    """The payments block's reason codes mapped to G2P Connect disburse status reason codes, Mojaloop
    FSPIOP 1.1 error codes (https://docs.mojaloop.io/api/fspiop/v1.1/api-definition.html, section 7.6)
    and ISO 20022 external code sets (https://www.iso20022.org/, ExternalStatusReason1Code,
    ExternalReturnReason1Code); ``None`` where a standard has no matching code."""
    return _entries("payment-reasons")


#: The external standards the payment-reasons vocabulary maps, as its members name them.
PAYMENT_STANDARDS = ("g2p_connect", "mojaloop", "iso20022")


def payment_reasons_inbound(standard: str) -> dict[str, dict[str, Any]]:
    """What each code of ``standard`` (one of :data:`PAYMENT_STANDARDS`) means to the payments block:
    ``{their code: {"name", "reason_code"}}``, plus ``"disposition"`` (rejected, unknown, refused,
    not_found) for Mojaloop FSPIOP 1.1 error codes
    (https://docs.mojaloop.io/api/fspiop/v1.1/api-definition.html, section 7.6). G2P Connect codes are
    DisburseStatusReasonCode values (https://g2p-connect.github.io/specs/), ISO 20022 codes are
    ExternalStatusReason1Code and ExternalReturnReason1Code values
    (https://www.iso20022.org/catalogue-messages/additional-content-messages/external-code-sets)."""
    if standard not in PAYMENT_STANDARDS:
        raise KeyError(f"no payment standard named {standard!r}")
    entries: dict[str, dict[str, Any]] = copy.deepcopy(
        load_vocabulary("payment-reasons")["inbound"][standard]
    )
    return entries


def iso20022_statuses() -> dict[str, dict[str, str]]:
    """ISO 20022 ExternalPaymentTransactionStatus1Code and ExternalPaymentGroupStatus1Code values
    (https://www.iso20022.org/catalogue-messages/additional-content-messages/external-code-sets):
    ``{status code: {"name", "state"}}``, the state a pain.002 status reports (accepted, completed,
    rejected, cancelled)."""
    statuses: dict[str, dict[str, str]] = copy.deepcopy(
        load_vocabulary("payment-reasons")["iso20022_statuses"]
    )
    return statuses
