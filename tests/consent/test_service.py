"""The consent service on a real database: agreements, the lifecycle with its actors, guardianship,
expiry without anyone calling, new agreement versions, the event chain, receipts and notices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from consent.lifecycle import Action, ActorRole, Channel
from consent.models import EventRow
from consent.receipts import verify_receipt
from consent.service import GENESIS_HASH, Actor, ConsentService, event_document, event_hash
from dpi import db
from dpi.errors import DpiError
from dpi.keys import KeyStore
from dpi.models import OutboxMessage
from tests.consent.agreements import AMINA, CONSUMER, GUARDIAN, PROVIDER, YOUSSEF, agreement_draft

MIGRATIONS = Path(__file__).resolve().parents[2] / "consent" / "migrations"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    service: ConsentService
    clock: Clock
    keys: KeyStore
    changes: list[tuple[str, str]]


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    keys = KeyStore(tmp_path / "keys")
    keys.ensure_active()
    clock = Clock()
    changes: list[tuple[str, str]] = []

    async def record_change(consent_id: str, subject: str) -> None:
        changes.append((consent_id, subject))

    service = ConsentService(
        db.session_factory(engine), keys, issuer="DPI/GOV/MOI/consent", clock=clock, listeners=[record_change]
    )
    yield World(service, clock, keys, changes)
    await engine.dispose()


CONTROLLER = Actor(ActorRole.CONTROLLER, CONSUMER)


def subject(pseudonym: str = AMINA) -> Actor:
    return Actor(ActorRole.SUBJECT, pseudonym)


async def requested(world: World, who: str = AMINA, **request: Any) -> dict[str, Any]:
    return await world.service.request(
        {"agreement_id": "mol-jobseeker-registration", "subject": who, **request},
        CONTROLLER,
        guardianship_attested="guardianship" in request,
    )


def notice_of(agreement: dict[str, Any], language: str = "en") -> dict[str, str]:
    return {"language": language, "hash": agreement["notices"][language]["hash"]}


async def approved(world: World, who: str = AMINA) -> tuple[dict[str, Any], dict[str, Any]]:
    agreement = await world.service.agreement("mol-jobseeker-registration")
    record = await requested(world, who)
    result = await world.service.act(
        record["consent_id"], Action.APPROVE, subject(who), channel=Channel.WEB, notice=notice_of(agreement)
    )
    return agreement, result.record


async def test_publishing_computes_version_and_notice_hashes(world: World) -> None:
    first = await world.service.publish_agreement(agreement_draft())
    assert first["version"] == 1
    assert first["notices"]["ar"]["hash"].startswith("sha256:")
    second = await world.service.publish_agreement(agreement_draft(retention_days=200))
    assert second["version"] == 2
    assert (await world.service.agreement("mol-jobseeker-registration"))["version"] == 2
    assert (await world.service.agreement("mol-jobseeker-registration", 1))["retention_days"] == 365


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"purpose": "not-a-purpose"}, "/purpose"),
        ({"legal_basis": "whim"}, "/legal_basis"),
        ({"data_items": [{"schema": "nonesuch@1.0.0", "fields": ["/x"]}]}, "/data_items/0/schema"),
    ],
)
async def test_agreement_outside_the_vocabularies_is_refused(
    world: World, changes: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(DpiError) as refused:
        await world.service.publish_agreement(agreement_draft(**changes))
    assert refused.value.reason_code == "agreement.invalid"
    assert [detail.pointer for detail in refused.value.details] == [pointer]
    with pytest.raises(DpiError, match=r"agreement\.not_found"):
        await world.service.agreement("mol-jobseeker-registration")


async def test_only_the_consumer_asks_and_asking_twice_returns_the_open_request(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    with pytest.raises(DpiError) as refused:
        await world.service.request(
            {"agreement_id": "mol-jobseeker-registration", "subject": AMINA},
            Actor(ActorRole.CONTROLLER, "DPI/GOV/SPA/benefits"),
        )
    assert refused.value.reason_code == "consent.actor_not_allowed"
    first = await requested(world)
    again = await requested(world)
    assert first["consent_id"] == again["consent_id"]
    assert first["state"] == "REQUESTED"
    assert first["fields"] == ["/date_of_birth", "/names"]


async def test_approval_needs_the_notice_the_subject_saw(world: World) -> None:
    agreement = await world.service.publish_agreement(agreement_draft())
    record = await requested(world)
    for notice in (
        None,
        {"language": "en", "hash": "sha256:" + "1" * 64},
        {**notice_of(agreement), "language": "fr"},
    ):
        with pytest.raises(DpiError) as refused:
            await world.service.act(
                record["consent_id"], Action.APPROVE, subject(), channel=Channel.WEB, notice=notice
            )
        assert refused.value.reason_code == "consent.notice_mismatch"
    assert (await world.service.record(record["consent_id"]))["state"] == "REQUESTED"
    result = await world.service.act(
        record["consent_id"],
        Action.APPROVE,
        subject(),
        channel=Channel.WEB,
        notice=notice_of(agreement, "ar"),
    )
    assert result.record["state"] == "ACTIVE"
    assert result.event["notice"] == notice_of(agreement, "ar")
    assert result.record["valid_until"] == "2027-05-22T09:00:00.000000Z"


async def test_receipts_for_approval_and_withdrawal_verify(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    withdrawn = await world.service.act(record["consent_id"], Action.WITHDRAW, subject(), channel=Channel.SMS)
    assert withdrawn.receipt is not None
    receipts = await world.service.receipts(record["consent_id"])
    assert len(receipts) == 2
    payloads = [verify_receipt(token, world.keys.jwks()) for token in receipts]
    assert [payload["action"] for payload in payloads] == ["approve", "withdraw"]
    assert payloads[1]["state"] == "WITHDRAWN"
    assert payloads[1]["channel"] == "sms"
    assert payloads[1]["event_hash"] == withdrawn.event["hash"]


@pytest.mark.parametrize(
    ("action", "actor", "channel"),
    [
        (Action.APPROVE, Actor(ActorRole.SUBJECT, AMINA), Channel.WEB),
        (Action.REFUSE, Actor(ActorRole.SUBJECT, AMINA), Channel.WEB),
        (Action.RESUME, Actor(ActorRole.SUBJECT, AMINA), Channel.WEB),
        (Action.REVOKE, CONTROLLER, Channel.API),
    ],
)
async def test_a_withdrawn_consent_stays_withdrawn(
    world: World, action: Action, actor: Actor, channel: Channel
) -> None:
    await world.service.publish_agreement(agreement_draft())
    agreement, record = await approved(world)
    await world.service.act(record["consent_id"], Action.WITHDRAW, subject(), channel=Channel.WEB)
    with pytest.raises(DpiError) as refused:
        await world.service.act(
            record["consent_id"], action, actor, channel=channel, notice=notice_of(agreement)
        )
    assert refused.value.reason_code == "consent.transition_not_allowed"
    assert len(await world.service.history(record["consent_id"])) == 3


@pytest.mark.parametrize(
    ("action", "actor", "channel", "reason_code"),
    [
        (Action.WITHDRAW, Actor(ActorRole.SUBJECT, YOUSSEF), Channel.WEB, "consent.actor_not_allowed"),
        (Action.WITHDRAW, Actor(ActorRole.OPERATOR, "operator-17"), Channel.WEB, "consent.actor_not_allowed"),
        (Action.WITHDRAW, Actor(ActorRole.OPERATOR), Channel.ASSISTED, "consent.actor_not_allowed"),
        (Action.WITHDRAW, Actor(ActorRole.GUARDIAN, GUARDIAN), Channel.WEB, "consent.actor_not_allowed"),
        (
            Action.REVOKE,
            Actor(ActorRole.CONTROLLER, "DPI/GOV/SPA/benefits"),
            Channel.API,
            "consent.actor_not_allowed",
        ),
        (
            Action.REVOKE,
            Actor(ActorRole.PROVIDER, "DPI/GOV/SPA/benefits"),
            Channel.API,
            "consent.actor_not_allowed",
        ),
        (Action.REVOKE, Actor(ActorRole.SUBJECT, AMINA), Channel.WEB, "consent.actor_not_allowed"),
        (Action.INVALIDATE, CONTROLLER, Channel.API, "consent.actor_not_allowed"),
        (Action.EXPIRE, Actor(ActorRole.SUBJECT, AMINA), Channel.WEB, "consent.actor_not_allowed"),
    ],
)
async def test_only_the_right_actor_acts(
    world: World, action: Action, actor: Actor, channel: Channel, reason_code: str
) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    with pytest.raises(DpiError) as refused:
        await world.service.act(record["consent_id"], action, actor, channel=channel)
    assert refused.value.reason_code == reason_code
    assert (await world.service.record(record["consent_id"]))["state"] == "ACTIVE"


async def test_assisted_operator_is_recorded_as_such(world: World) -> None:
    agreement = await world.service.publish_agreement(agreement_draft())
    record = await requested(world, YOUSSEF)
    operator = Actor(ActorRole.OPERATOR, "operator-17")
    result = await world.service.act(
        record["consent_id"],
        Action.APPROVE,
        operator,
        channel=Channel.ASSISTED,
        notice=notice_of(agreement, "fr"),
    )
    assert result.event["actor"] == {"role": "operator", "id": "operator-17"}
    assert result.event["channel"] == "assisted"
    assert result.record["granted_by"] == {"role": "operator", "actor": "operator-17"}


async def test_an_operator_cannot_decide_for_a_minor_under_guardianship(world: World) -> None:
    agreement = await world.service.publish_agreement(agreement_draft())
    record = await requested(
        world, YOUSSEF, guardianship={"guardian": GUARDIAN, "basis": "minor", "until": "2030-01-01"}
    )
    with pytest.raises(DpiError, match=r"consent\.actor_not_allowed"):
        await world.service.act(
            record["consent_id"],
            Action.APPROVE,
            Actor(ActorRole.OPERATOR, "operator-17"),
            channel=Channel.ASSISTED,
            notice=notice_of(agreement),
        )
    assert (await world.service.record(record["consent_id"]))["state"] == "REQUESTED"


async def test_a_consumer_cannot_state_a_guardianship(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    with pytest.raises(DpiError, match=r"consent\.actor_not_allowed"):
        await world.service.request(
            {
                "agreement_id": "mol-jobseeker-registration",
                "subject": YOUSSEF,
                "guardianship": {"guardian": GUARDIAN, "basis": "minor"},
            },
            CONTROLLER,
        )
    assert await world.service.records_for_subject(YOUSSEF) == []


async def test_a_guardian_may_withdraw_while_in_force_and_not_after(world: World) -> None:
    agreement = await world.service.publish_agreement(agreement_draft())
    record = await requested(
        world, YOUSSEF, guardianship={"guardian": GUARDIAN, "basis": "minor", "until": "2027-01-01"}
    )
    guardian = Actor(ActorRole.GUARDIAN, GUARDIAN)
    await world.service.act(
        record["consent_id"], Action.APPROVE, guardian, channel=Channel.WEB, notice=notice_of(agreement)
    )
    await world.service.act(record["consent_id"], Action.PAUSE, guardian, channel=Channel.WEB)
    world.clock.now = datetime(2027, 1, 2, tzinfo=UTC)
    assert await world.service.records_for_subject(GUARDIAN, guardian=True) == []
    with pytest.raises(DpiError, match=r"consent\.actor_not_allowed"):
        await world.service.act(record["consent_id"], Action.WITHDRAW, guardian, channel=Channel.WEB)


async def test_a_carried_over_consent_is_announced_and_keeps_to_the_new_validity(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    heard = len(world.changes)
    await world.service.publish_agreement(agreement_draft(max_validity_days=30))
    carried = await world.service.record(record["consent_id"])
    assert carried["agreement_version"] == 2
    assert carried["valid_until"] == "2026-12-23T09:00:00.000000Z"
    assert world.changes[heard:] == [(record["consent_id"], AMINA)]


async def test_revocation_and_invalidation(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, first = await approved(world)
    revoked = await world.service.act(
        first["consent_id"], Action.REVOKE, Actor(ActorRole.PROVIDER, PROVIDER), channel=Channel.API
    )
    assert revoked.record["state"] == "REVOKED"
    assert revoked.receipt is not None
    _, second = await approved(world, YOUSSEF)
    invalidated = await world.service.act(
        second["consent_id"],
        Action.INVALIDATE,
        Actor(ActorRole.AUTHORITY, "DPI/GOV/DPA"),
        channel=Channel.API,
        reason="unlawful processing found by the authority",
    )
    assert invalidated.record["state"] == "INVALIDATED"
    with pytest.raises(DpiError, match=r"consent\.transition_not_allowed"):
        await world.service.act(second["consent_id"], Action.RESUME, subject(YOUSSEF), channel=Channel.WEB)


async def test_not_revocable_agreement(world: World) -> None:
    await world.service.publish_agreement(agreement_draft(revocable=False, legal_basis="legal-obligation"))
    _, record = await approved(world)
    with pytest.raises(DpiError) as refused:
        await world.service.act(record["consent_id"], Action.WITHDRAW, subject(), channel=Channel.WEB)
    assert refused.value.reason_code == "consent.not_revocable"


async def test_expiry_is_true_without_any_call_and_the_sweep_records_it(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    world.clock.advance(days=181)
    assert (await world.service.record(record["consent_id"]))["state"] == "EXPIRED"
    assert [event["action"] for event in await world.service.history(record["consent_id"])] == [
        "request",
        "approve",
    ]
    assert await world.service.sweep() == 1
    assert await world.service.sweep() == 0
    history = await world.service.history(record["consent_id"])
    assert history[-1]["action"] == "expire"
    assert history[-1]["actor"] == {"role": "system"}
    with pytest.raises(DpiError, match=r"consent\.transition_not_allowed"):
        await world.service.act(record["consent_id"], Action.PAUSE, subject(), channel=Channel.WEB)


async def test_an_unanswered_request_expires(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    record = await requested(world)
    world.clock.advance(days=31)
    assert (await world.service.record(record["consent_id"]))["state"] == "EXPIRED"
    fresh = await requested(world)
    assert fresh["consent_id"] != record["consent_id"]


async def test_guardian_decides_for_a_minor_until_they_come_of_age(world: World) -> None:
    agreement = await world.service.publish_agreement(agreement_draft())
    record = await requested(
        world, YOUSSEF, guardianship={"guardian": GUARDIAN, "basis": "minor", "until": "2027-01-01"}
    )
    with pytest.raises(DpiError, match=r"consent\.actor_not_allowed"):
        await world.service.act(
            record["consent_id"],
            Action.APPROVE,
            subject(YOUSSEF),
            channel=Channel.WEB,
            notice=notice_of(agreement),
        )
    given = await world.service.act(
        record["consent_id"],
        Action.APPROVE,
        Actor(ActorRole.GUARDIAN, GUARDIAN),
        channel=Channel.WEB,
        notice=notice_of(agreement),
    )
    assert given.record["granted_by"] == {"role": "guardian", "actor": GUARDIAN}
    assert [r["consent_id"] for r in await world.service.records_for_subject(GUARDIAN, guardian=True)] == [
        record["consent_id"]
    ]
    world.clock.now = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    now_adult = await world.service.record(record["consent_id"])
    assert now_adult["state"] == "REQUESTED"
    assert now_adult["requires_reconfirmation"] is True
    with pytest.raises(DpiError, match=r"consent\.actor_not_allowed"):
        await world.service.act(
            record["consent_id"], Action.REFUSE, Actor(ActorRole.GUARDIAN, GUARDIAN), channel=Channel.WEB
        )
    confirmed = await world.service.act(
        record["consent_id"],
        Action.APPROVE,
        subject(YOUSSEF),
        channel=Channel.WEB,
        notice=notice_of(agreement),
    )
    assert confirmed.record["state"] == "ACTIVE"
    assert confirmed.record["requires_reconfirmation"] is False
    actions = [event["action"] for event in await world.service.history(record["consent_id"])]
    assert actions == ["request", "approve", "require_reconfirmation", "approve"]


async def test_a_minor_may_withdraw_what_the_guardian_gave(world: World) -> None:
    agreement = await world.service.publish_agreement(agreement_draft())
    record = await requested(
        world, YOUSSEF, guardianship={"guardian": GUARDIAN, "basis": "minor", "until": "2030-01-01"}
    )
    await world.service.act(
        record["consent_id"],
        Action.APPROVE,
        Actor(ActorRole.GUARDIAN, GUARDIAN),
        channel=Channel.WEB,
        notice=notice_of(agreement),
    )
    result = await world.service.act(
        record["consent_id"], Action.WITHDRAW, subject(YOUSSEF), channel=Channel.WEB
    )
    assert result.record["state"] == "WITHDRAWN"


async def test_narrowing_version_carries_consents_over(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    narrower = agreement_draft(
        retention_days=90, data_items=[{"schema": "person@1.0.0", "fields": ["/names"]}]
    )
    await world.service.publish_agreement(narrower)
    carried = await world.service.record(record["consent_id"])
    assert carried["state"] == "ACTIVE"
    assert carried["agreement_version"] == 2
    assert carried["fields"] == ["/names"]


async def test_widening_version_supersedes_and_asks_again(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    wider = agreement_draft(
        data_items=[{"schema": "person@1.0.0", "fields": ["/names", "/date_of_birth", "/address"]}]
    )
    await world.service.publish_agreement(wider)
    assert (await world.service.record(record["consent_id"]))["state"] == "SUPERSEDED"
    mine = await world.service.records_for_subject(AMINA)
    asked_again = [r for r in mine if r["state"] == "REQUESTED"]
    assert len(asked_again) == 1
    assert asked_again[0]["agreement_version"] == 2
    assert "/address" in asked_again[0]["fields"]


async def test_events_form_one_chain_per_subject_even_under_concurrency(
    world: World, database_url: str
) -> None:
    await world.service.publish_agreement(agreement_draft())
    for index in range(4):
        await world.service.publish_agreement(agreement_draft(agreement_id=f"other-agreement-{index}"))
    await asyncio.gather(
        *(
            world.service.request({"agreement_id": f"other-agreement-{index}", "subject": AMINA}, CONTROLLER)
            for index in range(4)
        ),
        requested(world),
    )
    async with world.service.sessions() as session:
        events = (
            await session.scalars(select(EventRow).where(EventRow.subject == AMINA).order_by(EventRow.seq))
        ).all()
    assert [event.seq for event in events] == [1, 2, 3, 4, 5]
    previous = GENESIS_HASH
    for event in events:
        document = event_document(event)
        assert document["prev_hash"] == previous
        assert event_hash(document) == document["hash"]
        previous = document["hash"]


async def test_notices_leave_through_the_outbox_without_the_subject(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    await world.service.act(record["consent_id"], Action.PAUSE, subject(), channel=Channel.WEB)
    await world.service.act(record["consent_id"], Action.RESUME, subject(), channel=Channel.WEB)
    await world.service.act(record["consent_id"], Action.WITHDRAW, subject(), channel=Channel.WEB)
    async with world.service.sessions() as session:
        messages = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [message.payload["event"] for message in messages] == ["paused", "resumed", "withdrawn"]
    assert all(AMINA not in str(message.payload) for message in messages)
    assert {message.topic for message in messages} == {"consent.notification"}


async def test_listeners_hear_committed_changes_only(world: World) -> None:
    await world.service.publish_agreement(agreement_draft())
    _, record = await approved(world)
    heard = len(world.changes)
    with pytest.raises(DpiError):
        await world.service.act(record["consent_id"], Action.REFUSE, subject(), channel=Channel.WEB)
    assert len(world.changes) == heard
    await world.service.act(record["consent_id"], Action.WITHDRAW, subject(), channel=Channel.WEB)
    assert world.changes[-1] == (record["consent_id"], AMINA)


async def test_unknown_consent(world: World) -> None:
    for call in (
        world.service.record("00000000-0000-4000-8000-000000000000"),
        world.service.history("00000000-0000-4000-8000-000000000000"),
        world.service.act(
            "00000000-0000-4000-8000-000000000000", Action.WITHDRAW, subject(), channel=Channel.WEB
        ),
    ):
        with pytest.raises(DpiError) as refused:
            await call
        assert refused.value.reason_code == "consent.not_found"
