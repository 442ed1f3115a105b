"""The transactional outbox every block uses to announce events (DESIGN section 5).

``enqueue`` writes in the caller's transaction, so an event exists exactly when the change it
announces was committed. A dispatcher ``claim``s a batch under a lease (other dispatchers skip
those rows), delivers, then ``mark_delivered`` or ``mark_failed`` with the time to retry.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dpi.models import OutboxMessage

__all__ = ["Attempt", "backoff", "claim", "enqueue", "mark_delivered", "mark_failed", "record_attempt"]


def _now() -> datetime:
    return datetime.now(UTC)


async def enqueue(
    session: AsyncSession, topic: str, payload: dict[str, Any], *, key: str | None = None
) -> OutboxMessage:
    """Add an event to the caller's transaction; it becomes visible to dispatchers on commit."""
    if not topic or len(topic) > 200:
        raise ValueError("topic must be 1 to 200 characters")
    now = _now()
    message = OutboxMessage(
        topic=topic, message_key=key, payload=payload, created_at=now, available_at=now, attempts=0
    )
    session.add(message)
    await session.flush()
    return message


async def claim(
    session: AsyncSession,
    *,
    topics: Sequence[str] | None = None,
    limit: int = 100,
    lease: timedelta = timedelta(seconds=60),
) -> list[OutboxMessage]:
    """Take up to ``limit`` undelivered, available messages (of ``topics``, or any), oldest first.

    Each is leased for ``lease``: other dispatchers skip it until then.

    On PostgreSQL the rows are locked with SKIP LOCKED, so concurrent dispatchers get disjoint
    batches; SQLite serialises writers, which gives the same guarantee.
    """
    now = _now()
    # One UPDATE ... RETURNING: the choice of rows and their lease happen in one statement, so two
    # dispatchers cannot both take a row between a read and a write.
    pending = select(OutboxMessage.id).where(
        OutboxMessage.delivered_at.is_(None), OutboxMessage.available_at <= now
    )
    if topics is not None:
        pending = pending.where(OutboxMessage.topic.in_(list(topics)))
    candidates = (
        pending.order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True).scalar_subquery()
    )
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates))
        .values(available_at=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    messages = list((await session.scalars(statement)).all())
    return sorted(messages, key=lambda message: message.id)


async def mark_delivered(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(delivered_at=_now())
        )


async def mark_failed(session: AsyncSession, message_id: int, error: str, retry_at: datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(available_at=retry_at, last_error=error[:2000])
    )


class Attempt(enum.StrEnum):
    """What became of a delivery attempt recorded by :func:`record_attempt`."""

    DELIVERED = "delivered"
    RETRY = "retry"
    GIVEN_UP = "given_up"


# A message given up on stays in the outbox with its last error for operators, never claimed again.
_NEVER: Final = timedelta(days=3650)


def backoff(delays: Sequence[timedelta], attempts: int) -> timedelta:
    """The wait after attempt number ``attempts`` (1 for the first): ``delays`` in turn, then its last."""
    return delays[min(max(attempts, 1), len(delays)) - 1]


async def record_attempt(
    session: AsyncSession,
    message: OutboxMessage,
    problem: str | None,
    *,
    now: datetime,
    delays: Sequence[timedelta],
    max_attempts: int,
) -> Attempt:
    """Record the outcome of delivering a claimed ``message``: delivered when ``problem`` is None, else
    retried after :func:`backoff`, or given up once it has had ``max_attempts`` attempts."""
    if problem is None:
        await mark_delivered(session, [message.id])
        return Attempt.DELIVERED
    if message.attempts >= max_attempts:
        await mark_failed(session, message.id, problem, now + _NEVER)
        return Attempt.GIVEN_UP
    await mark_failed(session, message.id, problem, now + backoff(delays, message.attempts))
    return Attempt.RETRY
