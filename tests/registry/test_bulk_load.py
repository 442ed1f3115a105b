"""Large imports on PostgreSQL set the secondary indexes aside and rebuild them: whatever happens to the
load, every index is there afterwards, nothing written is lost, and a load killed before its rebuild is
healed by the next import. On SQLite the indexes are never touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from registry import importer
from registry.importer import SourceLine, defers_indexes, import_lines, read_file
from registry.service import RegistryService, bulk_load_indexes
from tests.registry.test_importer import counts, persons, write_jsonl


async def _postgres(service: RegistryService) -> bool:
    async with service.sessions() as session:
        return (await session.connection()).dialect.name == "postgresql"


async def _expected(service: RegistryService) -> list[str]:
    """The migrations' secondary indexes, and on PostgreSQL (where an import makes sure of them) those
    the definitions declare."""
    declared = service.definitions if await _postgres(service) else {}
    return sorted(str(index.name) for index in bulk_load_indexes(declared))


async def _indexes(service: RegistryService) -> list[str]:
    async with service.sessions() as session:
        connection = await session.connection()
        return await connection.run_sync(
            lambda sync: sorted(
                str(index["name"])
                for table in (
                    "registry_record",
                    "registry_identifier",
                    "registry_version",
                    "registry_attribute",
                )
                for index in inspect(sync).get_indexes(table)
                if not index["unique"]
            )
        )


async def _identity(service: RegistryService) -> int | None:
    """The catalogue id of one of the indexes set aside (PostgreSQL): a rebuilt index gets a new one."""
    async with service.sessions() as session:
        if (await session.connection()).dialect.name != "postgresql":
            return None
        oid = await session.scalar(text("SELECT CAST(to_regclass('ix_registry_attribute_text') AS oid)"))
        return int(oid) if oid is not None else None


async def test_a_large_load_rebuilds_every_index_it_set_aside(
    service: RegistryService, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "persons.jsonl", persons(30))
    before = await _identity(service)
    report = await import_lines(
        service,
        "civil",
        read_file(path, None),
        actor="importer",
        reason="test",
        batch_size=8,
        defer_indexes=True,
    )
    assert (report.created, report.failed) == (30, 0)
    assert await _indexes(service) == await _expected(service)
    after = await _identity(service)
    if before is not None:
        assert after is not None
        assert after != before
    again = await import_lines(
        service, "civil", read_file(path, None), actor="importer", reason="test", defer_indexes=True
    )
    assert (again.created, again.unchanged) == (0, 30)
    assert (await counts(service))["registry_record"] == 30


async def test_a_load_that_fails_half_way_keeps_its_batches_and_its_indexes(
    service: RegistryService, tmp_path: Path
) -> None:
    """And indexes that a load killed before its rebuild left missing come back with the next import."""
    path = write_jsonl(tmp_path / "persons.jsonl", persons(30))

    def breaking() -> Iterator[SourceLine]:
        for line in read_file(path, None):
            if line.line > 20:
                raise OSError("the disk went away")
            yield line

    with pytest.raises(OSError, match="the disk went away"):
        await import_lines(
            service, "civil", breaking(), actor="importer", reason="test", batch_size=10, defer_indexes=True
        )
    assert await _indexes(service) == await _expected(service)
    assert (await counts(service))["registry_record"] == 20
    async with service.sessions.begin() as session:
        for name in ("ix_registry_attribute_text", "ix_registry_version_feed"):
            await session.execute(text(f"DROP INDEX {name}"))
    rest = await import_lines(service, "civil", read_file(path, None), actor="importer", reason="test")
    assert (rest.created, rest.unchanged, rest.failed) == (10, 20, 0)
    present = await _indexes(service)
    # SQLite never sets indexes aside, so only PostgreSQL imports look for missing ones.
    assert ("ix_registry_attribute_text" in present) is await _postgres(service)
    if await _postgres(service):
        assert present == await _expected(service)


async def test_the_rule_defers_only_loads_large_for_the_table(
    service: RegistryService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BULK_LOAD_MIN_LINES", 25)
    postgres = await _postgres(service)
    for expected_lines, defers in ((None, False), (0, False), (24, False), (25, True)):
        assert await defers_indexes(service, expected_lines) is (defers and postgres), expected_lines
    path = write_jsonl(tmp_path / "persons.jsonl", persons(30))
    await import_lines(service, "civil", read_file(path, None), actor="importer", reason="test")
    for expected_lines, defers in ((25, False), (29, False), (30, True), (1000, True)):
        assert await defers_indexes(service, expected_lines) is (defers and postgres), expected_lines
