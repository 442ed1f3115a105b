"""Migrations per block branch and the transactional outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool, QueuePool

from dpi import db, outbox
from dpi.models import OutboxMessage
from tests.dpi.kernel_fixtures import MIGRATIONS


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


async def test_upgrade_applies_kernel_and_block_branches(engine: AsyncEngine) -> None:
    before = await db.migration_state(engine, [MIGRATIONS])
    assert before.current == frozenset()
    assert before.pending == {"dpi_0001", "ledger_0001"}
    after = await db.upgrade(engine, [MIGRATIONS])
    assert after.is_current
    assert after.current == {"dpi_0001", "ledger_0001"}
    async with engine.connect() as connection:
        await connection.execute(text("SELECT count(*) FROM ledger_entry"))
        await connection.execute(text("SELECT count(*) FROM dpi_outbox"))


async def test_upgrade_is_idempotent_and_adds_new_branches_later(engine: AsyncEngine) -> None:
    first = await db.upgrade(engine)
    assert first.current == {"dpi_0001"}
    assert (await db.upgrade(engine)).current == {"dpi_0001"}
    assert not (await db.migration_state(engine, [MIGRATIONS])).is_current
    assert (await db.upgrade(engine, [MIGRATIONS])).current == {"dpi_0001", "ledger_0001"}


async def test_postgresql_search_path_keeps_tables_in_their_schema(
    engine: AsyncEngine, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("search_path is PostgreSQL's")
    await db.upgrade(engine)
    async with engine.connect() as connection:
        schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
        found = (
            (
                await connection.execute(
                    text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'dpi_outbox'")
                )
            )
            .scalars()
            .all()
        )
    assert schema.startswith("dpi_test_")
    assert schema in found
    assert "public" not in found


async def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/wal.sqlite3")
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
    finally:
        await engine.dispose()


async def _count(engine: AsyncEngine) -> int:
    async with db.session_factory(engine)() as session:
        return int((await session.scalar(select(func.count()).select_from(OutboxMessage))) or 0)


async def test_outbox_message_exists_only_if_the_transaction_commits(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    async with sessions() as session:
        await outbox.enqueue(session, "consent.withdrawn", {"consent": "c-1"})
        await session.rollback()
    assert await _count(engine) == 0
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, "consent.withdrawn", {"consent": "c-2"}, key="c-2")
    assert await _count(engine) == 1


async def test_outbox_claim_lease_and_retry(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    async with sessions() as session, session.begin():
        for number in range(3):
            await outbox.enqueue(session, "registry.updated", {"n": number})
    async with sessions() as session, session.begin():
        claimed = await outbox.claim(session, limit=2)
    assert [message.payload["n"] for message in claimed] == [0, 1]
    assert all(message.attempts == 1 for message in claimed)
    async with sessions() as session, session.begin():
        others = await outbox.claim(session, limit=10)
    assert [message.payload["n"] for message in others] == [2]
    async with sessions() as session, session.begin():
        await outbox.mark_delivered(session, [claimed[0].id])
        await outbox.mark_failed(
            session, claimed[1].id, "receiver answered 503", datetime.now(UTC) - timedelta(1)
        )
    async with sessions() as session, session.begin():
        retried = await outbox.claim(session, limit=10)
    assert [message.payload["n"] for message in retried] == [1]
    assert retried[0].attempts == 2
    assert retried[0].last_error == "receiver answered 503"


async def test_a_recorded_attempt_delivers_retries_after_its_backoff_or_gives_up(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    delays = (timedelta(seconds=10), timedelta(minutes=5))
    async with sessions() as session, session.begin():
        for number in range(3):
            await outbox.enqueue(session, "registry.updated", {"n": number})
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        first, second, third = await outbox.claim(session, limit=3)
        outcomes = [
            await outbox.record_attempt(session, first, None, now=now, delays=delays, max_attempts=2),
            await outbox.record_attempt(session, second, "HTTP 503", now=now, delays=delays, max_attempts=2),
            await outbox.record_attempt(session, third, "HTTP 503", now=now, delays=delays, max_attempts=1),
        ]
    assert outcomes == [outbox.Attempt.DELIVERED, outbox.Attempt.RETRY, outbox.Attempt.GIVEN_UP]
    async with sessions() as session:
        rows = {row.payload["n"]: row for row in await session.scalars(select(OutboxMessage))}
    assert rows[0].delivered_at is not None
    retry_at = rows[1].available_at.replace(tzinfo=UTC)
    assert abs(retry_at - (now + timedelta(seconds=10))) < timedelta(seconds=1)
    assert rows[1].last_error == "HTTP 503"
    assert rows[2].delivered_at is None
    assert rows[2].available_at.replace(tzinfo=UTC) > now + timedelta(days=3000)
    # Later attempts wait the last delay of the table.
    assert outbox.backoff(delays, 1) == timedelta(seconds=10)
    assert outbox.backoff(delays, 7) == timedelta(minutes=5)


async def test_concurrent_dispatchers_never_share_a_message(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    async with sessions() as session, session.begin():
        for number in range(40):
            await outbox.enqueue(session, "payments.status", {"n": number})

    async def dispatcher() -> list[int]:
        taken: list[int] = []
        while True:
            async with sessions() as session, session.begin():
                batch = await outbox.claim(session, limit=3)
            if not batch:
                return taken
            taken += [message.id for message in batch]

    results = await asyncio.gather(*(dispatcher() for _ in range(4)))
    every = [message_id for result in results for message_id in result]
    assert len(every) == 40
    assert len(set(every)) == 40


async def test_outbox_claim_by_topic(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, "consent.notification", {"n": 1})
        await outbox.enqueue(session, "registry.notification", {"n": 2})
    async with sessions() as session, session.begin():
        claimed = await outbox.claim(session, topics=["registry.notification"])
    assert [message.payload["n"] for message in claimed] == [2]


@pytest.mark.parametrize("topic", ["", "x" * 201])
async def test_outbox_refuses_bad_topics(engine: AsyncEngine, topic: str) -> None:
    await db.upgrade(engine)
    async with db.session_factory(engine)() as session:
        with pytest.raises(ValueError, match="topic"):
            await outbox.enqueue(session, topic, {})


async def test_sqlite_statements_keep_their_results_rowcounts_and_errors(tmp_path: object) -> None:
    """Each statement runs whole on the connection's thread: rows, rowcounts, many-row inserts, errors
    (the connection stays usable after one) and rollbacks behave as the driver's own."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/statements.sqlite3")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            await connection.execute(
                text("INSERT INTO item (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}, {"name": "c"}]
            )
            inserted = await connection.execute(text("INSERT INTO item (name) VALUES ('d') RETURNING id"))
            assert inserted.scalar_one() == 4
            updated = await connection.execute(text("UPDATE item SET name = name || '!' WHERE id > 2"))
            assert updated.rowcount == 2
        async with engine.connect() as connection:
            with pytest.raises(IntegrityError):
                await connection.execute(text("INSERT INTO item (name) VALUES ('a')"))
            await connection.rollback()
            await connection.execute(text("INSERT INTO item (name) VALUES ('e')"))
            await connection.rollback()
            names = (await connection.execute(text("SELECT name FROM item ORDER BY id"))).scalars().all()
            assert names == ["a", "b", "c!", "d!"]
            partial = await connection.execute(text("SELECT id FROM item ORDER BY id"))
            assert partial.fetchmany(3) == [(1,), (2,), (3,)]
            assert partial.fetchall() == [(4,)]
    finally:
        await engine.dispose()


async def test_engines_keep_a_pool_of_connections(database_url: str) -> None:
    """A file or server database keeps ``POOL_SIZE`` connections open; an in-memory SQLite database keeps
    its single one, and a caller's own pool class is left alone."""
    engine = db.create_engine(database_url)
    memory = db.create_engine("sqlite+aiosqlite:///:memory:")
    unpooled = db.create_engine(database_url, poolclass=NullPool)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == db.POOL_SIZE
        async with memory.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
        async with unpooled.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
        assert isinstance(unpooled.pool, NullPool)
    finally:
        for each in (engine, memory, unpooled):
            await each.dispose()
