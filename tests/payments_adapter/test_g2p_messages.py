"""G2P Connect messages: idempotency keys derived from (sender, reference id), the mapping between our
payments reason codes and G2P Connect item codes, and the NACK body."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import standards
from payments_adapter.contract import FinancialAddress, Money, PaymentInstruction
from payments_adapter.g2p import messages

_IDS = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=99)


@given(sender=_IDS, reference=_IDS, other=_IDS)
def test_an_idempotency_key_is_a_valid_key_and_one_per_sender_and_reference(
    sender: str, reference: str, other: str
) -> None:
    key = messages.idempotency_key(sender, reference)
    instruction = PaymentInstruction(key, FinancialAddress.parse("1@w"), Money.parse("1.00", "EUR"))
    assert instruction.idempotency_key == key == messages.idempotency_key(sender, reference)
    if other != reference:
        assert messages.idempotency_key(sender, other) != key
        assert messages.idempotency_key(other, reference) != key or other == sender


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("payments.address.not_found", messages.PAYEE_FA_INVALID),
        ("payments.account.blocked", messages.PAYEE_FA_INVALID),
        ("payments.amount.precision", messages.AMOUNT_INVALID),
        ("payments.currency.not_supported", messages.CURRENCY_INVALID),
        ("payments.request.duplicate", messages.DUPLICATE),
        ("payments.payer.insufficient_funds", messages.PAYMENT_REJECTED),
        (None, messages.PAYMENT_REJECTED),
    ],
)
def test_our_reason_codes_travel_as_g2p_codes_and_come_back(ours: str | None, theirs: str) -> None:
    assert messages.g2p_reason(ours) == theirs
    if ours is not None:
        assert messages.payments_reason(theirs, f"{ours}: the provider's words") == ours


@pytest.mark.parametrize(
    ("theirs", "message", "ours"),
    [
        (messages.PAYEE_FA_INVALID, None, "payments.address.invalid"),
        (messages.CURRENCY_INVALID, "QQQ is no currency", "payments.currency.not_supported"),
        (messages.PAYMENT_REJECTED, "payments.: broken", "payments.payee.rejected"),
        ("RJCT_SOMETHING_ELSE", "PAYMENTS.X: shouting", "payments.payee.rejected"),
    ],
)
def test_foreign_item_codes_map_to_the_closest_reason(theirs: str, message: str | None, ours: str) -> None:
    assert messages.payments_reason(theirs, message) == ours


def test_every_reason_code_a_nack_can_carry_is_in_the_vocabulary() -> None:
    folder = Path(messages.__file__).parent
    used = {
        code
        for name in ("messages.py", "server.py")
        for code in re.findall(r'"((?:payments\.g2p|request|auth)\.[a-z_]+)"', (folder / name).read_text())
    }
    assert {"payments.g2p.sender_unknown", "auth.signature_missing", "request.invalid"} <= used
    assert sorted(used - set(standards.reason_codes())) == []


def test_a_nack_is_a_valid_acknowledgement_with_both_codes() -> None:
    error = messages.G2pError(
        "ERR_INVALID_SENDER", "payments.g2p.sender_unknown", "x" * 2000, http_status=401
    )
    body = messages.nack(error, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), transaction_id="t" * 500)
    assert standards.validator("g2p-disburse-ack@1.0.0").issues(body) == []
    assert body["error"]["code"] == "ERR_INVALID_SENDER"
    assert body["error"]["reason_code"] == "payments.g2p.sender_unknown"
    assert body["message"]["timestamp"] == "2026-01-02T03:04:05.000Z"
