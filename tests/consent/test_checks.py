"""The consent check on a real database: every deny reason, the permit, bad input, expiry without
anyone calling, exact frequency counting under concurrent checks, and the property that a withdrawn,
revoked, expired or invalidated consent never permits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import standards
from consent.checks import ConsentChecker, period_index
from consent.client import CachingConsentChecker
from consent.lifecycle import Action, ActorRole, Channel, State
from consent.models import UsageRow
from consent.service import Actor, ConsentService
from dpi import db
from dpi.errors import DpiError
from dpi.keys import KeyStore

MIGRATIONS = Path(__file__).resolve().parents[2] / "consent" / "migrations"
CONSUMER = "DPI/GOV/MOL/jobseekers"
PROVIDER = "DPI/GOV/MOI/civil-registry"
AUTHORITY = Actor(ActorRole.AUTHORITY, "DPI/GOV/DPA/supervision")
CONTROLLER = Actor(ActorRole.CONTROLLER, CONSUMER)
AMINA = "amina-pseudonym-mol-0001"
GUARDIAN = "guardian-pseudonym-0003"
AGREEMENT = "mol-jobseeker-registration"


def agreement_draft(**changes: Any) -> dict[str, Any]:
    draft: dict[str, Any] = {
        "agreement_id": AGREEMENT,
        "consumer": CONSUMER,
        "providers": [{"provider": PROVIDER, "service": "person"}],
        "purpose": "jobseeker-registration",
        "legal_basis": "consent",
        "data_items": [{"schema": "person@1.0.0", "fields": ["/names", "/date_of_birth", "/address"]}],
        "retention_days": 365,
        "max_validity_days": 180,
        "revocable": True,
        "controller": {"name": "Ministry of Labour", "contact": "dpo@labour.gov.example"},
        "notices": {
            "en": {"text": "The Ministry of Labour reads your name and date of birth to register you."},
            "fr": {"text": "Le ministère du Travail lit votre nom et votre date de naissance."},
            "ar": {"text": "تقرأ وزارة العمل اسمك وتاريخ ميلادك لتسجيلك."},
        },
    }
    draft.update(changes)
    return draft


def check_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "consumer": CONSUMER,
        "provider": PROVIDER,
        "service": "person",
        "purpose": "jobseeker-registration",
        "subject": AMINA,
        "fields": ["/names", "/date_of_birth"],
    }
    request.update(changes)
    return {key: value for key, value in request.items() if value is not None}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def seconds(self) -> float:
        return self.now.timestamp()


@dataclass
class World:
    service: ConsentService
    checker: ConsentChecker
    clock: Clock
    sessions: Any

    async def agreement(self, **changes: Any) -> dict[str, Any]:
        return await self.service.publish_agreement(agreement_draft(**changes))

    async def requested(self, who: str = AMINA, agreement_id: str = AGREEMENT, **body: Any) -> str:
        record = await self.service.request(
            {"agreement_id": agreement_id, "subject": who, **body},
            CONTROLLER,
            guardianship_attested="guardianship" in body,
        )
        return str(record["consent_id"])

    async def approved(
        self, who: str = AMINA, agreement_id: str = AGREEMENT, actor: Actor | None = None, **body: Any
    ) -> str:
        consent_id = await self.requested(who, agreement_id, **body)
        agreement = await self.service.agreement(agreement_id)
        notice = {"language": "en", "hash": agreement["notices"]["en"]["hash"]}
        await self.service.act(
            consent_id,
            Action.APPROVE,
            actor or Actor(ActorRole.SUBJECT, who),
            channel=Channel.WEB,
            notice=notice,
        )
        return consent_id

    async def act(self, consent_id: str, action: Action, actor: Actor | None = None) -> None:
        await self.service.act(
            consent_id, action, actor or Actor(ActorRole.SUBJECT, AMINA), channel=Channel.WEB
        )


async def make_world(database_url: str, keys_directory: Path) -> tuple[World, Callable[[], Awaitable[None]]]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    keys = KeyStore(keys_directory)
    keys.ensure_active()
    clock = Clock()
    sessions = db.session_factory(engine)
    service = ConsentService(sessions, keys, issuer="DPI/GOV/MOI/consent", clock=clock)
    return World(service, ConsentChecker(sessions, clock=clock), clock, sessions), engine.dispose


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    built, dispose = await make_world(database_url, tmp_path / "keys")
    yield built
    await dispose()


def assert_valid_decision(decision: dict[str, Any]) -> None:
    assert standards.validator("consent-check-decision").issues(decision) == []


# --- permit ---------------------------------------------------------------------------------------


async def test_an_active_consent_permits_the_requested_fields_until_its_end(world: World) -> None:
    await world.agreement()
    consent_id = await world.approved()
    record = await world.service.record(consent_id)

    decision = await world.checker.check(check_request())

    assert_valid_decision(decision)
    assert decision == {
        "decision": "permit",
        "reason_code": "consent.permitted",
        "consent_id": consent_id,
        "permitted_fields": ["/names", "/date_of_birth"],
        "valid_until": record["valid_until"],
    }


async def test_a_field_inside_a_granted_field_is_covered(world: World) -> None:
    await world.agreement()
    await world.approved()

    decision = await world.checker.check(check_request(fields=["/address/city", "/names/0/given"]))

    assert decision["decision"] == "permit"
    assert decision["permitted_fields"] == ["/address/city", "/names/0/given"]


async def test_an_active_consent_is_preferred_over_a_withdrawn_one(world: World) -> None:
    await world.agreement()
    old = await world.approved()
    await world.act(old, Action.WITHDRAW)
    new = await world.approved()

    decision = await world.checker.check(check_request())

    assert decision["decision"] == "permit"
    assert decision["consent_id"] == new


async def test_a_guardians_consent_permits_only_until_the_minor_comes_of_age(world: World) -> None:
    await world.agreement()
    until = (world.clock.now + timedelta(days=30)).date()
    await world.approved(
        guardianship={"guardian": GUARDIAN, "basis": "minor", "until": until.isoformat()},
        actor=Actor(ActorRole.GUARDIAN, GUARDIAN),
    )

    permit = await world.checker.check(check_request())
    world.clock.now = datetime.combine(until, datetime.min.time(), tzinfo=UTC)
    after = await world.checker.check(check_request())

    assert permit["decision"] == "permit"
    assert permit["valid_until"] == f"{until.isoformat()}T00:00:00.000000Z"
    assert after["reason_code"] == "consent.pending"


# --- every deny reason ----------------------------------------------------------------------------

Scenario = Callable[[World], Awaitable[dict[str, Any]]]


async def _nothing(world: World) -> dict[str, Any]:
    await world.agreement()
    return check_request()


async def _other_subject(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved("youssef-pseudonym-mol-02")
    return check_request()


async def _other_consumer(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved()
    return check_request(consumer="DPI/GOV/MOF/stipends")


async def _other_provider(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved()
    return check_request(provider="DPI/GOV/MOH/health-registry")


async def _other_service(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved()
    return check_request(service="person-full")


async def _other_purpose(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved()
    return check_request(purpose="fraud-prevention")


def _after(*steps: tuple[Action, Actor | None], approve: bool = True) -> Scenario:
    async def scenario(world: World) -> dict[str, Any]:
        await world.agreement()
        consent_id = await (world.approved() if approve else world.requested())
        for action, actor in steps:
            await world.act(consent_id, action, actor)
        return check_request()

    return scenario


async def _expired(world: World) -> dict[str, Any]:
    await world.agreement(max_validity_days=10)
    await world.approved()
    # No sweep runs: the check itself must see the consent is past its validity.
    world.clock.advance(days=10)
    return check_request()


async def _unanswered_request_expired(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.requested()
    world.clock.advance(days=31)
    return check_request()


async def _superseded(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved()
    # The new version names another service: the consent under the old one is superseded, and the
    # request for the new version does not serve the old service.
    await world.agreement(providers=[{"provider": PROVIDER, "service": "person-v2"}])
    return check_request()


async def _reconfirmation(world: World) -> dict[str, Any]:
    await world.agreement()
    until = (world.clock.now + timedelta(days=5)).date()
    await world.approved(
        guardianship={"guardian": GUARDIAN, "basis": "minor", "until": until.isoformat()},
        actor=Actor(ActorRole.GUARDIAN, GUARDIAN),
    )
    world.clock.advance(days=6)
    return check_request()


async def _field_outside(world: World) -> dict[str, Any]:
    await world.agreement()
    await world.approved()
    return check_request(fields=["/names", "/phone"])


async def _parent_of_granted_field(world: World) -> dict[str, Any]:
    await world.agreement(data_items=[{"schema": "person@1.0.0", "fields": ["/address/city"]}])
    await world.approved()
    return check_request(fields=["/address"])


async def _sibling_prefix(world: World) -> dict[str, Any]:
    await world.agreement(data_items=[{"schema": "person@1.0.0", "fields": ["/name"]}])
    await world.approved()
    return check_request(fields=["/names"])


def _ranged(requested: dict[str, str] | None) -> Scenario:
    async def scenario(world: World) -> dict[str, Any]:
        await world.agreement(data_range={"from": "2020-01-01", "to": "2025-12-31"})
        await world.approved()
        return check_request(data_range=requested)

    return scenario


async def _frequency_spent(world: World) -> dict[str, Any]:
    await world.agreement(frequency={"max_accesses": 2, "period_days": 7})
    await world.approved()
    for _ in range(2):
        assert (await world.checker.check(check_request()))["decision"] == "permit"
    return check_request()


_SUBJECT = Actor(ActorRole.SUBJECT, AMINA)

DENIALS: list[tuple[str, Scenario, str, bool]] = [
    ("no consent at all", _nothing, "consent.not_found", False),
    ("another subject's consent", _other_subject, "consent.not_found", False),
    ("another consumer", _other_consumer, "consent.not_found", False),
    ("another provider", _other_provider, "consent.not_found", False),
    ("another service of the provider", _other_service, "consent.not_found", False),
    ("another purpose", _other_purpose, "consent.purpose_mismatch", False),
    ("requested, not answered", _after(approve=False), "consent.pending", True),
    ("deferred", _after((Action.DEFER, _SUBJECT), approve=False), "consent.pending", True),
    ("awaiting reconfirmation", _reconfirmation, "consent.pending", True),
    ("refused", _after((Action.REFUSE, _SUBJECT), approve=False), "consent.refused", True),
    ("paused", _after((Action.PAUSE, _SUBJECT)), "consent.paused", True),
    ("withdrawn", _after((Action.WITHDRAW, _SUBJECT)), "consent.withdrawn", True),
    (
        "withdrawn while paused",
        _after((Action.PAUSE, _SUBJECT), (Action.WITHDRAW, _SUBJECT)),
        "consent.withdrawn",
        True,
    ),
    ("revoked by the controller", _after((Action.REVOKE, CONTROLLER)), "consent.revoked", True),
    (
        "revoked by the provider",
        _after((Action.REVOKE, Actor(ActorRole.PROVIDER, PROVIDER))),
        "consent.revoked",
        True,
    ),
    ("invalidated", _after((Action.INVALIDATE, AUTHORITY)), "consent.invalidated", True),
    ("expired, no sweep ran", _expired, "consent.expired", True),
    ("request left unanswered past its time", _unanswered_request_expired, "consent.expired", True),
    ("superseded by a new version", _superseded, "consent.superseded", True),
    ("a field outside the consent", _field_outside, "consent.fields_not_covered", True),
    ("the parent of a granted field", _parent_of_granted_field, "consent.fields_not_covered", True),
    ("a field sharing only a prefix", _sibling_prefix, "consent.fields_not_covered", True),
    ("no range asked of a limited agreement", _ranged(None), "consent.data_range_not_covered", True),
    (
        "range starting too early",
        _ranged({"from": "2019-12-31", "to": "2021-01-01"}),
        "consent.data_range_not_covered",
        True,
    ),
    (
        "range ending too late",
        _ranged({"from": "2021-01-01", "to": "2026-01-01"}),
        "consent.data_range_not_covered",
        True,
    ),
    ("range open at its start", _ranged({"to": "2021-01-01"}), "consent.data_range_not_covered", True),
    ("range open at its end", _ranged({"from": "2021-01-01"}), "consent.data_range_not_covered", True),
    ("frequency spent in this period", _frequency_spent, "consent.frequency_exceeded", True),
]


@pytest.mark.parametrize(
    ("scenario", "reason_code", "names_consent"),
    [pytest.param(scenario, reason, named, id=name) for name, scenario, reason, named in DENIALS],
)
async def test_deny_carries_the_most_precise_reason(
    world: World, scenario: Scenario, reason_code: str, names_consent: bool
) -> None:
    request = await scenario(world)

    decision = await world.checker.check(request)

    assert_valid_decision(decision)
    assert decision["decision"] == "deny"
    assert decision["reason_code"] == reason_code
    assert decision["permitted_fields"] == []
    assert ("consent_id" in decision) is names_consent


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param({"from": "2020-01-01", "to": "2025-12-31"}, id="the whole range"),
        pytest.param({"from": "2022-03-01", "to": "2022-03-31"}, id="a month inside"),
        pytest.param({"from": "2025-12-31", "to": "2025-12-31"}, id="the last day"),
    ],
)
async def test_a_range_inside_the_agreement_range_permits(world: World, requested: dict[str, str]) -> None:
    await _ranged(None)(world)

    decision = await world.checker.check(check_request(data_range=requested))

    assert decision["decision"] == "permit"


# --- bad input ------------------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no subject", check_request(subject=None), ""),
    ("subject too short", check_request(subject="short"), "/subject"),
    ("subject with spaces", check_request(subject="amina pseudonym 0001"), "/subject"),
    ("consumer not a subsystem id", check_request(consumer="MOL"), "/consumer"),
    ("provider a member, not a subsystem", check_request(provider="DPI/GOV/MOI"), "/provider"),
    ("purpose with capitals", check_request(purpose="Jobseeker"), "/purpose"),
    ("no fields", check_request(fields=[]), "/fields"),
    ("field not a pointer", check_request(fields=["names"]), "/fields/0"),
    ("the whole document", check_request(fields=["/"]), "/fields/0"),
    ("a field twice", check_request(fields=["/names", "/names"]), "/fields"),
    ("fields not a list", check_request(fields="/names"), "/fields"),
    ("an unknown member", {**check_request(), "consent_id": "x"}, "/consent_id"),
    ("a date that is not one", check_request(data_range={"from": "2020-13-01"}), "/data_range/from"),
    (
        "a range ending before it starts",
        check_request(data_range={"from": "2021-01-02", "to": "2021-01-01"}),
        "/data_range",
    ),
    (
        "a range with an unknown member",
        check_request(data_range={"since": "2021-01-01"}),
        "/data_range/since",
    ),
]


@pytest.mark.parametrize(
    ("request_body", "pointer"), [pytest.param(body, pointer, id=name) for name, body, pointer in INVALID]
)
async def test_bad_input_is_refused_with_a_pointer(world: World, request_body: Any, pointer: str) -> None:
    await world.agreement()
    await world.approved()

    with pytest.raises(DpiError) as refused:
        await world.checker.check(request_body)

    assert refused.value.reason_code == "request.invalid"
    assert pointer in {detail.pointer for detail in refused.value.details}


@pytest.mark.parametrize("body", [None, [], "check", 42])
async def test_a_request_that_is_not_an_object_is_refused(world: World, body: Any) -> None:
    with pytest.raises(DpiError) as refused:
        await world.checker.check(body)

    assert refused.value.reason_code == "request.invalid"


# --- frequency ------------------------------------------------------------------------------------


async def _usage(world: World) -> list[tuple[int, int]]:
    async with world.sessions() as session:
        rows = (await session.execute(select(UsageRow.period_index, UsageRow.count))).all()
    return [(row[0], row[1]) for row in rows]


async def test_concurrent_checks_permit_exactly_the_limit(world: World) -> None:
    await world.agreement(frequency={"max_accesses": 7, "period_days": 30})
    consent_id = await world.approved()

    decisions = await asyncio.gather(*(world.checker.check(check_request()) for _ in range(40)))

    reasons = [decision["reason_code"] for decision in decisions]
    assert reasons.count("consent.permitted") == 7
    assert reasons.count("consent.frequency_exceeded") == 33
    assert all(decision["consent_id"] == consent_id for decision in decisions)
    assert await _usage(world) == [(period_index(world.clock.now, 30), 7)]


async def test_a_new_period_opens_new_accesses(world: World) -> None:
    await world.agreement(frequency={"max_accesses": 1, "period_days": 7})
    await world.approved()
    first = await world.checker.check(check_request())
    spent = await world.checker.check(check_request())
    window = period_index(world.clock.now, 7)
    world.clock.now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=7 * (window + 1))

    renewed = await world.checker.check(check_request())

    assert [first["decision"], spent["decision"], renewed["decision"]] == ["permit", "deny", "permit"]


async def test_a_denied_check_consumes_no_access(world: World) -> None:
    await world.agreement(frequency={"max_accesses": 1, "period_days": 7})
    await world.approved()

    refused = await world.checker.check(check_request(fields=["/phone"]))
    permitted = await world.checker.check(check_request())

    assert (refused["reason_code"], permitted["decision"]) == ("consent.fields_not_covered", "permit")


CHANGES_BETWEEN_READ_AND_COUNT: list[tuple[str, Action, Actor, str]] = [
    ("withdrawn", Action.WITHDRAW, Actor(ActorRole.SUBJECT, AMINA), "consent.withdrawn"),
    ("paused", Action.PAUSE, Actor(ActorRole.SUBJECT, AMINA), "consent.paused"),
    ("revoked", Action.REVOKE, CONTROLLER, "consent.revoked"),
]


@pytest.mark.parametrize(
    ("action", "actor", "reason_code"),
    [case[1:] for case in CHANGES_BETWEEN_READ_AND_COUNT],
    ids=[case[0] for case in CHANGES_BETWEEN_READ_AND_COUNT],
)
async def test_a_change_committed_between_reading_the_state_and_counting_never_permits(
    world: World, monkeypatch: pytest.MonkeyPatch, action: Action, actor: Actor, reason_code: str
) -> None:
    await world.agreement(frequency={"max_accesses": 5, "period_days": 7})
    consent_id = await world.approved()
    count_access = ConsentChecker._count_access

    async def changed_first(checker: ConsentChecker, *args: Any) -> bool:
        # The check has read ACTIVE; the change commits before the access is counted.
        await world.act(consent_id, action, actor)
        return await count_access(checker, *args)

    monkeypatch.setattr(ConsentChecker, "_count_access", changed_first)
    decision = await world.checker.decide(check_request())

    assert decision.document == {
        "decision": "deny",
        "reason_code": reason_code,
        "consent_id": consent_id,
        "permitted_fields": [],
    }
    assert decision.cacheable is False
    assert await _usage(world) == []


async def test_an_access_at_the_end_of_validity_is_never_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.agreement(frequency={"max_accesses": 5, "period_days": 7})
    consent_id = await world.approved()
    valid_until = datetime.fromisoformat((await world.service.record(consent_id))["valid_until"])
    count_access = ConsentChecker._count_access

    async def at_the_end(checker: ConsentChecker, consent: str, frequency: Any, _now: datetime) -> bool:
        return await count_access(checker, consent, frequency, valid_until)

    monkeypatch.setattr(ConsentChecker, "_count_access", at_the_end)
    decision = await world.checker.check(check_request())

    assert decision["decision"] == "deny"
    assert await _usage(world) == []


async def test_a_consent_without_a_frequency_limit_counts_nothing(world: World) -> None:
    await world.agreement()
    await world.approved()

    decisions = await asyncio.gather(*(world.checker.check(check_request()) for _ in range(10)))

    assert {decision["decision"] for decision in decisions} == {"permit"}
    async with world.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(UsageRow)) == 0


@pytest.mark.parametrize(
    ("moment", "period_days", "index"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 1, 0),
        (datetime(1970, 1, 7, 23, 59, tzinfo=UTC), 7, 0),
        (datetime(1970, 1, 8, tzinfo=UTC), 7, 1),
        (datetime(2026, 11, 23, 9, tzinfo=UTC), 30, (date(2026, 11, 23) - date(1970, 1, 1)).days // 30),
    ],
)
def test_periods_are_fixed_windows_from_the_epoch(moment: datetime, period_days: int, index: int) -> None:
    assert period_index(moment, period_days) == index


# --- the property: a consent that has ended never permits again -----------------------------------

_ENDED = {State.WITHDRAWN, State.REVOKED, State.EXPIRED, State.INVALIDATED}
_STEPS: dict[str, tuple[Action, Actor] | None] = {
    "approve": (Action.APPROVE, _SUBJECT),
    "refuse": (Action.REFUSE, _SUBJECT),
    "defer": (Action.DEFER, _SUBJECT),
    "pause": (Action.PAUSE, _SUBJECT),
    "resume": (Action.RESUME, _SUBJECT),
    "withdraw": (Action.WITHDRAW, _SUBJECT),
    "revoke": (Action.REVOKE, CONTROLLER),
    "invalidate": (Action.INVALIDATE, AUTHORITY),
    "days pass": None,
}


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(_STEPS)), st.integers(min_value=1, max_value=60)),
        min_size=1,
        max_size=8,
    )
)
def test_an_ended_consent_never_permits(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]
) -> None:
    asyncio.run(_replay(database_url, tmp_path_factory.mktemp("keys"), steps))


async def _replay(database_url: str, keys_directory: Path, steps: list[tuple[str, int]]) -> None:
    world, dispose = await make_world(database_url, keys_directory)
    cache = CachingConsentChecker(world.checker, ttl_seconds=3600, clock=world.clock.seconds)
    cache.attach(world.service)
    try:
        try:
            await world.service.agreement(AGREEMENT)
        except DpiError:
            await world.agreement(max_validity_days=90)
        subject = f"subject-{keys_directory.name}".ljust(16, "x")[:128]
        consent_id = await world.requested(subject)
        agreement = await world.service.agreement(AGREEMENT)
        notice = {"language": "en", "hash": agreement["notices"]["en"]["hash"]}
        ended = False
        request = check_request(subject=subject)
        for name, days in steps:
            step = _STEPS[name]
            if step is None:
                world.clock.advance(days=days)
            else:
                action, actor = step
                if actor.role is ActorRole.SUBJECT:
                    actor = Actor(ActorRole.SUBJECT, subject)
                # A step the lifecycle refuses leaves the consent as it was.
                with contextlib.suppress(DpiError):
                    await world.service.act(
                        consent_id,
                        action,
                        actor,
                        channel=Channel.WEB,
                        notice=notice if action is Action.APPROVE else None,
                    )
            state = State((await world.service.record(consent_id))["state"])
            ended = ended or state in _ENDED
            for checker in (world.checker, cache):
                decision = await checker.check(request)
                assert (decision["decision"] == "permit") is (state is State.ACTIVE)
                if ended:
                    assert decision["decision"] == "deny"
                if state in _ENDED:
                    assert decision["reason_code"] == f"consent.{state.value.lower()}"
    finally:
        await dispose()
