"""Fixtures: our kernel app in-process, and a way to run the suite against any ASGI app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance_tests import Baseline, RunOptions, RunReport, run_conformance
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block
from dpi.settings import Settings
from tests.serving import serving

TARGET = "http://testserver"
# Small enough to keep each run around a second, large enough to reach the bodies' branches.
TEST_OPTIONS = RunOptions(max_examples=5, seed=7, timeout=10.0)

AppFactory = Callable[..., Awaitable[DpiApp]]
Runner = Callable[..., Awaitable[RunReport]]


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    """Build and migrate a kernel app (with ``blocks``) on its own SQLite file and key directory; pass
    ``database_url=`` to put it on another database."""
    counter = iter(range(1000))

    async def build(blocks: Sequence[Block] = (), **overrides: Any) -> DpiApp:
        var_dir = tmp_path / f"var-{next(counter)}"
        settings = Settings(var_dir=var_dir, **overrides)
        await migrate(settings, list(blocks))
        return create_app(settings, blocks=list(blocks))

    return build


@pytest.fixture
def conformance_of() -> Runner:
    """Run the suite in-process against an ASGI app, its lifespan started as a server would."""

    async def run(
        app: Any,
        profiles: Sequence[str] = ("platform",),
        options: RunOptions = TEST_OPTIONS,
        baseline: Baseline | None = None,
    ) -> RunReport:
        async with serving(app):
            return await run_conformance(
                TARGET, profiles, options=options, baseline=baseline, transport=httpx.ASGITransport(app=app)
            )

    return run


@pytest.fixture
async def kernel_report(make_app: AppFactory, conformance_of: Runner) -> RunReport:
    """The suite against our kernel on SQLite (for tests about reports, not storage)."""
    return await conformance_of(await make_app())


@pytest.fixture
async def kernel_report_on_each_database(
    make_app: AppFactory, conformance_of: Runner, database_url: str
) -> RunReport:
    """The suite against our kernel on SQLite and, when ``DPI_TEST_DATABASE_URL`` is set, on PostgreSQL."""
    return await conformance_of(await make_app(database_url=database_url))
