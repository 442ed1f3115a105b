"""The sandbox payment provider: a real provider with its own ledger, for tests, the demo and benchmarks.

It implements :class:`~payments_adapter.contract.PaymentProvider` fully (idempotency, status query,
cancel, reversal, bulk submission, name check, a statement) and lets an operator inject what goes wrong
with real providers: latency, rejections by rule (accounts that do not exist or are blocked), a share of
transient failures, and **lost responses** (the payment is booked, then the answer is lost and the caller
gets :class:`~payments_adapter.contract.OutcomeUnknownError`), drawn from a seeded generator.

The ledger lives in the sandbox's own database (a SQLite file, or a PostgreSQL schema named by
``?search_path=``), never in the disbursing engine's tables, so it survives the death of the process
that pays and tells afterwards exactly what was paid. Configuration (all values are strings, as from a
settings file or environment):

====================  =========================================================================
``database_url``      the ledger (required), e.g. ``sqlite+aiosqlite:///var/sandbox.sqlite3``
``latency_ms``        added to every call (default ``0``)
``failure_rate``      share of items refused with a retryable ``payments.provider.unavailable``
``lost_response_rate``  share of booked items whose answer is lost (``OutcomeUnknownError``)
``lost_bulk_rate``    share of ``submit_many`` calls whose whole answer is lost after booking
``seed``              seed of the generator behind the three rates (default ``0``)
``missing_accounts``  regular expression of accounts that do not exist (default ``^000``)
``blocked_accounts``  regular expression of blocked accounts (default ``^999``)
``address_schemes``   comma-separated providers (the part after ``@``) it reaches; empty is any
``currencies``        comma-separated ISO 4217 codes it pays in; empty is any
``max_bulk``          instructions per ``submit_many`` (default ``1000``)
``settlement``        ``immediate`` (answers COMPLETED) or ``deferred`` (ACCEPTED until settled)
====================  =========================================================================

Rates are decimal strings (``"0.05"`` is 5 %). The statement format is ``sandbox-jsonl``: one JSON
object per booked movement (debit, reversal, return) with the key, kind, amount, currency, time and
reference.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dpi import db
from payments_adapter.contract import (
    AddressResolution,
    Capabilities,
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderError,
    ProviderState,
    ProviderStatus,
    StatementEntry,
    StatementEntryKind,
)

__all__ = ["STATEMENT_FORMAT", "SandboxConfigError", "SandboxProvider", "SandboxSettings", "create_provider"]

STATEMENT_FORMAT: Final = "sandbox-jsonl"
_PPM: Final = 1_000_000

_ledger_metadata = MetaData()
_payments = Table(
    "sandbox_payment",
    _ledger_metadata,
    Column("idempotency_key", String(35), primary_key=True),
    Column("payee", String(160), nullable=False),
    Column("payee_name", String(200), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason_code", String(80), nullable=True),
    Column("provider_reference", String(40), nullable=False),
    Column("submissions", Integer, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
_movements = Table(
    "sandbox_movement",
    _ledger_metadata,
    Column("movement_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("idempotency_key", String(35), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider_reference", String(40), nullable=False),
    Column("reason_code", String(80), nullable=True),
    Column("booked_at", DateTime(timezone=True), nullable=False),
)
_accounts = Table(
    "sandbox_account",
    _ledger_metadata,
    Column("address", String(160), primary_key=True),
    Column("holder_name", String(200), nullable=False),
)


class SandboxConfigError(ValueError):
    """The sandbox's configuration names an unknown option or a value it cannot use."""


def _rate(config: Mapping[str, str], name: str) -> int:
    raw = config.get(name, "0")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SandboxConfigError(f"sandbox: {name} must be a decimal between 0 and 1, not {raw!r}") from None
    if not value.is_finite() or value < 0 or value > 1:
        raise SandboxConfigError(f"sandbox: {name} must be between 0 and 1, not {raw!r}")
    return int(value * _PPM)


def _integer(config: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = config.get(name, str(default))
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        raise SandboxConfigError(f"sandbox: {name} must be an integer from {low} to {high}, not {raw!r}")
    return int(raw)


def _pattern(config: Mapping[str, str], name: str, default: str) -> re.Pattern[str]:
    raw = config.get(name, default)
    try:
        return re.compile(raw)
    except re.error as error:
        raise SandboxConfigError(f"sandbox: {name} is not a regular expression: {error}") from None


def _listed(config: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in config.get(name, "").split(",") if part.strip())


_OPTIONS: Final = frozenset(
    {
        "database_url",
        "latency_ms",
        "failure_rate",
        "lost_response_rate",
        "lost_bulk_rate",
        "seed",
        "missing_accounts",
        "blocked_accounts",
        "address_schemes",
        "currencies",
        "max_bulk",
        "settlement",
    }
)


@dataclass(frozen=True)
class SandboxSettings:
    """The sandbox's configuration, checked (see the module's table)."""

    database_url: str
    latency: timedelta = timedelta(0)
    failure_ppm: int = 0
    lost_response_ppm: int = 0
    lost_bulk_ppm: int = 0
    seed: int = 0
    missing_accounts: re.Pattern[str] = re.compile("^000")
    blocked_accounts: re.Pattern[str] = re.compile("^999")
    address_schemes: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    max_bulk: int = 1000
    deferred_settlement: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> SandboxSettings:
        unknown = sorted(set(config) - _OPTIONS)
        if unknown:
            raise SandboxConfigError(f"sandbox: unknown option(s) {', '.join(unknown)}")
        url = config.get("database_url", "")
        if not url:
            raise SandboxConfigError("sandbox: database_url is required (the ledger's own database)")
        settlement = config.get("settlement", "immediate")
        if settlement not in ("immediate", "deferred"):
            raise SandboxConfigError(f"sandbox: settlement must be immediate or deferred, not {settlement!r}")
        return cls(
            database_url=url,
            latency=timedelta(milliseconds=_integer(config, "latency_ms", 0, 0, 60_000)),
            failure_ppm=_rate(config, "failure_rate"),
            lost_response_ppm=_rate(config, "lost_response_rate"),
            lost_bulk_ppm=_rate(config, "lost_bulk_rate"),
            seed=_integer(config, "seed", 0, 0, 999_999_999),
            missing_accounts=_pattern(config, "missing_accounts", "^000"),
            blocked_accounts=_pattern(config, "blocked_accounts", "^999"),
            address_schemes=tuple(scheme.lower() for scheme in _listed(config, "address_schemes")),
            currencies=_listed(config, "currencies"),
            max_bulk=_integer(config, "max_bulk", 1000, 1, 100_000),
            deferred_settlement=settlement == "deferred",
        )


def _fingerprint(instruction: PaymentInstruction) -> str:
    content = "\x1f".join(
        (
            instruction.idempotency_key,
            str(instruction.payee),
            instruction.amount.wire(),
            instruction.amount.currency,
            instruction.payee_name or "",
        )
    )
    return hashlib.sha256(content.encode()).hexdigest()


def _money(minor: int, currency: str) -> Money:
    probe = Money(Decimal(0), currency)
    digits = len(probe.wire().partition(".")[2])
    return Money(Decimal(minor).scaleb(-digits), currency)


def _now() -> datetime:
    return datetime.now(UTC)


class SandboxProvider(PaymentProvider):
    """A payment provider with its own durable ledger and injectable faults (see the module)."""

    def __init__(self, name: str, settings: SandboxSettings) -> None:
        self.name = name
        self.settings = settings
        self._random = random.Random(settings.seed)
        self._engine: AsyncEngine | None = None
        self._ready = asyncio.Lock()
        self._names: dict[str, str] | None = None
        self._capabilities = Capabilities(
            idempotency=True,
            status_query=True,
            cancel=True,
            reversal=True,
            name_check=True,
            max_bulk=settings.max_bulk,
            statement_formats=(STATEMENT_FORMAT,),
            address_schemes=settings.address_schemes,
            currencies=settings.currencies,
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def _ledger(self) -> AsyncEngine:
        if self._engine is not None:
            return self._engine
        async with self._ready:
            if self._engine is None:
                engine = db.create_engine(self.settings.database_url)
                schema = make_url(self.settings.database_url).query.get("search_path")
                async with engine.begin() as connection:
                    if isinstance(schema, str) and schema and engine.dialect.name == "postgresql":
                        quoted = engine.dialect.identifier_preparer.quote_identifier(schema)
                        await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
                    await connection.run_sync(_ledger_metadata.create_all)
                self._engine = engine
        assert self._engine is not None
        return self._engine

    def _draw(self, ppm: int) -> bool:
        return ppm > 0 and self._random.randrange(_PPM) < ppm

    async def _delay(self) -> None:
        if self.settings.latency:
            await asyncio.sleep(self.settings.latency.total_seconds())

    async def open_account(self, address: FinancialAddress, holder_name: str) -> None:
        """Register an account holder's name, which :meth:`resolve` then discloses."""
        engine = await self._ledger()
        async with engine.begin() as connection:
            await connection.execute(_accounts.delete().where(_accounts.c.address == str(address)))
            await connection.execute(insert(_accounts).values(address=str(address), holder_name=holder_name))
        self._names = None

    async def _holder_names(self) -> dict[str, str]:
        if self._names is None:
            engine = await self._ledger()
            async with engine.connect() as connection:
                rows = await connection.execute(select(_accounts.c.address, _accounts.c.holder_name))
                self._names = {row.address: row.holder_name for row in rows}
        return self._names

    def _refusal(self, payee: FinancialAddress, currency: str | None) -> str | None:
        if self.settings.address_schemes and payee.provider not in self.settings.address_schemes:
            return "payments.address.not_found"
        if self.settings.missing_accounts.search(payee.account):
            return "payments.address.not_found"
        if self.settings.blocked_accounts.search(payee.account):
            return "payments.account.blocked"
        if currency is not None and self.settings.currencies and currency not in self.settings.currencies:
            return "payments.currency.not_supported"
        return None

    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        names = await self._holder_names()
        refusal = self._refusal(address, None)
        return AddressResolution(
            address=address,
            resolved=refusal is None,
            reason_code=refusal,
            holder_name=names.get(str(address)) if refusal is None else None,
            currencies=self.settings.currencies,
        )

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        await self._delay()
        answer = (await self._book([instruction]))[0]
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def submit_many(
        self, instructions: Sequence[PaymentInstruction]
    ) -> list[ProviderStatus | ProviderError]:
        if len(instructions) > self.settings.max_bulk:
            raise ProviderError(
                "payments.request.invalid",
                f"at most {self.settings.max_bulk} instructions per bulk, got {len(instructions)}",
            )
        await self._delay()
        answers = await self._book(instructions)
        if self._draw(self.settings.lost_bulk_ppm):
            raise OutcomeUnknownError("the sandbox lost its answer to this bulk (injected)")
        return answers

    async def _book(self, instructions: Sequence[PaymentInstruction]) -> list[ProviderStatus | ProviderError]:
        """Book a bulk in one transaction; lost answers are drawn only after the commit, as in life."""
        now = _now()
        engine = await self._ledger()
        answers: list[ProviderStatus | ProviderError] = []
        async with engine.begin() as connection:
            keys = [instruction.idempotency_key for instruction in instructions]
            known: dict[str, Any] = {
                row.idempotency_key: row
                for row in await connection.execute(
                    select(_payments).where(_payments.c.idempotency_key.in_(keys))
                )
            }
            new_rows: list[dict[str, Any]] = []
            debits: list[dict[str, Any]] = []
            replayed: list[str] = []
            for instruction in instructions:
                fingerprint = _fingerprint(instruction)
                key = instruction.idempotency_key
                existing = known.get(key)
                if existing is not None:
                    if existing.fingerprint != fingerprint:
                        answers.append(
                            ProviderError(
                                "payments.request.duplicate",
                                f"key {key} was already used for a different payment",
                            )
                        )
                        continue
                    replayed.append(key)
                    answers.append(
                        ProviderStatus(
                            ProviderState(existing.state),
                            existing.reason_code,
                            existing.provider_reference,
                            at=existing.updated_at,
                        )
                    )
                    continue
                if self._draw(self.settings.failure_ppm):
                    answers.append(
                        ProviderError(
                            "payments.provider.unavailable", "the sandbox failed (injected)", retryable=True
                        )
                    )
                    continue
                refusal = self._refusal(instruction.payee, instruction.amount.currency)
                if refusal is not None:
                    state = ProviderState.REJECTED
                elif self.settings.deferred_settlement:
                    state = ProviderState.ACCEPTED
                else:
                    state = ProviderState.COMPLETED
                reference = f"SBX{uuid.uuid4().hex[:24].upper()}"
                row = {
                    "idempotency_key": key,
                    "payee": str(instruction.payee),
                    "payee_name": instruction.payee_name,
                    "amount_minor": instruction.amount.minor_units,
                    "currency": instruction.amount.currency,
                    "fingerprint": fingerprint,
                    "state": state.value,
                    "reason_code": refusal,
                    "provider_reference": reference,
                    "submissions": 1,
                    "booked_at": now,
                    "updated_at": now,
                }
                new_rows.append(row)
                known[key] = _Row(row)
                if state is ProviderState.COMPLETED:
                    debits.append(_movement(row, StatementEntryKind.DEBIT, None, now))
                answers.append(ProviderStatus(state, refusal, reference, at=now))
            if new_rows:
                await connection.execute(insert(_payments), new_rows)
            if debits:
                await connection.execute(insert(_movements), debits)
            if replayed:
                await connection.execute(
                    update(_payments)
                    .where(_payments.c.idempotency_key.in_(replayed))
                    .values(submissions=_payments.c.submissions + 1)
                )
        return [
            OutcomeUnknownError("the sandbox lost its answer (injected)")
            if isinstance(answer, ProviderStatus) and self._draw(self.settings.lost_response_ppm)
            else answer
            for answer in answers
        ]

    async def status(self, idempotency_key: str) -> ProviderStatus:
        engine = await self._ledger()
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(_payments).where(_payments.c.idempotency_key == idempotency_key)
                )
            ).first()
        if row is None:
            return ProviderStatus(ProviderState.NOT_FOUND)
        return ProviderStatus(
            ProviderState(row.state), row.reason_code, row.provider_reference, at=row.updated_at
        )

    async def _change(
        self,
        idempotency_key: str,
        allowed_from: ProviderState,
        to: ProviderState,
        movement: StatementEntryKind | None,
        reason_code: str,
    ) -> ProviderStatus:
        engine = await self._ledger()
        now = _now()
        async with engine.begin() as connection:
            row = (
                await connection.execute(
                    select(_payments).where(_payments.c.idempotency_key == idempotency_key).with_for_update()
                )
            ).first()
            if row is None:
                raise ProviderError("payments.item.not_found", f"no payment under key {idempotency_key}")
            if row.state != allowed_from.value:
                raise ProviderError(
                    "payments.item.invalid_state", f"a {row.state} payment cannot become {to.value}"
                )
            await connection.execute(
                update(_payments)
                .where(_payments.c.idempotency_key == idempotency_key)
                .values(state=to.value, reason_code=reason_code, updated_at=now)
            )
            if movement is not None:
                await connection.execute(
                    insert(_movements), [_movement(row._asdict(), movement, reason_code, now)]
                )
        return ProviderStatus(to, reason_code, row.provider_reference, at=now)

    async def cancel(self, idempotency_key: str) -> ProviderStatus:
        return await self._change(
            idempotency_key, ProviderState.ACCEPTED, ProviderState.CANCELLED, None, "payments.item.cancelled"
        )

    async def reverse(self, idempotency_key: str, reason: str) -> ProviderStatus:
        return await self._change(
            idempotency_key,
            ProviderState.COMPLETED,
            ProviderState.REVERSED,
            StatementEntryKind.REVERSAL,
            "payments.item.reversed",
        )

    async def return_payment(self, idempotency_key: str) -> ProviderStatus:
        """The receiving side sends a credited payment back (a closed wallet, a refusing payee)."""
        return await self._change(
            idempotency_key,
            ProviderState.COMPLETED,
            ProviderState.RETURNED,
            StatementEntryKind.RETURN,
            "payments.item.returned",
        )

    async def settle_accepted(self) -> int:
        """Complete every ACCEPTED payment (deferred settlement); returns how many were credited."""
        engine = await self._ledger()
        now = _now()
        async with engine.begin() as connection:
            rows = list(
                await connection.execute(
                    select(_payments).where(_payments.c.state == ProviderState.ACCEPTED.value)
                )
            )
            if rows:
                await connection.execute(
                    update(_payments)
                    .where(_payments.c.idempotency_key.in_([row.idempotency_key for row in rows]))
                    .values(state=ProviderState.COMPLETED.value, updated_at=now)
                )
                await connection.execute(
                    insert(_movements),
                    [_movement(row._asdict(), StatementEntryKind.DEBIT, None, now) for row in rows],
                )
        return len(rows)

    async def statement(self) -> bytes:
        """Every booked movement in ``sandbox-jsonl``, oldest first."""
        engine = await self._ledger()
        lines: list[str] = []
        async with engine.connect() as connection:
            result = await connection.stream(select(_movements).order_by(_movements.c.movement_id))
            async for row in result:
                amount = _money(row.amount_minor, row.currency)
                lines.append(
                    json.dumps(
                        {
                            "key": row.idempotency_key,
                            "kind": row.kind,
                            "amount": amount.wire(),
                            "currency": row.currency,
                            "booked_at": row.booked_at.isoformat(),
                            "reference": row.provider_reference,
                            "reason_code": row.reason_code,
                        },
                        separators=(",", ":"),
                    )
                )
        return ("\n".join(lines) + "\n" if lines else "").encode()

    def parse_statement(self, content: bytes, statement_format: str) -> list[StatementEntry]:
        if statement_format != STATEMENT_FORMAT:
            return super().parse_statement(content, statement_format)
        return parse_sandbox_statement(content)

    async def ledger_summary(self) -> dict[str, int]:
        """For tests and operators: payments per state, and how often a booked key was submitted again."""
        engine = await self._ledger()
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(_payments.c.state, func.count(), func.sum(_payments.c.submissions - 1)).group_by(
                    _payments.c.state
                )
            )
            summary: dict[str, int] = {"resubmissions": 0}
            for state, count, replays in rows:
                summary[state] = int(count)
                summary["resubmissions"] += int(replays or 0)
            return summary

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


class _Row:
    """A just-booked payment, readable like a ledger row for later instructions of the same bulk."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.fingerprint = values["fingerprint"]
        self.state = values["state"]
        self.reason_code = values["reason_code"]
        self.provider_reference = values["provider_reference"]
        self.updated_at = values["updated_at"]


def _movement(
    row: Mapping[str, Any], kind: StatementEntryKind, reason_code: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "idempotency_key": row["idempotency_key"],
        "kind": kind.value,
        "amount_minor": row["amount_minor"],
        "currency": row["currency"],
        "provider_reference": row["provider_reference"],
        "reason_code": reason_code,
        "booked_at": at,
    }


def parse_sandbox_statement(content: bytes) -> list[StatementEntry]:
    """The entries of a ``sandbox-jsonl`` statement; a malformed line is a ``ProviderError``."""
    entries: list[StatementEntry] = []
    for number, line in enumerate(content.decode("utf-8", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line, parse_float=Decimal)
            entries.append(
                StatementEntry(
                    idempotency_key=document["key"],
                    amount=Money.parse(document["amount"], document["currency"]),
                    kind=StatementEntryKind(document["kind"]),
                    booked_at=datetime.fromisoformat(document["booked_at"]),
                    provider_reference=document.get("reference"),
                    reason_code=document.get("reason_code"),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderError(
                "payments.provider.invalid_response", f"statement line {number} is malformed: {error}"
            ) from None
    return entries


def create_provider(name: str, config: Mapping[str, str]) -> SandboxProvider:
    """The ``sandbox`` entry point of ``dpi.payment_providers``."""
    return SandboxProvider(name, SandboxSettings.from_config(config))
