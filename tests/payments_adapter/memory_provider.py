"""An in-memory payment provider for the G2P Connect tests: idempotent by key, answers status queries,
and lets a test lose responses or hold payments open.

Every test that needs "some provider" gets it from :func:`provider_for_tests`; to run them against the
sandbox provider instead, change that one function.

Payees are decided by their account: ``blocked...`` is refused (``payments.account.blocked``),
``poor...`` fails for the payer's funds (``payments.payer.insufficient_funds``), ``slow...`` stays
ACCEPTED until :meth:`MemoryProvider.complete`; any other account is credited.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from payments_adapter.contract import (
    AddressResolution,
    Capabilities,
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderState,
    ProviderStatus,
)

__all__ = ["MemoryProvider", "provider_for_tests"]


class MemoryProvider(PaymentProvider):
    """Pays into a dictionary; ``credited`` holds what each key paid, ``submissions`` how often each key
    was submitted."""

    name = "memory"

    def __init__(self, *, max_bulk: int = 50) -> None:
        self._capabilities = Capabilities(idempotency=True, status_query=True, max_bulk=max_bulk)
        self.statuses: dict[str, ProviderStatus] = {}
        self.credited: dict[str, Money] = {}
        self.submissions: Counter[str] = Counter()
        self.lose_responses = 0

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        return AddressResolution(address, resolved=not address.account.startswith("blocked"))

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        key = instruction.idempotency_key
        self.submissions[key] += 1
        if key not in self.statuses:
            self.statuses[key] = self._decide(instruction)
        if self.lose_responses > 0:
            self.lose_responses -= 1
            raise OutcomeUnknownError("the response was lost on the way back")
        return self.statuses[key]

    def _decide(self, instruction: PaymentInstruction) -> ProviderStatus:
        account = instruction.payee.account
        now = datetime.now(UTC)
        if account.startswith("blocked"):
            return ProviderStatus(
                ProviderState.REJECTED, "payments.account.blocked", message="closed", at=now
            )
        if account.startswith("poor"):
            # A provider may explain at length.
            return ProviderStatus(
                ProviderState.REJECTED, "payments.payer.insufficient_funds", message="x" * 5000, at=now
            )
        if account.startswith("slow"):
            return ProviderStatus(ProviderState.ACCEPTED, at=now)
        self.credited[instruction.idempotency_key] = instruction.amount
        return ProviderStatus(ProviderState.COMPLETED, provider_reference=f"mem-{len(self.credited)}", at=now)

    def complete(self, key: str, amount: Money) -> None:
        """Credit a payment held open (a ``slow...`` payee)."""
        self.credited[key] = amount
        self.statuses[key] = ProviderStatus(ProviderState.COMPLETED, at=datetime.now(UTC))

    async def status(self, idempotency_key: str) -> ProviderStatus:
        return self.statuses.get(idempotency_key, ProviderStatus(ProviderState.NOT_FOUND))


def provider_for_tests() -> PaymentProvider:
    """The provider behind the G2P Connect server in the tests that need no injected faults."""
    return MemoryProvider()
