"""Reconciliation: every kind of discrepancy is found, and sums balance to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_adapter.contract import Money, StatementEntry, StatementEntryKind
from payments_adapter.keys import idempotency_key
from payments_adapter.models import ItemState, items
from payments_adapter.reconciliation import reconcile
from payments_adapter.service import BatchLine, DisbursementService, money_from_minor

_AT = datetime(2026, 11, 20, tzinfo=UTC)


def _key(beneficiary: str) -> str:
    return idempotency_key("youth-stipend", "2026-11", beneficiary, "stipend")


def _entry(
    beneficiary: str, amount: str, kind: StatementEntryKind = StatementEntryKind.DEBIT
) -> StatementEntry:
    return StatementEntry(_key(beneficiary), Money.parse(amount, "XOF"), kind, _AT)


async def _paid_batch(engine: AsyncEngine, count: int) -> str:
    service = DisbursementService(engine)
    await service.create_programme("youth-stipend", "Youth employment stipend")
    await service.create_cycle("youth-stipend", "2026-11", datetime(2026, 11, 1, tzinfo=UTC))
    receipt = await service.create_batch(
        "youth-stipend",
        "2026-11",
        "wallet1",
        [BatchLine(n + 1, f"B{n}", "stipend", Money.parse(str(1000 + n), "XOF")) for n in range(count)],
        actor="test",
    )
    assert receipt.batch_id is not None
    async with engine.begin() as connection:
        await connection.execute(update(items).values(state=ItemState.COMPLETED.value))
    return receipt.batch_id


async def test_a_clean_statement_balances(engine: AsyncEngine) -> None:
    batch_id = await _paid_batch(engine, 3)
    report = await reconcile(engine, batch_id, [_entry(f"B{n}", str(1000 + n)) for n in range(3)])
    assert report.balanced
    assert report.matched == 3
    assert report.as_document()["sums"]["recorded_paid"] == {"XOF": "3003"}


async def test_every_discrepancy_is_reported(engine: AsyncEngine) -> None:
    batch_id = await _paid_batch(engine, 5)
    statement = [
        _entry("B0", "1000"),
        _entry("B1", "1001"),
        _entry("B1", "1001"),  # debited twice
        _entry("B2", "9999"),  # wrong amount
        # B3 missing from the statement
        _entry("B4", "1004"),
        _entry("B4", "1004", StatementEntryKind.RETURN),  # returned, but we still think it completed
        StatementEntry("NOBODY-INSTRUCTED-THIS", Money.parse("50", "XOF"), StatementEntryKind.DEBIT, _AT),
    ]
    report = await reconcile(engine, batch_id, statement)
    assert not report.balanced
    assert report.duplicates == [_key("B1")]
    assert report.amount_mismatches == [_key("B2")]
    assert report.missing_from_statement == [_key("B3")]
    assert report.returns == [_key("B4")]
    assert report.state_mismatches == [{"key": _key("B4"), "ours": "completed", "statement": "return"}]
    assert report.not_instructed == ["NOBODY-INSTRUCTED-THIS"]
    assert report.matched == 2


@pytest.mark.parametrize("minor", [0, 1, 99, 100, 123_456_789])
def test_minor_units_round_trip(minor: int) -> None:
    assert money_from_minor(minor, "USD").minor_units == minor
    assert money_from_minor(minor, "XOF").amount == Decimal(minor)


@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=50))
def test_sums_in_minor_units_are_exact(amounts: list[int]) -> None:
    total = money_from_minor(0, "USD")
    for amount in amounts:
        total = total + money_from_minor(amount, "USD")
    assert total.minor_units == sum(amounts)
    assert total.wire() == f"{Decimal(sum(amounts)).scaleb(-2):f}"
