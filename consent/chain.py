"""The per-subject consent event chain and its signed heads: export, verification and signing.

Each subject's events form a hash chain (``consent.service.event_hash``: sha256 over the RFC 8785 canonical
JSON of the event without its hash, ``prev_hash`` included, https://www.rfc-editor.org/rfc/rfc8785).
The block signs every changed chain head with its key (compact JWS, RFC 7515,
https://www.rfc-editor.org/rfc/rfc7515, ``typ`` :data:`CHAIN_HEAD_TYPE`). Anyone holding a subject's
``consent-chain`` document and the published JWKS can then check that no event up to a signed head was
edited, dropped, inserted or reordered, without trusting the database.

What a signed head cannot show: events appended after the last signature are linked but not yet
attested, which is why :func:`verify_chain` reports how far the signatures reach and can require them
to reach the head (``require_signed``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from consent.models import ChainHead, ChainSignature, EventRow
from consent.service import GENESIS_HASH, event_document, event_hash, timestamp
from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_compact, verify_compact

__all__ = [
    "CHAIN_HEAD_TYPE",
    "ChainVerdict",
    "chain_document",
    "sign_heads",
    "verify_chain",
    "verify_stored_chain",
]

CHAIN_HEAD_TYPE: Final = "dpi-consent-chain-head+jws"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainVerdict:
    """The outcome of verifying a chain: ``ok`` when ``problems`` is empty.

    ``head_seq`` is the seq of the chain's last event; ``signed_seq`` the highest seq a valid signature
    vouches for (0 when none does).
    """

    ok: bool
    problems: tuple[str, ...]
    head_seq: int = 0
    signed_seq: int = 0


async def _stored_document(session: AsyncSession, subject: str) -> dict[str, Any]:
    events = (
        await session.scalars(select(EventRow).where(EventRow.subject == subject).order_by(EventRow.seq))
    ).all()
    head = await session.get(ChainHead, subject)
    signatures = (
        await session.scalars(
            select(ChainSignature)
            .where(ChainSignature.subject == subject)
            .order_by(ChainSignature.seq, ChainSignature.id)
        )
    ).all()
    return {
        "subject": subject,
        "events": [event_document(row) for row in events],
        "head": {"seq": head.seq, "hash": head.hash}
        if head is not None
        else {"seq": 0, "hash": GENESIS_HASH},
        "signatures": [
            {"seq": row.seq, "hash": row.hash, "jws": row.jws, "signed_at": timestamp(row.signed_at)}
            for row in signatures
        ],
    }


async def chain_document(sessions: async_sessionmaker[AsyncSession], subject: str) -> dict[str, Any]:
    """The ``consent-chain`` document of ``subject``: every event in seq order, the stored head, and the
    stored head signatures (oldest first). A subject without events has an empty chain at seq 0."""
    async with sessions() as session:
        return await _stored_document(session, subject)


def _link_problems(subject: str, events: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[int, str]]:
    """Problems with seq continuity, prev_hash links and recomputed hashes; and, for each seq whose event
    is intact and correctly linked all the way from genesis, its hash."""
    problems: list[str] = []
    intact: dict[int, str] = {}
    previous = GENESIS_HASH
    unbroken = True
    for position, event in enumerate(events, start=1):
        seq = event["seq"]
        label = f"event at position {position} (seq {seq})"
        if event["subject"] != subject:
            problems.append(f"{label}: belongs to another subject")
            unbroken = False
        if seq != position:
            problems.append(f"{label}: seq should be {position}")
            unbroken = False
        if event["prev_hash"] != previous:
            problems.append(f"{label}: prev_hash does not link to the event before it")
            unbroken = False
        if event_hash(event) != event["hash"]:
            problems.append(f"{label}: content does not match its hash")
            unbroken = False
        if unbroken:
            intact[seq] = event["hash"]
        previous = event["hash"]
    return problems, intact


def _signature_problems(
    subject: str,
    signatures: Sequence[Mapping[str, Any]],
    intact: Mapping[int, str],
    jwks: Mapping[str, Any],
) -> tuple[list[str], int]:
    problems: list[str] = []
    signed_seq = 0
    for index, signature in enumerate(signatures):
        label = f"signature {index + 1} (seq {signature['seq']})"
        try:
            header, payload = verify_compact(signature["jws"], jwks)
        except SignatureError as error:
            problems.append(f"{label}: {error.reason_code}: {error.message}")
            continue
        if header.get("typ") != CHAIN_HEAD_TYPE:
            problems.append(f"{label}: not a chain head signature (typ {header.get('typ')!r})")
            continue
        claimed = (payload.get("subject"), payload.get("seq"), payload.get("hash"))
        if claimed != (subject, signature["seq"], signature["hash"]):
            problems.append(f"{label}: the signed statement names another subject, seq or hash")
            continue
        if signature["seq"] not in intact:
            problems.append(f"{label}: the chain has no intact event {signature['seq']} any more")
            continue
        if intact[signature["seq"]] != signature["hash"]:
            problems.append(f"{label}: event {signature['seq']} no longer has the signed hash")
            continue
        signed_seq = max(signed_seq, signature["seq"])
    return problems, signed_seq


def verify_chain(
    document: Mapping[str, Any], jwks: Mapping[str, Any], *, require_signed: bool = False
) -> ChainVerdict:
    """Verify a ``consent-chain`` document against the signing keys in ``jwks``.

    Recomputes every event hash, checks seq continuity from 1, the ``prev_hash`` links from
    :data:`consent.service.GENESIS_HASH`, that the head names the last event, and every signature: a
    valid JWS of type :data:`CHAIN_HEAD_TYPE` by a key of ``jwks``, over the statement the entry shows,
    whose event is still in the chain, intact, with the signed hash. With ``require_signed``, events
    after the last valid signature are a problem too (they could have been appended by anyone who can
    write to the database).
    """
    issues = standards.validator("consent-chain").issues(dict(document))
    if issues:
        return ChainVerdict(
            False, tuple(f"not a consent-chain document at {i.pointer or '/'}: {i.message}" for i in issues)
        )
    subject = document["subject"]
    events = document["events"]
    problems, intact = _link_problems(subject, events)
    last_seq, last_hash = (events[-1]["seq"], events[-1]["hash"]) if events else (0, GENESIS_HASH)
    head = document["head"]
    if (head["seq"], head["hash"]) != (last_seq, last_hash):
        problems.append(f"head (seq {head['seq']}) does not name the last event (seq {last_seq})")
    signature_problems, signed_seq = _signature_problems(subject, document["signatures"], intact, jwks)
    problems += signature_problems
    if require_signed and signed_seq < last_seq:
        problems.append(f"events {signed_seq + 1} to {last_seq} are not covered by a valid head signature")
    return ChainVerdict(not problems, tuple(problems), head_seq=last_seq, signed_seq=signed_seq)


async def verify_stored_chain(
    sessions: async_sessionmaker[AsyncSession],
    subject: str,
    jwks: Mapping[str, Any],
    *,
    require_signed: bool = False,
) -> ChainVerdict:
    """:func:`verify_chain` on the chain of ``subject`` as the database holds it now."""
    return verify_chain(await chain_document(sessions, subject), jwks, require_signed=require_signed)


def _extends_signed(events: Sequence[EventRow], signed: ChainSignature | None, head: ChainHead) -> bool:
    """Whether ``events`` (from the last signed seq, or from 1) link intact from the signed hash (or from
    genesis) up to ``head``: a new signature then only extends what was already attested. A chain now
    shorter than its last signature never extends it."""
    if signed is None:
        expected_seq, previous = 1, GENESIS_HASH
    else:
        if not events or events[0].seq != signed.seq or events[0].hash != signed.hash:
            return False
        if event_hash(event_document(events[0])) != signed.hash:
            return False
        expected_seq, previous, events = signed.seq + 1, signed.hash, events[1:]
    for row in events:
        document = event_document(row)
        if row.seq != expected_seq or row.prev_hash != previous or event_hash(document) != row.hash:
            return False
        expected_seq, previous = expected_seq + 1, row.hash
    return (expected_seq - 1, previous) == (head.seq, head.hash)


async def sign_heads(
    sessions: async_sessionmaker[AsyncSession],
    key: SigningKey,
    *,
    now: datetime | None = None,
    issuer: str | None = None,
) -> int:
    """Sign every chain head that changed since its last signature; returns how many were signed.

    The statement signed is ``{subject, seq, hash, signed_at[, issuer]}`` (compact JWS, ``typ``
    :data:`CHAIN_HEAD_TYPE`), stored as a ``ChainSignature`` row. A head is signed only when the events
    since the subject's last signature link intact from that signature (or from genesis) to the head,
    so an edit made in between is never signed over; such chains are counted in a warning, without
    naming the subject.
    """
    moment = now if now is not None else datetime.now(UTC)
    signed_at = timestamp(moment)
    signed = refused = 0
    async with sessions() as session, session.begin():
        already_signed = exists().where(
            and_(
                ChainSignature.subject == ChainHead.subject,
                ChainSignature.seq == ChainHead.seq,
                ChainSignature.hash == ChainHead.hash,
            )
        )
        heads = (await session.scalars(select(ChainHead).where(~already_signed))).all()
        for head in heads:
            last = await session.scalar(
                select(ChainSignature)
                .where(ChainSignature.subject == head.subject)
                .order_by(ChainSignature.seq.desc(), ChainSignature.id.desc())
                .limit(1)
            )
            events = (
                await session.scalars(
                    select(EventRow)
                    .where(
                        EventRow.subject == head.subject,
                        EventRow.seq >= (last.seq if last is not None else 1),
                        EventRow.seq <= head.seq,
                    )
                    .order_by(EventRow.seq)
                )
            ).all()
            if not _extends_signed(events, last, head):
                refused += 1
                continue
            statement: dict[str, Any] = {
                "subject": head.subject,
                "seq": head.seq,
                "hash": head.hash,
                "signed_at": signed_at,
            }
            if issuer is not None:
                statement["issuer"] = issuer
            session.add(
                ChainSignature(
                    subject=head.subject,
                    seq=head.seq,
                    hash=head.hash,
                    jws=sign_compact(statement, key, typ=CHAIN_HEAD_TYPE),
                    signed_at=moment,
                )
            )
            signed += 1
    if refused:
        _log.warning("consent chains not signed because they do not extend their last signature: %d", refused)
    return signed
