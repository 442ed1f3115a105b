"""The per-subject event chain: its document, signed heads, and every edit an attacker with write access to
the database could make (edit, delete, insert, reorder, truncate) being detected, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import standards
from consent.chain import CHAIN_HEAD_TYPE, chain_document, sign_heads, verify_chain, verify_stored_chain
from consent.lifecycle import Action, ActorRole, Channel
from consent.models import EventRow
from consent.service import GENESIS_HASH, Actor, ConsentService, event_document, event_hash
from dpi import db
from dpi.keys import KeyStore, SigningKey
from dpi.signing import sign_compact, verify_compact
from tests.consent.agreements import AMINA, CONSUMER, YOUSSEF, agreement_draft

MIGRATIONS = Path(__file__).resolve().parents[2] / "consent" / "migrations"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class World:
    engine: AsyncEngine
    service: ConsentService
    key: SigningKey
    jwks: dict[str, Any]
    consents: dict[str, str] = field(default_factory=dict)

    @property
    def sessions(self) -> Any:
        return self.service.sessions


async def lifecycle(service: ConsentService, who: str) -> str:
    """request, approve, pause, resume, withdraw: seq 1 to 5 of ``who``'s chain."""
    record = await service.request(
        {"agreement_id": "mol-jobseeker-registration", "subject": who}, Actor(ActorRole.CONTROLLER, CONSUMER)
    )
    consent_id = str(record["consent_id"])
    agreement = await service.agreement("mol-jobseeker-registration")
    me = Actor(ActorRole.SUBJECT, who)
    notice = {"language": "en", "hash": agreement["notices"]["en"]["hash"]}
    await service.act(consent_id, Action.APPROVE, me, channel=Channel.WEB, notice=notice)
    for action in (Action.PAUSE, Action.RESUME, Action.WITHDRAW):
        await service.act(consent_id, action, me, channel=Channel.SMS, reason=f"{action.value} by SMS")
    return consent_id


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    keys = KeyStore(tmp_path / "keys")
    key = keys.ensure_active()
    service = ConsentService(db.session_factory(engine), keys, issuer="DPI/GOV/MOI/consent", clock=Clock())
    await service.publish_agreement(agreement_draft())
    world = World(engine, service, key, keys.jwks())
    for who in (AMINA, YOUSSEF):
        world.consents[who] = await lifecycle(service, who)
    yield world
    await engine.dispose()


# --- the document and signing -----------------------------------------------------------------------------


async def test_chain_document_is_valid_and_links_from_genesis(world: World) -> None:
    document = await chain_document(world.sessions, AMINA)
    assert standards.validator("consent-chain").issues(document) == []
    assert [event["seq"] for event in document["events"]] == [1, 2, 3, 4, 5]
    assert {event["subject"] for event in document["events"]} == {AMINA}
    assert document["events"][0]["prev_hash"] == GENESIS_HASH
    assert document["head"] == {"seq": 5, "hash": document["events"][-1]["hash"]}
    assert document["signatures"] == []


async def test_unknown_subject_has_an_empty_chain_that_verifies(world: World) -> None:
    document = await chain_document(world.sessions, "nobody-pseudonym-0000")
    assert document["events"] == []
    assert document["head"] == {"seq": 0, "hash": GENESIS_HASH}
    assert verify_chain(document, world.jwks).ok


async def test_sign_heads_signs_each_changed_head_once(world: World) -> None:
    assert await sign_heads(world.sessions, world.key, now=START, issuer="DPI/GOV/MOI/consent") == 2
    assert await sign_heads(world.sessions, world.key) == 0
    document = await chain_document(world.sessions, AMINA)
    [signature] = document["signatures"]
    header, statement = verify_compact(signature["jws"], world.jwks)
    assert header["typ"] == CHAIN_HEAD_TYPE
    assert statement == {
        "subject": AMINA,
        "seq": 5,
        "hash": document["head"]["hash"],
        "signed_at": "2026-11-23T09:00:00.000000Z",
        "issuer": "DPI/GOV/MOI/consent",
    }
    assert signature["signed_at"] == "2026-11-23T09:00:00.000000Z"
    await lifecycle(world.service, AMINA)
    assert await sign_heads(world.sessions, world.key) == 1
    verdict = await verify_stored_chain(world.sessions, AMINA, world.jwks, require_signed=True)
    assert verdict == type(verdict)(True, (), head_seq=10, signed_seq=10)


async def test_unsigned_tail_is_reported_as_unsigned(world: World) -> None:
    verdict = await verify_stored_chain(world.sessions, AMINA, world.jwks)
    assert verdict.ok
    assert (verdict.head_seq, verdict.signed_seq) == (5, 0)
    strict = await verify_stored_chain(world.sessions, AMINA, world.jwks, require_signed=True)
    assert strict.problems == ("events 1 to 5 are not covered by a valid head signature",)


async def test_signatures_need_the_publishers_key(world: World) -> None:
    await sign_heads(world.sessions, world.key)
    stranger = {"keys": [SigningKey.generate().public_jwk()]}
    verdict = await verify_stored_chain(world.sessions, AMINA, stranger)
    assert not verdict.ok
    assert "auth.key_unknown" in verdict.problems[0]


# --- an attacker with write access to the database ---------------------------------------------------------

_AT = bindparam("at", type_=DateTime(timezone=True))


async def execute(engine: AsyncEngine, statement: str, **values: Any) -> None:
    clause = text(statement)
    if "at" in values:
        clause = clause.bindparams(_AT)
    async with engine.begin() as connection:
        await connection.execute(clause, values)


async def shift(engine: AsyncEngine, subject: str, after: int, by: int) -> None:
    """Move events after ``after`` by ``by`` seq positions, through negatives so no unique check trips."""
    await execute(
        engine,
        "UPDATE consent_event SET seq = -(seq + :by) WHERE subject = :s AND seq > :after",
        s=subject,
        after=after,
        by=by,
    )
    await execute(engine, "UPDATE consent_event SET seq = -seq WHERE subject = :s AND seq < 0", s=subject)


async def rehash(world: World, subject: str) -> None:
    """What a careful attacker does next: renumber, relink and rehash every event, and move the head."""
    async with world.sessions() as session:
        rows = (
            await session.scalars(select(EventRow).where(EventRow.subject == subject).order_by(EventRow.seq))
        ).all()
    await shift(world.engine, subject, 0, 1000)
    previous = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row.seq, row.prev_hash = seq, previous
        row.hash = event_hash(event_document(row))
        await execute(
            world.engine,
            "UPDATE consent_event SET seq = :seq, prev_hash = :prev, hash = :hash WHERE event_id = :id",
            seq=seq,
            prev=previous,
            hash=row.hash,
            id=row.event_id,
        )
        previous = row.hash
    await execute(
        world.engine,
        "UPDATE consent_chain_head SET seq = :seq, hash = :hash WHERE subject = :s",
        seq=len(rows),
        hash=previous,
        s=subject,
    )


async def forge(world: World, subject: str, seq: int, prev_hash: str) -> str:
    """Insert a well-formed withdrawal at ``seq`` whose hash is correctly computed."""
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "consent_id": world.consents[subject],
        "subject": subject,
        "seq": seq,
        "action": "withdraw",
        "from_state": "ACTIVE",
        "to_state": "WITHDRAWN",
        "actor": {"role": "subject", "id": subject},
        "channel": "web",
        "at": "2026-11-23T09:00:30.000000Z",
        "prev_hash": prev_hash,
    }
    document["hash"] = event_hash(document)
    await execute(
        world.engine,
        "INSERT INTO consent_event (event_id, consent_id, subject, seq, action, from_state, to_state, "
        "actor_role, actor_id, channel, at, prev_hash, hash) VALUES (:id, :consent, :s, :seq, 'withdraw', "
        "'ACTIVE', 'WITHDRAWN', 'subject', :s, 'web', :at, :prev, :hash)",
        id=document["event_id"],
        consent=document["consent_id"],
        s=subject,
        seq=seq,
        at=datetime(2026, 11, 23, 9, 0, 30, tzinfo=UTC),
        prev=prev_hash,
        hash=document["hash"],
    )
    return str(document["hash"])


async def event_hash_at(world: World, subject: str, seq: int) -> str:
    document = await chain_document(world.sessions, subject)
    return str(document["events"][seq - 1]["hash"])


Tamper = Callable[[World, str], Awaitable[None]]


EDITABLE = frozenset(
    {"to_state", "action", "actor_role", "actor_id", "channel", "at"}
    | {"notice_hash", "notice_language", "reason", "consent_id"}
)


def edit(column: str, value: Any) -> Tamper:
    assert column in EDITABLE

    async def tamper(world: World, subject: str) -> None:
        statement = f"UPDATE consent_event SET {column} = :{column} WHERE subject = :s AND seq = 2"  # noqa: S608
        await execute(world.engine, statement, s=subject, **{column: value})

    tamper.__name__ = f"edit_{column}"
    return tamper


async def delete_an_event(world: World, subject: str) -> None:
    await execute(world.engine, "DELETE FROM consent_event WHERE subject = :s AND seq = 3", s=subject)


async def insert_in_the_middle(world: World, subject: str) -> None:
    previous = await event_hash_at(world, subject, 2)
    await shift(world.engine, subject, 2, 1)
    await forge(world, subject, 3, previous)


async def reorder(world: World, subject: str) -> None:
    await execute(world.engine, "UPDATE consent_event SET seq = -3 WHERE subject = :s AND seq = 4", s=subject)
    await execute(world.engine, "UPDATE consent_event SET seq = 4 WHERE subject = :s AND seq = 3", s=subject)
    await execute(world.engine, "UPDATE consent_event SET seq = 3 WHERE subject = :s AND seq = -3", s=subject)


async def truncate_the_tail(world: World, subject: str) -> None:
    previous = await event_hash_at(world, subject, 4)
    await execute(world.engine, "DELETE FROM consent_event WHERE subject = :s AND seq = 5", s=subject)
    await execute(
        world.engine,
        "UPDATE consent_chain_head SET seq = 4, hash = :h WHERE subject = :s",
        h=previous,
        s=subject,
    )


TAMPERINGS: list[Tamper] = [
    edit("to_state", "REFUSED"),
    edit("action", "refuse"),
    edit("actor_role", "operator"),
    edit("actor_id", "someone-else-pseudonym"),
    edit("channel", "assisted"),
    edit("at", datetime(2025, 1, 1, tzinfo=UTC)),
    edit("notice_hash", "sha256:" + "1" * 64),
    edit("notice_language", "ar"),
    edit("reason", "invented"),
    edit("consent_id", str(uuid.UUID(int=7))),
    delete_an_event,
    insert_in_the_middle,
    reorder,
    truncate_the_tail,
]


async def test_every_tampering_is_detected_even_when_every_hash_is_recomputed(world: World) -> None:
    # One subject per tampering in one database, so the whole table runs on each backend quickly; the
    # untouched subjects of the fixture show that nothing leaks from one chain into another.
    victims = {tamper.__name__: f"victim-pseudonym-{tamper.__name__}" for tamper in TAMPERINGS}
    for victim in victims.values():
        world.consents[victim] = await lifecycle(world.service, victim)
    assert await sign_heads(world.sessions, world.key) == len(victims) + 2
    for tamper in TAMPERINGS:
        await tamper(world, victims[tamper.__name__])
    verdicts = {
        name: await verify_stored_chain(world.sessions, victim, world.jwks)
        for name, victim in victims.items()
    }
    assert [name for name, verdict in verdicts.items() if verdict.ok] == [], "tamperings not detected"
    for subject in (AMINA, YOUSSEF):
        assert (await verify_stored_chain(world.sessions, subject, world.jwks, require_signed=True)).ok

    for victim in victims.values():
        await rehash(world, victim)
    assert await sign_heads(world.sessions, world.key) == 0, "a rewritten chain is never signed over"
    for name, victim in victims.items():
        document = await chain_document(world.sessions, victim)
        links_only = verify_chain({**document, "signatures": []}, world.jwks)
        assert links_only.ok, (
            f"{name}: the rewritten chain is internally consistent, only the signature can tell"
        )
        verdict = verify_chain(document, world.jwks)
        assert not verdict.ok, name
        assert verdict.problems[0].startswith("signature 1 (seq 5): "), (name, verdict.problems)
        assert verdict.signed_seq == 0, name


async def test_forged_event_after_the_signed_head_is_not_attested(world: World) -> None:
    await sign_heads(world.sessions, world.key)
    head_hash = await event_hash_at(world, AMINA, 5)
    forged = await forge(world, AMINA, 6, head_hash)
    await execute(
        world.engine, "UPDATE consent_chain_head SET seq = 6, hash = :h WHERE subject = :s", h=forged, s=AMINA
    )
    verdict = await verify_stored_chain(world.sessions, AMINA, world.jwks, require_signed=True)
    assert verdict.problems == ("events 6 to 6 are not covered by a valid head signature",)
    assert (verdict.head_seq, verdict.signed_seq) == (6, 5)


@pytest.mark.parametrize("signer", ["attacker key", "copied signature"])
async def test_forged_head_signature_is_detected(world: World, signer: str) -> None:
    await sign_heads(world.sessions, world.key)
    forged = await forge(world, AMINA, 6, await event_hash_at(world, AMINA, 5))
    await execute(
        world.engine, "UPDATE consent_chain_head SET seq = 6, hash = :h WHERE subject = :s", h=forged, s=AMINA
    )
    if signer == "attacker key":
        attacker = SigningKey.generate(kid=world.key.kid)
        statement = {"subject": AMINA, "seq": 6, "hash": forged, "signed_at": "2026-11-23T10:00:00.000000Z"}
        jws = sign_compact(statement, attacker, typ=CHAIN_HEAD_TYPE)
    else:
        jws = (await chain_document(world.sessions, YOUSSEF))["signatures"][0]["jws"]
    await execute(
        world.engine,
        "INSERT INTO consent_chain_signature (subject, seq, hash, jws, signed_at) "
        "VALUES (:s, 6, :h, :jws, :at)",
        s=AMINA,
        h=forged,
        jws=jws,
        at=START,
    )
    verdict = await verify_stored_chain(world.sessions, AMINA, world.jwks)
    assert not verdict.ok
    assert verdict.problems[0].startswith("signature 2 (seq 6): ")
    assert verdict.signed_seq == 5


# --- a downloaded document edited by hand -----------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]
DOCUMENT_EDITS: list[tuple[str, Edit, str]] = [
    ("event content", lambda d: d["events"][1].update(to_state="REFUSED"), "content does not match its hash"),
    ("dropped event", lambda d: d["events"].pop(2), "seq should be 3"),
    ("head moved back", lambda d: d["head"].update(seq=4), "does not name the last event"),
    ("signature seq", lambda d: d["signatures"][0].update(seq=4), "names another subject, seq or hash"),
    ("signature mangled", lambda d: d["signatures"][0].update(jws="a.b.c"), "auth.signature_invalid"),
    ("other subject", lambda d: d.update(subject=YOUSSEF), "belongs to another subject"),
    ("not a chain", lambda d: d.pop("head"), "not a consent-chain document"),
]


@pytest.mark.parametrize(
    ("edit_document", "problem"), [e[1:] for e in DOCUMENT_EDITS], ids=[e[0] for e in DOCUMENT_EDITS]
)
async def test_edited_download_is_detected(tmp_path: Path, edit_document: Edit, problem: str) -> None:
    # Pure document checks: one database is enough.
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'chain.sqlite3'}")
    await db.upgrade(engine, [MIGRATIONS])
    keys = KeyStore(tmp_path / "keys")
    key = keys.ensure_active()
    service = ConsentService(db.session_factory(engine), keys, issuer="DPI/GOV/MOI/consent", clock=Clock())
    await service.publish_agreement(agreement_draft())
    await lifecycle(service, AMINA)
    await sign_heads(service.sessions, key)
    document = copy.deepcopy(await chain_document(service.sessions, AMINA))
    await engine.dispose()
    jwks = keys.jwks()
    assert verify_chain(document, jwks, require_signed=True).ok
    edit_document(document)
    verdict = verify_chain(document, jwks)
    assert not verdict.ok
    assert any(problem in line for line in verdict.problems), verdict.problems
