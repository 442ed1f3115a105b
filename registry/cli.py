"""The ``dpi registry`` commands: list the hosted registries, create the indexes their definitions ask
for, fill a registry with realistic synthetic records (``seed``), deterministic for a seed, import
records from a file (``import``) and queue suspected duplicates for review (``dedup``).

Exit codes: 0 done; 1 some lines of an import were refused; 2 input or a configuration that does not
work, in one line and never a traceback.
"""

from __future__ import annotations

import asyncio
import json
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
from registry.dedup import POSSIBLE, Deduplicator
from registry.definition import load_definitions
from registry.importer import ImportMapping, ImportReport, import_lines, read_file
from registry.keyfile import subject_key
from registry.service import RegistryService, ensure_indexes
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
        indexes = await connection.run_sync(ensure_indexes, definitions)
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


def _line_count(path: Path) -> int:
    count = 0
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


@registry_group.command("import")
@click.argument("registry")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A registry-import-mapping document: CSV columns, constants, local date formats.",
)
@click.option("--all-or-nothing", is_flag=True, help="Stop at the first refused line and write nothing.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the per-line errors go (JSON Lines); FILE.errors.jsonl by default.",
)
@click.option("--batch", type=click.IntRange(1, 50_000), default=2000, show_default=True)
@click.option(
    "--defer-indexes",
    is_flag=True,
    help="On PostgreSQL, set the secondary indexes aside while a large file loads and rebuild them after.",
)
@click.option(
    "--actor", default="dpi-registry-import", show_default=True, help="Recorded in each record's history."
)
def import_command(
    registry: str,
    file: Path,
    mapping: Path | None,
    all_or_nothing: bool,
    errors_path: Path | None,
    batch: int,
    actor: str,
    defer_indexes: bool,
) -> None:
    """Import the records of FILE (JSON Lines, or CSV with --mapping) into REGISTRY.

    Lines already imported are left as they are, so the same file can be run again. Exit code 1 when
    a line was refused (see the error file), 0 when every line was imported or already there.
    """
    if registry not in load_definitions():
        _fail(f"registry.not_found {registry}")
    errors_file = errors_path or file.with_name(file.name + ".errors.jsonl")

    async def work() -> ImportReport:
        import_mapping = ImportMapping.load(mapping) if mapping is not None else None
        if import_mapping is not None and import_mapping.registry != registry:
            raise DpiError(
                "registry.import_mapping_invalid", f"the mapping is for registry {import_mapping.registry}"
            )
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            service, _ = await _prepared(engine, settings)
            lines = _line_count(file)
            with (
                errors_file.open("w", encoding="utf-8") as errors,
                click.progressbar(length=lines, label=f"importing into {registry}", file=sys.stderr) as bar,
            ):
                return await import_lines(
                    service,
                    registry,
                    read_file(file, import_mapping),
                    actor=actor,
                    reason=f"import of {file.name}",
                    all_or_nothing=all_or_nothing,
                    batch_size=batch,
                    on_error=lambda error: errors.write(
                        json.dumps(error.as_json(), ensure_ascii=False) + "\n"
                    ),
                    on_progress=bar.update,
                    expected_lines=lines,
                    defer_indexes=None if defer_indexes else False,
                )
        finally:
            await engine.dispose()

    report = _run(work())
    click.echo(
        f"{report.lines} lines: {report.created} records created, {report.unchanged} already imported, "
        f"{report.failed} refused"
    )
    for reason_code, count in report.reasons.most_common():
        click.echo(f"  {count:>8}  {reason_code}")
    if report.stopped_at is not None:
        click.echo(f"stopped at line {report.stopped_at}: nothing was written")
    if report.failed:
        click.echo(f"errors: {errors_file}")
        sys.exit(1)


@registry_group.command("dedup")
@click.argument("registry")
@click.option(
    "--threshold",
    type=click.FloatRange(0.5, 1.0),
    default=POSSIBLE,
    show_default=True,
    help="Lowest score queued for review.",
)
@click.option(
    "--actor", default="dpi-registry-dedup", show_default=True, help="Recorded as who found the pairs."
)
def dedup_command(registry: str, threshold: float, actor: str) -> None:
    """Find suspected duplicates among the active records of REGISTRY and queue new pairs for review."""
    if registry not in load_definitions():
        _fail(f"registry.not_found {registry}")

    async def work() -> dict[str, int]:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            service, _ = await _prepared(engine, settings)
            return await Deduplicator(service).run(registry, actor=actor, threshold=threshold)
        finally:
            await engine.dispose()

    outcome = _run(work())
    click.echo(
        f"{outcome['found']} suspected duplicate pairs in {registry}, "
        f"{outcome['queued']} new in the review queue"
    )
