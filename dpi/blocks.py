"""Blocks and how the kernel finds them.

A block is registered under the entry-point group ``dpi.blocks``; the entry point names a
:class:`Block` (or a callable returning one). The kernel knows blocks only through this
registration, so a government can add its own block or adapter without editing ours::

    [project.entry-points."dpi.blocks"]
    land-registry = "land_registry.block:block"
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Final

import click
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dpi.keys import KeyStore
from dpi.settings import Settings

__all__ = [
    "ENTRY_POINT_GROUP",
    "Block",
    "BlockContext",
    "BlockError",
    "ProfileClaim",
    "demo_order",
    "discover_blocks",
    "select_blocks",
]

ENTRY_POINT_GROUP: Final = "dpi.blocks"
_NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


class BlockError(RuntimeError):
    """A block is missing, misdeclared, or two blocks claim the same name or prefix."""


@dataclass(frozen=True)
class ProfileClaim:
    """A conformance profile (and its version) that a block declares it implements."""

    name: str
    version: str

    def as_document(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class BlockContext:
    """What the kernel hands a block when it is mounted: settings, the database and the signing keys."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keys: KeyStore


@dataclass(frozen=True)
class Block:
    """What a block gives the kernel.

    ``routes`` builds the block's HTTP handlers from the kernel's context; the kernel mounts them
    under ``prefix``. ``lifespan``, when given, runs around the app's life (background work such as
    expiry sweeps or delivery of notifications). ``migrations`` is the block's own Alembic versions
    directory; its revisions carry the block's name as branch label, so each block owns its tables and
    migration branch.
    ``capabilities`` adds the block's entry to ``/.well-known/dpi-capabilities``. ``cli`` becomes
    ``dpi <name> ...``. ``demo`` loads the block's chapter of the demo story (idempotently) when
    ``dpi demo`` starts and returns lines to print; ``demo_after`` names the blocks whose chapters it
    builds on (they load first when they are installed).
    """

    name: str
    prefix: str
    version: str
    routes: Callable[[BlockContext], Sequence[ControllerRouterHandler]] = field(default=lambda _context: ())
    lifespan: Callable[[BlockContext], AbstractAsyncContextManager[None]] | None = None
    cli: click.Group | None = None
    demo: Callable[[BlockContext], Awaitable[Sequence[str]]] | None = None
    migrations: Path | None = None
    profiles: tuple[ProfileClaim, ...] = ()
    capabilities: Callable[[Settings], Mapping[str, Any]] | None = None
    demo_after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.match(self.name):
            raise BlockError(
                f"block name {self.name!r} must be lower-case words of letters and digits joined by '-'"
            )
        if not self.prefix.startswith("/") or (self.prefix.endswith("/") and self.prefix != "/"):
            raise BlockError(
                f"block {self.name}: prefix {self.prefix!r} must start with '/' and not end with one"
            )
        if self.migrations is not None and not self.migrations.is_dir():
            raise BlockError(f"block {self.name}: migrations directory {self.migrations} does not exist")

    def capability_entry(self, settings: Settings) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "prefix": self.prefix,
            "version": self.version,
            "profiles": [claim.as_document() for claim in self.profiles],
        }
        if self.capabilities is not None:
            entry.update(self.capabilities(settings))
        return entry


def _load(entry: EntryPoint) -> Block:
    try:
        loaded = entry.load()
    except Exception as error:
        raise BlockError(
            f"block entry point {entry.name!r} ({entry.value}) cannot be loaded: {error}"
        ) from error
    block = loaded() if callable(loaded) and not isinstance(loaded, Block) else loaded
    if not isinstance(block, Block):
        raise BlockError(f"block entry point {entry.name!r} ({entry.value}) is not a dpi.blocks.Block")
    return block


def discover_blocks() -> list[Block]:
    """Every block installed in this environment, in name order; refuses duplicate names or prefixes."""
    blocks = sorted((_load(entry) for entry in entry_points(group=ENTRY_POINT_GROUP)), key=lambda b: b.name)
    _check_unique(blocks)
    return blocks


def select_blocks(available: Sequence[Block], wanted: Sequence[str] | None) -> list[Block]:
    """The blocks named in ``wanted`` (all of ``available`` when None); a BlockError names unknown ones."""
    if wanted is None:
        return list(available)
    by_name = {block.name: block for block in available}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none installed"
        raise BlockError(f"unknown block(s) {', '.join(unknown)}; installed: {known}")
    return [by_name[name] for name in dict.fromkeys(wanted)]


def _check_unique(blocks: Sequence[Block]) -> None:
    seen_names: set[str] = set()
    seen_prefixes: dict[str, str] = {}
    for block in blocks:
        if block.name in seen_names:
            raise BlockError(f"two installed blocks are named {block.name!r}")
        seen_names.add(block.name)
        if block.prefix in seen_prefixes:
            raise BlockError(
                f"blocks {seen_prefixes[block.prefix]!r} and {block.name!r} both claim prefix {block.prefix}"
            )
        seen_prefixes[block.prefix] = block.name


def demo_order(blocks: Sequence[Block]) -> list[Block]:
    """``blocks`` with each one after the installed blocks its ``demo_after`` names, otherwise in the
    order given; a cycle is a BlockError."""
    by_name = {block.name: block for block in blocks}
    ordered: list[Block] = []
    placing: set[str] = set()

    def place(block: Block) -> None:
        if block in ordered:
            return
        if block.name in placing:
            raise BlockError(f"the demo chapters of {', '.join(sorted(placing))} wait for each other")
        placing.add(block.name)
        for name in block.demo_after:
            if name in by_name:
                place(by_name[name])
        placing.discard(block.name)
        ordered.append(block)

    for block in blocks:
        place(block)
    return ordered
