"""The person register: enrolment, UINs, duplicates, updates with history, status rules, virtual IDs."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from stdnum import verhoeff

import standards
from dpi.errors import DpiError
from identity.models import DuplicateKeyRow, HistoryRow, PersonRow, VirtualIdRow
from identity.service import Actor, PersonRegister, changed_pointers, is_uin, is_vid, new_uin, new_vid
from tests.identity.conftest import AUTHORITY, OPERATOR, SECTORS, Clock, amina, youssef

OPERATOR_ACTOR = Actor("operator", OPERATOR)
AUTHORITY_ACTOR = Actor("authority", AUTHORITY)
HOLDER = Actor("holder")


async def enrol_amina(register: PersonRegister) -> dict[str, Any]:
    return await register.enrol(amina(), operator_id=OPERATOR, channel="assisted", note="no phone at home")


async def count(register: PersonRegister, model: Any) -> int:
    async with register.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- identifiers --------------------------------------------------------------------------------------


@hypothesis_settings(max_examples=200)
@given(st.data())
def test_uins_and_vids_carry_check_digits_that_catch_any_single_digit_error(data: st.DataObject) -> None:
    uin, vid = new_uin(), new_vid()
    assert len(uin) == 10
    assert uin[0] != "0"
    assert verhoeff.is_valid(uin)
    assert is_uin(uin)
    assert len(vid) == 16
    assert vid[0] != "0"
    assert verhoeff.is_valid(vid)
    assert is_vid(vid)
    assert not is_uin(vid)
    assert not is_vid(uin)
    position = data.draw(st.integers(min_value=0, max_value=9))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != uin[position]]))
    assert not is_uin(uin[:position] + digit + uin[position + 1 :])


@given(st.text(alphabet="0123456789", min_size=9, max_size=9).filter(lambda body: body[0] != "0"))
def test_adjacent_transpositions_are_caught(body: str) -> None:
    uin = body + verhoeff.calc_check_digit(body)
    for position in range(9):
        swapped = uin[:position] + uin[position + 1] + uin[position] + uin[position + 2 :]
        if swapped != uin:
            assert not is_uin(swapped)


# --- enrolment ----------------------------------------------------------------------------------------


async def test_assisted_enrolment_records_the_operator_and_normalises(register: PersonRegister) -> None:
    draft = amina()
    draft["names"]["latin"]["family_name"] = "  El   Idrissi "
    draft["phone"] = "+212 6 12 34 56 78".replace(" ", "")
    record = await register.enrol(draft, operator_id=OPERATOR, channel="assisted")
    assert standards.validator("identity-person").is_valid(record)
    assert is_uin(record["uin"])
    assert record["status"] == "active"
    assert record["enrolled_by"] == {"channel": "assisted", "operator_id": OPERATOR}
    assert record["demographics"]["names"]["latin"]["family_name"] == "El Idrissi"
    assert record["vid_active"] is False
    assert await register.person(record["uin"]) == record
    assert await register.contact(record["uin"]) == ("+212612345678", "ar")
    [event] = await register.history(record["uin"])
    assert event["action"] == "enrolled"
    assert event["actor"] == {"role": "operator", "id": OPERATOR}
    assert event["channel"] == "assisted"
    assert "/phone" in event["changed"]
    assert "/names/latin/given_name" in event["changed"]


async def test_web_enrolment_has_no_operator(register: PersonRegister) -> None:
    record = await register.enrol(youssef(), operator_id=None, channel="web")
    assert record["enrolled_by"] == {"channel": "web"}
    assert (await register.history(record["uin"]))[0]["actor"] == {"role": "holder"}
    assert await register.contact(record["uin"]) == (None, "en")


BAD_DEMOGRAPHICS = [
    ("/date_of_birth", {"date_of_birth": "2026-11-24"}),
    ("/date_of_birth", {"date_of_birth": "1899-12-31"}),
    ("/date_of_birth", {"date_of_birth": "1990-02-30"}),
    ("/phone", {"phone": "+21200000"}),
    ("/names/arabic/given_name", {"names": {"arabic": {"given_name": "Amina", "family_name": "الإدريسي"}}}),
    ("/names/latin/family_name", {"names": {"latin": {"given_name": "Amina", "family_name": "الإدريسي"}}}),
    ("/names", {"names": {}}),
    ("/names/latin/given_name", {"names": {"latin": {"given_name": "   ", "family_name": "X"}}}),
    ("/sex", {"sex": "f"}),
    ("/preferred_language", {"preferred_language": "de"}),
    ("/address/country", {"address": {"line": "1 rue", "locality": "Rabat", "country": "Maroc"}}),
]


@pytest.mark.parametrize(("pointer", "override"), BAD_DEMOGRAPHICS)
async def test_bad_demographics_are_refused_with_a_pointer_and_nothing_written(
    register: PersonRegister, pointer: str, override: dict[str, Any]
) -> None:
    with pytest.raises(DpiError) as refused:
        await register.enrol({**amina(), **override}, operator_id=OPERATOR, channel="assisted")
    assert refused.value.reason_code == "request.invalid"
    assert pointer in [detail.pointer for detail in refused.value.details]
    assert await count(register, PersonRow) == 0


async def test_assisted_enrolment_needs_an_operator_and_web_refuses_one(register: PersonRegister) -> None:
    for operator_id, channel in ((None, "assisted"), ("bad id!", "assisted"), (OPERATOR, "web")):
        with pytest.raises(DpiError) as refused:
            await register.enrol(amina(), operator_id=operator_id, channel=channel)
        assert refused.value.reason_code == "identity.actor_not_allowed"
    assert await count(register, PersonRow) == 0


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"names": {"latin": {"given_name": "AMINA", "family_name": "el  idrissi"}}},
        {"names": {"arabic": {"given_name": "أمينة", "family_name": "الإدريسي"}}},
    ],
)
async def test_a_second_active_person_with_same_name_birth_date_and_place_is_refused(
    register: PersonRegister, change: dict[str, Any]
) -> None:
    await enrol_amina(register)
    with pytest.raises(DpiError) as refused:
        await register.enrol({**amina(), **change}, operator_id=OPERATOR, channel="assisted")
    assert refused.value.reason_code == "identity.duplicate"
    assert standards.reason_code("identity.duplicate").http_status == 409
    assert await count(register, PersonRow) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"date_of_birth": "1990-04-13"},
        {"place_of_birth": {"locality": "Meknès", "country": "MA"}},
        {"names": {"latin": {"given_name": "Amina", "family_name": "Idrissi"}}},
    ],
)
async def test_a_namesake_born_elsewhere_or_another_day_is_enrolled(
    register: PersonRegister, change: dict[str, Any]
) -> None:
    first = await enrol_amina(register)
    second = await register.enrol({**amina(), **change}, operator_id=OPERATOR, channel="assisted")
    assert second["uin"] != first["uin"]


async def test_simultaneous_enrolments_of_one_person_leave_exactly_one(register: PersonRegister) -> None:
    results = await asyncio.gather(*(enrol_amina(register) for _ in range(3)), return_exceptions=True)
    refused = [result for result in results if isinstance(result, DpiError)]
    assert len(refused) == 2
    assert {error.reason_code for error in refused} == {"identity.duplicate"}
    assert await count(register, PersonRow) == 1


async def test_batch_enrolment_answers_each_person_as_enrol_would(register: PersonRegister) -> None:
    existing = await enrol_amina(register)
    namesake = {**youssef(), "date_of_birth": "1985-01-31"}
    outcomes = await register.enrol_many(
        [
            youssef(),
            amina(),  # already in the register
            {**youssef(), "phone": "+212000"},  # not a phone number
            {**youssef(), "names": {"latin": {"given_name": "YOUSSEF", "family_name": "benali"}}},  # twice
            namesake,
            {"names": {}},  # not demographics
        ],
        operator_id=OPERATOR,
        channel="assisted",
    )
    assert [o["status"] if isinstance(o, dict) else o.reason_code for o in outcomes] == [
        "active",
        "identity.duplicate",
        "request.invalid",
        "identity.duplicate",
        "active",
        "request.invalid",
    ]
    bad_phone = outcomes[2]
    assert isinstance(bad_phone, DpiError)
    assert [detail.pointer for detail in bad_phone.details] == ["/phone"]
    records = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    assert all(is_uin(record["uin"]) for record in records)
    assert len({existing["uin"], *(record["uin"] for record in records)}) == 3
    assert await count(register, PersonRow) == 3
    for record in records:
        assert (await register.person(record["uin"]))["enrolled_by"] == {
            "channel": "assisted",
            "operator_id": OPERATOR,
        }
        history = await register.history(record["uin"])
        assert [event["action"] for event in history] == ["enrolled"]
        assert "/names/latin/given_name" in history[0]["changed"]
    # The duplicate rule holds for later single enrolments too, and the sectors' pseudonyms exist.
    with pytest.raises(DpiError) as refused:
        await register.enrol(youssef(), operator_id=OPERATOR, channel="assisted")
    assert refused.value.reason_code == "identity.duplicate"
    assert await register.translate(
        pseudonym=await register.sector_pseudonym_for(records[0]["uin"], SECTORS[0]),
        from_sector=SECTORS[0],
        to_sector=SECTORS[1],
        purpose="jobseeker-registration",
        requester=OPERATOR,
    )


@pytest.mark.parametrize(
    ("operator_id", "channel", "reason"),
    [
        (None, "assisted", "identity.actor_not_allowed"),
        (OPERATOR, "web", "identity.actor_not_allowed"),
        (OPERATOR, "sms", "request.invalid"),
    ],
)
async def test_batch_enrolment_refuses_a_wrong_actor_and_writes_nothing(
    register: PersonRegister, operator_id: str | None, channel: str, reason: str
) -> None:
    with pytest.raises(DpiError) as refused:
        await register.enrol_many([amina(), youssef()], operator_id=operator_id, channel=channel)
    assert refused.value.reason_code == reason
    assert await count(register, PersonRow) == 0


async def test_a_drawn_uin_already_given_is_drawn_again(register: PersonRegister) -> None:
    first = await enrol_amina(register)
    drawn = iter([first["uin"], first["uin"], "2345678906"])
    repeating = PersonRegister(
        register.sessions, pseudonym_key=b"p" * 32, vid_key=b"v" * 32, uin_source=drawn.__next__
    )
    outcomes = await repeating.enrol_many([youssef()], operator_id=OPERATOR, channel="assisted")
    assert [outcome["uin"] for outcome in outcomes if isinstance(outcome, dict)] == ["2345678906"]
    assert await count(register, PersonRow) == 2


async def test_a_deceased_persons_namesake_can_be_enrolled(register: PersonRegister) -> None:
    first = await enrol_amina(register)
    await register.mark_deceased(first["uin"], actor=AUTHORITY_ACTOR, reason="death certificate 1234")
    assert (await enrol_amina(register))["status"] == "active"
    with pytest.raises(DpiError) as refused:
        await register.reactivate(first["uin"], actor=AUTHORITY_ACTOR, reason="recorded in error")
    assert refused.value.reason_code == "identity.duplicate"
    assert await register.status(first["uin"]) == "deceased"


# --- updates and history ------------------------------------------------------------------------------


async def test_update_records_who_when_why_and_which_fields(register: PersonRegister, clock: Clock) -> None:
    uin = (await enrol_amina(register))["uin"]
    clock.now += timedelta(days=3)
    record = await register.update(
        uin,
        {
            "phone": "+212698765432",
            "address": None,
            "names": {"latin": {"given_name": "Aminah", "family_name": "El Idrissi"}},
        },
        actor=OPERATOR_ACTOR,
        reason="  new phone, moved abroad ",
    )
    assert record["demographics"]["phone"] == "+212698765432"
    assert "address" not in record["demographics"]
    assert record["updated_at"] == "2026-11-26T10:00:00.000000Z"
    event = (await register.history(uin))[-1]
    assert event == {
        "at": "2026-11-26T10:00:00.000000Z",
        "action": "updated",
        "actor": {"role": "operator", "id": OPERATOR},
        "reason": "new phone, moved abroad",
        "changed": sorted(
            [
                "/phone",
                "/names/latin/given_name",
                "/address/line",
                "/address/locality",
                "/address/postal_code",
                "/address/country",
            ]
        ),
    }
    assert standards.validator("identity-history").is_valid({"events": await register.history(uin)})
    assert "+212698765432" not in str(event)


async def test_a_holder_changes_only_how_to_reach_them(register: PersonRegister) -> None:
    uin = (await enrol_amina(register))["uin"]
    record = await register.update(uin, {"preferred_language": "fr"}, actor=HOLDER, reason="I read French")
    assert record["demographics"]["preferred_language"] == "fr"
    assert (await register.history(uin))[-1]["actor"] == {"role": "holder"}
    with pytest.raises(DpiError) as refused:
        await register.update(uin, {"date_of_birth": "1991-04-12"}, actor=HOLDER, reason="typo")
    assert refused.value.reason_code == "identity.actor_not_allowed"


async def test_bad_updates_change_nothing(register: PersonRegister) -> None:
    uin = (await enrol_amina(register))["uin"]
    before = await register.person(uin)
    other = await register.enrol(youssef(), operator_id=OPERATOR, channel="assisted")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"names": {"latin": None, "arabic": None}}, "request.invalid"),
        ({"phone": "+1555"}, "request.invalid"),
        ({"date_of_birth": "2030-01-01"}, "request.invalid"),
        ({"nickname": "Mina"}, "request.invalid"),
        ({}, "request.invalid"),
    ]
    for changes, code in cases:
        with pytest.raises(DpiError) as refused:
            await register.update(uin, changes, actor=OPERATOR_ACTOR, reason="correction")
        assert refused.value.reason_code == code
    with pytest.raises(DpiError) as refused:
        await register.update(
            other["uin"],
            {
                "names": amina()["names"],
                "date_of_birth": amina()["date_of_birth"],
                "place_of_birth": amina()["place_of_birth"],
            },
            actor=OPERATOR_ACTOR,
            reason="merge",
        )
    assert refused.value.reason_code == "identity.duplicate"
    assert await register.person(uin) == before
    assert len(await register.history(uin)) == 1
    assert len(await register.history(other["uin"])) == 1


def test_changed_pointers_name_leaves_never_values() -> None:
    old = {"names": {"latin": {"given_name": "A", "family_name": "B"}}, "phone": "+1"}
    new = {"names": {"latin": {"given_name": "A", "family_name": "C"}}, "sex": "female"}
    assert changed_pointers(old, new) == ["/names/latin/family_name", "/phone", "/sex"]


# --- status -------------------------------------------------------------------------------------------


async def test_status_rules(register: PersonRegister) -> None:
    uin = (await enrol_amina(register))["uin"]
    await register.issue_vid(uin, actor=HOLDER)
    with pytest.raises(DpiError) as refused:
        await register.deactivate(uin, actor=OPERATOR_ACTOR, reason="fraud check")
    assert refused.value.reason_code == "identity.actor_not_allowed"

    record = await register.deactivate(uin, actor=AUTHORITY_ACTOR, reason="fraud check")
    assert record["status"] == "deactivated"
    assert record["vid_active"] is False
    for call in (register.contact(uin), register.issue_vid(uin, actor=HOLDER)):
        with pytest.raises(DpiError) as refused:
            await call
        assert refused.value.reason_code in {"identity.deactivated", "identity.vid_not_allowed"}
    with pytest.raises(DpiError) as refused:
        await register.deactivate(uin, actor=AUTHORITY_ACTOR, reason="again")
    assert refused.value.reason_code == "identity.deactivated"

    assert (await register.reactivate(uin, actor=AUTHORITY_ACTOR, reason="cleared"))["status"] == "active"
    with pytest.raises(DpiError) as refused:
        await register.reactivate(uin, actor=AUTHORITY_ACTOR, reason="cleared")
    assert refused.value.reason_code == "identity.already_active"

    await register.mark_deceased(uin, actor=AUTHORITY_ACTOR, reason="death certificate 1234")
    with pytest.raises(DpiError) as refused:
        await register.contact(uin)
    assert refused.value.reason_code == "identity.deceased"
    with pytest.raises(DpiError) as refused:
        await register.update(uin, {"phone": "+212698765432"}, actor=OPERATOR_ACTOR, reason="new phone")
    assert refused.value.reason_code == "identity.deceased"
    corrected = await register.update(uin, {"sex": "unknown"}, actor=AUTHORITY_ACTOR, reason="court order")
    assert corrected["demographics"]["sex"] == "unknown"
    assert (await register.reactivate(uin, actor=AUTHORITY_ACTOR, reason="death recorded in error"))[
        "status"
    ] == "active"
    actions = [event["action"] for event in await register.history(uin)]
    assert actions == [
        "enrolled",
        "vid_issued",
        "deactivated",
        "reactivated",
        "deceased",
        "updated",
        "reactivated",
    ]


# --- virtual IDs --------------------------------------------------------------------------------------


async def test_vid_lifecycle(register: PersonRegister) -> None:
    uin = (await enrol_amina(register))["uin"]
    vid = await register.issue_vid(uin, actor=HOLDER)
    assert is_vid(vid)
    assert await register.resolve(vid) == uin
    assert await register.resolve(uin) == uin
    assert (await register.person(uin))["vid_active"] is True
    with pytest.raises(DpiError) as refused:
        await register.issue_vid(uin, actor=OPERATOR_ACTOR)
    assert refused.value.reason_code == "identity.vid_exists"

    renewed = await register.regenerate_vid(uin, actor=OPERATOR_ACTOR)
    assert renewed != vid
    assert await register.resolve(renewed) == uin
    with pytest.raises(DpiError) as refused:
        await register.resolve(vid)
    assert refused.value.reason_code == "identity.not_found"

    await register.revoke_vid(uin, actor=HOLDER)
    for gone in (vid, renewed):
        with pytest.raises(DpiError) as refused:
            await register.resolve(gone)
        assert refused.value.reason_code == "identity.not_found"
    with pytest.raises(DpiError) as refused:
        await register.revoke_vid(uin, actor=HOLDER)
    assert refused.value.reason_code == "identity.vid_not_found"
    with pytest.raises(DpiError) as refused:
        await register.issue_vid(uin, actor=AUTHORITY_ACTOR)
    assert refused.value.reason_code == "identity.actor_not_allowed"
    assert [
        event["channel"] for event in await register.history(uin) if event["action"].startswith("vid")
    ] == [
        "web",
        "assisted",
        "web",
    ]


async def test_the_database_holds_no_vid_and_no_way_to_the_uin(register: PersonRegister) -> None:
    uin = (await enrol_amina(register))["uin"]
    vids = [await register.issue_vid(uin, actor=HOLDER)]
    vids.append(await register.regenerate_vid(uin, actor=HOLDER))
    async with register.sessions() as session:
        rows = (await session.scalars(select(VirtualIdRow))).all()
        keys = (await session.scalars(select(DuplicateKeyRow.key))).all()
        history = (await session.scalars(select(HistoryRow))).all()
    stored = " ".join(f"{row.vid_hash} {row.person_id} {row.status}" for row in rows)
    assert len(rows) == 2
    assert sum(row.status == "active" for row in rows) == 1
    for vid in vids:
        assert vid not in stored
        assert vid[:12] not in stored
    assert uin not in stored
    assert uin not in " ".join(keys)
    assert all(row.actor_id is None for row in history if row.actor_role == "holder")


async def test_at_most_one_active_vid_even_when_issued_at_once(register: PersonRegister) -> None:
    uin = (await enrol_amina(register))["uin"]
    results = await asyncio.gather(
        *(register.issue_vid(uin, actor=HOLDER) for _ in range(3)), return_exceptions=True
    )
    issued = [result for result in results if isinstance(result, str)]
    assert len(issued) == 1
    assert all(
        isinstance(result, DpiError) and result.reason_code == "identity.vid_exists"
        for result in results
        if not isinstance(result, str)
    )


@pytest.mark.parametrize(
    "identifier", ["", "123", "0123456789", "12345678901234567", "abcdefghij", "١٢٣٤٥٦٧٨٩٠"]
)
async def test_resolve_answers_not_found_for_anything_else(register: PersonRegister, identifier: str) -> None:
    await enrol_amina(register)
    with pytest.raises(DpiError) as refused:
        await register.resolve(identifier)
    assert refused.value.reason_code == "identity.not_found"


async def test_resolve_of_an_unknown_valid_uin_and_vid_is_not_found(register: PersonRegister) -> None:
    for identifier in (new_uin(), new_vid()):
        with pytest.raises(DpiError) as refused:
            await register.resolve(identifier)
        assert refused.value.reason_code == "identity.not_found"
