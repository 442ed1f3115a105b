"""The ``dpi registry`` commands: list the hosted registries, create the indexes their definitions ask
for, and fill a registry with realistic synthetic records (``seed``), deterministic for a seed.

Exit codes: 0 done; 2 input or a configuration that does not work, in one line and never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dpi import db
from dpi.errors import DpiError
from dpi.settings import Settings, SettingsError
from registry.definition import load_definitions
from registry.keyfile import subject_key
from registry.service import RegistryService, create_attribute_indexes
from registry.synthetic import GENERATORS, generate

__all__ = ["registry_group"]

T = TypeVar("T")
_MIGRATIONS = Path(__file__).parent / "migrations"


def _fail(message: str) -> NoReturn:
    click.echo(f"dpi registry: {message}", err=True)
    sys.exit(2)


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except SettingsError as error:
        _fail(str(error))
    except (SQLAlchemyError, OSError) as error:
        _fail(f"database: {str(error).splitlines()[0]}")
    except DpiError as error:
        details = "; ".join(f"{detail.pointer}: {detail.message}" for detail in error.details[:3])
        _fail(f"{error.reason_code} {details}".strip())


@click.group()
def registry_group() -> None:
    """Hosted registries: definitions, indexes, synthetic data."""


@registry_group.command("list")
def list_registries() -> None:
    """The hosted registries and their record types."""
    for definition in load_definitions().values():
        click.echo(f"{definition.code:<22} {', '.join(definition.record_types):<32} {definition.title['en']}")


async def _prepared(engine: AsyncEngine, settings: Settings) -> tuple[RegistryService, list[str]]:
    await db.upgrade(engine, [_MIGRATIONS])
    definitions = load_definitions()
    async with engine.begin() as connection:
        indexes = await connection.run_sync(create_attribute_indexes, definitions)
    return RegistryService(
        db.session_factory(engine), definitions, subject_key=subject_key(settings)
    ), indexes


@registry_group.command("indexes")
def indexes() -> None:
    """Migrate the registry tables and create the indexes the definitions ask for."""

    async def work() -> list[str]:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            _, names = await _prepared(engine, settings)
        finally:
            await engine.dispose()
        return names

    for name in _run(work()):
        click.echo(name)


@registry_group.command("seed")
@click.argument("registry", type=click.Choice(sorted(GENERATORS)))
@click.option("--count", type=click.IntRange(1, 10_000_000), default=1000, show_default=True)
@click.option("--seed", "seed", type=int, default=0, show_default=True, help="Same seed, same records.")
@click.option(
    "--start", type=click.IntRange(0), default=0, show_default=True, help="Number of the first record."
)
@click.option("--batch", type=click.IntRange(1, 50_000), default=2000, show_default=True)
def seed_command(registry: str, count: int, seed: int, start: int, batch: int) -> None:
    """Add COUNT synthetic records to REGISTRY (all of a batch or none of it)."""

    async def work() -> int:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        written = 0
        try:
            service, _ = await _prepared(engine, settings)
            with click.progressbar(length=count, label=f"seeding {registry}", file=sys.stderr) as progress:
                for offset in range(start, start + count, batch):
                    size = min(batch, start + count - offset)
                    documents = list(generate(registry, size, seed=seed, start=offset))
                    written += await service.create_many(
                        registry, documents, actor="dpi-registry-seed", reason=f"synthetic data, seed {seed}"
                    )
                    progress.update(size)
        finally:
            await engine.dispose()
        return written

    click.echo(f"{_run(work())} records added to {registry}")
