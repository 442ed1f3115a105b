"""``dpi registry seed`` and the demo chapter: deterministic synthetic data, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from registry.cli import registry_group
from registry.demo import AMINA, DEMO_COUNTS, load
from registry.models import AttributeRow, RecordRow
from registry.service import Reader, RegistryService
from registry.synthetic import generate


def test_the_same_seed_gives_the_same_records() -> None:
    assert list(generate("jobseekers", 5, seed=3)) == list(generate("jobseekers", 5, seed=3))
    assert list(generate("jobseekers", 5, seed=3)) != list(generate("jobseekers", 5, seed=4))


def test_seed_adds_records_with_their_attributes_and_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPI_VAR_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(registry_group, ["seed", "jobseekers", "--count", "120", "--batch", "50"])
    assert result.exit_code == 0, result.output
    assert "120 records added to jobseekers" in result.output
    again = CliRunner().invoke(registry_group, ["seed", "jobseekers", "--count", "10"])
    assert again.exit_code == 2
    assert "registry.identifier_taken" in again.output
    indexes = CliRunner().invoke(registry_group, ["indexes"])
    assert "ix_regattr_jobseekers_isco08" in indexes.output


def test_seed_refuses_an_unknown_registry() -> None:
    result = CliRunner().invoke(registry_group, ["seed", "land"])
    assert result.exit_code == 2


async def test_the_demo_loads_once(service: RegistryService) -> None:
    await load(service)
    await load(service)
    async with service.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(RecordRow).where(RecordRow.registry_code == "civil")
        )
        attributes = await session.scalar(select(func.count()).select_from(AttributeRow))
    assert count == DEMO_COUNTS["civil"] + 2
    assert attributes
    amina = await service.find_by_identifier("civil", "UIN", AMINA["uin"])
    assert amina is not None
    read = await service.read(
        "civil", amina, reader=Reader("DPI/GOV/MOI/civil-registry", purpose="civil-registration")
    )
    assert read["document"]["names"][0]["given"] == "Amina"
