"""The payment-reasons vocabulary in both directions: what we send for each of our codes and what each
G2P Connect, FSPIOP 1.1 and ISO 20022 code means to us, and the adapters reading it."""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from typing import Any

import pytest

import standards
from payments_adapter.g2p.messages import g2p_reason, payments_reason
from payments_adapter.iso20022.reasons import iso_reason, iso_state
from payments_adapter.mojaloop.errors import FSPIOP_ERROR_CODES, fspiop_error
from standards import SchemaValidationError, validator
from standards._vocabulary import load_vocabulary

#: External codes that several of our codes send, what each reads back as, and why that is right.
#: Mapping out and back in gives the same code for every external code not listed here.
MANY_TO_ONE: dict[tuple[str, str], tuple[str, str]] = {
    ("g2p_connect", "RJCT_PAYEE_FA_INVALID"): (
        "payments.address.invalid",
        "G2P Connect has one code for a payee address that cannot be paid; not found and blocked are "
        "kinds of it and the answer does not say which.",
    ),
    ("g2p_connect", "RJCT_AMOUNT_INVALID"): (
        "payments.amount.invalid",
        "A wrong precision is an invalid amount; G2P Connect does not tell them apart.",
    ),
    ("g2p_connect", "RJCT_CURRENCY_CODE_INVALID"): (
        "payments.currency.not_supported",
        "G2P Connect has one currency code; a provider returning it refuses the currency.",
    ),
    ("mojaloop", "3100"): (
        "payments.provider.error",
        "Generic validation error: from the hub it names no field, so it cannot be read as one of the "
        "amount, currency or request problems we report with it.",
    ),
    ("mojaloop", "3101"): (
        "payments.provider.error",
        "Malformed syntax: from the hub it says the hub could not read a message, not which one.",
    ),
    ("mojaloop", "5000"): (
        "payments.payee.rejected",
        "Generic payee error: FSPIOP has no code for a blocked payee account or a name mismatch.",
    ),
    ("mojaloop", "3106"): (
        "payments.request.duplicate",
        "Modified request: a duplicate item is a duplicate request at the hub.",
    ),
    ("mojaloop", "2004"): (
        "payments.outcome.unknown",
        "Server timed out: after it only a status query tells whether the payment was made.",
    ),
    ("iso20022", "AM12"): ("payments.amount.invalid", "A wrong precision is an invalid amount."),
    ("iso20022", "AM03"): (
        "payments.currency.not_supported",
        "NotAllowedCurrency covers unknown, mismatched and unsupported currencies alike.",
    ),
    ("iso20022", "AC04"): (
        "payments.address.not_found",
        "A return for a closed account: the account is gone, the commonest reason for a returned item.",
    ),
    ("iso20022", "AM02"): (
        "payments.payer.limit_exceeded",
        "NotAllowedAmount does not say whose limit; the debtor's is the one a bank file checks.",
    ),
    ("iso20022", "MS03"): (
        "payments.provider.error",
        "NotSpecifiedReasonAgentGenerated: the agent gave no reason, so it is an error of the provider.",
    ),
    ("iso20022", "FF01"): (
        "payments.provider.error",
        "InvalidFileFormat: the bank could not read the file, which is not one payment's fault.",
    ),
    ("iso20022", "AM05"): (
        "payments.request.duplicate",
        "Duplication: a duplicate item is a duplicate request to the bank.",
    ),
}

_WELL_FORMED = {
    "g2p_connect": re.compile(r"^(RJCT|UKWN)(_[A-Z]+)+$"),
    "mojaloop": re.compile(r"^[1-5][0-9]{3}$"),
    "iso20022": re.compile(r"^[A-Z0-9]{4}$"),
}


def _senders(standard: str) -> dict[str, set[str]]:
    senders: dict[str, set[str]] = defaultdict(set)
    for ours, entry in standards.payment_reasons().items():
        if entry[standard] is not None:
            senders[entry[standard]].add(ours)
    return senders


@pytest.mark.parametrize("standard", standards.PAYMENT_STANDARDS)
def test_mapping_out_and_back_in_gives_the_same_code_unless_listed(standard: str) -> None:
    inbound = standards.payment_reasons_inbound(standard)
    senders = _senders(standard)
    shared = {code for code, ours in senders.items() if len(ours) > 1}
    assert shared == {code for listed, code in MANY_TO_ONE if listed == standard}
    for external, ours in senders.items():
        assert external in inbound, f"{standard} {external} is sent but never read"
        back = inbound[external]["reason_code"]
        if external in shared:
            assert back == MANY_TO_ONE[(standard, external)][0], external
        else:
            assert back == next(iter(ours)), external


@pytest.mark.parametrize("standard", standards.PAYMENT_STANDARDS)
def test_every_code_in_the_vocabulary_is_a_reason_code_and_every_external_code_well_formed(
    standard: str,
) -> None:
    codes = standards.reason_codes()
    inbound = standards.payment_reasons_inbound(standard)
    assert inbound
    for external, entry in inbound.items():
        assert _WELL_FORMED[standard].fullmatch(external), external
        assert entry["reason_code"] in codes, entry["reason_code"]
    for ours, outbound in standards.payment_reasons().items():
        assert ours in codes
        assert outbound[standard] is None or _WELL_FORMED[standard].fullmatch(outbound[standard])


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(dict(load_vocabulary("payment-reasons")))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


_ENTRY = {"name": "X", "reason_code": "payments.provider.error"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("inbound", "mojaloop", "6000"), {**_ENTRY, "disposition": "rejected"}),
        (("inbound", "mojaloop", "310"), {**_ENTRY, "disposition": "rejected"}),
        (("inbound", "mojaloop", "0100"), {**_ENTRY, "disposition": "rejected"}),
        (("inbound", "mojaloop", "3100"), _ENTRY),
        (("inbound", "mojaloop", "3100"), {**_ENTRY, "disposition": "maybe"}),
        (("inbound", "iso20022", "am04"), _ENTRY),
        (("inbound", "iso20022", "AM041"), _ENTRY),
        (("inbound", "g2p_connect", "rjct.amount.invalid"), _ENTRY),
        (("inbound", "g2p_connect", "AMOUNT_INVALID"), _ENTRY),
        (("inbound", "iso20022", "AM04"), {"name": "X", "reason_code": "provider.error"}),
        (("iso20022_statuses", "ACSC"), {"name": "X", "state": "paid"}),
        (("payment_reasons", "payments.amount.invalid", "mojaloop"), "31000"),
        (("schema",), "payment-reasons@1.0.0"),
    ],
)
def test_the_schema_refuses_a_malformed_code(path: tuple[str, ...], value: Any) -> None:
    with pytest.raises(SchemaValidationError):
        validator("payment-reasons@2.0.0").check(_with(path, value))


def test_the_adapters_read_the_vocabulary() -> None:
    mojaloop = standards.payment_reasons_inbound("mojaloop")
    assert {code: (e.name, e.reason_code, e.disposition.value) for code, e in FSPIOP_ERROR_CODES.items()} == {
        code: (e["name"], e["reason_code"], e["disposition"]) for code, e in mojaloop.items()
    }
    for code, entry in standards.payment_reasons_inbound("iso20022").items():
        assert iso_reason(code).reason_code == entry["reason_code"]
    for code, status in standards.iso20022_statuses().items():
        state = iso_state(code)
        assert state is not None
        assert state.value == status["state"]
    for code, entry in standards.payment_reasons_inbound("g2p_connect").items():
        assert payments_reason(code) == entry["reason_code"]
    for ours, outbound in standards.payment_reasons().items():
        if outbound["g2p_connect"] is not None:
            assert g2p_reason(ours) == outbound["g2p_connect"]
        if outbound["mojaloop"] is not None and (("mojaloop", outbound["mojaloop"]) not in MANY_TO_ONE):
            assert fspiop_error(outbound["mojaloop"]).reason_code == ours


def test_an_unknown_standard_is_refused() -> None:
    with pytest.raises(KeyError):
        standards.payment_reasons_inbound("swift_mt")
