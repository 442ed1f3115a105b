"""The disbursement engine: exactly-once delivery of a batch's items to a payment provider.

The protocol, for every item (after the lessons of Mojaloop's and OpenG2P's double-payment reports):

1. the item is marked SUBMITTING, with a lease, and that is **committed before the provider is called**;
2. the provider's answer is recorded afterwards (ACCEPTED, COMPLETED, REJECTED; a retryable error puts
   it back to READY after an exponential back-off with jitter, up to a maximum of attempts);
3. an item whose answer was lost (timeout, connection reset, :class:`OutcomeUnknownError`) or that is
   found SUBMITTING with an expired lease (the process died) is UNKNOWN, and only a **status query**
   settles it: NOT_FOUND means it never arrived and it is submitted again under the same key; anything
   else is taken as the answer. An item is never resent blindly.

Providers whose :class:`Capabilities` say ``single_flight`` (no idempotency or no status query) are
driven one item at a time and an unknown outcome goes to MANUAL_REVIEW. Everything else works in
bulk: claims and state changes are one statement per chunk, and instructions go out through
``submit_many`` in slices of the adapter's ``max_bulk``.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_adapter.contract import (
    FinancialAddress,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderError,
    ProviderState,
    ProviderStatus,
)
from payments_adapter.models import ItemState, items
from payments_adapter.service import money_from_minor, move

__all__ = ["ACTIVE_STATES", "Disburser", "RetryPolicy"]

ACTIVE_STATES: Final = frozenset({ItemState.READY, ItemState.SUBMITTING, ItemState.UNKNOWN})
"""States the disbursement loop drives; it stops when no item of the batch is in one of them."""

_ANSWERED: Final = {
    ProviderState.ACCEPTED: ItemState.ACCEPTED,
    ProviderState.COMPLETED: ItemState.COMPLETED,
    ProviderState.REJECTED: ItemState.REJECTED,
    ProviderState.CANCELLED: ItemState.CANCELLED,
    ProviderState.REVERSED: ItemState.REVERSED,
    ProviderState.RETURNED: ItemState.RETURNED,
}
_IDLE_PAUSE: Final = timedelta(milliseconds=200)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter for retryable errors: attempt ``n`` waits between half and all
    of ``min(cap, base * 2**(n-1))``; after ``max_attempts`` the item FAILS with ``final_reason_code``."""

    max_attempts: int = 5
    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)
    final_reason_code: str = "payments.attempts.exhausted"

    def delay(self, attempt: int, generator: random.Random) -> timedelta:
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        milliseconds = ceiling // timedelta(milliseconds=1)
        return timedelta(milliseconds=generator.randrange(milliseconds // 2, milliseconds + 1))


@dataclass(frozen=True)
class _Outcome:
    state: ItemState
    reason_code: str | None
    retry_at: datetime | None = None
    provider_reference: str | None = None


class Disburser:
    """Drives one batch's items through a provider until none is left to send or settle."""

    def __init__(
        self,
        engine: AsyncEngine,
        provider: PaymentProvider,
        *,
        actor: str = "engine",
        chunk_size: int = 1000,
        lease: timedelta = timedelta(seconds=60),
        retry: RetryPolicy = RetryPolicy(),
        status_concurrency: int = 32,
        clock: Callable[[], datetime] = _now,
        seed: int | None = None,
    ) -> None:
        self.engine = engine
        self.provider = provider
        self.actor = actor
        capabilities = provider.capabilities
        self.single_flight = capabilities.single_flight
        self.bulk = 1 if self.single_flight else max(1, capabilities.max_bulk)
        self.chunk_size = 1 if self.single_flight else max(1, chunk_size)
        self.lease = lease
        self.retry = retry
        self.clock = clock
        self._limiter = asyncio.Semaphore(status_concurrency)
        self._random = random.Random(seed)
        self._cursor: dict[str, int] = {}
        self.progressed = 0

    async def run(
        self,
        batch_id: str,
        *,
        progress: Callable[[int], None] | None = None,
        wait: bool = True,
        settle_accepted: bool = False,
    ) -> None:
        """Send and settle until no item of the batch is READY, SUBMITTING or UNKNOWN (nor ACCEPTED
        when ``settle_accepted``). With ``wait`` false it returns instead of sleeping through a
        back-off or someone else's lease. ``progress`` receives how many items left the loop's hands."""

        def advance(count: int) -> None:
            self.progressed += count
            if progress is not None and count:
                progress(count)

        while True:
            worked = await self._expire_leases(batch_id, advance)
            worked += await self._settle(batch_id, ItemState.UNKNOWN, advance)
            if settle_accepted:
                worked += await self._settle(batch_id, ItemState.ACCEPTED, advance)
            claimed = await self._claim(batch_id)
            if claimed:
                await self._submit(batch_id, claimed, advance)
                continue
            if worked:
                continue
            waiting_until = await self._next_due(batch_id, settle_accepted)
            if waiting_until is None or not wait:
                return
            pause = max(timedelta(0), min(waiting_until - self.clock(), _IDLE_PAUSE * 5))
            await asyncio.sleep(max(pause, _IDLE_PAUSE).total_seconds())

    async def _next_due(self, batch_id: str, settle_accepted: bool) -> datetime | None:
        states = [state.value for state in ACTIVE_STATES]
        if settle_accepted:
            states.append(ItemState.ACCEPTED.value)
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        func.count(), func.min(items.c.next_attempt_at), func.min(items.c.lease_until)
                    ).where(items.c.batch_id == batch_id, items.c.state.in_(states))
                )
            ).one()
        count, next_attempt, lease_until = row
        if not count:
            return None
        candidates = [moment for moment in (next_attempt, lease_until) if moment is not None]
        return min((_aware(moment) for moment in candidates), default=self.clock())

    async def _expire_leases(self, batch_id: str, advance: Callable[[int], None]) -> int:
        """SUBMITTING items whose lease ran out belong to a worker that died: their outcome is unknown."""
        now = self.clock()
        target = ItemState.MANUAL_REVIEW if self.single_flight else ItemState.UNKNOWN
        async with self.engine.begin() as connection:
            ids = list(
                (
                    await connection.execute(
                        select(items.c.item_id).where(
                            items.c.batch_id == batch_id,
                            items.c.state == ItemState.SUBMITTING.value,
                            items.c.lease_until < now,
                        )
                    )
                ).scalars()
            )
            moved = await move(
                connection,
                ids,
                ItemState.SUBMITTING,
                target,
                reason_code="payments.outcome.unknown",
                actor=f"{self.actor}:lease-expired",
                at=now,
                batch_id=batch_id,
                values={"lease_until": None, "next_attempt_at": now},
            )
        if target is ItemState.MANUAL_REVIEW:
            advance(len(moved))
        return len(moved)

    async def _claim(self, batch_id: str) -> Sequence[Any]:
        """Mark up to a chunk of due READY items SUBMITTING, and commit that, before any call."""
        claimed = await self._claim_after(batch_id, self._cursor.get(batch_id, 0))
        if not claimed and self._cursor.get(batch_id, 0):
            # Items behind the cursor (back from a back-off or a NOT_FOUND) get their turn.
            claimed = await self._claim_after(batch_id, 0)
        if claimed:
            self._cursor[batch_id] = claimed[-1].item_id
        return claimed

    async def _claim_after(self, batch_id: str, cursor: int) -> Sequence[Any]:
        now = self.clock()
        lease_until = now + self.lease
        # The cursor keeps each claim from walking again over the items already sent: PostgreSQL may
        # well read READY items in primary-key order, and without it a batch would cost O(n²).
        candidates = (
            select(items.c.item_id)
            .where(
                items.c.batch_id == batch_id,
                items.c.state == ItemState.READY.value,
                items.c.next_attempt_at <= now,
                items.c.item_id > cursor,
            )
            .order_by(items.c.item_id)
            .limit(self.chunk_size)
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as connection:
            ids = list((await connection.execute(candidates)).scalars())
            rows = await move(
                connection,
                ids,
                ItemState.READY,
                ItemState.SUBMITTING,
                reason_code=None,
                actor=self.actor,
                at=now,
                batch_id=batch_id,
                values={"lease_until": lease_until, "attempts": items.c.attempts + 1},
                returning=(
                    items.c.financial_address,
                    items.c.payee_name,
                    items.c.amount_minor,
                    items.c.currency,
                    items.c.attempts,
                    items.c.lease_until,
                ),
            )
        return sorted(rows, key=lambda row: row.item_id)

    def _instruction(self, row: Any, batch_id: str) -> PaymentInstruction:
        return PaymentInstruction(
            idempotency_key=row.idempotency_key,
            payee=FinancialAddress.parse(row.financial_address),
            amount=money_from_minor(row.amount_minor, row.currency),
            payee_name=row.payee_name,
            batch_reference=batch_id,
        )

    def _after_error(self, error: ProviderError, attempts: int, now: datetime) -> _Outcome:
        if isinstance(error, OutcomeUnknownError):
            state = ItemState.MANUAL_REVIEW if self.single_flight else ItemState.UNKNOWN
            return _Outcome(state, error.reason_code)
        if error.reason_code == "payments.request.duplicate":
            # Our key already pays something else at the provider: nobody may guess which is right.
            return _Outcome(ItemState.MANUAL_REVIEW, error.reason_code)
        if error.retryable:
            if attempts >= self.retry.max_attempts:
                return _Outcome(ItemState.FAILED, self.retry.final_reason_code)
            return _Outcome(
                ItemState.READY, error.reason_code, now + self.retry.delay(attempts, self._random)
            )
        return _Outcome(ItemState.REJECTED, error.reason_code)

    def _after_answer(self, answer: ProviderStatus) -> _Outcome:
        state = _ANSWERED.get(answer.state)
        if state is None:
            # A submission answered NOT_FOUND makes no sense; treat it as an answer nobody can trust.
            return _Outcome(
                ItemState.MANUAL_REVIEW if self.single_flight else ItemState.UNKNOWN,
                "payments.provider.invalid_response",
            )
        return _Outcome(state, answer.reason_code, provider_reference=answer.provider_reference)

    async def _submit(self, batch_id: str, rows: Sequence[Any], advance: Callable[[int], None]) -> None:
        outcomes: dict[int, _Outcome] = {}
        for start in range(0, len(rows), self.bulk):
            part = rows[start : start + self.bulk]
            instructions = [self._instruction(row, batch_id) for row in part]
            answers: list[ProviderStatus | ProviderError]
            try:
                if self.single_flight:
                    answers = [await self.provider.submit(instructions[0])]
                else:
                    answers = await self.provider.submit_many(instructions)
                if len(answers) != len(part):
                    raise OutcomeUnknownError("the provider answered a different number of items")
            except ProviderError as error:
                answers = [error] * len(part)
            except Exception as error:
                answers = [OutcomeUnknownError(f"the provider call failed: {type(error).__name__}")] * len(
                    part
                )
            now = self.clock()
            for row, answer in zip(part, answers, strict=True):
                outcomes[row.item_id] = (
                    self._after_error(answer, row.attempts, now)
                    if isinstance(answer, ProviderError)
                    else self._after_answer(answer)
                )
        tokens = {row.item_id: row.lease_until for row in rows}
        await self._record(batch_id, ItemState.SUBMITTING, outcomes, advance, tokens)

    async def _record(
        self,
        batch_id: str,
        from_state: ItemState,
        outcomes: dict[int, _Outcome],
        advance: Callable[[int], None],
        tokens: dict[int, datetime] | None = None,
    ) -> None:
        """Write the answers: one statement per (state, reason, retry time, lease) group."""
        groups: dict[tuple[ItemState, str | None, datetime | None, datetime | None], list[int]] = defaultdict(
            list
        )
        for item_id, outcome in outcomes.items():
            token = tokens.get(item_id) if tokens else None
            groups[(outcome.state, outcome.reason_code, outcome.retry_at, token)].append(item_id)
        now = self.clock()
        async with self.engine.begin() as connection:
            for (state, reason, retry_at, token), ids in groups.items():
                values: dict[str, Any] = {"lease_until": None}
                if state in (ItemState.READY, ItemState.UNKNOWN, ItemState.ACCEPTED):
                    values["next_attempt_at"] = retry_at or now
                moved = await move(
                    connection,
                    ids,
                    from_state,
                    state,
                    reason_code=reason,
                    actor=self.actor,
                    at=now,
                    batch_id=batch_id,
                    guard=(items.c.lease_until == token) if token is not None else None,
                    values=values,
                )
                if state not in ACTIVE_STATES:
                    advance(len(moved))

    async def _settle(self, batch_id: str, state: ItemState, advance: Callable[[int], None]) -> int:
        """Ask the provider about due items in ``state`` (UNKNOWN or ACCEPTED) and record its answers."""
        now = self.clock()
        async with self.engine.connect() as connection:
            rows = list(
                await connection.execute(
                    select(items.c.item_id, items.c.idempotency_key, items.c.attempts)
                    .where(
                        items.c.batch_id == batch_id,
                        items.c.state == state.value,
                        items.c.next_attempt_at <= now,
                    )
                    .order_by(items.c.item_id)
                    .limit(self.chunk_size)
                )
            )
        if not rows:
            return 0
        if self.single_flight and state is ItemState.UNKNOWN:
            await self._record(
                batch_id,
                state,
                {row.item_id: _Outcome(ItemState.MANUAL_REVIEW, "payments.outcome.unknown") for row in rows},
                advance,
            )
            return len(rows)

        async def ask(key: str) -> ProviderStatus | ProviderError:
            async with self._limiter:
                try:
                    return await self.provider.status(key)
                except ProviderError as error:
                    return error

        answers = await asyncio.gather(*(ask(row.idempotency_key) for row in rows))
        later = now + self.retry.delay(1, self._random)
        outcomes: dict[int, _Outcome] = {}
        waiting: list[int] = []
        for row, answer in zip(rows, answers, strict=True):
            if isinstance(answer, ProviderError):
                waiting.append(row.item_id)
            elif answer.state is ProviderState.NOT_FOUND and state is ItemState.UNKNOWN:
                # It never arrived: sending it again under the same key is safe, and only now.
                if row.attempts >= self.retry.max_attempts:
                    outcomes[row.item_id] = _Outcome(ItemState.FAILED, self.retry.final_reason_code)
                else:
                    outcomes[row.item_id] = _Outcome(ItemState.READY, "payments.outcome.unknown", now)
            elif answer.state is ProviderState.NOT_FOUND or (
                answer.state is ProviderState.ACCEPTED and state is ItemState.ACCEPTED
            ):
                waiting.append(row.item_id)
            else:
                outcomes[row.item_id] = self._after_answer(answer)
        if waiting:
            async with self.engine.begin() as connection:
                await connection.execute(
                    update(items).where(items.c.item_id.in_(waiting)).values(next_attempt_at=later)
                )
        await self._record(batch_id, state, outcomes, advance)
        return len(outcomes)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
