"""Exports of consent records as ISO/IEC TS 27560 (DPV terms) and Kantara Consent Receipt 1.1: every state
a record can reach through the real service, and generated records, give documents valid against their
schemas."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import standards
from consent.exports import iso27560_record, kantara_receipt
from consent.lifecycle import Action, ActorRole, Channel, State
from consent.service import Actor, ConsentService
from dpi import db
from dpi.keys import KeyStore
from tests.consent.agreements import AMINA, CONSUMER, GUARDIAN, PROVIDER, agreement_draft

MIGRATIONS = Path(__file__).resolve().parents[2] / "consent" / "migrations"
DPV = "https://w3id.org/dpv#"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


async def _service(database_url: str, tmp_path: Path) -> AsyncIterator[ConsentService]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    keys = KeyStore(tmp_path / "keys")
    keys.ensure_active()
    yield ConsentService(db.session_factory(engine), keys, issuer="DPI/GOV/MOI/consent", clock=Clock())
    await engine.dispose()


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[ConsentService]:
    async for made in _service(database_url, tmp_path):
        yield made


@pytest.fixture
async def local_service(tmp_path: Path) -> AsyncIterator[ConsentService]:
    """On the embedded SQLite database only: the exports read documents, which both databases give alike
    (the tests below that take ``service`` check that on PostgreSQL too)."""
    async for made in _service(f"sqlite+aiosqlite:///{tmp_path / 'consent.sqlite3'}", tmp_path):
        yield made


ME = Actor(ActorRole.SUBJECT, AMINA)


async def _request(service: ConsentService, **body: Any) -> str:
    record = await service.request(
        {"agreement_id": "mol-jobseeker-registration", "subject": AMINA, **body},
        Actor(ActorRole.CONTROLLER, CONSUMER),
        guardianship_attested="guardianship" in body,
    )
    return str(record["consent_id"])


async def _approve(service: ConsentService, consent_id: str, actor: Actor = ME, language: str = "fr") -> None:
    agreement = await service.agreement("mol-jobseeker-registration")
    notice = {"language": language, "hash": agreement["notices"][language]["hash"]}
    await service.act(consent_id, Action.APPROVE, actor, channel=Channel.WEB, notice=notice)


async def _act(service: ConsentService, consent_id: str, action: Action, actor: Actor = ME) -> None:
    await service.act(consent_id, action, actor, channel=Channel.WEB)


async def requested(service: ConsentService) -> str:
    return await _request(service)


async def active(service: ConsentService) -> str:
    consent_id = await _request(service)
    await _approve(service, consent_id)
    return consent_id


async def refused(service: ConsentService) -> str:
    consent_id = await _request(service)
    await _act(service, consent_id, Action.REFUSE)
    return consent_id


async def deferred(service: ConsentService) -> str:
    consent_id = await _request(service)
    await _act(service, consent_id, Action.DEFER)
    return consent_id


async def paused(service: ConsentService) -> str:
    consent_id = await active(service)
    await _act(service, consent_id, Action.PAUSE)
    return consent_id


async def withdrawn(service: ConsentService) -> str:
    consent_id = await paused(service)
    await _act(service, consent_id, Action.WITHDRAW)
    return consent_id


async def revoked(service: ConsentService) -> str:
    consent_id = await active(service)
    await service.act(
        consent_id, Action.REVOKE, Actor(ActorRole.CONTROLLER, CONSUMER), channel=Channel.API, reason="closed"
    )
    return consent_id


async def invalidated(service: ConsentService) -> str:
    consent_id = await active(service)
    await service.act(
        consent_id, Action.INVALIDATE, Actor(ActorRole.AUTHORITY, "DPI/GOV/DPA/court"), channel=Channel.API
    )
    return consent_id


async def expired(service: ConsentService) -> str:
    consent_id = await active(service)
    assert isinstance(service.clock, Clock)
    service.clock.now += timedelta(days=181)
    return consent_id


async def expired_and_swept(service: ConsentService) -> str:
    consent_id = await expired(service)
    assert await service.sweep() == 1
    return consent_id


async def superseded(service: ConsentService) -> str:
    consent_id = await active(service)
    await service.publish_agreement(agreement_draft(retention_days=730))
    return consent_id


async def carried_over(service: ConsentService) -> str:
    consent_id = await active(service)
    await service.publish_agreement(agreement_draft(retention_days=30))
    return consent_id


async def awaiting_reconfirmation(service: ConsentService) -> str:
    until = (date(2026, 11, 23) + timedelta(days=10)).isoformat()
    consent_id = await _request(
        service, guardianship={"guardian": GUARDIAN, "basis": "minor", "until": until}
    )
    await _approve(service, consent_id, Actor(ActorRole.GUARDIAN, GUARDIAN))
    assert isinstance(service.clock, Clock)
    service.clock.now += timedelta(days=11)
    return consent_id


async def reconfirmed(service: ConsentService) -> str:
    consent_id = await awaiting_reconfirmation(service)
    await _approve(service, consent_id, language="ar")
    return consent_id


Scenario = Callable[[ConsentService], Awaitable[str]]
SCENARIOS: list[tuple[Scenario, str, str]] = [
    (requested, "REQUESTED", "ConsentRequested"),
    (active, "ACTIVE", "ConsentGiven"),
    (refused, "REFUSED", "ConsentRefused"),
    (deferred, "DEFERRED", "ConsentRequestDeferred"),
    (paused, "PAUSED", "ConsentStatusInvalidForProcessing"),
    (withdrawn, "WITHDRAWN", "ConsentWithdrawn"),
    (revoked, "REVOKED", "ConsentRevoked"),
    (invalidated, "INVALIDATED", "ConsentInvalidated"),
    (expired, "EXPIRED", "ConsentExpired"),
    (expired_and_swept, "EXPIRED", "ConsentExpired"),
    (superseded, "SUPERSEDED", "ConsentRevoked"),
    (carried_over, "ACTIVE", "ConsentGiven"),
    (awaiting_reconfirmation, "REQUESTED", "ConsentRequested"),
    (reconfirmed, "ACTIVE", "RenewedConsentGiven"),
]


async def exported(service: ConsentService, consent_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    record = await service.record(consent_id)
    agreement = await service.agreement(record["agreement_id"], record["agreement_version"])
    events = await service.history(consent_id)
    return iso27560_record(record, agreement, events), kantara_receipt(record, agreement, events)


@pytest.mark.parametrize(("scenario", "state", "status"), SCENARIOS, ids=[s[0].__name__ for s in SCENARIOS])
async def test_every_state_exports_valid_documents(
    local_service: ConsentService, scenario: Scenario, state: str, status: str
) -> None:
    service = local_service
    await service.publish_agreement(agreement_draft())
    consent_id = await scenario(service)
    iso, kantara = await exported(service, consent_id)
    assert standards.validator("iso27560-consent-record").issues(iso) == []
    assert standards.validator("kantara-consent-receipt").issues(kantara) == []
    assert (iso["state"], iso["status"]) == (state, DPV + status)
    assert iso["record_id"] == consent_id
    assert kantara["piiPrincipalId"] == iso["pii_principal_id"] == AMINA


async def test_iso_record_carries_dpv_terms_notice_and_history(service: ConsentService) -> None:
    agreement = await service.publish_agreement(agreement_draft())
    consent_id = await withdrawn(service)
    iso, _ = await exported(service, consent_id)
    assert iso["purposes"] == [{"code": "jobseeker-registration", "iri": DPV + "ServiceRegistration"}]
    assert iso["lawful_basis"] == {"code": "consent", "iri": DPV + "Consent"}
    assert iso["privacy_notice"]["hashes"]["fr"] == agreement["notices"]["fr"]["hash"]
    assert iso["language"] == "fr"
    assert iso["retention_period"] == "P365D"
    assert iso["pii_information"] == [
        {"pii_type": "person@1.0.0", "pii_attribute_ids": ["/names", "/date_of_birth"]}
    ]
    assert iso["pii_controllers"][0]["email"] == "dpo@labour.gov.example"
    assert iso["recipient_third_parties"] == [CONSUMER]
    assert [(e["action"], e["state"], e["event_state"]) for e in iso["events"]] == [
        ("request", "REQUESTED", DPV + "ConsentRequested"),
        ("approve", "ACTIVE", DPV + "ConsentGiven"),
        ("pause", "PAUSED", DPV + "ConsentStatusInvalidForProcessing"),
        ("withdraw", "WITHDRAWN", DPV + "ConsentWithdrawn"),
    ]
    approval = iso["events"][1]
    assert approval["notice"]["language"] == "fr"
    assert approval["validity_duration"] == "P180D"
    assert approval["entity_id"] == AMINA


async def test_kantara_receipt_names_time_method_and_end(service: ConsentService) -> None:
    await service.publish_agreement(agreement_draft())
    consent_id = await withdrawn(service)
    _, kantara = await exported(service, consent_id)
    assert kantara["version"] == "KI-CR-v1.1.0"
    assert kantara["consentTimestamp"] == int(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp())
    assert kantara["collectionMethod"] == "web portal"
    purpose = kantara["services"][0]["purposes"][0]
    assert purpose["purposeCategory"] == ["jobseeker-registration", DPV + "ServiceRegistration"]
    assert purpose["termination"].startswith("Ended: withdrawn on 2026-11-23T09:00:00")
    assert kantara["services"][0]["service"] == f"{PROVIDER}/person"
    again = (await exported(service, consent_id))[1]
    assert again["consentReceiptID"] == kantara["consentReceiptID"]


async def test_events_of_other_records_are_ignored_and_a_record_without_events_is_refused(
    service: ConsentService,
) -> None:
    await service.publish_agreement(agreement_draft())
    first = await refused(service)
    second = await active(service)
    record = await service.record(second)
    agreement = await service.agreement("mol-jobseeker-registration")
    mixed = await service.history(first) + await service.history(second)
    iso = iso27560_record(record, agreement, mixed)
    assert [e["action"] for e in iso["events"]] == ["request", "approve"]
    with pytest.raises(ValueError, match="at least the event"):
        kantara_receipt(record, agreement, await service.history(first))


# --- generated agreements and records ---------------------------------------------------------------------

_SEGMENT = st.from_regex(r"\A[A-Za-z0-9](?:[A-Za-z0-9._-]{0,20}[A-Za-z0-9])?\Z")
_SUBSYSTEM = st.builds(lambda *parts: "/".join(parts), _SEGMENT, _SEGMENT, _SEGMENT, _SEGMENT)
_POINTER = st.from_regex(r"\A(/[a-z_]{1,12}){1,3}\Z")
_MOMENT = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))
_HASH = st.binary(min_size=1, max_size=8).map(lambda raw: "sha256:" + hashlib.sha256(raw).hexdigest())
_CONTACT = st.one_of(
    st.just("dpo@ministry.example"),
    st.just("+221771234567"),
    st.just("https://ministry.example/privacy"),
    st.text(min_size=1, max_size=320),
)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@st.composite
def _agreements(draw: st.DrawFn) -> dict[str, Any]:
    items = draw(
        st.lists(
            st.builds(
                lambda schema, fields: {"schema": schema, "fields": fields},
                st.sampled_from(["person@1.0.0", "jobseeker@1.2.0", "household@2.0.1"]),
                st.lists(_POINTER, min_size=1, max_size=5, unique=True),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return {
        "agreement_id": draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{2,20}\Z")),
        "version": draw(st.integers(1, 1000)),
        "consumer": draw(_SUBSYSTEM),
        "providers": draw(
            st.lists(
                st.builds(
                    lambda p, s: {"provider": p, "service": s}, _SUBSYSTEM, st.from_regex(r"\A[a-z]{1,20}\Z")
                ),
                min_size=1,
                max_size=3,
                unique_by=lambda p: (p["provider"], p["service"]),
            )
        ),
        "purpose": draw(st.sampled_from(sorted(standards.purpose_codes()))),
        "legal_basis": draw(st.sampled_from(sorted(standards.legal_bases()))),
        "data_items": items,
        "retention_days": draw(st.integers(0, 36500)),
        "max_validity_days": draw(st.integers(1, 3660)),
        "revocable": draw(st.booleans()),
        "controller": {"name": draw(st.text(min_size=1, max_size=200)), "contact": draw(_CONTACT)},
        "notices": {lang: {"text": "notice", "hash": draw(_HASH)} for lang in ("en", "fr", "ar")},
    }


@st.composite
def _cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    agreement = draw(_agreements())
    covered = sorted({p for item in agreement["data_items"] for p in item["fields"]})
    consent_id = str(draw(st.uuids()))
    subject = draw(st.from_regex(r"\A[A-Za-z0-9_-]{16,40}\Z"))
    created = draw(_MOMENT)
    record: dict[str, Any] = {
        "consent_id": consent_id,
        "agreement_id": agreement["agreement_id"],
        "agreement_version": agreement["version"],
        "subject": subject,
        "state": draw(st.sampled_from([s.value for s in State])),
        "fields": draw(st.lists(st.sampled_from(covered), min_size=1, unique=True)),
        "requires_reconfirmation": draw(st.booleans()),
        "created_at": _stamp(created),
        "updated_at": _stamp(created),
    }
    if draw(st.booleans()):
        record["valid_from"] = _stamp(created)
        record["valid_until"] = _stamp(created + timedelta(days=draw(st.integers(0, 3660))))
    events = []
    for seq, action in enumerate(
        draw(st.lists(st.sampled_from([a.value for a in Action]), min_size=1, max_size=6))
    ):
        actor: dict[str, Any] = {"role": draw(st.sampled_from([r.value for r in ActorRole]))}
        if draw(st.booleans()):
            actor["id"] = subject
        event: dict[str, Any] = {
            "event_id": str(draw(st.uuids())),
            "consent_id": consent_id,
            "subject": subject,
            "seq": seq + 1,
            "action": action,
            "from_state": None if seq == 0 else draw(st.sampled_from([s.value for s in State])),
            "to_state": draw(st.sampled_from([s.value for s in State])),
            "actor": actor,
            "channel": draw(st.sampled_from([c.value for c in Channel])),
            "at": _stamp(created + timedelta(minutes=seq)),
            "prev_hash": draw(_HASH),
            "hash": draw(_HASH),
        }
        if draw(st.booleans()):
            event["notice"] = {"language": draw(st.sampled_from(["en", "fr", "ar"])), "hash": draw(_HASH)}
        events.append(event)
    for document, schema in ((agreement, "consent-agreement"), (record, "consent-record")):
        assert standards.validator(schema).issues(document) == []
    for event in events:
        assert standards.validator("consent-event").issues(event) == []
    return agreement, record, events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_exports_of_generated_records_always_validate(
    case: tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]],
) -> None:
    agreement, record, events = case
    iso = iso27560_record(record, agreement, events)
    kantara = kantara_receipt(record, agreement, events)
    assert standards.validator("iso27560-consent-record").issues(iso) == []
    assert standards.validator("kantara-consent-receipt").issues(kantara) == []
