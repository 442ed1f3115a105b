"""Deduplication (``registry.dedup``): Arabic and Latin names, the check before create, the batch job
with its blocking keys, and the review queue whose decisions are audited."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dpi.errors import DpiError
from registry.cli import registry_group
from registry.dedup import Deduplicator, arabic_normalized, latin_form, name_similarity, skeleton
from registry.models import DuplicateRow, RecordRow
from registry.service import RegistryService
from registry.synthetic import uin

from .conftest import OFFICER, SECOND_OFFICER


def test_arabic_is_normalised() -> None:
    assert arabic_normalized("أَمِينَة") == arabic_normalized("امينه") == "امينه"
    assert arabic_normalized("عـــلي") == arabic_normalized("على") == "علي"
    assert arabic_normalized("إبراهيم") == arabic_normalized("ابراهيم")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Youssef", "يوسف"),
        ("Yusuf", "Youcef"),
        ("Mohamed", "محمد"),
        ("Muhammad", "Mohammed"),
        ("Aicha", "عائشة"),
        ("Fatima", "فاطمة"),
        ("Ibrahim", "إبراهيم"),
        ("El Amrani", "العمراني"),
        ("Amina Benali", "أمينة بن علي"),
        ("Benali Amina", "Amina Ben Ali"),
        ("Cherif", "الشريف"),
        ("Aïcha Touré", "Aicha Toure"),
    ],
)
def test_the_same_name_in_other_spellings_sounds_alike(first: str, second: str) -> None:
    score, reason = name_similarity(latin_form(first).split(), latin_form(second).split())
    assert score >= 0.95, reason


@pytest.mark.parametrize(
    ("first", "second"),
    [("Omar Kone", "Samir Kone"), ("Amina Haddad", "Fatima Haddad"), ("Karim Saidi", "Karim Diallo")],
)
def test_different_names_do_not_sound_alike(first: str, second: str) -> None:
    score, _ = name_similarity(latin_form(first).split(), latin_form(second).split())
    assert score < 0.85


def test_skeleton_is_a_phonetic_key() -> None:
    assert skeleton("youssef") == skeleton("iousf") == skeleton("yusuf")
    assert skeleton("haddad") == skeleton("hadad")


def person(
    number: int, given: str, family: str, born: str, *, arabic: tuple[str, str] | None = None
) -> dict[str, Any]:
    names = [{"given": given, "family": family, "script": "Latn"}]
    if arabic:
        names.append({"given": arabic[0], "family": arabic[1], "script": "Arab"})
    return {
        "record_type": "person",
        "uin": uin(700_000_000 + number),
        "names": names,
        "sex": "female",
        "date_of_birth": born,
        "place_of_birth": {"locality": "Coast town 3", "region": "Coast", "country": "SN"},
        "marital_status": "single",
        "vital_status": "alive",
    }


AMINA = person(1, "Amina", "Benali", "2001-04-12", arabic=("أمينة", "بن علي"))


@pytest.mark.parametrize(
    ("variant", "explained"),
    [
        (person(2, "Amina", "Benali", "2001-04-12"), "given name same"),
        (person(3, "امينه", "بن علي", "2001-04-12"), "family name sounds alike"),
        (person(4, "Benali", "Amina", "2001-04-12"), "given and family names swapped"),
        (person(5, "Amina", "Ben Ali", "2001-12-04"), "day and month swapped"),
        (person(6, "Amina", "Benali", "2001-04-13"), "birth dates one digit apart"),
    ],
)
async def test_a_duplicate_is_refused_before_create_with_its_explanation(
    service: RegistryService, variant: dict[str, Any], explained: str
) -> None:
    deduplicator = Deduplicator(service)
    original = await deduplicator.create("civil", AMINA, actor=OFFICER)
    matches = await deduplicator.check("civil", variant)
    assert matches[0].record_id == original["record_id"]
    assert any(explained in part["reason"] for part in matches[0].explanation)
    with pytest.raises(DpiError) as refused:
        await deduplicator.create("civil", variant, actor=OFFICER)
    assert refused.value.reason_code == "registry.duplicate_suspected"
    assert original["record_id"] in refused.value.details[0].message
    flagged = await deduplicator.create("civil", variant, actor=OFFICER, refuse_at=None)
    queue = await deduplicator.queue("civil")
    assert queue["total"] == 1
    assert {queue["items"][0]["record_id"], queue["items"][0]["candidate_id"]} == {
        original["record_id"],
        flagged["record_id"],
    }


@pytest.mark.parametrize(
    "other",
    [
        person(7, "Fatima", "Benali", "2001-04-12"),
        person(8, "Amina", "Haddad", "1975-09-30"),
        person(9, "Khadija", "Toure", "2001-04-12"),
    ],
)
async def test_a_different_person_is_created(service: RegistryService, other: dict[str, Any]) -> None:
    deduplicator = Deduplicator(service)
    await deduplicator.create("civil", AMINA, actor=OFFICER)
    created = await deduplicator.create("civil", other, actor=OFFICER)
    # A sister born the same day (a twin) is created; at most she waits in the queue for a second look.
    assert created["status"] == "active"
    for item in (await deduplicator.queue("civil"))["items"]:
        assert item["score"] < 0.85


async def test_the_same_identifier_is_a_certain_match(service: RegistryService) -> None:
    deduplicator = Deduplicator(service)
    original = await deduplicator.create("civil", AMINA, actor=OFFICER)
    renamed = copy.deepcopy(AMINA)
    renamed["names"] = [{"given": "Salma", "family": "Kone"}]
    matches = await deduplicator.check("civil", renamed)
    assert (matches[0].record_id, matches[0].score) == (original["record_id"], 1.0)
    with pytest.raises(DpiError) as refused:
        await deduplicator.create("civil", renamed, actor=OFFICER)
    assert refused.value.reason_code == "registry.identifier_taken"


async def test_the_batch_job_queues_pairs_once_and_decisions_are_audited(service: RegistryService) -> None:
    records = [
        AMINA,
        person(10, "أمينة", "بن علي", "2001-04-12"),
        person(11, "Youssef", "Haddad", "1967-02-03"),
        person(12, "Yusuf", "Hadad", "1967-02-03"),
        person(13, "Karim", "Saidi", "1990-01-01"),
    ]
    await service.create_many("civil", records, actor=OFFICER, reason="load")
    deduplicator = Deduplicator(service)
    assert await deduplicator.run("civil", actor="night-job") == {"found": 2, "queued": 2}
    assert await deduplicator.run("civil", actor="night-job") == {"found": 2, "queued": 0}
    queue = (await deduplicator.queue("civil"))["items"]
    merged = await deduplicator.decide(
        "civil", queue[0]["duplicate_id"], merge=True, actor=SECOND_OFFICER, reason="same person, checked"
    )
    assert (merged["status"], merged["decided_by"], merged["decision_reason"]) == (
        "merged",
        SECOND_OFFICER,
        "same person, checked",
    )
    loser = merged["candidate_id"] if merged["survivor_id"] == merged["record_id"] else merged["record_id"]
    async with service.sessions() as session:
        row = await session.get(RecordRow, loser)
    assert row is not None
    assert (row.status, row.merged_into) == ("merged", merged["survivor_id"])
    kept = await deduplicator.decide(
        "civil", queue[1]["duplicate_id"], merge=False, actor=SECOND_OFFICER, reason="twins"
    )
    assert kept["status"] == "not_duplicate"
    with pytest.raises(DpiError) as again:
        await deduplicator.decide("civil", queue[1]["duplicate_id"], merge=True, actor=OFFICER, reason="x")
    assert again.value.reason_code == "registry.duplicate_decided"
    assert (await deduplicator.queue("civil"))["total"] == 0
    assert (await deduplicator.run("civil", actor="night-job"))["queued"] == 0


@pytest.mark.parametrize(
    ("duplicate_id", "survivor", "reason_code"),
    [
        ("00000000-0000-4000-8000-000000000000", None, "registry.duplicate_not_found"),
        (None, "00000000-0000-4000-8000-000000000000", "registry.merge_invalid"),
    ],
)
async def test_bad_decisions_are_refused(
    service: RegistryService, duplicate_id: str | None, survivor: str | None, reason_code: str
) -> None:
    await service.create_many(
        "civil", [AMINA, person(20, "Amina", "Benali", "2001-04-12")], actor=OFFICER, reason="x"
    )
    deduplicator = Deduplicator(service)
    await deduplicator.run("civil", actor="job")
    entry = (await deduplicator.queue("civil"))["items"][0]
    with pytest.raises(DpiError) as refused:
        await deduplicator.decide(
            "civil",
            duplicate_id or entry["duplicate_id"],
            merge=True,
            actor=OFFICER,
            reason="r",
            survivor_id=survivor,
        )
    assert refused.value.reason_code == reason_code
    assert (await deduplicator.entry("civil", entry["duplicate_id"]))["status"] == "pending"


def test_the_command_runs_the_batch_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPI_VAR_DIR", str(tmp_path / "var"))
    seeded = CliRunner().invoke(registry_group, ["seed", "civil", "--count", "300"])
    assert seeded.exit_code == 0, seeded.output
    result = CliRunner().invoke(registry_group, ["dedup", "civil"])
    assert result.exit_code == 0, result.output
    assert "suspected duplicate pairs in civil" in result.output
    assert CliRunner().invoke(registry_group, ["dedup", "land"]).exit_code == 2


async def test_registries_without_names_have_no_probabilistic_pass(service: RegistryService) -> None:
    assert await Deduplicator(service).find("recruitment-agencies") == []
    async with service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DuplicateRow)) == 0
