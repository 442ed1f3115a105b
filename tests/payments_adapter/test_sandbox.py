"""The sandbox provider: idempotency, status, rules, injected faults, cancel/reverse/return, statement."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments_adapter.contract import (
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    ProviderError,
    ProviderState,
    StatementEntryKind,
)
from payments_adapter.sandbox import STATEMENT_FORMAT, SandboxConfigError, SandboxProvider, create_provider


def _instruction(key: str, account: str = "0700000001", amount: str = "1500") -> PaymentInstruction:
    return PaymentInstruction(key, FinancialAddress.parse(f"{account}@wallet1"), Money.parse(amount, "XOF"))


@pytest.fixture
async def sandbox(ledger_url: str) -> SandboxProvider:
    provider = create_provider("wallet1", {"database_url": ledger_url})
    yield provider  # type: ignore[misc]
    await provider.aclose()


async def test_a_key_is_paid_once_however_often_it_is_submitted(sandbox: SandboxProvider) -> None:
    first = await sandbox.submit(_instruction("KEY-00000001"))
    again = await sandbox.submit(_instruction("KEY-00000001"))
    assert first.state is again.state is ProviderState.COMPLETED
    assert first.provider_reference == again.provider_reference
    assert await sandbox.ledger_summary() == {"completed": 1, "resubmissions": 1}
    entries = sandbox.parse_statement(await sandbox.statement(), STATEMENT_FORMAT)
    assert [(e.idempotency_key, e.kind, e.amount) for e in entries] == [
        ("KEY-00000001", StatementEntryKind.DEBIT, Money(Decimal(1500), "XOF"))
    ]


async def test_the_same_key_with_other_content_is_a_duplicate_request(sandbox: SandboxProvider) -> None:
    await sandbox.submit(_instruction("KEY-00000002"))
    with pytest.raises(ProviderError) as refused:
        await sandbox.submit(_instruction("KEY-00000002", amount="1600"))
    assert refused.value.reason_code == "payments.request.duplicate"
    assert (await sandbox.status("KEY-00000002")).state is ProviderState.COMPLETED


async def test_status_of_a_key_never_booked_is_not_found(sandbox: SandboxProvider) -> None:
    assert (await sandbox.status("NEVER-SENT-01")).state is ProviderState.NOT_FOUND


@pytest.mark.parametrize(
    ("account", "reason_code"),
    [("0001234567", "payments.address.not_found"), ("9991234567", "payments.account.blocked")],
)
async def test_rules_reject_missing_and_blocked_accounts(
    sandbox: SandboxProvider, account: str, reason_code: str
) -> None:
    answer = await sandbox.submit(_instruction("KEY-REJECT-1", account))
    assert (answer.state, answer.reason_code) == (ProviderState.REJECTED, reason_code)
    resolution = await sandbox.resolve(FinancialAddress.parse(f"{account}@wallet1"))
    assert (resolution.resolved, resolution.reason_code) == (False, reason_code)
    assert await sandbox.statement() == b""


async def test_a_lost_response_books_the_payment_then_raises(ledger_url: str) -> None:
    lossy = create_provider("wallet1", {"database_url": ledger_url, "lost_response_rate": "1"})
    try:
        with pytest.raises(OutcomeUnknownError):
            await lossy.submit(_instruction("KEY-LOST-001"))
        assert (await lossy.status("KEY-LOST-001")).state is ProviderState.COMPLETED
    finally:
        await lossy.aclose()


async def test_the_ledger_survives_the_provider_object(ledger_url: str) -> None:
    first = create_provider("wallet1", {"database_url": ledger_url})
    await first.submit_many([_instruction(f"KEY-BULK-{n:03d}") for n in range(5)])
    await first.aclose()
    second = create_provider("wallet1", {"database_url": ledger_url})
    try:
        assert (await second.status("KEY-BULK-004")).state is ProviderState.COMPLETED
    finally:
        await second.aclose()


async def test_cancel_reverse_and_return(ledger_url: str) -> None:
    deferred = create_provider("wallet1", {"database_url": ledger_url, "settlement": "deferred"})
    try:
        answers = await deferred.submit_many([_instruction(f"KEY-LIFE-{n:03d}") for n in range(3)])
        assert {a.state for a in answers if not isinstance(a, ProviderError)} == {ProviderState.ACCEPTED}
        assert (await deferred.cancel("KEY-LIFE-000")).state is ProviderState.CANCELLED
        assert await deferred.settle_accepted() == 2
        assert (await deferred.reverse("KEY-LIFE-001", "paid in error")).state is ProviderState.REVERSED
        assert (await deferred.return_payment("KEY-LIFE-002")).state is ProviderState.RETURNED
        with pytest.raises(ProviderError) as refused:
            await deferred.reverse("KEY-LIFE-000", "cancelled already")
        assert refused.value.reason_code == "payments.item.invalid_state"
        kinds = [e.kind for e in deferred.parse_statement(await deferred.statement(), STATEMENT_FORMAT)]
        assert sorted(kinds) == sorted(
            [StatementEntryKind.DEBIT] * 2 + [StatementEntryKind.REVERSAL, StatementEntryKind.RETURN]
        )
    finally:
        await deferred.aclose()


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"database_url": "sqlite+aiosqlite:///x", "failure_rate": "1.5"},
        {"database_url": "sqlite+aiosqlite:///x", "failure_rate": "abc"},
        {"database_url": "sqlite+aiosqlite:///x", "max_bulk": "0"},
        {"database_url": "sqlite+aiosqlite:///x", "missing_accounts": "("},
        {"database_url": "sqlite+aiosqlite:///x", "settlement": "later"},
        {"database_url": "sqlite+aiosqlite:///x", "colour": "blue"},
    ],
)
def test_bad_configuration_is_refused_clearly(config: dict[str, str]) -> None:
    with pytest.raises(SandboxConfigError):
        create_provider("wallet1", config)


@pytest.mark.parametrize(
    "line",
    [
        b'{"key":"K","kind":"debit","amount":"1.5","currency":"XOF","booked_at":"2026-11-23T00:00:00+00:00"}',
        b"{",
        b"[]",
    ],
)
def test_a_malformed_statement_line_is_an_invalid_response(line: bytes) -> None:
    provider = create_provider("wallet1", {"database_url": "sqlite+aiosqlite:///unused.sqlite3"})
    with pytest.raises(ProviderError) as refused:
        provider.parse_statement(line, STATEMENT_FORMAT)
    assert refused.value.reason_code == "payments.provider.invalid_response"
