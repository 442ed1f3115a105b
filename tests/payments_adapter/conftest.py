"""Fixtures of the payments tests: the engine's database migrated, and a sandbox ledger of its own
(a SQLite file, or a fresh PostgreSQL schema when the engine runs on PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dpi import db
from payments_adapter.block import MIGRATIONS


async def _admin(url: str, command: str) -> None:
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await connection.execute(command)
    finally:
        await connection.close()


@pytest.fixture
async def ledger_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The sandbox's own database, beside (never inside) the engine's."""
    if make_url(database_url).get_backend_name() == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sandbox-ledger.sqlite3'}"
        return
    schema = f"dpi_sandbox_{uuid.uuid4().hex[:16]}"
    try:
        yield (
            make_url(database_url)
            .update_query_dict({"search_path": schema})
            .render_as_string(hide_password=False)
        )
    finally:
        await _admin(database_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    try:
        yield engine
    finally:
        await engine.dispose()
