"""Consent notifications: webhooks, fan-out from the outbox, signed at-least-once delivery, acks."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import consent
import standards
from conformance_tests import CallbackReceiver
from conformance_tests.receiver import verify_callback_signature
from consent.lifecycle import Action, ActorRole, Channel
from consent.notification_models import DeliveryRow, WebhookRow
from consent.notifications import (
    JOSE_MEDIA_TYPE,
    NOTIFICATION_JWS_TYPE,
    DispatchReport,
    RetryPolicy,
    delete_webhook,
    deliveries,
    dispatch_once,
    list_webhooks,
    register_webhook,
)
from consent.service import Actor, ConsentService
from dpi import db
from dpi.errors import DpiError
from dpi.keys import KeyStore, KeyStoreError
from dpi.models import OutboxMessage
from dpi.settings import Settings
from dpi.signing import verify_compact, verify_request

CONSUMER = "DPI/GOV/MOL/jobseeker-service"
PROVIDER = "DPI/GOV/MOI/civil-registry"
OUTSIDER = "DPI/GOV/MOH/clinic-records"
SUBJECT = "Zx4rT9-qLm2Vb7Kp_s0Yw3"
CONSUMER_URL = "https://jobseeker.labour.example.gov/hooks/consent"
PROVIDER_URL = "https://registry.interior.example.gov/hooks/consent"
OUTSIDER_URL = "https://clinic.health.example.gov/hooks/consent"
NOTICE_TEXT = {
    "en": "The Ministry of Labour will read your date of birth from the civil registry.",
    "fr": "Le ministère du Travail lira votre date de naissance dans l'état civil.",
    "ar": "ستقرأ وزارة العمل تاريخ ميلادك من السجل المدني.",
}
AGREEMENT = {
    "agreement_id": "mol-jobseeker-registration",
    "consumer": CONSUMER,
    "providers": [{"provider": PROVIDER, "service": "person-read"}],
    "purpose": "jobseeker-registration",
    "legal_basis": "consent",
    "data_items": [{"schema": "person@1.0.0", "fields": ["/date_of_birth"]}],
    "retention_days": 365,
    "max_validity_days": 180,
    "revocable": True,
    "controller": {"name": "Ministry of Labour", "contact": "dpo@labour.example.gov"},
    "notices": {language: {"text": text} for language, text in NOTICE_TEXT.items()},
}
ALL_EVENTS = ["withdrawn", "revoked", "paused", "resumed", "expired", "superseded", "invalidated"]
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(settings.database)
    await db.upgrade(engine, [Path(consent.__file__).parent / "migrations"])
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


class Dns:
    """Name resolution as the dispatcher sees it: names under ``example.gov`` resolve to a public
    address unless pointed elsewhere; every other name resolves as usual."""

    PUBLIC = "93.184.215.14"

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def address(self, host: str) -> str | None:
        if host in self.names:
            return self.names[host]
        return self.PUBLIC if host.endswith(".example.gov") else None


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    fake = Dns()
    original = asyncio.BaseEventLoop.getaddrinfo

    async def getaddrinfo(loop: asyncio.BaseEventLoop, host: Any, port: Any, **options: Any) -> Any:
        address = fake.address(host) if isinstance(host, str) else None
        if address is None:
            return await original(loop, host, port, **options)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, int(port or 443)))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    store = KeyStore(tmp_path / "keys")
    store.ensure_active()
    return store


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession], keys: KeyStore) -> ConsentService:
    return ConsentService(sessions, keys, issuer="DPI/GOV/CNS/consent")


async def _active_consent(service: ConsentService, subject: str = SUBJECT) -> str:
    agreement = await service.publish_agreement(AGREEMENT)
    record = await service.request(
        {"agreement_id": AGREEMENT["agreement_id"], "subject": subject}, Actor(ActorRole.CONTROLLER, CONSUMER)
    )
    await service.act(
        record["consent_id"],
        Action.APPROVE,
        Actor(ActorRole.SUBJECT, subject),
        channel=Channel.WEB,
        notice={"language": "fr", "hash": agreement["notices"]["fr"]["hash"]},
    )
    return str(record["consent_id"])


async def _withdraw(service: ConsentService, consent_id: str, subject: str = SUBJECT) -> None:
    await service.act(consent_id, Action.WITHDRAW, Actor(ActorRole.SUBJECT, subject), channel=Channel.WEB)


def _notice_of(request: httpx.Request, keys: KeyStore) -> tuple[dict[str, Any], dict[str, Any]]:
    return verify_compact(request.content.decode("ascii"), keys.jwks())


def _member_of(url: str) -> str:
    return {CONSUMER_URL: CONSUMER, PROVIDER_URL: PROVIDER, OUTSIDER_URL: OUTSIDER}.get(url, CONSUMER)


class Receivers:
    """Webhook receivers behind an httpx MockTransport: every request recorded, answers scripted."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self.requests: list[httpx.Request] = []
        self.answers: list[Callable[[httpx.Request], httpx.Response]] = []

    def acknowledge(self, request: httpx.Request) -> httpx.Response:
        _, notice = _notice_of(request, self.keys)
        url = str(request.url)
        ack = {
            "notification_id": notice["notification_id"],
            "received_at": "2030-01-01T00:00:01Z",
            "receiver": _member_of(url),
        }
        return httpx.Response(200, json=ack)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else self.acknowledge
        return answer(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def urls(self) -> list[str]:
        return sorted(str(request.url) for request in self.requests)


@pytest.fixture
def receivers(keys: KeyStore) -> Receivers:
    return Receivers(keys)


async def _register(
    sessions: async_sessionmaker[AsyncSession], member: str, url: str, events: list[str]
) -> dict[str, Any]:
    return await register_webhook(sessions, member, {"member": member, "url": url, "events": events})


async def test_a_withdrawal_reaches_each_subscribed_webhook_once_signed_and_acknowledged(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn", "revoked"])
    await _register(sessions, PROVIDER, PROVIDER_URL, ALL_EVENTS)
    await _register(sessions, CONSUMER, "https://jobseeker.labour.example.gov/hooks/paused", ["paused"])
    await _register(sessions, OUTSIDER, OUTSIDER_URL, ALL_EVENTS)
    consent_id = await _active_consent(service)
    await _withdraw(service, consent_id)

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)
        again = await dispatch_once(sessions, keys.active(), client, now=T0 + timedelta(days=1))

    assert report == DispatchReport(fanned_out=2, delivered=2, failed=0, dead=0)
    assert again == DispatchReport()
    assert receivers.urls() == sorted([CONSUMER_URL, PROVIDER_URL])
    notices = []
    for request in receivers.requests:
        header, notice = _notice_of(request, keys)
        assert header["typ"] == NOTIFICATION_JWS_TYPE
        assert request.headers["content-type"] == JOSE_MEDIA_TYPE
        assert request.headers["idempotency-key"] == notice["notification_id"]
        assert verify_request("POST", str(request.url), request.headers, request.content, keys.jwks())
        notices.append(notice)
    assert notices[0] == notices[1]
    notice = notices[0]
    standards.validator("consent-notification").check(notice)
    assert (notice["event"], notice["state"], notice["consent_id"]) == ("withdrawn", "WITHDRAWN", consent_id)

    delivered = await deliveries(sessions, status="delivered")
    assert sorted(item["member"] for item in delivered) == sorted([CONSUMER, PROVIDER])
    for item in delivered:
        assert item["acknowledgement"] == {
            "notification_id": notice["notification_id"],
            "received_at": "2030-01-01T00:00:01Z",
            "receiver": item["member"],
        }
        assert item["acknowledged_at"] == "2030-01-01T00:00:00.000000Z"
        assert item["attempts"] == 1
    standards.validator("consent-delivery-list").check({"items": delivered, "total": len(delivered)})
    assert await deliveries(sessions, member=OUTSIDER) == []
    assert await deliveries(sessions, status="pending") == []


async def test_no_personal_data_leaves_in_the_notice_or_the_operator_view(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ALL_EVENTS)
    consent_id = await _active_consent(service)
    await service.act(consent_id, Action.PAUSE, Actor(ActorRole.SUBJECT, SUBJECT), channel=Channel.SMS)
    await service.act(consent_id, Action.RESUME, Actor(ActorRole.SUBJECT, SUBJECT), channel=Channel.SMS)
    await service.act(consent_id, Action.REVOKE, Actor(ActorRole.CONTROLLER, CONSUMER), channel=Channel.API)

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert report.delivered == 3
    events = []
    for request in receivers.requests:
        _, notice = _notice_of(request, keys)
        events.append(notice["event"])
        assert SUBJECT not in json.dumps(notice)
        assert SUBJECT not in str(request.headers)
        assert "subject" not in notice
    assert sorted(events) == ["paused", "resumed", "revoked"]
    assert SUBJECT not in json.dumps(await deliveries(sessions))


async def test_failed_attempts_are_retried_with_growing_backoff_until_acknowledged(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _withdraw(service, await _active_consent(service))

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    receivers.answers = [
        lambda _: httpx.Response(500),
        timeout,
        lambda _: httpx.Response(503, json={"status": "busy"}),
        lambda _: httpx.Response(200, json={"status": "ok"}),
    ]
    moment, delays, errors = T0, [], []
    async with receivers.client() as client:
        for _ in range(4):
            report = await dispatch_once(sessions, keys.active(), client, now=moment)
            assert report.failed == 1
            (pending,) = await deliveries(sessions, status="pending")
            due = datetime.fromisoformat(pending["next_attempt_at"])
            delays.append(due - moment)
            errors.append(pending["last_error"])
            early = await dispatch_once(sessions, keys.active(), client, now=due - timedelta(seconds=1))
            assert early == DispatchReport()
            moment = due
        final = await dispatch_once(sessions, keys.active(), client, now=moment)

    assert final.delivered == 1
    assert len(receivers.requests) == 5
    assert delays == sorted(delays)
    assert len(set(delays)) == 4
    assert timedelta(seconds=8) <= delays[0] <= timedelta(seconds=12)
    assert errors[:3] == ["HTTP 500", "the receiver could not be reached", "HTTP 503"]
    assert "consent-notification-ack" in errors[3]
    (delivered,) = await deliveries(sessions, status="delivered")
    assert delivered["attempts"] == 5
    assert "last_error" not in delivered
    ids = {request.headers["idempotency-key"] for request in receivers.requests}
    assert len(ids) == 1


INVALID_ACKS: list[tuple[str, Callable[[dict[str, Any]], httpx.Response]]] = [
    ("empty 200", lambda ack: httpx.Response(200)),
    ("204 no content", lambda ack: httpx.Response(204)),
    ("not JSON", lambda ack: httpx.Response(200, content=b"OK")),
    ("JSON array", lambda ack: httpx.Response(200, json=[ack])),
    (
        "another notification",
        lambda ack: httpx.Response(
            200, json={**ack, "notification_id": "0" * 8 + ack["notification_id"][8:]}
        ),
    ),
    ("another receiver", lambda ack: httpx.Response(200, json={**ack, "receiver": OUTSIDER})),
    ("extra member", lambda ack: httpx.Response(200, json={**ack, "subject": SUBJECT})),
    (
        "missing received_at",
        lambda ack: httpx.Response(200, json={k: v for k, v in ack.items() if k != "received_at"}),
    ),
    ("redirect", lambda ack: httpx.Response(302, headers={"Location": OUTSIDER_URL}, json=ack)),
    ("server error with a valid ack", lambda ack: httpx.Response(500, json=ack)),
    ("oversized", lambda ack: httpx.Response(200, json={**ack, "padding": "x" * 70_000})),
]


@pytest.mark.parametrize(
    "answer", [answer for _, answer in INVALID_ACKS], ids=[name for name, _ in INVALID_ACKS]
)
async def test_an_answer_that_is_not_the_acknowledgement_is_a_failed_attempt(
    sessions: async_sessionmaker[AsyncSession],
    service: ConsentService,
    keys: KeyStore,
    receivers: Receivers,
    answer: Callable[[dict[str, Any]], httpx.Response],
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _withdraw(service, await _active_consent(service))

    def scripted(request: httpx.Request) -> httpx.Response:
        return answer(json.loads(receivers.acknowledge(request).content))

    receivers.answers = [scripted]
    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert report == DispatchReport(fanned_out=1, failed=1, unroutable=1)
    (pending,) = await deliveries(sessions, status="pending")
    assert "acknowledgement" not in pending
    assert pending["last_error"]
    assert SUBJECT not in pending["last_error"]


async def test_a_delivery_is_dead_after_the_last_attempt_and_stays_listed(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, PROVIDER, PROVIDER_URL, ["withdrawn"])
    await _withdraw(service, await _active_consent(service))
    policy = RetryPolicy(max_attempts=3)
    receivers.answers = [lambda _: httpx.Response(500)] * 10
    reports = []
    async with receivers.client() as client:
        for day in range(5):
            reports.append(
                await dispatch_once(
                    sessions, keys.active(), client, now=T0 + timedelta(days=day), policy=policy
                )
            )

    assert [(report.failed, report.dead) for report in reports] == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    assert len(receivers.requests) == 3
    (dead,) = await deliveries(sessions, status="dead")
    assert (dead["member"], dead["attempts"], dead["last_error"]) == (PROVIDER, 3, "HTTP 500")
    assert "next_attempt_at" not in dead
    assert await deliveries(sessions, status="pending") == []


async def test_a_notice_whose_transaction_rolled_back_never_goes_out(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ALL_EVENTS)
    consent_id = await _active_consent(service)
    # Without a signing key the withdrawal's receipt cannot be issued, after the notice was enqueued:
    # the whole transaction, notice included, is rolled back.
    keyless = ConsentService(
        sessions, KeyStore(keys.directory.parent / "empty"), issuer="DPI/GOV/CNS/consent"
    )
    with pytest.raises(KeyStoreError):
        await _withdraw(keyless, consent_id)

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert report == DispatchReport()
    assert receivers.requests == []
    assert await deliveries(sessions) == []
    assert (await service.record(consent_id))["state"] == "ACTIVE"


async def test_concurrent_dispatchers_fan_out_and_send_each_notice_once(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _register(sessions, PROVIDER, PROVIDER_URL, ["withdrawn"])
    for number in range(4):
        subject = f"{SUBJECT}-{number}"
        await _withdraw(service, await _active_consent(service, subject), subject)

    async with receivers.client() as client:
        reports = list(
            await asyncio.gather(
                *(dispatch_once(sessions, keys.active(), client, now=T0, batch=3) for _ in range(4))
            )
        )
        while (drained := await dispatch_once(sessions, keys.active(), client, now=T0)) != DispatchReport():
            reports.append(drained)

    assert sum(report.fanned_out for report in reports) == 8
    assert sum(report.delivered for report in reports) == 8
    sent = [(str(request.url), request.headers["idempotency-key"]) for request in receivers.requests]
    assert len(sent) == 8
    assert len(set(sent)) == 8
    assert len(await deliveries(sessions, status="delivered")) == 8


async def test_fan_out_is_idempotent_when_a_notice_is_claimed_again(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _withdraw(service, await _active_consent(service))
    async with receivers.client() as client:
        first = await dispatch_once(sessions, keys.active(), client, now=T0)
        async with sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage).values(delivered_at=None, available_at=T0 - timedelta(days=1))
            )
        second = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert (first.fanned_out, second.fanned_out) == (1, 0)
    assert (first.unroutable, second.unroutable) == (1, 0)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DeliveryRow)) == 2
    assert len(receivers.requests) == 1


class _ProcessDied(BaseException):
    """The dispatcher stops after the notice left and before its outcome was written."""


async def test_a_crash_between_sending_and_recording_sends_again(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _withdraw(service, await _active_consent(service))

    def die(_: httpx.Request) -> httpx.Response:
        raise _ProcessDied

    receivers.answers = [die]
    async with receivers.client() as client:
        with pytest.raises(_ProcessDied):
            await dispatch_once(sessions, keys.active(), client, now=T0)
        (leased,) = await deliveries(sessions, status="pending")
        assert (
            await dispatch_once(sessions, keys.active(), client, now=T0 + timedelta(seconds=30))
            == DispatchReport()
        )
        later = await dispatch_once(
            sessions, keys.active(), client, now=datetime.fromisoformat(leased["next_attempt_at"])
        )

    assert later.delivered == 1
    assert [request.headers["idempotency-key"] for request in receivers.requests] == [
        leased["notification"]["notification_id"]
    ] * 2
    (delivered,) = await deliveries(sessions, status="delivered")
    assert delivered["attempts"] == 2


async def test_webhooks_are_registered_listed_and_deleted_by_their_member(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    first = await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    standards.validator("consent-webhook").check(first)
    again = await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn", "revoked"])
    by_member = await register_webhook(
        sessions, "DPI/GOV/MOL", {"member": CONSUMER, "url": CONSUMER_URL + "/2", "events": ["revoked"]}
    )
    provider = await _register(sessions, PROVIDER, PROVIDER_URL, ["withdrawn"])

    assert again["webhook_id"] == first["webhook_id"]
    assert again["events"] == ["withdrawn", "revoked"]
    assert [item["webhook_id"] for item in await list_webhooks(sessions, CONSUMER)] == [
        first["webhook_id"],
        by_member["webhook_id"],
    ]
    assert [item["webhook_id"] for item in await list_webhooks(sessions, PROVIDER)] == [
        provider["webhook_id"]
    ]
    assert await list_webhooks(sessions, "DPI/GOV/MO") == []

    for caller, webhook_id in [
        (PROVIDER, first["webhook_id"]),
        (CONSUMER, "7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f"),
        (CONSUMER + "-other", first["webhook_id"]),
    ]:
        with pytest.raises(DpiError) as refused:
            await delete_webhook(sessions, caller, webhook_id)
        assert refused.value.reason_code == "webhook.not_found"

    await delete_webhook(sessions, CONSUMER, first["webhook_id"])
    with pytest.raises(DpiError) as twice:
        await delete_webhook(sessions, CONSUMER, first["webhook_id"])
    assert twice.value.reason_code == "webhook.not_found"
    assert [item["webhook_id"] for item in await list_webhooks(sessions, CONSUMER)] == [
        by_member["webhook_id"]
    ]

    await _withdraw(service, await _active_consent(service))
    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)
    assert report.fanned_out == 1
    assert receivers.urls() == [PROVIDER_URL]


BAD_WEBHOOKS: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "ftp url",
        CONSUMER,
        {"member": CONSUMER, "url": "ftp://x.example/h", "events": ["withdrawn"]},
        "request.invalid",
        "/url",
    ),
    (
        "relative url",
        CONSUMER,
        {"member": CONSUMER, "url": "/hooks", "events": ["withdrawn"]},
        "request.invalid",
        "/url",
    ),
    (
        "credentials in url",
        CONSUMER,
        {"member": CONSUMER, "url": "https://u:p@x.example/h", "events": ["withdrawn"]},
        "request.invalid",
        "/url",
    ),
    (
        "fragment",
        CONSUMER,
        {"member": CONSUMER, "url": "https://x.example/h#f", "events": ["withdrawn"]},
        "request.invalid",
        "/url",
    ),
    (
        "no events",
        CONSUMER,
        {"member": CONSUMER, "url": CONSUMER_URL, "events": []},
        "request.invalid",
        "/events",
    ),
    (
        "unknown event",
        CONSUMER,
        {"member": CONSUMER, "url": CONSUMER_URL, "events": ["approved"]},
        "request.invalid",
        "/events/0",
    ),
    ("no member", CONSUMER, {"url": CONSUMER_URL, "events": ["withdrawn"]}, "request.invalid", ""),
    (
        "extra member",
        CONSUMER,
        {"member": CONSUMER, "url": CONSUMER_URL, "events": ["withdrawn"], "x": 1},
        "request.invalid",
        "/x",
    ),
    (
        "member id, not subsystem",
        "DPI/GOV/MOL",
        {"member": "DPI/GOV/MOL", "url": CONSUMER_URL, "events": ["withdrawn"]},
        "request.invalid",
        "/member",
    ),
    (
        "for another member",
        PROVIDER,
        {"member": CONSUMER, "url": CONSUMER_URL, "events": ["withdrawn"]},
        "auth.scope_missing",
        "",
    ),
    (
        "for a look-alike member",
        "DPI/GOV/MO",
        {"member": CONSUMER, "url": CONSUMER_URL, "events": ["withdrawn"]},
        "auth.scope_missing",
        "",
    ),
]


@pytest.mark.parametrize(
    ("caller", "body", "reason_code", "pointer"),
    [case[1:] for case in BAD_WEBHOOKS],
    ids=[case[0] for case in BAD_WEBHOOKS],
)
async def test_a_bad_webhook_registration_is_refused_with_a_reason_code(
    sessions: async_sessionmaker[AsyncSession],
    caller: str,
    body: dict[str, Any],
    reason_code: str,
    pointer: str,
) -> None:
    with pytest.raises(DpiError) as refused:
        await register_webhook(sessions, caller, body)

    assert refused.value.reason_code == reason_code
    if reason_code == "request.invalid":
        assert pointer in [detail.pointer for detail in refused.value.details]
    assert await list_webhooks(sessions, caller) == []


@pytest.mark.parametrize(("status", "limit"), [("failed", 10), ("PENDING", 10), (None, 0), (None, 1001)])
async def test_the_operator_view_refuses_unknown_filters(
    sessions: async_sessionmaker[AsyncSession], status: str | None, limit: int
) -> None:
    with pytest.raises(DpiError) as refused:
        await deliveries(sessions, status=status, limit=limit)
    assert refused.value.reason_code == "request.invalid_parameter"


async def test_end_to_end_a_real_receiver_gets_a_notice_it_can_verify_with_the_published_keys(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore
) -> None:
    consent_id = await _active_consent(service)
    await _withdraw(service, consent_id)
    async with sessions() as session:
        payload = await session.scalar(select(OutboxMessage.payload))
    assert payload is not None
    ack = {
        "notification_id": payload["notification_id"],
        "received_at": "2030-01-01T00:00:02Z",
        "receiver": CONSUMER,
    }

    async with CallbackReceiver(response_status=200, response_body=ack) as receiver:
        await register_webhook(
            sessions,
            CONSUMER,
            {"member": CONSUMER, "url": f"{receiver.url}/hooks/consent", "events": ["withdrawn"]},
            allow_private_networks=True,
        )
        async with httpx.AsyncClient() as client:
            report = await dispatch_once(sessions, keys.active(), client, allow_private_networks=True)
        message = await receiver.wait_for(payload["notification_id"], timeout=10)

    jwks = keys.jwks()
    assert report.delivered == 1
    assert message.path == "/hooks/consent"
    assert message.header("content-type") == JOSE_MEDIA_TYPE
    assert verify_callback_signature(message, jwks) == keys.active().kid
    header, notice = verify_compact(message.body.decode("ascii"), jwks)
    assert header["typ"] == NOTIFICATION_JWS_TYPE
    assert notice == payload
    assert SUBJECT not in message.body.decode("ascii") + json.dumps(notice)
    (delivered,) = await deliveries(sessions, consent_id=consent_id, status="delivered")
    assert delivered["acknowledgement"] == ack


@given(attempts=st.integers(min_value=1, max_value=50))
def test_the_default_backoff_grows_with_each_failure_up_to_its_cap(attempts: int) -> None:
    policy = RetryPolicy()
    this, following = policy.delay(attempts), policy.delay(attempts + 1)
    assert timedelta(seconds=8) <= this <= timedelta(hours=6) * 1.2
    if attempts < len(policy.delays):
        assert this < following


@pytest.mark.parametrize(
    ("delays", "max_attempts", "jitter"),
    [((), 3, 0.2), ((timedelta(seconds=1),), 0, 0.2), ((timedelta(1),), 3, 1.0)],
)
def test_a_retry_policy_that_would_never_send_or_never_wait_is_refused(
    delays: tuple[timedelta, ...], max_attempts: int, jitter: float
) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(delays=delays, max_attempts=max_attempts, jitter=jitter)


async def test_each_notice_reaches_only_the_members_its_agreement_names(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _register(sessions, PROVIDER, PROVIDER_URL, ["withdrawn"])
    await _register(sessions, OUTSIDER, OUTSIDER_URL, ["withdrawn"])
    labour = await _active_consent(service)
    await service.publish_agreement(
        {
            **AGREEMENT,
            "agreement_id": "moh-clinic-records",
            "consumer": OUTSIDER,
            "purpose": "official-statistics",
        }
    )
    health = await service.request(
        {"agreement_id": "moh-clinic-records", "subject": SUBJECT}, Actor(ActorRole.CONTROLLER, OUTSIDER)
    )
    agreement = await service.agreement("moh-clinic-records")
    await service.act(
        health["consent_id"],
        Action.APPROVE,
        Actor(ActorRole.SUBJECT, SUBJECT),
        channel=Channel.WEB,
        notice={"language": "en", "hash": agreement["notices"]["en"]["hash"]},
    )
    await _withdraw(service, labour)
    await _withdraw(service, health["consent_id"])

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert report.fanned_out == 4
    received = sorted(
        (str(request.url), _notice_of(request, keys)[1]["consent_id"]) for request in receivers.requests
    )
    assert received == sorted(
        [
            (CONSUMER_URL, labour),
            (PROVIDER_URL, labour),
            (PROVIDER_URL, health["consent_id"]),
            (OUTSIDER_URL, health["consent_id"]),
        ]
    )


# --- where notices may go -----------------------------------------------------------------------------------

UNREACHABLE = "the receiver could not be reached"

INTERNAL_URLS: list[tuple[str, str]] = [
    ("database port on loopback, http", "http://127.0.0.1:5432/internal"),
    ("loopback", "https://127.0.0.1/hooks"),
    ("loopback, IPv6", "https://[::1]/hooks"),
    ("loopback as an IPv4-mapped IPv6", "https://[::ffff:127.0.0.1]/hooks"),
    ("localhost by name", "https://localhost:8443/hooks"),
    ("private", "https://10.0.0.8/hooks"),
    ("private 192.168", "https://192.168.1.1/hooks"),
    ("cloud metadata, link-local", "https://169.254.169.254/latest/meta-data"),
    ("link-local IPv6", "https://[fe80::1]/hooks"),
    ("unique local IPv6", "https://[fd00::1]/hooks"),
    ("shared address space", "https://100.64.0.1/hooks"),
    ("multicast", "https://224.0.0.1/hooks"),
    ("reserved", "https://240.0.0.1/hooks"),
    ("unspecified", "https://0.0.0.0/hooks"),
    ("a name that resolves to a private address", "https://intranet.example.gov/hooks"),
    ("a public host over plain http", "http://jobseeker.labour.example.gov/hooks/consent"),
]


@pytest.mark.parametrize("url", [url for _, url in INTERNAL_URLS], ids=[name for name, _ in INTERNAL_URLS])
async def test_a_webhook_on_an_internal_address_or_without_https_is_refused(
    sessions: async_sessionmaker[AsyncSession], dns: Dns, url: str
) -> None:
    dns.names["intranet.example.gov"] = "10.20.30.40"

    with pytest.raises(DpiError) as refused:
        await register_webhook(sessions, CONSUMER, {"member": CONSUMER, "url": url, "events": ["withdrawn"]})

    assert refused.value.reason_code == "request.invalid"
    assert [detail.pointer for detail in refused.value.details] == ["/url"]
    assert await list_webhooks(sessions, CONSUMER) == []


async def test_internal_and_plain_http_webhooks_are_allowed_only_when_private_networks_are(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    body = {"member": CONSUMER, "url": "http://127.0.0.1:5432/internal", "events": ["withdrawn"]}

    registered = await register_webhook(sessions, CONSUMER, body, allow_private_networks=True)

    assert registered["url"] == body["url"]
    assert [item["url"] for item in await list_webhooks(sessions, CONSUMER)] == [body["url"]]


async def test_a_name_pointed_at_an_internal_address_after_registration_is_not_followed(
    sessions: async_sessionmaker[AsyncSession],
    service: ConsentService,
    keys: KeyStore,
    receivers: Receivers,
    dns: Dns,
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["withdrawn"])
    await _withdraw(service, await _active_consent(service))
    dns.names["jobseeker.labour.example.gov"] = "127.0.0.1"

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)
        assert receivers.requests == []
        (pending,) = await deliveries(sessions, status="pending")
        dns.names.pop("jobseeker.labour.example.gov")
        later = await dispatch_once(
            sessions, keys.active(), client, now=datetime.fromisoformat(pending["next_attempt_at"])
        )

    assert report.failed == 1
    assert pending["last_error"] == "the receiver's address is not a public internet address"
    assert later.delivered == 1
    assert receivers.urls() == [CONSUMER_URL]


async def test_a_webhook_allowed_in_development_is_not_sent_to_when_private_networks_are_not(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    for url in ("http://127.0.0.1:5432/internal", "https://10.0.0.8/hooks"):
        await register_webhook(
            sessions,
            CONSUMER,
            {"member": CONSUMER, "url": url, "events": ["withdrawn"]},
            allow_private_networks=True,
        )
    await _withdraw(service, await _active_consent(service))

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert report.failed == 2
    assert receivers.requests == []
    errors = sorted(item["last_error"] for item in await deliveries(sessions, status="pending"))
    assert errors == [
        "the receiver's URL is not https",
        "the receiver's address is not a public internet address",
    ]


async def test_open_and_closed_ports_leave_the_same_error_so_deliveries_cannot_scan_ports(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore
) -> None:
    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def speak_another_protocol(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    servers = [
        await asyncio.start_server(handler, "127.0.0.1", 0) for handler in (hang_up, speak_another_protocol)
    ]
    ports = [closed_port, *(server.sockets[0].getsockname()[1] for server in servers)]
    try:
        for port in ports:
            await register_webhook(
                sessions,
                CONSUMER,
                {"member": CONSUMER, "url": f"http://127.0.0.1:{port}/hooks", "events": ["withdrawn"]},
                allow_private_networks=True,
            )
        await _withdraw(service, await _active_consent(service))
        async with httpx.AsyncClient() as client:
            report = await dispatch_once(sessions, keys.active(), client, allow_private_networks=True)
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()

    assert report.failed == 3
    pending = await deliveries(sessions, status="pending")
    assert sorted(item["url"] for item in pending) == sorted(
        f"http://127.0.0.1:{port}/hooks" for port in ports
    )
    assert {item["last_error"] for item in pending} == {UNREACHABLE}


# --- notices nobody subscribed to ---------------------------------------------------------------------------


async def test_a_notice_owed_to_members_without_a_subscribed_webhook_is_listed_as_unroutable(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _register(sessions, CONSUMER, CONSUMER_URL, ["revoked"])  # subscribed, not to withdrawals
    await _register(sessions, OUTSIDER, OUTSIDER_URL, ALL_EVENTS)
    consent_id = await _active_consent(service)
    await _withdraw(service, consent_id)

    async with receivers.client() as client:
        report = await dispatch_once(sessions, keys.active(), client, now=T0)
        again = await dispatch_once(sessions, keys.active(), client, now=T0 + timedelta(days=1))

    assert report == DispatchReport(unroutable=2)
    assert again == DispatchReport()
    assert receivers.requests == []
    unroutable = await deliveries(sessions, status="unroutable")
    standards.validator("consent-delivery-list@1.1.0").check({"items": unroutable, "total": len(unroutable)})
    assert sorted(item["member"] for item in unroutable) == sorted([CONSUMER, PROVIDER])
    for item in unroutable:
        assert item["notification"]["consent_id"] == consent_id
        assert item["notification"]["event"] == "withdrawn"
        assert item["attempts"] == 0
        assert "webhook_id" not in item
        assert "url" not in item
        assert "next_attempt_at" not in item
    assert await deliveries(sessions, status="unroutable", member=PROVIDER) == [
        item for item in unroutable if item["member"] == PROVIDER
    ]
    assert await deliveries(sessions, member=OUTSIDER) == []
    assert await deliveries(sessions, status="pending") == []


async def test_unroutable_deliveries_are_written_once_however_many_dispatchers_fan_out(
    sessions: async_sessionmaker[AsyncSession], service: ConsentService, keys: KeyStore, receivers: Receivers
) -> None:
    await _withdraw(service, await _active_consent(service))

    async with receivers.client() as client:
        first = await dispatch_once(sessions, keys.active(), client, now=T0)
        async with sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage).values(delivered_at=None, available_at=T0 - timedelta(days=1))
            )
        second = await dispatch_once(sessions, keys.active(), client, now=T0)

    assert (first.unroutable, second.unroutable) == (2, 0)
    assert len(await deliveries(sessions, status="unroutable")) == 2
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookRow)) == 0
