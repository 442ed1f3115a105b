"""Fixtures shared by every test: a database on SQLite and, when configured, on PostgreSQL.

Set ``DPI_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) and
every test that takes ``database_url`` runs twice: once on a SQLite file, once on PostgreSQL in a
fresh schema created for that test and dropped after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from dpi.settings import Settings

_POSTGRES_URL = os.environ.get("DPI_TEST_DATABASE_URL", "").strip()
_BACKENDS = ["sqlite", "postgresql"] if _POSTGRES_URL else ["sqlite"]


async def _admin(command: str) -> None:
    url = make_url(_POSTGRES_URL)
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await connection.execute(command)
    finally:
        await connection.close()


@pytest.fixture(params=_BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
        return
    # A fresh schema per test (the URL's search_path): as isolated as a database for our tables, and
    # an order of magnitude cheaper to create and drop than one.
    schema = f"dpi_test_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            make_url(_POSTGRES_URL)
            .update_query_dict({"search_path": schema})
            .render_as_string(hide_password=False)
        )
    finally:
        await _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=database_url)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on the embedded SQLite database only, for tests that are not about storage."""
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own DPI_* variables must not change what the tests see.
    for name in list(os.environ):
        if name.startswith("DPI_") and name != "DPI_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
