"""OTP authentication on a real database and the real person register: sending and verifying, expiry, single
use, lockout, rate limits per person and per client, virtual IDs, persons who cannot receive a code (who get
the same answer as everyone, so nobody can test which UINs exist), holder locks, concurrent verifications,
what is stored and what is logged, and the property that a code verifies only its own transaction."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dpi import db
from dpi.errors import DpiError
from identity.authentication import AUTH_TYPES, OtpAuthenticator, OtpPolicy, otp_text
from identity.otp_models import AuthTypeLockRow, OtpGuardRow, OtpThrottleRow, OtpTransactionRow
from identity.senders import MemoryOtpSender, OtpMessage
from identity.service import Actor, PersonRegister

MIGRATIONS = Path(__file__).resolve().parents[2] / "identity" / "migrations"
SECRET = bytes(range(32))
PORTAL = "dpi-portal"
MINISTRY = "mol-jobseekers"
AUTHORITY = Actor("authority", "civil-registrar-01")
HOLDER = Actor("holder")
OTHER_UNKNOWN_UIN = "1234567890"
_TRANSACTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_HINT = re.compile(r"^•{6}[0-9]{2}$")


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FlakyGateway(MemoryOtpSender):
    """A gateway that takes the message, then answers with an error: the code may reach the phone."""

    async def send(self, destination: str, text: str, language: str) -> None:
        self.messages.append(OtpMessage(destination, text, language))
        raise DpiError("otp.delivery_failed")


@dataclass
class World:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    register: PersonRegister
    sender: MemoryOtpSender
    clock: Clock
    people: list[str] = field(default_factory=list)

    @property
    def enrolled(self) -> int:
        return len(self.people)

    def authenticator(
        self, policy: OtpPolicy | None = None, sender: MemoryOtpSender | None = None
    ) -> OtpAuthenticator:
        return OtpAuthenticator(
            self.sessions,
            self.register,
            sender or self.sender,
            secret=SECRET,
            clock=self.clock,
            policy=policy or OtpPolicy(),
        )

    async def person(self, phone: str | None = "+212612345645", language: str = "en") -> str:
        demographics: dict[str, Any] = {
            "names": {"latin": {"given_name": "Amina", "family_name": "Benali"}},
            "date_of_birth": (date(1990, 1, 1) + timedelta(days=self.enrolled + 1)).isoformat(),
            "preferred_language": language,
        }
        if phone is not None:
            demographics["phone"] = phone
        record = await self.register.enrol(demographics, operator_id="operator-17", channel="assisted")
        self.people.append(str(record["uin"]))
        return self.people[-1]

    def last_code(self) -> str:
        found = re.search(r"\b[0-9]{6}\b", self.sender.messages[-1].text)
        assert found is not None
        return found.group()

    async def rows(self, model: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.scalars(select(model))).all())


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    sessions = db.session_factory(engine)
    clock = Clock()
    register = PersonRegister(sessions, pseudonym_key=b"p" * 32, vid_key=b"v" * 32, clock=clock)
    yield World(engine, sessions, register, MemoryOtpSender(), clock)
    await engine.dispose()


async def refusal(call: Any) -> str:
    with pytest.raises(DpiError) as raised:
        await call
    return raised.value.reason_code


# --- the happy path -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Your code is {code}. It expires in 5 minutes. Never share it."),
        ("fr", "Votre code est {code}. Il expire dans 5 minutes. Ne le communiquez jamais."),
        ("ar", "رمزك هو {code}. تنتهي صلاحيته خلال 5 دقائق. لا تشاركه مع أي شخص أبدًا."),
    ],
)
async def test_a_code_sent_in_the_persons_language_verifies_once(
    world: World, language: str, expected: str
) -> None:
    uin = await world.person("+212612345645", language)
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    assert set(answer) == {"transaction_id", "expires_at", "channel", "destination"}
    assert _TRANSACTION_ID.match(answer["transaction_id"])
    assert answer["expires_at"] == "2026-11-23T09:05:00Z"
    assert answer["channel"] == "sms"
    assert answer["destination"] == "••••••45"
    code = world.last_code()
    assert world.sender.messages == [OtpMessage("+212612345645", expected.format(code=code), language)]
    assert await authenticator.verify(answer["transaction_id"], code, client_id=PORTAL) == uin
    second = authenticator.verify(answer["transaction_id"], code, client_id=PORTAL)
    assert await refusal(second) == "otp.invalid"


def test_the_default_policy_is_the_contracts() -> None:
    policy = OtpPolicy()
    assert (policy.digits, policy.ttl, policy.max_failures, policy.lock) == (
        6,
        timedelta(minutes=5),
        5,
        timedelta(minutes=15),
    )
    assert (policy.sends_per_identifier, policy.identifier_window) == (3, timedelta(minutes=15))
    assert (policy.sends_per_client, policy.client_window) == (120, timedelta(minutes=1))
    assert sorted(AUTH_TYPES) == ["otp"]
    assert otp_text("000123", timedelta(minutes=5), "xx") == otp_text("000123", timedelta(minutes=5), "en")


@pytest.mark.parametrize(
    "changes",
    [{"digits": 3}, {"digits": 11}, {"max_failures": 0}, {"sends_per_client": 0}, {"ttl": timedelta(0)}],
)
def test_an_unworkable_policy_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"digits|at least|positive"):
        OtpPolicy(**changes)


async def test_a_short_secret_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        OtpAuthenticator(world.sessions, world.register, world.sender, secret=b"short")


async def test_a_virtual_id_authenticates_its_person_and_returns_the_uin(world: World) -> None:
    uin = await world.person()
    vid = await world.register.issue_vid(uin, actor=HOLDER)
    authenticator = world.authenticator()
    answer = await authenticator.send(vid, client_id=PORTAL)
    assert world.sender.messages[-1].destination == "+212612345645"
    assert await authenticator.verify(answer["transaction_id"], world.last_code(), client_id=PORTAL) == uin


async def test_a_revoked_virtual_id_receives_nothing(world: World) -> None:
    uin = await world.person()
    vid = await world.register.issue_vid(uin, actor=HOLDER)
    await world.register.revoke_vid(uin, actor=HOLDER)
    answer = await world.authenticator().send(vid, client_id=PORTAL)
    assert _HINT.match(answer["destination"])
    assert world.sender.messages == []


# --- wrong, expired, another client's -------------------------------------------------------------------


async def test_a_wrong_code_is_refused_and_the_right_one_still_verifies(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    code = world.last_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert (
        await refusal(authenticator.verify(answer["transaction_id"], wrong, client_id=PORTAL))
        == "otp.invalid"
    )
    assert await authenticator.verify(answer["transaction_id"], code, client_id=PORTAL) == uin


async def test_a_code_expires_five_minutes_after_it_was_sent(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    early = await authenticator.send(uin, client_id=PORTAL)
    early_code = world.last_code()
    late = await authenticator.send(uin, client_id=PORTAL)
    late_code = world.last_code()
    world.clock.advance(minutes=4, seconds=59)
    assert await authenticator.verify(early["transaction_id"], early_code, client_id=PORTAL) == uin
    world.clock.advance(seconds=1)
    expired = authenticator.verify(late["transaction_id"], late_code, client_id=PORTAL)
    assert await refusal(expired) == "otp.expired"


async def test_a_transaction_verifies_only_for_the_client_that_asked(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    code = world.last_code()
    stolen = authenticator.verify(answer["transaction_id"], code, client_id=MINISTRY)
    assert await refusal(stolen) == "otp.invalid"
    assert await authenticator.verify(answer["transaction_id"], code, client_id=PORTAL) == uin


BAD_TRANSACTION_IDS = [
    "",
    "not-a-transaction",
    "00000000-0000-4000-8000-000000000000",
    "A" * 36,
    "1" * 10_000,
    "' OR 1=1 --",
]
BAD_CODES = ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", " 12345", "12345\n", "1" * 10_000]


async def test_unknown_or_malformed_transactions_are_invalid(world: World) -> None:
    authenticator = world.authenticator()
    for transaction_id in BAD_TRANSACTION_IDS:
        outcome = await refusal(authenticator.verify(transaction_id, "123456", client_id=PORTAL))
        assert outcome == "otp.invalid", transaction_id[:40]


async def test_malformed_codes_are_wrong_codes(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    for code in BAD_CODES:
        answer = await authenticator.send(uin, client_id=PORTAL)
        outcome = await refusal(authenticator.verify(answer["transaction_id"], code, client_id=PORTAL))
        assert outcome == "otp.invalid", code[:40]
        world.clock.advance(minutes=16)
    assert [row.failures for row in await world.rows(OtpTransactionRow)] == [1] * len(BAD_CODES)


# --- lockout --------------------------------------------------------------------------------------------


async def test_five_failures_lock_otp_for_fifteen_minutes_whatever_the_code(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    first = await authenticator.send(uin, client_id=PORTAL)
    first_code = world.last_code()
    second = await authenticator.send(uin, client_id=PORTAL)
    second_code = world.last_code()
    wrong = f"{(int(first_code) + 1) % 1_000_000:06d}"
    outcomes = [
        await refusal(authenticator.verify(first["transaction_id"], wrong, client_id=PORTAL))
        for _ in range(3)
    ]
    wrong = f"{(int(second_code) + 1) % 1_000_000:06d}"
    outcomes += [
        await refusal(authenticator.verify(second["transaction_id"], wrong, client_id=PORTAL))
        for _ in range(2)
    ]
    assert outcomes == ["otp.invalid"] * 4 + ["otp.locked"]
    # The right code, a new code, the other transaction: all locked, so a guess learns nothing.
    assert await refusal(authenticator.verify(second["transaction_id"], second_code, client_id=PORTAL)) == (
        "otp.locked"
    )
    assert await refusal(authenticator.verify(first["transaction_id"], first_code, client_id=PORTAL)) == (
        "otp.locked"
    )
    assert await refusal(authenticator.send(uin, client_id=PORTAL)) == "otp.locked"
    world.clock.advance(minutes=14, seconds=59)
    assert await refusal(authenticator.send(uin, client_id=PORTAL)) == "otp.locked"
    world.clock.advance(seconds=1)
    answer = await authenticator.send(uin, client_id=PORTAL)
    assert await authenticator.verify(answer["transaction_id"], world.last_code(), client_id=PORTAL) == uin


async def test_the_lock_holds_for_the_person_whichever_identifier_is_used(world: World) -> None:
    uin = await world.person()
    vid = await world.register.issue_vid(uin, actor=HOLDER)
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    for _ in range(5):
        await refusal(authenticator.verify(answer["transaction_id"], "000000", client_id=PORTAL))
    assert await refusal(authenticator.send(vid, client_id=PORTAL)) == "otp.locked"


async def test_failures_far_apart_do_not_add_up_to_a_lock(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    for _ in range(3):
        answer = await authenticator.send(uin, client_id=PORTAL)
        code = world.last_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(2):
            assert await refusal(authenticator.verify(answer["transaction_id"], wrong, client_id=PORTAL)) == (
                "otp.invalid"
            )
        world.clock.advance(minutes=16)
    answer = await authenticator.send(uin, client_id=PORTAL)
    assert await authenticator.verify(answer["transaction_id"], world.last_code(), client_id=PORTAL) == uin


# --- rate limits ----------------------------------------------------------------------------------------


async def test_three_sends_per_person_in_any_fifteen_minutes(world: World) -> None:
    uin = await world.person()
    vid = await world.register.issue_vid(uin, actor=HOLDER)
    other = await world.person("+212612345699")
    authenticator = world.authenticator()
    for minute in (0, 5, 10):
        world.clock.now = datetime(2026, 11, 23, 9, minute, tzinfo=UTC)
        await authenticator.send(uin, client_id=PORTAL)
    assert await refusal(authenticator.send(uin, client_id=MINISTRY)) == "otp.rate_limited"
    assert await refusal(authenticator.send(vid, client_id=PORTAL)) == "otp.rate_limited"
    await authenticator.send(other, client_id=PORTAL)
    world.clock.now = datetime(2026, 11, 23, 9, 14, 59, tzinfo=UTC)
    assert await refusal(authenticator.send(uin, client_id=PORTAL)) == "otp.rate_limited"
    # Fifteen minutes after the first send, that one has left the window, and only that one.
    world.clock.now = datetime(2026, 11, 23, 9, 15, tzinfo=UTC)
    await authenticator.send(vid, client_id=PORTAL)
    assert await refusal(authenticator.send(uin, client_id=PORTAL)) == "otp.rate_limited"
    assert len([message for message in world.sender.messages if message.destination == "+212612345645"]) == 4


async def test_sends_per_client_are_limited_per_minute(world: World) -> None:
    people = [await world.person(f"+2126123456{index:02d}") for index in range(4)]
    authenticator = world.authenticator(OtpPolicy(sends_per_client=3))
    for uin in people[:3]:
        await authenticator.send(uin, client_id=PORTAL)
    assert await refusal(authenticator.send(people[3], client_id=PORTAL)) == "otp.rate_limited"
    assert await refusal(authenticator.send("9999999999", client_id=PORTAL)) == "otp.rate_limited"
    await authenticator.send(people[3], client_id=MINISTRY)
    world.clock.advance(minutes=1)
    await authenticator.send(people[0], client_id=PORTAL)
    assert len(world.sender.messages) == 5


async def test_concurrent_sends_never_exceed_the_limit(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    outcomes = await asyncio.gather(
        *(authenticator.send(uin, client_id=PORTAL) for _ in range(8)), return_exceptions=True
    )
    answers = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, DpiError)]
    assert len(answers) == 3
    assert [error.reason_code for error in refusals] == ["otp.rate_limited"] * 5
    assert len(world.sender.messages) == 3


# --- who cannot receive a code gets the same answer -----------------------------------------------------


async def _deactivated(world: World) -> str:
    uin = await world.person()
    await world.register.deactivate(uin, actor=AUTHORITY, reason="duplicate record")
    return uin


async def _deceased(world: World) -> str:
    uin = await world.person()
    await world.register.mark_deceased(uin, actor=AUTHORITY, reason="death certificate 2026-118")
    return uin


async def _no_phone(world: World) -> str:
    return await world.person(phone=None)


async def _unknown_uin(world: World) -> str:
    return OTHER_UNKNOWN_UIN


async def _unknown_vid(world: World) -> str:
    return "1234567890123452"


async def _not_an_identifier(world: World) -> str:
    return "amina@example.org"


CANNOT_RECEIVE = {
    "deactivated": (_deactivated, "identity.deactivated"),
    "deceased": (_deceased, "identity.deceased"),
    "no-phone": (_no_phone, "otp.no_destination"),
    "unknown-uin": (_unknown_uin, "identity.not_found"),
    "unknown-vid": (_unknown_vid, "identity.not_found"),
    "not-an-identifier": (_not_an_identifier, "identity.not_found"),
}


@pytest.mark.parametrize("case", list(CANNOT_RECEIVE))
async def test_who_cannot_receive_a_code_gets_the_answer_everyone_gets(world: World, case: str) -> None:
    identifier = await CANNOT_RECEIVE[case][0](world)
    authenticator = world.authenticator()
    answer = await authenticator.send(identifier, client_id=PORTAL)
    assert set(answer) == {"transaction_id", "expires_at", "channel", "destination"}
    assert _TRANSACTION_ID.match(answer["transaction_id"])
    assert answer["expires_at"] == "2026-11-23T09:05:00Z"
    assert answer["channel"] == "sms"
    assert _HINT.match(answer["destination"])
    assert world.sender.messages == []
    # The hint is stable, as a real phone's would be.
    again = await authenticator.send(identifier, client_id=PORTAL)
    assert again["destination"] == answer["destination"]
    for code in ("000000", "123456", "999999"):
        assert await refusal(authenticator.verify(answer["transaction_id"], code, client_id=PORTAL)) == (
            "otp.invalid"
        )
    # Rate limits and the failure lock apply exactly as for a person who has a phone.
    for code in ("111111", "222222"):
        last = await refusal(authenticator.verify(again["transaction_id"], code, client_id=PORTAL))
    assert last == "otp.locked"
    assert await refusal(authenticator.send(identifier, client_id=PORTAL)) == "otp.locked"
    world.clock.advance(minutes=15)
    await authenticator.send(identifier, client_id=PORTAL)
    await authenticator.send(identifier, client_id=PORTAL)
    await authenticator.send(identifier, client_id=PORTAL)
    assert await refusal(authenticator.send(identifier, client_id=PORTAL)) == "otp.rate_limited"


@pytest.mark.parametrize("case", list(CANNOT_RECEIVE))
async def test_a_trusted_caller_can_be_told_why_no_code_can_be_sent(world: World, case: str) -> None:
    make, reason = CANNOT_RECEIVE[case]
    identifier = await make(world)
    authenticator = world.authenticator(OtpPolicy(conceal_refusals=False))
    assert await refusal(authenticator.send(identifier, client_id=PORTAL)) == reason
    assert await world.rows(OtpTransactionRow) == []


async def test_a_person_deactivated_after_the_send_cannot_verify(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    await world.register.deactivate(uin, actor=AUTHORITY, reason="identity fraud investigation")
    late = authenticator.verify(answer["transaction_id"], world.last_code(), client_id=PORTAL)
    assert await refusal(late) == "otp.invalid"


BAD_SEND_PARAMETERS = [
    ("", PORTAL),
    ("1" * 65, PORTAL),
    ("١٢٣٤٥٦٧٨٩٠", PORTAL),
    ("1234567890", ""),
    ("1234567890", "c" * 256),
]


async def test_identifiers_and_clients_no_register_could_hold_are_bad_parameters(world: World) -> None:
    authenticator = world.authenticator()
    for identifier, client_id in BAD_SEND_PARAMETERS:
        outcome = await refusal(authenticator.send(identifier, client_id=client_id))
        assert outcome == "request.invalid_parameter", (identifier[:20], client_id[:20])
    assert await world.rows(OtpTransactionRow) == []


# --- delivery -------------------------------------------------------------------------------------------


async def test_a_failed_delivery_leaves_no_usable_transaction(world: World) -> None:
    uin = await world.person()
    gateway = FlakyGateway()
    authenticator = world.authenticator(sender=gateway)
    assert await refusal(authenticator.send(uin, client_id=PORTAL)) == "otp.delivery_failed"
    [row] = await world.rows(OtpTransactionRow)
    assert row.state == "failed"
    code = re.findall(r"[0-9]{6}", gateway.messages[0].text)[0]
    stale = authenticator.verify(row.transaction_id, code, client_id=PORTAL)
    assert await refusal(stale) == "otp.invalid"


async def test_a_sender_that_breaks_is_a_failed_delivery(world: World) -> None:
    class Broken(MemoryOtpSender):
        async def send(self, destination: str, text: str, language: str) -> None:
            raise ConnectionResetError("gateway went away")

    uin = await world.person()
    assert await refusal(world.authenticator(sender=Broken()).send(uin, client_id=PORTAL)) == (
        "otp.delivery_failed"
    )
    assert [row.state for row in await world.rows(OtpTransactionRow)] == ["failed"]


# --- holder locks ---------------------------------------------------------------------------------------


async def test_the_holder_locks_and_unlocks_otp(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    before = await authenticator.send(uin, client_id=PORTAL)
    code = world.last_code()
    await authenticator.lock_type(uin, "otp")
    await authenticator.lock_type(uin, "otp")
    assert await authenticator.locked_types(uin) == ["otp"]
    assert await refusal(authenticator.send(uin, client_id=PORTAL)) == "auth.type_locked"
    assert await refusal(authenticator.verify(before["transaction_id"], code, client_id=PORTAL)) == (
        "auth.type_locked"
    )
    assert len(world.sender.messages) == 1
    await authenticator.unlock_type(uin, "otp")
    await authenticator.unlock_type(uin, "otp")
    assert await authenticator.locked_types(uin) == []
    assert await authenticator.verify(before["transaction_id"], code, client_id=PORTAL) == uin


async def test_only_known_authentication_types_can_be_locked(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    for auth_type in ("", "pin", "OTP", "password", "otp "):
        assert await refusal(authenticator.lock_type(uin, auth_type)) == "request.invalid_parameter"
        assert await refusal(authenticator.unlock_type(uin, auth_type)) == "request.invalid_parameter"
    assert await authenticator.locked_types(uin) == []


async def test_locks_are_only_for_persons_of_the_register(world: World) -> None:
    authenticator = world.authenticator()
    assert await refusal(authenticator.lock_type(OTHER_UNKNOWN_UIN, "otp")) == "identity.not_found"
    assert await world.rows(AuthTypeLockRow) == []


# --- concurrency ----------------------------------------------------------------------------------------


async def test_concurrent_verifications_of_one_code_let_exactly_one_through(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    code = world.last_code()
    outcomes = await asyncio.gather(
        *(authenticator.verify(answer["transaction_id"], code, client_id=PORTAL) for _ in range(6)),
        return_exceptions=True,
    )
    assert [outcome for outcome in outcomes if isinstance(outcome, str)] == [uin]
    refused = [outcome for outcome in outcomes if not isinstance(outcome, str)]
    assert all(isinstance(error, DpiError) and error.reason_code == "otp.invalid" for error in refused)
    assert len(refused) == 5


# --- what is stored and what is logged ------------------------------------------------------------------


async def test_no_table_holds_a_code_or_a_phone(world: World) -> None:
    uin = await world.person()
    vid = await world.register.issue_vid(uin, actor=HOLDER)
    authenticator = world.authenticator()
    codes = []
    for identifier in (uin, vid, OTHER_UNKNOWN_UIN):
        await authenticator.send(identifier, client_id=PORTAL)
        if world.sender.messages:
            codes.append(world.last_code())
    answer = await authenticator.send(vid, client_id=MINISTRY)
    await refusal(authenticator.verify(answer["transaction_id"], "000000", client_id=MINISTRY))
    await authenticator.lock_type(uin, "otp")
    stored = []
    for model in (OtpTransactionRow, OtpThrottleRow, OtpGuardRow, AuthTypeLockRow):
        for row in await world.rows(model):
            stored += [str(getattr(row, column.key)) for column in model.__table__.columns]
    assert len(codes) == 3
    for secret in (*codes, "+212612345645", "212612345645", vid):
        assert not any(secret in value for value in stored)
    transactions = await world.rows(OtpTransactionRow)
    assert all(re.fullmatch(r"[0-9a-f]{64}", row.code_hash) for row in transactions)
    assert sorted(row.uin is None for row in transactions) == [False, False, False, True]


async def test_logs_never_hold_a_code_phone_uin_or_vid(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything the block logs, down to DEBUG (the database driver's own statement traces are not ours).
    caplog.set_level(logging.DEBUG, logger="identity")
    uin = await world.person()
    vid = await world.register.issue_vid(uin, actor=HOLDER)
    authenticator = world.authenticator()
    secrets_seen = {uin, vid, "+212612345645", "212612345645", OTHER_UNKNOWN_UIN}
    answer = await authenticator.send(uin, client_id=PORTAL)
    secrets_seen.add(world.last_code())
    await refusal(authenticator.verify(answer["transaction_id"], "000000", client_id=PORTAL))
    await authenticator.verify(answer["transaction_id"], world.last_code(), client_id=PORTAL)
    await authenticator.send(vid, client_id=PORTAL)
    secrets_seen.add(world.last_code())
    await authenticator.send(OTHER_UNKNOWN_UIN, client_id=PORTAL)
    await refusal(world.authenticator(sender=FlakyGateway()).send(vid, client_id=PORTAL))
    await refusal(authenticator.send(uin, client_id=PORTAL))
    standard = set(logging.makeLogRecord({}).__dict__)
    logged = [
        str(value)
        for record in caplog.records
        for name, value in record.__dict__.items()
        if name not in standard or name in ("msg", "args")
    ] + [record.getMessage() for record in caplog.records]
    assert any("otp" in text for text in logged)
    for secret in secrets_seen:
        assert not any(secret in text for text in logged), "a personal identifier or code was logged"


# --- housekeeping ---------------------------------------------------------------------------------------


async def test_purge_forgets_what_no_rule_needs_any_more(world: World) -> None:
    uin = await world.person()
    authenticator = world.authenticator()
    answer = await authenticator.send(uin, client_id=PORTAL)
    await refusal(authenticator.verify(answer["transaction_id"], "000000", client_id=PORTAL))
    assert await authenticator.purge() == 0
    world.clock.advance(minutes=16)
    recent = await authenticator.send(uin, client_id=PORTAL)
    assert await authenticator.purge() == 1
    assert [row.transaction_id for row in await world.rows(OtpTransactionRow)] == [recent["transaction_id"]]
    assert await world.rows(OtpGuardRow) == []
    assert await authenticator.verify(recent["transaction_id"], world.last_code(), client_id=PORTAL) == uin


# --- property -------------------------------------------------------------------------------------------


@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    guess=st.one_of(
        st.text(alphabet="0123456789", min_size=6, max_size=6),
        st.text(max_size=8),
    )
)
async def test_a_code_verifies_only_its_own_transaction(world: World, guess: str) -> None:
    if world.enrolled == 0:
        await world.person("+212612345601")
        await world.person("+212612345602")
    first_uin, second_uin = sorted(world.people)
    # Each example starts after every window and lock of the one before.
    world.clock.advance(minutes=16)
    authenticator = world.authenticator()
    first = await authenticator.send(first_uin, client_id=PORTAL)
    first_code = world.last_code()
    second = await authenticator.send(second_uin, client_id=PORTAL)
    second_code = world.last_code()
    if first_code != second_code:
        crossed = authenticator.verify(second["transaction_id"], first_code, client_id=PORTAL)
        assert await refusal(crossed) == "otp.invalid"
    if guess == first_code:
        assert await authenticator.verify(first["transaction_id"], guess, client_id=PORTAL) == first_uin
    else:
        assert (
            await refusal(authenticator.verify(first["transaction_id"], guess, client_id=PORTAL))
            == "otp.invalid"
        )
        assert await authenticator.verify(first["transaction_id"], first_code, client_id=PORTAL) == first_uin
    assert await authenticator.verify(second["transaction_id"], second_code, client_id=PORTAL) == second_uin
