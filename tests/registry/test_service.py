"""The registry service: records, versions, optimistic locking, corrections, merges and read audit."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from dpi.errors import DpiError
from dpi.models import OutboxMessage
from registry import rfc6902
from registry.models import AttributeRow, IdentifierRow, ReadRow
from registry.service import Reader, RegistryService, new_record_id
from tests.registry.conftest import OFFICER, SECOND_OFFICER, sample

CLERK = Reader("DPI/GOV/MOI/civil-registry", purpose="civil-registration")


async def _count(sessions: async_sessionmaker[AsyncSession], model: Any, **where: Any) -> int:
    async with sessions() as session:
        statement = select(func.count()).select_from(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return int(await session.scalar(statement) or 0)


async def test_create_then_read_returns_the_record_with_its_identifiers(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER, reason="registration at birth")
    assert created["version"] == 1
    assert created["status"] == "active"
    assert created["identifiers"] == [{"type": "UIN", "value": person["uin"]}]
    read = await service.read("civil", created["record_id"], reader=CLERK)
    assert read["document"] == person
    assert "redirected_from" not in read
    assert await service.find_by_identifier("civil", "UIN", person["uin"]) == created["record_id"]


@pytest.mark.parametrize("code", ["civil", "social", "jobseekers", "recruitment-agencies"])
async def test_every_shipped_registry_takes_its_synthetic_records(
    service: RegistryService, code: str
) -> None:
    for index in range(25):
        await service.create(code, sample(code, index), actor=OFFICER)


def _with(document: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    return rfc6902.apply(
        changed, [{"op": "replace" if value is not None else "remove", "path": pointer, "value": value}]
    )


@pytest.mark.parametrize(
    ("code", "pointer", "value", "reason_code"),
    [
        ("civil", "/uin", "1000000010", "registry.identifier_invalid"),  # Verhoeff check digit wrong
        ("civil", "/uin", "12345", "registry.record_invalid"),
        ("civil", "/record_type", "ghost", "registry.record_invalid"),
        ("civil", "/date_of_birth", "31/12/1999", "registry.record_invalid"),
        ("civil", "/place_of_birth/country", "XX", "registry.record_invalid"),  # not ISO 3166-1
        ("civil", "/names", None, "registry.record_invalid"),
        ("jobseekers", "/skills/0/isco08", "9999", "registry.record_invalid"),  # not an ISCO-08 unit group
        ("jobseekers", "/jobseeker_number", "123456789", "registry.identifier_invalid"),  # Luhn wrong
        ("social", "/household_id", "3000001990", "registry.identifier_invalid"),
        ("recruitment-agencies", "/licence_number", "RA00000100", "registry.identifier_invalid"),
        ("recruitment-agencies", "/corridors/0/destination", "ZZ", "registry.record_invalid"),
    ],
)
async def test_invalid_records_are_refused_with_the_field_and_nothing_is_written(
    service: RegistryService,
    sessions: async_sessionmaker[AsyncSession],
    code: str,
    pointer: str,
    value: Any,
    reason_code: str,
) -> None:
    document = _with(sample(code, 3 if code == "civil" else 0), pointer, value)
    with pytest.raises(DpiError) as refused:
        await service.create(code, document, actor=OFFICER)
    assert refused.value.reason_code == reason_code
    assert refused.value.details
    assert await _count(sessions, IdentifierRow) == 0


async def test_an_identifier_is_unique_within_its_registry(
    service: RegistryService, person: dict[str, Any]
) -> None:
    await service.create("civil", person, actor=OFFICER)
    twin = copy.deepcopy(person)
    twin["names"][0]["given"] = "Someone"
    with pytest.raises(DpiError) as refused:
        await service.create("civil", twin, actor=OFFICER)
    assert refused.value.reason_code == "registry.identifier_taken"
    # The same UIN may be held in another registry.
    seeker = sample("jobseekers", 0)
    seeker["uin"] = person["uin"]
    await service.create("jobseekers", seeker, actor=OFFICER)


async def test_update_makes_a_new_version_and_history_replays_to_it(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    married = {**person, "marital_status": "married" if person["marital_status"] != "married" else "widowed"}
    updated = await service.update(
        "civil",
        created["record_id"],
        version=1,
        document=married,
        actor=SECOND_OFFICER,
        reason="marriage registered",
    )
    assert updated["version"] == 2
    history = await service.history("civil", created["record_id"])
    assert [(v["version"], v["action"], v["actor"]) for v in history["versions"]] == [
        (1, "created", OFFICER),
        (2, "updated", SECOND_OFFICER),
    ]
    assert history["versions"][1]["reason"] == "marriage registered"
    assert history["versions"][1]["patch"] == [
        {"op": "replace", "path": "/marital_status", "value": married["marital_status"]}
    ]
    replayed: Any = {}
    for version in history["versions"]:
        replayed = rfc6902.apply(replayed, version["patch"])
    assert replayed == married


async def test_an_update_against_a_stale_version_is_refused(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    first = {**person, "marital_status": "married"}
    second = {**person, "marital_status": "divorced"}
    await service.update("civil", created["record_id"], version=1, document=first, actor=OFFICER, reason="a")
    with pytest.raises(DpiError) as refused:
        await service.update(
            "civil", created["record_id"], version=1, document=second, actor=SECOND_OFFICER, reason="b"
        )
    assert refused.value.reason_code == "registry.version_conflict"
    read = await service.read("civil", created["record_id"], reader=CLERK)
    assert read["document"]["marital_status"] == "married"
    assert read["version"] == 2


async def test_concurrent_updates_of_one_version_let_exactly_one_through(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    statuses = ["married", "divorced", "widowed", "single"]

    async def attempt(status: str) -> str:
        try:
            await service.update(
                "civil",
                created["record_id"],
                version=1,
                document={**person, "marital_status": status},
                actor=OFFICER,
                reason="race",
            )
        except DpiError as error:
            return error.reason_code
        return "ok"

    outcomes = await asyncio.gather(*(attempt(status) for status in statuses))
    assert sorted(outcomes) == ["ok"] + ["registry.version_conflict"] * 3
    history = await service.history("civil", created["record_id"])
    assert len(history["versions"]) == 2


async def test_soft_delete_keeps_history_and_identifier_but_leaves_search(
    service: RegistryService, sessions: async_sessionmaker[AsyncSession], person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    record_id = created["record_id"]
    deleted = await service.delete(
        "civil", record_id, version=1, actor=OFFICER, reason="registered twice by error"
    )
    assert deleted["status"] == "deleted"
    with pytest.raises(DpiError) as refused:
        await service.read("civil", record_id, reader=CLERK)
    assert refused.value.reason_code == "registry.record_not_found"
    with pytest.raises(DpiError) as again:
        await service.update("civil", record_id, version=2, document=person, actor=OFFICER, reason="x")
    assert again.value.reason_code == "registry.record_inactive"
    assert [v["action"] for v in (await service.history("civil", record_id))["versions"]] == [
        "created",
        "deleted",
    ]
    assert await _count(sessions, AttributeRow, record_id=record_id) == 0
    with pytest.raises(DpiError) as taken:
        await service.create("civil", person, actor=OFFICER)
    assert taken.value.reason_code == "registry.identifier_taken"


async def test_a_correction_needs_a_second_person_where_the_registry_says_so(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    corrected = copy.deepcopy(person)
    corrected["names"][0]["family"] = "Corrected"
    request = await service.propose_change(
        "civil",
        created["record_id"],
        version=1,
        document=corrected,
        actor=OFFICER,
        reason="spelling on the act",
    )
    assert request["status"] == "pending"
    assert request["second_approver"] is True
    # An array that changed is replaced whole (see registry.rfc6902).
    assert request["patch"] == [{"op": "replace", "path": "/names", "value": corrected["names"]}]
    for approve in (True, False):
        with pytest.raises(DpiError) as refused:
            await service.decide_change(
                "civil", request["change_request_id"], approve=approve, actor=OFFICER, reason="mine"
            )
        assert refused.value.reason_code == "registry.second_approver_required"
    unchanged = await service.read("civil", created["record_id"], reader=CLERK)
    assert unchanged["version"] == 1
    applied = await service.decide_change(
        "civil", request["change_request_id"], approve=True, actor=SECOND_OFFICER, reason="checked the act"
    )
    assert applied["status"] == "applied"
    assert applied["applied_version"] == 2
    assert applied["decided_by"] == SECOND_OFFICER
    read = await service.read("civil", created["record_id"], reader=CLERK)
    assert read["document"]["names"][0]["family"] == "Corrected"
    history = await service.history("civil", created["record_id"])
    assert history["versions"][-1]["action"] == "corrected"
    assert history["versions"][-1]["change_request_id"] == request["change_request_id"]
    with pytest.raises(DpiError) as twice:
        await service.decide_change(
            "civil", request["change_request_id"], approve=False, actor="officer-99", reason="x"
        )
    assert twice.value.reason_code == "registry.change_request_decided"


async def test_a_registry_without_second_approver_lets_the_proposer_decide(service: RegistryService) -> None:
    seeker = sample("jobseekers", 0)
    created = await service.create("jobseekers", seeker, actor=OFFICER)
    request = await service.propose_change(
        "jobseekers",
        created["record_id"],
        version=1,
        document={**seeker, "region": "Coast"},
        actor=OFFICER,
        reason="moved",
    )
    decided = await service.decide_change(
        "jobseekers", request["change_request_id"], approve=True, actor=OFFICER, reason="ok"
    )
    assert decided["status"] == "applied"


async def test_a_correction_against_a_record_changed_since_is_refused_and_stays_pending(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    request = await service.propose_change(
        "civil",
        created["record_id"],
        version=1,
        document={**person, "sex": "not_known"},
        actor=OFFICER,
        reason="a",
    )
    await service.update(
        "civil",
        created["record_id"],
        version=1,
        document={**person, "marital_status": "widowed"},
        actor=OFFICER,
        reason="b",
    )
    with pytest.raises(DpiError) as refused:
        await service.decide_change(
            "civil", request["change_request_id"], approve=True, actor=SECOND_OFFICER, reason="c"
        )
    assert refused.value.reason_code == "registry.version_conflict"
    assert (await service.change_request("civil", request["change_request_id"]))["status"] == "pending"
    rejected = await service.decide_change(
        "civil", request["change_request_id"], approve=False, actor=SECOND_OFFICER, reason="outdated"
    )
    assert rejected["status"] == "rejected"
    assert (await service.change_requests("civil", "rejected"))["total"] == 1


async def test_merge_redirects_the_loser_and_unmerge_restores_it(
    service: RegistryService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    survivor = await service.create("civil", sample("civil", 1), actor=OFFICER)
    loser = await service.create("civil", sample("civil", 2), actor=OFFICER)
    merge = await service.merge(
        "civil",
        survivor_id=survivor["record_id"],
        loser_id=loser["record_id"],
        actor=OFFICER,
        reason="same person",
    )
    assert merge["survivor_version"] == 2
    assert merge["loser_version"] == 2
    read = await service.read("civil", loser["record_id"], reader=CLERK)
    assert read["record_id"] == survivor["record_id"]
    assert read["redirected_from"] == loser["record_id"]
    assert await _count(sessions, AttributeRow, record_id=loser["record_id"]) == 0
    with pytest.raises(DpiError) as changed:
        await service.update(
            "civil", loser["record_id"], version=2, document=sample("civil", 2), actor=OFFICER, reason="x"
        )
    assert changed.value.reason_code == "registry.record_inactive"

    restored = await service.unmerge("civil", loser["record_id"], actor=SECOND_OFFICER, reason="not the same")
    assert restored["status"] == "active"
    assert restored["version"] == 3
    read_again = await service.read("civil", loser["record_id"], reader=CLERK)
    assert read_again["record_id"] == loser["record_id"]
    assert await _count(sessions, AttributeRow, record_id=loser["record_id"]) > 0
    actions = [v["action"] for v in (await service.history("civil", survivor["record_id"]))["versions"]]
    assert actions == ["created", "absorbed", "released"]
    async with sessions() as session:
        topics = (await session.scalars(select(OutboxMessage.topic).order_by(OutboxMessage.id))).all()
    assert topics[-2:] == ["registry.civil.merged", "registry.civil.unmerged"]


@pytest.mark.parametrize("case", ["same", "other_type", "loser_deleted"])
async def test_invalid_merges_are_refused(service: RegistryService, case: str) -> None:
    first = await service.create("civil", sample("civil", 1), actor=OFFICER)
    second = await service.create("civil", sample("civil", 16 if case == "other_type" else 2), actor=OFFICER)
    if case == "loser_deleted":
        await service.delete("civil", second["record_id"], version=1, actor=OFFICER, reason="x")
    loser = first["record_id"] if case == "same" else second["record_id"]
    with pytest.raises(DpiError) as refused:
        await service.merge(
            "civil", survivor_id=first["record_id"], loser_id=loser, actor=OFFICER, reason="x"
        )
    assert refused.value.reason_code == "registry.merge_invalid"


async def test_unmerge_of_a_record_not_merged_is_refused(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    with pytest.raises(DpiError) as refused:
        await service.unmerge("civil", created["record_id"], actor=OFFICER, reason="x")
    assert refused.value.reason_code == "registry.not_merged"


async def test_every_read_about_a_person_is_logged_and_listed_for_that_person(
    service: RegistryService, sessions: async_sessionmaker[AsyncSession], person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    with pytest.raises(DpiError) as refused:
        await service.read("civil", created["record_id"], reader=Reader("DPI/GOV/MOL/jobseekers"))
    assert refused.value.reason_code == "registry.purpose_required"
    await service.read(
        "civil",
        created["record_id"],
        reader=Reader("DPI/GOV/MOL/jobseekers", purpose="jobseeker-registration", consent_ref="c-123"),
        groups=frozenset({"names-and-birth-date"}),
    )
    reads = await service.reads_of_subject("UIN", person["uin"])
    assert reads["total"] == 1
    assert reads["items"][0]["reader"] == "DPI/GOV/MOL/jobseekers"
    assert reads["items"][0]["purpose"] == "jobseeker-registration"
    assert reads["items"][0]["consent_ref"] == "c-123"
    assert (await service.reads_of_subject("UIN", "1000000001"))["total"] == 0
    # The log keeps a keyed hash of the person's identifier, never the identifier.
    async with sessions() as session:
        hashes = (await session.scalars(select(ReadRow.subject_hash))).all()
    assert all(person["uin"] not in value for value in hashes)


async def test_a_household_read_is_listed_for_each_member(service: RegistryService) -> None:
    household = sample("social", 0)
    created = await service.create("social", household, actor=OFFICER)
    await service.read(
        "social",
        created["record_id"],
        reader=Reader("DPI/GOV/SPA/benefits", purpose="social-benefit-eligibility"),
    )
    for member in household["members"]:
        assert (await service.reads_of_subject("UIN", member["uin"]))["total"] == 1
    assert (await service.reads_of_record("social", created["record_id"]))["total"] == 1


async def test_reads_of_public_registries_need_no_purpose_and_are_not_logged(
    service: RegistryService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await service.create("recruitment-agencies", sample("recruitment-agencies", 0), actor=OFFICER)
    await service.read("recruitment-agencies", created["record_id"], reader=Reader("anyone"))
    assert await _count(sessions, ReadRow) == 0


async def test_field_groups_limit_what_a_reader_receives(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    read = await service.read(
        "civil", created["record_id"], reader=CLERK, groups=frozenset({"names-and-birth-date"})
    )
    assert read["document"] == {
        "record_type": "person",
        "names": person["names"],
        "date_of_birth": person["date_of_birth"],
    }
    assert read["identifiers"] == []
    assert read["field_groups"] == ["names-and-birth-date"]
    wider = await service.read("civil", created["record_id"], reader=CLERK, groups=frozenset({"identity"}))
    assert wider["identifiers"] == [{"type": "UIN", "value": person["uin"]}]
    assert "mother_uin" not in wider["document"]


async def test_unknown_registry_and_record(service: RegistryService) -> None:
    with pytest.raises(DpiError) as registry:
        await service.create("land", {}, actor=OFFICER)
    assert registry.value.reason_code == "registry.not_found"
    with pytest.raises(DpiError) as record:
        await service.history("civil", "00000000-0000-4000-8000-000000000000")
    assert record.value.reason_code == "registry.record_not_found"


async def test_changes_are_announced_through_the_outbox_without_personal_data(
    service: RegistryService, sessions: async_sessionmaker[AsyncSession], person: dict[str, Any]
) -> None:
    await service.create("civil", person, actor=OFFICER)
    async with sessions() as session:
        message = await session.scalar(select(OutboxMessage))
    assert message is not None
    assert message.topic == "registry.civil.created"
    assert person["uin"] not in str(message.payload)


def test_record_ids_are_uuid7_growing_with_time() -> None:
    ids = [new_record_id() for _ in range(200)]
    assert all(uuid.UUID(value).version == 7 for value in ids)
    assert all(uuid.UUID(value).variant == uuid.RFC_4122 for value in ids)
    # Within one millisecond the order is random; across milliseconds it follows time.
    assert [value[:13] for value in ids] == sorted(value[:13] for value in ids)
    assert len(set(ids)) == len(ids)


async def test_the_first_version_adds_the_whole_document(
    service: RegistryService, person: dict[str, Any]
) -> None:
    created = await service.create("civil", person, actor=OFFICER)
    history = await service.history("civil", created["record_id"])
    assert history["versions"][0]["patch"] == [{"op": "add", "path": "", "value": person}]
    standards.validator("registry-history@1.0.0").check(history)
