"""Blocks built for the kernel's tests: one with a migration branch, one whose route fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import get
from litestar.types import ControllerRouterHandler

from dpi.blocks import Block, BlockContext
from dpi.contract import Contract

MIGRATIONS = Path(__file__).parent / "block_migrations"


class _Unexpected(RuntimeError):
    pass


@get("/boom", opt=Contract("fails on purpose", {200: "health"}).as_opt())
async def boom() -> dict[str, Any]:
    raise _Unexpected("secret value Amina 1990-01-01 in the exception text")


@get("/undocumented")
async def undocumented() -> dict[str, Any]:
    return {"status": "pass"}


def _failing_routes(_context: BlockContext) -> Sequence[ControllerRouterHandler]:
    return [boom]


def _undocumented_routes(_context: BlockContext) -> Sequence[ControllerRouterHandler]:
    return [undocumented]


LIFESPAN_LOG: list[str] = []


@asynccontextmanager
async def _ledger_lifespan(context: BlockContext) -> AsyncIterator[None]:
    LIFESPAN_LOG.append(f"start {context.settings.service_name}")
    yield
    LIFESPAN_LOG.append("stop")


ledger_block = Block(
    name="ledger", prefix="/ledger", version="1.2.3", migrations=MIGRATIONS, lifespan=_ledger_lifespan
)
failing_block = Block(name="failing", prefix="/failing", version="0.0.1", routes=_failing_routes)
undocumented_block = Block(
    name="undocumented", prefix="/undocumented", version="0.0.1", routes=_undocumented_routes
)
