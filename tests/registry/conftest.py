"""Fixtures shared by the registry tests: a migrated database (SQLite and, when configured, PostgreSQL),
the registry service over the shipped definitions, and synthetic records of each registry."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi import db
from dpi.app import DpiApp, create_app, migrate
from dpi.settings import Settings
from registry.block import registry_block
from registry.definition import load_definitions
from registry.service import RegistryService
from registry.synthetic import generate
from tests.consent.conftest import TokenIssuer

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


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
async def app(settings: Settings, issuer: TokenIssuer) -> DpiApp:
    block = registry_block(token_verifier=lambda _settings: issuer.verifier())
    await migrate(settings, [block])
    return create_app(settings, blocks=[block])


@pytest.fixture
async def client(app: DpiApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` with its lifespan running, as a server would."""
    async with AsyncTestClient(app=app) as client:
        yield client
