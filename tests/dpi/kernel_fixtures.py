"""Blocks built for the kernel's tests: one with a migration branch, one whose route fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import get
from litestar.types import ControllerRouterHandler

from dpi.blocks import Block
from dpi.contract import Contract
from dpi.settings import Settings

MIGRATIONS = Path(__file__).parent / "block_migrations"


class _Unexpected(RuntimeError):
    pass


@get("/boom", opt=Contract("fails on purpose", {200: "health"}).as_opt())
async def boom() -> dict[str, Any]:
    raise _Unexpected("secret value Amina 1990-01-01 in the exception text")


@get("/undocumented")
async def undocumented() -> dict[str, Any]:
    return {"status": "pass"}


def _failing_routes(_settings: Settings) -> Sequence[ControllerRouterHandler]:
    return [boom]


def _undocumented_routes(_settings: Settings) -> Sequence[ControllerRouterHandler]:
    return [undocumented]


ledger_block = Block(name="ledger", prefix="/ledger", version="1.2.3", migrations=MIGRATIONS)
failing_block = Block(name="failing", prefix="/failing", version="0.0.1", routes=_failing_routes)
undocumented_block = Block(
    name="undocumented", prefix="/undocumented", version="0.0.1", routes=_undocumented_routes
)
