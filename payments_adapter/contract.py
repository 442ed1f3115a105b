"""The payment-provider contract: one small interface every adapter implements.

Shaped like an HTTPX transport: the disbursement engine knows providers only through
:class:`PaymentProvider`, and each adapter (the sandbox, Mojaloop FSPIOP 1.1, a mobile-money HTTP API,
ISO 20022 bank files) translates these calls into its own protocol. An adapter states what it can do in
:class:`Capabilities`; the engine adapts its behaviour to them (an adapter without idempotency or
status query is driven one item at a time, and an outcome it cannot settle goes to manual review).

Adapters are registered under the entry-point group ``dpi.payment_providers``; each entry point names
a :class:`ProviderFactory` that builds the adapter from its configuration::

    [project.entry-points."dpi.payment_providers"]
    sandbox = "payments_adapter.sandbox:create_provider"

Money is :class:`Money` (a :class:`~decimal.Decimal` and an ISO 4217 code) everywhere; a float anywhere
in this block is a bug.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Final, Protocol

import pycountry
from babel.numbers import get_currency_precision

__all__ = [
    "ENTRY_POINT_GROUP",
    "AddressResolution",
    "BeneficiaryAccounts",
    "Capabilities",
    "FinancialAddress",
    "Money",
    "MoneyError",
    "NotSupportedError",
    "OutcomeUnknownError",
    "PaymentInstruction",
    "PaymentProvider",
    "ProviderError",
    "ProviderFactory",
    "ProviderState",
    "ProviderStatus",
    "StatementEntry",
    "StatementEntryKind",
]

ENTRY_POINT_GROUP: Final = "dpi.payment_providers"

_AMOUNT_PATTERN: Final = re.compile(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$")
# G2P Connect's FinancialAddress: ``account@provider`` (FinancialAddress in g2p-disburse.yaml).
_ADDRESS_PATTERN: Final = re.compile(r"^([A-Za-z0-9.\-_+]{1,64})@([A-Za-z0-9.\-]{1,64})$")
# ISO 20022 Max35Text: the key doubles as the EndToEndId of a pain.001 instruction.
_KEY_PATTERN: Final = re.compile(r"^[A-Za-z0-9\-]{8,35}$")


class MoneyError(ValueError):
    """An amount or currency that this block will not carry; ``reason_code`` names the rule broken."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


@cache
def _minor_units(currency: str) -> int:
    if pycountry.currencies.get(alpha_3=currency) is None:
        raise MoneyError("payments.currency.unknown", f"{currency!r} is not an ISO 4217 currency code")
    return int(get_currency_precision(currency))


@dataclass(frozen=True, order=False)
class Money:
    """An amount of one ISO 4217 currency, never a float.

    ``amount`` is exact and is kept with exactly the currency's decimal places (two for most, none for
    XOF or JPY, three for KWD); a value with more significant decimals is refused, never rounded.
    Build it from its wire form with :meth:`parse`.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise MoneyError("payments.amount.invalid", "an amount must be a Decimal, never a float")
        digits = _minor_units(self.currency)
        if not self.amount.is_finite() or self.amount < 0:
            raise MoneyError("payments.amount.invalid", f"amount {self.amount} must be zero or positive")
        exact = self.amount.quantize(Decimal(1).scaleb(-digits))
        if exact != self.amount:
            raise MoneyError(
                "payments.amount.precision",
                f"{self.currency} has {digits} decimal places; {self.amount} has more",
            )
        # One representation per value, so equal amounts compare, hash and print alike.
        object.__setattr__(self, "amount", exact)

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Money from a decimal string (``"1500.00"``) and a currency code (``"XOF"``)."""
        if not isinstance(amount, str) or not _AMOUNT_PATTERN.match(amount):
            raise MoneyError(
                "payments.amount.invalid", f"amount {amount!r} must be a decimal string such as '1500.00'"
            )
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise MoneyError("payments.currency.unknown", f"{currency!r} is not an ISO 4217 currency code")
        try:
            value = Decimal(amount)
        except InvalidOperation as error:  # pragma: no cover - the pattern admits only valid decimals
            raise MoneyError("payments.amount.invalid", f"amount {amount!r} is not a number") from error
        return cls(value, currency)

    @property
    def minor_units(self) -> int:
        """The amount in the currency's smallest unit (cents, centimes), exact."""
        return int(self.amount.scaleb(_minor_units(self.currency)))

    def wire(self) -> str:
        """The amount as a decimal string with exactly the currency's decimal places."""
        return f"{self.amount:f}"

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise MoneyError("payments.currency.mismatch", f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)


@dataclass(frozen=True)
class FinancialAddress:
    """Where a person is paid: G2P Connect's ``account@provider`` (``0700123456@wallet1``)."""

    account: str
    provider: str

    @classmethod
    def parse(cls, text: str) -> FinancialAddress:
        match = _ADDRESS_PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a financial address of the form account@provider")
        return cls(match.group(1), match.group(2).lower())

    def __str__(self) -> str:
        return f"{self.account}@{self.provider}"


@dataclass(frozen=True)
class PaymentInstruction:
    """One payment to submit: pay ``amount`` to ``payee`` once, whatever happens to the messages.

    ``idempotency_key`` is derived from programme, cycle, beneficiary and entitlement (8 to 35 letters,
    digits and hyphens, so it can be an ISO 20022 ``EndToEndId`` and a statement narrative); a provider
    that honours idempotency pays a key at most once however often it is submitted.
    """

    idempotency_key: str
    payee: FinancialAddress
    amount: Money
    payee_name: str | None = None
    narrative: str = ""
    batch_reference: str = ""

    def __post_init__(self) -> None:
        if not _KEY_PATTERN.match(self.idempotency_key):
            raise ValueError(
                f"idempotency key {self.idempotency_key!r} must be 8 to 35 letters, digits or hyphens"
            )


class ProviderState(enum.StrEnum):
    """What a provider says about one payment (its answer to a submission or a status query)."""

    ACCEPTED = "accepted"
    """Received and in progress; a final state follows (callback, status query or statement)."""
    COMPLETED = "completed"
    """The payee was credited."""
    REJECTED = "rejected"
    """Refused; nothing was paid. ``reason_code`` says why."""
    NOT_FOUND = "not_found"
    """The provider has no payment under this key: it never arrived. Only a status query says this."""
    CANCELLED = "cancelled"
    """Stopped before the payee was credited."""
    REVERSED = "reversed"
    """Credited, then taken back (by the payer's request or the provider)."""
    RETURNED = "returned"
    """Credited, then returned by the receiving side (closed account, refused by the payee)."""


@dataclass(frozen=True)
class ProviderStatus:
    """A provider's answer about one payment."""

    state: ProviderState
    reason_code: str | None = None
    provider_reference: str | None = None
    message: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class AddressResolution:
    """Whether a financial address can receive a payment, and the account holder's name if the provider
    discloses it (for the pre-flight payee-name check)."""

    address: FinancialAddress
    resolved: bool
    reason_code: str | None = None
    holder_name: str | None = None
    currencies: tuple[str, ...] = ()


class StatementEntryKind(enum.StrEnum):
    """A line of a provider or bank statement, as reconciliation reads it."""

    DEBIT = "debit"
    REVERSAL = "reversal"
    RETURN = "return"


@dataclass(frozen=True)
class StatementEntry:
    """One booked movement of a statement, matched to an instruction by ``idempotency_key``."""

    idempotency_key: str | None
    amount: Money
    kind: StatementEntryKind
    booked_at: datetime
    provider_reference: str | None = None
    reason_code: str | None = None
    narrative: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do, declared once; the engine reads it rather than trying and failing."""

    idempotency: bool
    """Resubmitting a key never pays twice."""
    status_query: bool
    """:meth:`PaymentProvider.status` answers for any key ever submitted, ``NOT_FOUND`` included."""
    cancel: bool = False
    reversal: bool = False
    name_check: bool = False
    """:meth:`PaymentProvider.resolve` returns the account holder's name."""
    max_bulk: int = 1
    """How many instructions :meth:`PaymentProvider.submit_many` sends in one request."""
    statement_formats: tuple[str, ...] = ()
    address_schemes: tuple[str, ...] = ()
    """The providers (the part after ``@``) this adapter reaches; empty means any."""
    currencies: tuple[str, ...] = ()
    """The currencies it pays in; empty means any."""

    @property
    def single_flight(self) -> bool:
        """An adapter that can neither deduplicate nor say what happened is driven one item at a time,
        and an outcome it loses goes to manual review instead of being retried."""
        return not (self.idempotency and self.status_query)


class ProviderError(Exception):
    """A provider refused a call as a whole (not one payment's business outcome); ``reason_code`` is
    from the ``payments`` vocabulary of ``standards/``."""

    def __init__(self, reason_code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.retryable = retryable


class OutcomeUnknownError(ProviderError):
    """The request may or may not have reached the provider (timeout, lost response, connection reset).

    The payment is UNKNOWN until a status query settles it; it must never be blindly resent.
    """

    def __init__(self, message: str) -> None:
        super().__init__("payments.outcome.unknown", message, retryable=False)


class NotSupportedError(ProviderError):
    """The adapter does not offer this operation (see its :class:`Capabilities`)."""

    def __init__(self, operation: str) -> None:
        super().__init__("payments.operation.not_supported", f"this provider does not support {operation}")


class PaymentProvider(ABC):
    """The one interface between the disbursement engine and a payment provider.

    Implementations are async and safe to call concurrently. ``submit`` returns the provider's first
    answer (``ACCEPTED``, ``COMPLETED`` or ``REJECTED``); when the answer is lost it raises
    :class:`OutcomeUnknownError`. ``status`` is the only way to settle an unknown outcome.
    """

    name: str

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this adapter can do."""

    @abstractmethod
    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        """Whether ``address`` can be paid (and the holder's name when :attr:`Capabilities.name_check`)."""

    @abstractmethod
    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        """Send one payment under its idempotency key."""

    async def submit_many(
        self, instructions: Sequence[PaymentInstruction]
    ) -> list[ProviderStatus | ProviderError]:
        """Send several payments (at most :attr:`Capabilities.max_bulk`); one answer or error per item,
        in order. The default sends them one by one."""
        answers: list[ProviderStatus | ProviderError] = []
        for instruction in instructions:
            try:
                answers.append(await self.submit(instruction))
            except ProviderError as error:
                answers.append(error)
        return answers

    async def status(self, idempotency_key: str) -> ProviderStatus:
        """What the provider knows of the payment under this key (``NOT_FOUND`` if nothing)."""
        raise NotSupportedError("status query")

    async def cancel(self, idempotency_key: str) -> ProviderStatus:
        """Stop a payment not yet credited."""
        raise NotSupportedError("cancel")

    async def reverse(self, idempotency_key: str, reason: str) -> ProviderStatus:
        """Take back a credited payment."""
        raise NotSupportedError("reversal")

    def parse_statement(self, content: bytes, statement_format: str) -> list[StatementEntry]:
        """The entries of a statement in one of :attr:`Capabilities.statement_formats`."""
        raise NotSupportedError(f"statements in {statement_format}")

    async def aclose(self) -> None:  # noqa: B027 - most adapters hold nothing to release
        """Release connections; the adapter is not used afterwards."""


class ProviderFactory(Protocol):
    """What an entry point of ``dpi.payment_providers`` names: configuration in, adapter out."""

    def __call__(self, name: str, config: Mapping[str, str]) -> PaymentProvider: ...


class BeneficiaryAccounts(Protocol):
    """Where each beneficiary chose to be paid, as the ID-to-account mapper knows it.

    ``beneficiary_id`` is opaque to the disbursement engine (in a deployment with the identity block,
    the person's pseudonym for the paying sector). ``as_of`` is the cycle's cut-off: links changed after
    it do not apply to that cycle. Beneficiaries without a link are absent from the answer.
    """

    async def financial_addresses(
        self, beneficiary_ids: Sequence[str], *, as_of: datetime
    ) -> Mapping[str, FinancialAddress]: ...
