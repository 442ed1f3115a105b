"""The disbursement engine: uploads, pre-flight, exactly-once delivery, retries, single-flight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_adapter.contract import (
    Capabilities,
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    ProviderStatus,
)
from payments_adapter.engine import Disburser, RetryPolicy
from payments_adapter.keys import idempotency_key
from payments_adapter.models import ItemState, items, transitions
from payments_adapter.reconciliation import reconcile
from payments_adapter.sandbox import STATEMENT_FORMAT, SandboxProvider, create_provider
from payments_adapter.service import DisbursementError, DisbursementService, move, parse_batch_file

_FAST = RetryPolicy(max_attempts=3, base=timedelta(milliseconds=1), cap=timedelta(milliseconds=5))
_HEADER = "beneficiary_id,financial_address,amount,currency,entitlement,payee_name\n"


@pytest.fixture
async def service(engine: AsyncEngine) -> DisbursementService:
    service = DisbursementService(engine)
    await service.create_programme("youth-stipend", "Youth employment stipend")
    await service.create_cycle("youth-stipend", "2026-11", datetime(2026, 11, 1, tzinfo=UTC))
    return service


def _csv(rows: Sequence[str]) -> bytes:
    return (_HEADER + "\n".join(rows) + "\n").encode()


async def _upload(service: DisbursementService, rows: Sequence[str]) -> str:
    lines, problems = parse_batch_file(_csv(rows), "csv")
    receipt = await service.create_batch(
        "youth-stipend", "2026-11", "wallet1", lines, actor="op", problems=problems
    )
    assert receipt.batch_id is not None
    return receipt.batch_id


async def _states(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(items.c.state, func.count()).group_by(items.c.state))
        return {state: int(count) for state, count in rows}


@given(st.lists(st.text(min_size=1, max_size=20), min_size=4, max_size=4))
def test_keys_are_deterministic_and_fit_an_end_to_end_id(fields: list[str]) -> None:
    key = idempotency_key(*fields)
    assert key == idempotency_key(*fields)
    PaymentInstruction(key, FinancialAddress.parse("1@w"), Money.parse("1", "XOF"))
    assert key != idempotency_key(fields[0], fields[1], fields[2], fields[3] + "x")


@pytest.mark.parametrize(
    ("row", "reason_code"),
    [
        ("B1,07001@wallet1,1.5,XOF,m1,", "payments.amount.precision"),
        ("B1,07001@wallet1,-3,XOF,m1,", "payments.amount.invalid"),
        ("B1,07001@wallet1,1e3,XOF,m1,", "payments.amount.invalid"),
        ("B1,07001@wallet1,0,XOF,m1,", "payments.amount.invalid"),
        ("B1,07001@wallet1,100,XXY,m1,", "payments.currency.unknown"),
        ("B1,not-an-address,100,XOF,m1,", "payments.address.invalid"),
        (",07001@wallet1,100,XOF,m1,", "payments.line.invalid"),
        ("B1,07001@wallet1,100,XOF,,", "payments.line.invalid"),
    ],
)
def test_bad_lines_are_reported_by_line_and_good_ones_stand(row: str, reason_code: str) -> None:
    lines, problems = parse_batch_file(_csv(["B0,07000@wallet1,100,XOF,m1,", row]), "csv")
    assert [line.beneficiary_id for line in lines] == ["B0"]
    assert [(p.line, p.reason_code) for p in problems] == [(2, reason_code)]


@pytest.mark.parametrize(
    ("content", "file_format"),
    [(b"\xff\xfe", "csv"), (b"a,b\n1,2\n", "csv"), (b"{", "json"), (b'{"items": 3}', "json"), (b"", "xml")],
)
def test_an_unreadable_file_is_refused_whole(content: bytes, file_format: str) -> None:
    with pytest.raises(DisbursementError) as refused:
        parse_batch_file(content, file_format)
    assert refused.value.reason_code == "payments.batch.unreadable"


async def test_the_same_entitlement_is_never_stored_twice(
    service: DisbursementService, engine: AsyncEngine
) -> None:
    await _upload(service, ["B1,0701@wallet1,100,XOF,m1,", "B1,0701@wallet1,100,XOF,m1,"])
    lines, _ = parse_batch_file(_csv(["B1,0701@wallet1,100,XOF,m1,", "B2,0702@wallet1,100,XOF,m1,"]), "csv")
    receipt = await service.create_batch("youth-stipend", "2026-11", "wallet1", lines, actor="op")
    assert receipt.accepted == 1
    assert [(p.line, p.reason_code) for p in receipt.problems] == [(1, "payments.item.duplicate")]
    assert await _states(engine) == {"pending": 2}


class _Accounts:
    async def financial_addresses(
        self, beneficiary_ids: Sequence[str], *, as_of: datetime
    ) -> Mapping[str, FinancialAddress]:
        assert as_of == datetime(2026, 11, 1, tzinfo=UTC)
        return {b: FinancialAddress.parse(f"07{b[1:]}@wallet1") for b in beneficiary_ids if b != "B9"}


async def test_preflight_reports_every_refusal_before_money_moves(
    service: DisbursementService, engine: AsyncEngine, ledger_url: str
) -> None:
    sandbox = create_provider("wallet1", {"database_url": ledger_url})
    try:
        await sandbox.open_account(FinancialAddress.parse("0701@wallet1"), "Amina Diallo")
        batch_id = await _upload(
            service,
            [
                "B1,0701@wallet1,100,XOF,m1,Diallo Amina",
                "B2,0701@wallet1,100,XOF,m2,Youssef Benali",
                "B3,0001@wallet1,100,XOF,m1,",
                "B4,,100,XOF,m1,",
                "B9,,100,XOF,m1,",
            ],
        )
        report = await service.preflight(batch_id, sandbox, _Accounts())
        assert (report.ready, report.invalid) == (2, 3)
        assert [(p.line, p.reason_code) for p in report.problems] == [
            (2, "payments.payee.name_mismatch"),
            (3, "payments.address.not_found"),
            (5, "payments.address.not_found"),
        ]
        assert await sandbox.ledger_summary() == {"resubmissions": 0}
        item = await service.item(idempotency_key("youth-stipend", "2026-11", "B4", "m1"))
        assert item["financial_address"] == "074@wallet1"
        assert [(h["from_state"], h["to_state"]) for h in item["history"]] == [("pending", "ready")]
    finally:
        await sandbox.aclose()


async def test_lost_answers_are_settled_by_status_never_resent(
    service: DisbursementService, engine: AsyncEngine, ledger_url: str
) -> None:
    sandbox = create_provider(
        "wallet1",
        {"database_url": ledger_url, "lost_response_rate": "0.3", "lost_bulk_rate": "0.2", "max_bulk": "7"},
    )
    try:
        batch_id = await _upload(service, [f"B{n},07{n:04d}@wallet1,{100 + n},XOF,m1," for n in range(60)])
        await service.preflight(batch_id, sandbox)
        await Disburser(engine, sandbox, retry=_FAST, chunk_size=20, seed=1).run(batch_id)
        assert await _states(engine) == {"completed": 60}
        assert await sandbox.ledger_summary() == {"completed": 60, "resubmissions": 0}
        async with engine.connect() as connection:
            unknown = await connection.scalar(
                select(func.count()).where(transitions.c.to_state == ItemState.UNKNOWN.value)
            )
        assert unknown
        status = await service.status(batch_id)
        assert status.sums["XOF"]["completed"].amount == sum(100 + n for n in range(60))
    finally:
        await sandbox.aclose()


async def test_retryable_failures_back_off_then_fail_with_a_final_reason(
    service: DisbursementService, engine: AsyncEngine, ledger_url: str
) -> None:
    sandbox = create_provider("wallet1", {"database_url": ledger_url, "failure_rate": "1"})
    try:
        batch_id = await _upload(service, ["B1,0701@wallet1,100,XOF,m1,"])
        await service.preflight(batch_id, sandbox)
        await Disburser(engine, sandbox, retry=_FAST).run(batch_id)
        item = await service.item(idempotency_key("youth-stipend", "2026-11", "B1", "m1"))
        assert (item["state"], item["reason_code"], item["attempts"]) == (
            "failed",
            "payments.attempts.exhausted",
            3,
        )
        assert [h["to_state"] for h in item["history"]].count("submitting") == 3
    finally:
        await sandbox.aclose()


class _SingleFlight(SandboxProvider):
    """A provider that cannot be asked what happened: the engine must not guess."""

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(idempotency=False, status_query=False)

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        if instruction.payee.account.endswith("3"):
            await super().submit(instruction)
            raise OutcomeUnknownError("timed out")
        return await super().submit(instruction)


async def test_single_flight_providers_send_manual_review_on_unknown(
    service: DisbursementService, engine: AsyncEngine, ledger_url: str
) -> None:
    provider = _SingleFlight("wallet1", create_provider("wallet1", {"database_url": ledger_url}).settings)
    try:
        batch_id = await _upload(service, [f"B{n},070{n}@wallet1,100,XOF,m1," for n in range(5)])
        await service.preflight(batch_id, provider)
        await Disburser(engine, provider, retry=_FAST).run(batch_id)
        assert await _states(engine) == {"completed": 4, "manual_review": 1}
        assert await provider.ledger_summary() == {"completed": 5, "resubmissions": 0}
    finally:
        await provider.aclose()


async def test_moves_outside_the_transition_table_are_refused(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        with pytest.raises(ValueError, match="cannot move"):
            await move(
                connection,
                [1],
                ItemState.COMPLETED,
                ItemState.READY,
                reason_code=None,
                actor="t",
                at=datetime.now(UTC),
                batch_id="b",
            )


async def test_unknown_cycle_is_refused(service: DisbursementService) -> None:
    with pytest.raises(DisbursementError) as refused:
        await service.create_batch("youth-stipend", "2099-01", "wallet1", [], actor="op")
    assert refused.value.reason_code == "payments.cycle.not_found"


async def test_manual_review_is_settled_from_the_provider_and_a_reversal_reconciles(
    service: DisbursementService, engine: AsyncEngine, ledger_url: str
) -> None:
    blind = _SingleFlight("wallet1", create_provider("wallet1", {"database_url": ledger_url}).settings)
    sandbox = create_provider("wallet1", {"database_url": ledger_url})
    try:
        batch_id = await _upload(service, [f"B{n},070{n}@wallet1,100,XOF,m1," for n in range(4)])
        await service.preflight(batch_id, blind)
        await Disburser(engine, blind, retry=_FAST).run(batch_id)
        key = idempotency_key("youth-stipend", "2026-11", "B3", "m1")
        assert (await service.item(key))["state"] == "manual_review"
        with pytest.raises(DisbursementError):
            await service.settle_review(blind, key, actor="supervisor")
        assert await service.settle_review(sandbox, key, actor="supervisor") is ItemState.COMPLETED

        paid = idempotency_key("youth-stipend", "2026-11", "B0", "m1")
        assert await service.reverse(sandbox, paid, "paid in error", actor="supervisor") is ItemState.REVERSED
        with pytest.raises(DisbursementError) as refused:
            await service.reverse(sandbox, paid, "again", actor="supervisor")
        assert refused.value.reason_code == "payments.item.invalid_state"
        report = await reconcile(
            engine, batch_id, sandbox.parse_statement(await sandbox.statement(), STATEMENT_FORMAT), sandbox
        )
        assert report.balanced, report.as_document()
        assert report.reversals == [paid]
        assert report.as_document()["sums"]["statement_taken_back"] == {"XOF": "100"}
    finally:
        await blind.aclose()
        await sandbox.aclose()
