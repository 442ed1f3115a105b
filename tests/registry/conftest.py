"""Fixtures shared by the registry tests: a migrated database (SQLite and, when configured, PostgreSQL),
the registry service over the shipped definitions, and synthetic records of each registry."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi import db
from registry.definition import load_definitions
from registry.service import RegistryService
from registry.synthetic import generate

MIGRATIONS = Path(__file__).resolve().parents[2] / "registry" / "migrations"
SUBJECT_KEY = b"k" * 32
OFFICER = "officer-17"
SECOND_OFFICER = "officer-42"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession]) -> RegistryService:
    return RegistryService(sessions, load_definitions(), subject_key=SUBJECT_KEY)


def sample(code: str, index: int = 0) -> dict[str, Any]:
    """A valid synthetic record of registry ``code`` (a person for the civil registry)."""
    return copy.deepcopy(next(generate(code, 1, seed=7, start=index)))


@pytest.fixture
def person() -> dict[str, Any]:
    return sample("civil", 1)


def now() -> datetime:
    return datetime.now(UTC)
