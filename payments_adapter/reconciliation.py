"""Reconciliation of a batch: our instructions, the provider's status and its statement, three ways.

In the spirit of ISO 20022 cash-management reconciliation (camt.053/camt.054 statements matched to the
pain.001 instructions by ``EndToEndId``, https://www.iso20022.org/): every statement entry is matched to
an item by its idempotency key. The report lists what matched, what is missing from the statement, what
is on it but was never instructed, amount mismatches, keys debited more than once, reversals and
returns, and entries whose state disagrees with ours (confirmed by a status query when a provider is
given). Its sums, exact in minor units, must balance: what we recorded as paid equals what the
statement debited for those keys, less what it took back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_adapter.contract import PaymentProvider, ProviderError, StatementEntry, StatementEntryKind
from payments_adapter.models import ItemState, items
from payments_adapter.service import DisbursementService, money_from_minor

__all__ = ["ReconciliationReport", "reconcile"]

_PAID: Final = frozenset({ItemState.COMPLETED.value, ItemState.REVERSED.value, ItemState.RETURNED.value})
_TAKEN_BACK: Final = {
    StatementEntryKind.REVERSAL: ItemState.REVERSED.value,
    StatementEntryKind.RETURN: ItemState.RETURNED.value,
}


@dataclass
class ReconciliationReport:
    """A batch's reconciliation; amounts are per currency, in minor units internally and as decimal
    strings in :meth:`as_document`."""

    batch_id: str
    matched: int = 0
    missing_from_statement: list[str] = field(default_factory=list)
    not_instructed: list[str] = field(default_factory=list)
    amount_mismatches: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    reversals: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    state_mismatches: list[dict[str, str]] = field(default_factory=list)
    recorded_paid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Sum of items we hold as paid (completed, later reversed or returned included)."""
    statement_debits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Sum of the statement's debits for this batch's keys."""
    statement_taken_back: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recorded_taken_back: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def balanced(self) -> bool:
        """Every difference is explained by nothing: sums agree and no line is out of place."""
        return (
            dict(self.recorded_paid) == dict(self.statement_debits)
            and dict(self.recorded_taken_back) == dict(self.statement_taken_back)
            and not (
                self.missing_from_statement
                or self.not_instructed
                or self.amount_mismatches
                or self.duplicates
                or self.state_mismatches
            )
        )

    def as_document(self) -> dict[str, Any]:
        def sums(values: Mapping[str, int]) -> dict[str, str]:
            return {
                currency: money_from_minor(total, currency).wire()
                for currency, total in sorted(values.items())
            }

        return {
            "batch_id": self.batch_id,
            "balanced": self.balanced,
            "matched": self.matched,
            "missing_from_statement": self.missing_from_statement,
            "not_instructed": self.not_instructed,
            "amount_mismatches": self.amount_mismatches,
            "duplicates": self.duplicates,
            "reversals": self.reversals,
            "returns": self.returns,
            "state_mismatches": self.state_mismatches,
            "sums": {
                "recorded_paid": sums(self.recorded_paid),
                "statement_debits": sums(self.statement_debits),
                "recorded_taken_back": sums(self.recorded_taken_back),
                "statement_taken_back": sums(self.statement_taken_back),
            },
        }


async def reconcile(
    engine: AsyncEngine,
    batch_id: str,
    statement: Iterable[StatementEntry],
    provider: PaymentProvider | None = None,
) -> ReconciliationReport:
    """Match ``statement`` to the batch's items (and to the provider's status for disagreements)."""
    await DisbursementService(engine).batch(batch_id)
    report = ReconciliationReport(batch_id)
    async with engine.connect() as connection:
        rows = {
            row.idempotency_key: row
            for row in await connection.execute(
                select(items.c.idempotency_key, items.c.state, items.c.amount_minor, items.c.currency).where(
                    items.c.batch_id == batch_id
                )
            )
        }
    debits: dict[str, list[StatementEntry]] = defaultdict(list)
    taken_back: dict[str, list[StatementEntry]] = defaultdict(list)
    foreign: set[str] = set()
    for entry in statement:
        key = entry.idempotency_key
        if key is None or key not in rows:
            if key is not None:
                foreign.add(key)
            continue
        (debits if entry.kind is StatementEntryKind.DEBIT else taken_back)[key].append(entry)
    if foreign:
        # Keys of other batches are theirs to reconcile; only keys nobody instructed are reported.
        async with engine.connect() as connection:
            known = set(
                (
                    await connection.execute(
                        select(items.c.idempotency_key).where(items.c.idempotency_key.in_(sorted(foreign)))
                    )
                ).scalars()
            )
        report.not_instructed = sorted(foreign - known)
    for key, row in rows.items():
        if row.state in _PAID:
            report.recorded_paid[row.currency] += row.amount_minor
        if row.state in _TAKEN_BACK.values():
            report.recorded_taken_back[row.currency] += row.amount_minor
        entries = debits.get(key, [])
        for entry in entries:
            report.statement_debits[entry.amount.currency] += entry.amount.minor_units
        for entry in taken_back.get(key, []):
            report.statement_taken_back[entry.amount.currency] += entry.amount.minor_units
            (report.reversals if entry.kind is StatementEntryKind.REVERSAL else report.returns).append(key)
            if _TAKEN_BACK[entry.kind] != row.state:
                report.state_mismatches.append({"key": key, "ours": row.state, "statement": entry.kind.value})
        if len(entries) > 1:
            report.duplicates.append(key)
        if entries and any(
            e.amount.minor_units != row.amount_minor or e.amount.currency != row.currency for e in entries
        ):
            report.amount_mismatches.append(key)
        if row.state in _PAID and not entries:
            report.missing_from_statement.append(key)
        elif entries and row.state not in _PAID:
            report.state_mismatches.append({"key": key, "ours": row.state, "statement": "debit"})
        elif entries and len(entries) == 1 and key not in report.amount_mismatches:
            report.matched += 1
    if provider is not None and report.state_mismatches:
        for mismatch in report.state_mismatches:
            try:
                mismatch["provider"] = (await provider.status(mismatch["key"])).state.value
            except ProviderError as error:
                mismatch["provider"] = f"error:{error.reason_code}"
    report.reversals.sort()
    report.returns.sort()
    return report
