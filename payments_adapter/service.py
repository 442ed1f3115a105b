"""Disbursement: programmes, cycles, batches and their items, the pre-flight, and status by pull.

The domain logic of G2P Connect-style disbursement (https://g2p-connect.github.io/specs/, Disburse),
without HTTP: :mod:`payments_adapter.api` and :mod:`payments_adapter.cli` call it, and
:func:`DisbursementService.create_batch` takes already parsed :class:`BatchLine` objects, so a CSV or
JSON upload and a G2P Connect ``disburse`` message feed the same function.

Every item carries the idempotency key of its entitlement (:mod:`payments_adapter.keys`), UNIQUE in the
database: the same entitlement uploaded twice never becomes two items, and the refusal is reported for
its line. Every state change goes through :func:`move`, which checks it against
:data:`~payments_adapter.models.TRANSITIONS`, records who or what made it, when and why, and announces
it through the kernel's transactional outbox.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, cast

from rapidfuzz import fuzz
from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dpi.models import OutboxMessage
from payments_adapter.contract import (
    BeneficiaryAccounts,
    FinancialAddress,
    Money,
    MoneyError,
    PaymentProvider,
    ProviderError,
)
from payments_adapter.keys import idempotency_key
from payments_adapter.models import (
    TRANSITIONS,
    ItemState,
    batches,
    cycles,
    items,
    programmes,
    transitions,
)

__all__ = [
    "EVENT_TOPIC",
    "BatchLine",
    "BatchReceipt",
    "BatchStatus",
    "DisbursementError",
    "DisbursementService",
    "LineProblem",
    "PreflightReport",
    "batch_line",
    "money_from_minor",
    "move",
    "names_match",
    "parse_batch_file",
]

EVENT_TOPIC: Final = "payments.item.state"
_OUTBOX: Final = cast(Table, OutboxMessage.__table__)
_CODE_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
_NAME_MAX: Final = 200
_UPLOAD_CHUNK: Final = 5000
_PREFLIGHT_PAGE: Final = 5000
_RESOLVE_CONCURRENCY: Final = 64
_NAME_MATCH_THRESHOLD: Final = 85
_COLUMNS: Final = ("beneficiary_id", "financial_address", "amount", "currency", "entitlement", "payee_name")


class DisbursementError(Exception):
    """A request the engine refuses as a whole; ``reason_code`` is from the ``payments`` vocabulary."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def _now() -> datetime:
    return datetime.now(UTC)


def money_from_minor(minor: int, currency: str) -> Money:
    """Money from an amount in the currency's smallest unit (exact)."""
    digits = len(Money(Decimal(0), currency).wire().partition(".")[2])
    return Money(Decimal(minor).scaleb(-digits), currency)


@dataclass(frozen=True)
class BatchLine:
    """One entitlement to pay, as read from an upload or a G2P Connect ``disburse`` message."""

    line: int
    beneficiary_id: str
    entitlement: str
    amount: Money
    financial_address: FinancialAddress | None = None
    payee_name: str | None = None


@dataclass(frozen=True)
class LineProblem:
    """Why one line (or item) was not accepted; ``line`` is the 1-based data line of the upload."""

    line: int
    reason_code: str
    message: str
    idempotency_key: str | None = None
    beneficiary_id: str | None = None

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "line": self.line,
            "reason_code": self.reason_code,
            "message": self.message,
        }
        if self.idempotency_key is not None:
            document["idempotency_key"] = self.idempotency_key
        return document


def batch_line(number: int, fields: Mapping[str, Any]) -> BatchLine | LineProblem:
    """One entitlement from its fields (an upload's row, an API item, a G2P Connect ``disburse``
    instruction mapped to these names), or the problem that keeps it out of the batch."""

    def text(name: str) -> str:
        value = fields.get(name)
        return value.strip() if isinstance(value, str) else ""

    beneficiary, entitlement = text("beneficiary_id"), text("entitlement")
    for name, value in (("beneficiary_id", beneficiary), ("entitlement", entitlement)):
        if not _ID_PATTERN.match(value):
            return LineProblem(number, "payments.line.invalid", f"{name} {value!r} is missing or malformed")
    raw_amount = fields.get("amount")
    if not isinstance(raw_amount, str):
        return LineProblem(number, "payments.amount.invalid", "amount must be a decimal string")
    try:
        amount = Money.parse(raw_amount.strip(), text("currency"))
    except MoneyError as error:
        return LineProblem(number, error.reason_code, str(error))
    if amount.amount == 0:
        return LineProblem(number, "payments.amount.invalid", "amount must be more than zero")
    address: FinancialAddress | None = None
    if text("financial_address"):
        try:
            address = FinancialAddress.parse(text("financial_address"))
        except ValueError as error:
            return LineProblem(number, "payments.address.invalid", str(error))
    payee_name = text("payee_name") or None
    if payee_name is not None and len(payee_name) > _NAME_MAX:
        return LineProblem(number, "payments.line.invalid", f"payee_name is longer than {_NAME_MAX}")
    return BatchLine(number, beneficiary, entitlement, amount, address, payee_name)


def parse_batch_file(content: bytes, file_format: str) -> tuple[list[BatchLine], list[LineProblem]]:
    """Lines of a CSV (header ``beneficiary_id,financial_address,amount,currency,entitlement,payee_name``)
    or JSON (an array of objects with those members, or ``{"items": [...]}``) upload.

    A whole file that cannot be read is a :class:`DisbursementError`; a bad line is a
    :class:`LineProblem` for that line and the other lines stand.
    """
    try:
        decoded = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DisbursementError("payments.batch.unreadable", "the file is not UTF-8 text") from None
    rows: list[Mapping[str, Any]]
    if file_format == "csv":
        reader = csv.DictReader(io.StringIO(decoded, newline=""))
        header = reader.fieldnames or []
        missing = [name for name in _COLUMNS if name not in header]
        if missing:
            raise DisbursementError("payments.batch.unreadable", f"the CSV header lacks {', '.join(missing)}")
        try:
            rows = list(reader)
        except csv.Error as error:
            raise DisbursementError("payments.batch.unreadable", f"the CSV cannot be read: {error}") from None
    elif file_format == "json":
        try:
            document = json.loads(decoded, parse_float=str, parse_int=str)
        except json.JSONDecodeError as error:
            raise DisbursementError(
                "payments.batch.unreadable", f"the JSON cannot be read: {error}"
            ) from None
        if isinstance(document, dict):
            document = document.get("items")
        if not isinstance(document, list):
            raise DisbursementError("payments.batch.unreadable", "the JSON must be an array of items")
        rows = [row if isinstance(row, dict) else {} for row in document]
    else:
        raise DisbursementError("payments.batch.unreadable", f"unknown file format {file_format!r}")
    lines: list[BatchLine] = []
    problems: list[LineProblem] = []
    for number, row in enumerate(rows, start=1):
        parsed = batch_line(number, row)
        (problems if isinstance(parsed, LineProblem) else lines).append(parsed)  # type: ignore[arg-type]
    return lines, problems


@dataclass(frozen=True)
class BatchReceipt:
    """What an upload made: the batch, how many items it holds, and every line it refused."""

    batch_id: str | None
    """None when no line was new (nothing was stored)."""
    accepted: int
    problems: tuple[LineProblem, ...]


@dataclass(frozen=True)
class PreflightReport:
    """The pre-flight of a batch: items now ready, and every item refused, with its reason."""

    batch_id: str
    ready: int
    invalid: int
    problems: tuple[LineProblem, ...]
    unchecked: int = 0
    """Items left pending because the provider could not answer (run the pre-flight again)."""


@dataclass(frozen=True)
class BatchStatus:
    """Counts per state and sums per currency and state, for status pull and the CLI summary."""

    batch_id: str
    programme_id: str
    cycle_id: str
    provider: str
    counts: Mapping[str, int]
    sums: Mapping[str, Mapping[str, Money]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _insert_ignoring_conflicts(connection: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])


async def move(
    connection: AsyncConnection,
    ids: Sequence[int],
    from_state: ItemState,
    to_state: ItemState,
    *,
    reason_code: str | None,
    actor: str,
    at: datetime,
    batch_id: str,
    guard: Any = None,
    values: Mapping[str, Any] | None = None,
    returning: Sequence[Any] = (),
) -> list[Any]:
    """Move items from one state to another in one statement, record each transition, announce it.

    Only items still in ``from_state`` (and matching ``guard``) move: a concurrent worker that moved
    one first wins, and the item is not recorded twice. Returns the ids that moved (their rows, with
    the ``returning`` columns, when some are asked for).
    """
    if to_state not in TRANSITIONS[from_state]:
        raise ValueError(f"an item cannot move from {from_state} to {to_state}")
    if not ids:
        return []
    condition = and_(items.c.item_id.in_(list(ids)), items.c.state == from_state.value)
    if guard is not None:
        condition = and_(condition, guard)
    statement = (
        update(items)
        .where(condition)
        .values(state=to_state.value, reason_code=reason_code, updated_at=at, **dict(values or {}))
        .returning(items.c.item_id, items.c.idempotency_key, *returning)
    )
    moved = list(await connection.execute(statement))
    if not moved:
        return []
    await connection.execute(
        insert(transitions),
        [
            {
                "item_id": row.item_id,
                "from_state": from_state.value,
                "to_state": to_state.value,
                "reason_code": reason_code,
                "actor": actor,
                "at": at,
            }
            for row in moved
        ],
    )
    await connection.execute(
        insert(_OUTBOX).values(
            topic=EVENT_TOPIC,
            message_key=batch_id,
            payload={
                "batch_id": batch_id,
                "state": to_state.value,
                "reason_code": reason_code,
                "idempotency_keys": [row.idempotency_key for row in moved],
                "at": at.isoformat(),
            },
            created_at=at,
            available_at=at,
            attempts=0,
        )
    )
    return [row if returning else row.item_id for row in moved]


def _normalised_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def names_match(expected: str, holder: str) -> bool:
    """Whether the account holder's name is the payee's, allowing word order and accents to differ."""
    return (
        fuzz.token_sort_ratio(_normalised_name(expected), _normalised_name(holder)) >= _NAME_MATCH_THRESHOLD
    )


class DisbursementService:
    """Programmes, cycles, batches and items on one database (see the module)."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.clock = clock

    async def create_programme(self, programme_id: str, name: str) -> None:
        """Create a programme (the same id and name again is a no-op)."""
        if not _CODE_PATTERN.match(programme_id) or not name or len(name) > _NAME_MAX:
            raise DisbursementError("payments.line.invalid", "a programme needs a code and a name")
        async with self.engine.begin() as connection:
            existing = (
                await connection.execute(
                    select(programmes.c.name).where(programmes.c.programme_id == programme_id)
                )
            ).scalar_one_or_none()
            if existing is None:
                await connection.execute(
                    insert(programmes).values(programme_id=programme_id, name=name, created_at=self.clock())
                )
            elif existing != name:
                raise DisbursementError("payments.programme.conflict", f"programme {programme_id} exists")

    async def create_cycle(
        self, programme_id: str, cycle_id: str, cutoff_at: datetime, *, keep_existing: bool = False
    ) -> None:
        """Open a cycle of a programme; beneficiary accounts are read as of ``cutoff_at``. An existing
        cycle with another cut-off is a conflict, unless ``keep_existing`` (then it stays as it is)."""
        if not _CODE_PATTERN.match(cycle_id) or cutoff_at.tzinfo is None:
            raise DisbursementError("payments.line.invalid", "a cycle needs a code and a cut-off with a zone")
        async with self.engine.begin() as connection:
            if (
                await connection.execute(
                    select(programmes.c.programme_id).where(programmes.c.programme_id == programme_id)
                )
            ).first() is None:
                raise DisbursementError("payments.programme.not_found", f"no programme {programme_id}")
            existing = (
                await connection.execute(
                    select(cycles.c.cutoff_at).where(
                        cycles.c.programme_id == programme_id, cycles.c.cycle_id == cycle_id
                    )
                )
            ).scalar_one_or_none()
            if existing is None:
                await connection.execute(
                    insert(cycles).values(
                        programme_id=programme_id,
                        cycle_id=cycle_id,
                        cutoff_at=cutoff_at,
                        created_at=self.clock(),
                    )
                )
            elif not keep_existing and existing.replace(tzinfo=existing.tzinfo or UTC) != cutoff_at:
                raise DisbursementError(
                    "payments.cycle.conflict", f"cycle {cycle_id} exists with another cut-off"
                )

    async def create_batch(
        self,
        programme_id: str,
        cycle_id: str,
        provider: str,
        lines: Iterable[BatchLine],
        *,
        actor: str,
        source: str = "upload",
        problems: Sequence[LineProblem] = (),
    ) -> BatchReceipt:
        """Store a batch and its items in one transaction; an entitlement already held (in this upload,
        an earlier one or another batch) is refused for its line, never stored twice."""
        found: list[LineProblem] = list(problems)
        batch_id = str(uuid.uuid4())
        now = self.clock()
        accepted = 0
        async with self.engine.begin() as connection:
            if (
                await connection.execute(
                    select(cycles.c.cycle_id).where(
                        cycles.c.programme_id == programme_id, cycles.c.cycle_id == cycle_id
                    )
                )
            ).first() is None:
                raise DisbursementError("payments.cycle.not_found", f"no cycle {cycle_id} in {programme_id}")
            await connection.execute(
                insert(batches).values(
                    batch_id=batch_id,
                    programme_id=programme_id,
                    cycle_id=cycle_id,
                    provider=provider,
                    source=source,
                    created_by=actor,
                    created_at=now,
                )
            )
            seen: set[str] = set()
            chunk: list[dict[str, Any]] = []

            async def flush() -> int:
                if not chunk:
                    return 0
                statement = _insert_ignoring_conflicts(connection, items).returning(items.c.idempotency_key)
                stored = {row.idempotency_key for row in await connection.execute(statement, chunk)}
                for row in chunk:
                    if row["idempotency_key"] not in stored:
                        found.append(
                            LineProblem(
                                row["line"],
                                "payments.item.duplicate",
                                "this entitlement is already in a batch",
                                row["idempotency_key"],
                            )
                        )
                chunk.clear()
                return len(stored)

            for line in lines:
                key = idempotency_key(programme_id, cycle_id, line.beneficiary_id, line.entitlement)
                if key in seen:
                    found.append(
                        LineProblem(line.line, "payments.item.duplicate", "this entitlement is repeated", key)
                    )
                    continue
                seen.add(key)
                chunk.append(
                    {
                        "batch_id": batch_id,
                        "line": line.line,
                        "idempotency_key": key,
                        "beneficiary_id": line.beneficiary_id,
                        "entitlement": line.entitlement,
                        "financial_address": str(line.financial_address) if line.financial_address else None,
                        "payee_name": line.payee_name,
                        "amount_minor": line.amount.minor_units,
                        "currency": line.amount.currency,
                        "state": ItemState.PENDING.value,
                        "attempts": 0,
                        "updated_at": now,
                    }
                )
                if len(chunk) >= _UPLOAD_CHUNK:
                    accepted += await flush()
            accepted += await flush()
            if not accepted:
                # Every line was refused: keep no empty batch behind, the report says it all.
                await connection.execute(batches.delete().where(batches.c.batch_id == batch_id))
        return BatchReceipt(
            batch_id if accepted else None, accepted, tuple(sorted(found, key=lambda problem: problem.line))
        )

    async def open_batches(self, programme_id: str, cycle_id: str, provider: str) -> list[str]:
        """Batches of a cycle for a provider with items still pending, to send or to settle, oldest first."""
        busy = [
            state.value
            for state in (ItemState.PENDING, ItemState.READY, ItemState.SUBMITTING, ItemState.UNKNOWN)
        ]
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(batches.c.batch_id)
                .where(
                    batches.c.programme_id == programme_id,
                    batches.c.cycle_id == cycle_id,
                    batches.c.provider == provider,
                    select(items.c.item_id)
                    .where(items.c.batch_id == batches.c.batch_id, items.c.state.in_(busy))
                    .exists(),
                )
                .order_by(batches.c.created_at)
            )
            return list(rows.scalars())

    async def batch(self, batch_id: str) -> Mapping[str, Any]:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(batches).where(batches.c.batch_id == batch_id))).first()
        if row is None:
            raise DisbursementError("payments.batch.not_found", f"no batch {batch_id}")
        return row._asdict()

    async def preflight(
        self,
        batch_id: str,
        provider: PaymentProvider,
        accounts: BeneficiaryAccounts | None = None,
        *,
        actor: str = "preflight",
    ) -> PreflightReport:
        """Check every pending item before any money moves: an address (given, or the beneficiary's
        choice as of the cycle's cut-off), that the provider reaches and can pay it, and the payee's
        name where the provider discloses the holder's. Refusals are reported item by item."""
        batch = await self.batch(batch_id)
        async with self.engine.connect() as connection:
            cutoff = (
                await connection.execute(
                    select(cycles.c.cutoff_at).where(
                        cycles.c.programme_id == batch["programme_id"], cycles.c.cycle_id == batch["cycle_id"]
                    )
                )
            ).scalar_one()
        # SQLite hands back naive datetimes; every time here is UTC.
        cutoff = cutoff if cutoff.tzinfo is not None else cutoff.replace(tzinfo=UTC)
        capabilities = provider.capabilities
        resolutions: dict[FinancialAddress, tuple[str | None, str | None]] = {}

        async def resolve(address: FinancialAddress) -> None:
            try:
                answer = await provider.resolve(address)
            except ProviderError as error:
                resolutions[address] = ("unchecked:" + error.reason_code, None)
                return
            resolutions[address] = (
                None if answer.resolved else answer.reason_code or "payments.address.not_found",
                answer.holder_name,
            )

        async def resolver(pending: Iterator[FinancialAddress]) -> None:
            # A few workers share one iterator: as concurrent as a task per address, without the
            # cost of a task for each of a million addresses.
            for address in pending:
                await resolve(address)

        problems: list[LineProblem] = []
        ready_total = invalid_total = unchecked_total = 0
        last_id = 0
        while True:
            async with self.engine.connect() as connection:
                page = list(
                    await connection.execute(
                        select(
                            items.c.item_id,
                            items.c.line,
                            items.c.idempotency_key,
                            items.c.beneficiary_id,
                            items.c.financial_address,
                            items.c.payee_name,
                            items.c.currency,
                        )
                        .where(
                            items.c.batch_id == batch_id,
                            items.c.state == ItemState.PENDING.value,
                            items.c.item_id > last_id,
                        )
                        .order_by(items.c.item_id)
                        .limit(_PREFLIGHT_PAGE)
                    )
                )
            if not page:
                break
            last_id = page[-1].item_id
            chosen: Mapping[str, FinancialAddress] = {}
            unaddressed = [row.beneficiary_id for row in page if row.financial_address is None]
            if unaddressed and accounts is not None:
                chosen = await accounts.financial_addresses(unaddressed, as_of=cutoff)
            addresses: dict[int, FinancialAddress | None] = {}
            for row in page:
                addresses[row.item_id] = (
                    FinancialAddress.parse(row.financial_address)
                    if row.financial_address is not None
                    else chosen.get(row.beneficiary_id)
                )
            pending = iter({a for a in addresses.values() if a is not None and a not in resolutions})
            await asyncio.gather(*(resolver(pending) for _ in range(_RESOLVE_CONCURRENCY)))
            refused: dict[str, list[int]] = defaultdict(list)
            ready: list[int] = []
            looked_up: list[dict[str, Any]] = []
            for row in page:
                address = addresses[row.item_id]
                reason: str | None = None
                if address is None or (
                    capabilities.address_schemes and address.provider not in capabilities.address_schemes
                ):
                    reason = "payments.address.not_found"
                elif capabilities.currencies and row.currency not in capabilities.currencies:
                    reason = "payments.currency.not_supported"
                else:
                    reason, holder = resolutions[address]
                    if (
                        reason is None
                        and row.payee_name
                        and holder
                        and not names_match(row.payee_name, holder)
                    ):
                        reason = "payments.payee.name_mismatch"
                if reason is not None and reason.startswith("unchecked:"):
                    unchecked_total += 1
                    problems.append(
                        LineProblem(
                            row.line,
                            reason.removeprefix("unchecked:"),
                            "the provider could not check this address",
                            row.idempotency_key,
                        )
                    )
                    continue
                if reason is None:
                    ready.append(row.item_id)
                    if row.financial_address is None and address is not None:
                        looked_up.append({"target": row.item_id, "address": str(address)})
                else:
                    refused[reason].append(row.item_id)
                    problems.append(
                        LineProblem(row.line, reason, "refused by the pre-flight", row.idempotency_key)
                    )
            now = self.clock()
            async with self.engine.begin() as connection:
                if looked_up:
                    await connection.execute(
                        update(items)
                        .where(items.c.item_id == bindparam("target"))
                        .values(financial_address=bindparam("address")),
                        looked_up,
                    )
                ready_total += len(
                    await move(
                        connection,
                        ready,
                        ItemState.PENDING,
                        ItemState.READY,
                        reason_code=None,
                        actor=actor,
                        at=now,
                        batch_id=batch_id,
                        values={"next_attempt_at": now},
                    )
                )
                for reason, ids in refused.items():
                    invalid_total += len(
                        await move(
                            connection,
                            ids,
                            ItemState.PENDING,
                            ItemState.INVALID,
                            reason_code=reason,
                            actor=actor,
                            at=now,
                            batch_id=batch_id,
                        )
                    )
        async with self.engine.begin() as connection:
            await connection.execute(
                update(batches).where(batches.c.batch_id == batch_id).values(preflight_at=self.clock())
            )
        return PreflightReport(batch_id, ready_total, invalid_total, tuple(problems), unchecked_total)

    async def status(self, batch_id: str) -> BatchStatus:
        """Counts per state and sums per currency and state."""
        batch = await self.batch(batch_id)
        async with self.engine.connect() as connection:
            rows = list(
                await connection.execute(
                    select(items.c.state, items.c.currency, func.count(), func.sum(items.c.amount_minor))
                    .where(items.c.batch_id == batch_id)
                    .group_by(items.c.state, items.c.currency)
                )
            )
        counts: dict[str, int] = defaultdict(int)
        sums: dict[str, dict[str, Money]] = defaultdict(dict)
        for state, currency, count, total in rows:
            counts[state] += int(count)
            sums[currency][state] = money_from_minor(int(total), currency)
        return BatchStatus(
            batch_id, batch["programme_id"], batch["cycle_id"], batch["provider"], dict(counts), dict(sums)
        )

    async def item(self, idempotency_key: str) -> Mapping[str, Any]:
        """One item and its transitions, oldest first."""
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(select(items).where(items.c.idempotency_key == idempotency_key))
            ).first()
            if row is None:
                raise DisbursementError("payments.item.not_found", "no item with this key")
            history = list(
                await connection.execute(
                    select(transitions)
                    .where(transitions.c.item_id == row.item_id)
                    .order_by(transitions.c.transition_id)
                )
            )
        document = row._asdict()
        document["history"] = [entry._asdict() for entry in history]
        return document

    async def cancel_unsent(self, batch_id: str, *, actor: str) -> int:
        """Cancel every item of a batch not yet handed to the provider (pending or ready)."""
        await self.batch(batch_id)
        now = self.clock()
        total = 0
        async with self.engine.begin() as connection:
            for state in (ItemState.PENDING, ItemState.READY):
                ids = list(
                    (
                        await connection.execute(
                            select(items.c.item_id).where(
                                items.c.batch_id == batch_id, items.c.state == state.value
                            )
                        )
                    ).scalars()
                )
                total += len(
                    await move(
                        connection,
                        ids,
                        state,
                        ItemState.CANCELLED,
                        reason_code="payments.item.cancelled",
                        actor=actor,
                        at=now,
                        batch_id=batch_id,
                    )
                )
        return total

    async def settle_review(
        self, provider: PaymentProvider, idempotency_key: str, *, actor: str, retry: bool = False
    ) -> ItemState:
        """Settle an item in MANUAL_REVIEW from what the provider now says (a status query, where it has
        one); ``retry`` sends it again only when the provider confirms it never received it (or, for a
        provider that cannot be asked, when an operator checked with it out of band)."""
        item = await self.item(idempotency_key)
        if item["state"] != ItemState.MANUAL_REVIEW.value:
            raise DisbursementError("payments.item.invalid_state", f"a {item['state']} item is not in review")
        target: ItemState | None = None
        reason: str | None = None
        if provider.capabilities.status_query:
            answer = await provider.status(idempotency_key)
            reason = answer.reason_code
            target = {
                "completed": ItemState.COMPLETED,
                "rejected": ItemState.REJECTED,
                "cancelled": ItemState.CANCELLED,
                "not_found": ItemState.READY if retry else None,
            }.get(answer.state.value)
        elif retry:
            target = ItemState.READY
        if target is None:
            raise DisbursementError(
                "payments.outcome.unknown", "the provider's answer does not settle this item yet"
            )
        now = self.clock()
        async with self.engine.begin() as connection:
            await move(
                connection,
                [item["item_id"]],
                ItemState.MANUAL_REVIEW,
                target,
                reason_code=reason,
                actor=actor,
                at=now,
                batch_id=item["batch_id"],
                values={"next_attempt_at": now} if target is ItemState.READY else None,
            )
        return target

    async def reverse(
        self, provider: PaymentProvider, idempotency_key: str, reason: str, *, actor: str
    ) -> ItemState:
        """Ask the provider to take back a completed payment; the item becomes REVERSED."""
        item = await self.item(idempotency_key)
        if item["state"] != ItemState.COMPLETED.value:
            raise DisbursementError(
                "payments.item.invalid_state", f"a {item['state']} item cannot be reversed"
            )
        answer = await provider.reverse(idempotency_key, reason)
        async with self.engine.begin() as connection:
            await move(
                connection,
                [item["item_id"]],
                ItemState.COMPLETED,
                ItemState.REVERSED,
                reason_code=answer.reason_code or "payments.item.reversed",
                actor=actor,
                at=self.clock(),
                batch_id=item["batch_id"],
            )
        return ItemState.REVERSED
