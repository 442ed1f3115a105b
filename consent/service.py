"""The consent domain: agreements and their versions, consent records through their lifecycle, the
per-subject event chain, receipts and the notices that leave through the outbox.

No HTTP here: ``consent.api`` maps requests onto these calls and ``consent.client`` lets other blocks
reach them. Every refusal is a :class:`dpi.errors.DpiError` with a reason code from ``standards``.

Rules written down (and tested in ``tests/consent``):

- **Who may act.** The subject acts for themself; an operator at a service centre acts only through the
  ``assisted`` channel and with their operator id; a guardian acts while the guardianship is in force
  (no end date, or before its ``until`` date). While a minor is under guardianship, approving, refusing
  and deferring are for the guardian; the subject may still pause and withdraw, because those only
  reduce processing. The controller (the agreement's consumer) or a provider named by the agreement may
  revoke; an authority may invalidate; only the system expires, supersedes and asks for reconfirmation.
- **Coming of age.** When a guardianship ends, every consent the guardian gave that is still in force
  returns to REQUESTED with ``requires_reconfirmation``; data stops flowing until the subject confirms.
- **Expiry.** A consent is EXPIRED from ``valid_until`` on, whether or not anything ran at that moment:
  every read computes the true state (:func:`effective_state`); :meth:`ConsentService.sweep` then
  writes the system events so the history and the notifications catch up.
- **New agreement versions.** Consents given to an older version carry over to the new one only when
  the change narrows what the consumer may do (see :func:`narrows_only`); otherwise they become
  SUPERSEDED and the subject is asked again with a new request for the new version.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from consent.lifecycle import (
    OPEN_STATES,
    Action,
    ActorRole,
    Channel,
    State,
    TransitionRefused,
    transition,
)
from consent.models import AgreementRow, ChainHead, ConsentRow, EventRow, ReceiptRow
from consent.receipts import sign_receipt
from dpi import outbox
from dpi.errors import DpiError, ErrorDetail
from dpi.keys import KeyStore
from dpi.signing import canonical_json

__all__ = [
    "GENESIS_HASH",
    "NOTIFICATION_TOPIC",
    "ActResult",
    "Actor",
    "ConsentService",
    "effective_state",
    "event_document",
    "event_hash",
    "narrows_only",
    "notice_hash",
    "record_document",
    "timestamp",
]

_log = logging.getLogger("consent.service")

GENESIS_HASH: Final = "sha256:" + "0" * 64
NOTIFICATION_TOPIC: Final = "consent.notification"
REQUEST_TTL: Final = timedelta(days=30)
_RECEIPT_ACTIONS: Final = frozenset({Action.APPROVE, Action.WITHDRAW, Action.REVOKE})
_NOTIFIED_ACTIONS: Final[Mapping[Action, str]] = {
    Action.WITHDRAW: "withdrawn",
    Action.REVOKE: "revoked",
    Action.PAUSE: "paused",
    Action.RESUME: "resumed",
    Action.EXPIRE: "expired",
    Action.SUPERSEDE: "superseded",
    Action.INVALIDATE: "invalidated",
}
_DECISIONS: Final = frozenset({Action.APPROVE, Action.REFUSE, Action.DEFER})
_ATTEMPTS: Final = 4

T = TypeVar("T")
ChangeListener = Callable[[str, str], Awaitable[None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one form used on the wire and in hashes."""
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def notice_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who acts: a role and the identifier that role is known by (pseudonym, operator id, member id)."""

    role: ActorRole
    id: str | None = None


SYSTEM: Final = Actor(ActorRole.SYSTEM)


@dataclass(frozen=True)
class ActResult:
    record: dict[str, Any]
    event: dict[str, Any]
    receipt: str | None = None


def effective_state(row: ConsentRow, now: datetime) -> tuple[State, Action | None]:
    """The true state of ``row`` at ``now``, and the system action that would make the stored one agree."""
    state = State(row.state)
    if state in OPEN_STATES and row.valid_until is not None and now >= _aware(row.valid_until):
        return State.EXPIRED, Action.EXPIRE
    if (
        state in (State.ACTIVE, State.PAUSED)
        and row.granted_role == ActorRole.GUARDIAN.value
        and row.guardian_until is not None
        and now.date() >= row.guardian_until
    ):
        return State.REQUESTED, Action.REQUIRE_RECONFIRMATION
    return state, None


def record_document(row: ConsentRow, now: datetime) -> dict[str, Any]:
    """The ``consent-record`` document of ``row`` as it truly is at ``now``."""
    state, pending = effective_state(row, now)
    document: dict[str, Any] = {
        "consent_id": row.consent_id,
        "agreement_id": row.agreement_id,
        "agreement_version": row.agreement_version,
        "subject": row.subject,
        "state": state.value,
        "fields": list(row.fields),
        "requires_reconfirmation": row.requires_reconfirmation or pending is Action.REQUIRE_RECONFIRMATION,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
    }
    if row.granted_role is not None:
        document["granted_by"] = {
            "role": row.granted_role,
            **({"actor": row.granted_actor} if row.granted_actor else {}),
        }
    guardianship = _guardianship_of(row)
    if guardianship is not None:
        document["guardianship"] = guardianship
    if row.valid_from is not None:
        document["valid_from"] = timestamp(row.valid_from)
    if row.valid_until is not None:
        document["valid_until"] = timestamp(row.valid_until)
    return document


def event_document(row: EventRow) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": row.event_id,
        "consent_id": row.consent_id,
        "subject": row.subject,
        "seq": row.seq,
        "action": row.action,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "actor": {"role": row.actor_role, **({"id": row.actor_id} if row.actor_id else {})},
        "channel": row.channel,
        "at": timestamp(row.at),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
    if row.notice_hash is not None and row.notice_language is not None:
        document["notice"] = {"language": row.notice_language, "hash": row.notice_hash}
    if row.reason is not None:
        document["reason"] = row.reason
    return document


def event_hash(document: Mapping[str, Any]) -> str:
    """``sha256:`` over the canonical JSON of the event without its own hash; ``prev_hash`` links it."""
    content = {key: value for key, value in document.items() if key != "hash"}
    return "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()


def _field_sets(document: Mapping[str, Any]) -> dict[str, set[str]]:
    return {item["schema"]: set(item["fields"]) for item in document["data_items"]}


def _within(inner: Mapping[str, Any] | None, outer: Mapping[str, Any] | None) -> bool:
    if outer is None:
        return True
    if inner is None:
        return False
    starts_inside = "from" not in outer or ("from" in inner and inner["from"] >= outer["from"])
    ends_inside = "to" not in outer or ("to" in inner and inner["to"] <= outer["to"])
    return starts_inside and ends_inside


def narrows_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when ``new`` lets the consumer do no more than ``old``, so given consents carry over.

    Same consumer, purpose and legal basis; no new provider or service; no new field; retention and
    validity no longer; a frequency limit no looser; a data range inside the old one; and a revocable
    agreement stays revocable. The notice text may change (its hash is recorded with each approval).
    """
    if (old["consumer"], old["purpose"], old["legal_basis"]) != (
        new["consumer"],
        new["purpose"],
        new["legal_basis"],
    ):
        return False
    old_providers = {(p["provider"], p["service"]) for p in old["providers"]}
    if not {(p["provider"], p["service"]) for p in new["providers"]} <= old_providers:
        return False
    old_fields = _field_sets(old)
    for schema, fields in _field_sets(new).items():
        if not fields <= old_fields.get(schema, set()):
            return False
    if new["retention_days"] > old["retention_days"] or new["max_validity_days"] > old["max_validity_days"]:
        return False
    old_frequency, new_frequency = old.get("frequency"), new.get("frequency")
    if old_frequency is not None and (
        new_frequency is None
        or new_frequency["max_accesses"] * old_frequency["period_days"]
        > old_frequency["max_accesses"] * new_frequency["period_days"]
        or new_frequency["period_days"] < old_frequency["period_days"]
    ):
        return False
    if not _within(new.get("data_range"), old.get("data_range")):
        return False
    return not (old["revocable"] and not new["revocable"])


@dataclass
class ConsentService:
    """The consent block's domain logic over its tables.

    ``issuer`` names this system in receipts (its member id or base URL). ``listeners`` are told
    ``(consent_id, subject)`` after every committed change, which is how in-process caches learn of a
    withdrawal; on PostgreSQL the change is also announced with ``pg_notify`` inside the transaction.
    """

    sessions: async_sessionmaker[AsyncSession]
    keys: KeyStore
    issuer: str
    clock: Callable[[], datetime] = _utcnow
    listeners: list[ChangeListener] = field(default_factory=list)

    # --- transactions -------------------------------------------------------------------------------

    async def _transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> tuple[T, list[ConsentRow]]:
        """Run ``work`` in one transaction, retrying when a concurrent writer won a unique constraint
        (two first events of one subject, two new versions of one agreement)."""
        for attempt in range(_ATTEMPTS):
            async with self.sessions() as session:
                changed: list[ConsentRow] = []
                session.info["changed"] = changed
                try:
                    async with session.begin():
                        result = await work(session)
                except IntegrityError:
                    if attempt == _ATTEMPTS - 1:
                        raise
                    continue
                # Straight after the commit, before anything else can await: a cache attached in this
                # process forgets the consent before any other coroutine can be answered from it.
                await self._tell_listeners(changed)
            return result, changed
        raise AssertionError("unreachable")

    async def _tell_listeners(self, changed: list[ConsentRow]) -> None:
        for row in changed:
            for listener in list(self.listeners):
                try:
                    await listener(row.consent_id, row.subject)
                except (
                    Exception
                ) as error:  # the change is committed; a listener's failure must not undo the answer
                    _log.error(
                        "consent change listener failed",
                        extra={"event": "consent_listener_failed", "exception_type": type(error).__name__},
                    )

    async def _announce(self, session: AsyncSession, row: ConsentRow) -> None:
        session.info["changed"].append(row)
        if session.get_bind().dialect.name == "postgresql":
            # Delivered to listeners only if and when this transaction commits.
            await session.execute(select(func.pg_notify("dpi_consent_changes", row.consent_id)))

    # --- agreements -----------------------------------------------------------------------------------

    async def publish_agreement(self, draft: Mapping[str, Any]) -> dict[str, Any]:
        """Publish ``draft`` (a ``consent-agreement-input``) as the next version of its agreement."""
        standards.validator("consent-agreement-input").check(dict(draft))
        _check_vocabularies(draft)
        now = self.clock()

        async def work(session: AsyncSession) -> dict[str, Any]:
            latest = await _latest_agreement(session, draft["agreement_id"], lock="update")
            version = 1 if latest is None else latest.version + 1
            document = dict(draft)
            document["version"] = version
            document["notices"] = {
                language: {"text": notice["text"], "hash": notice_hash(notice["text"])}
                for language, notice in draft["notices"].items()
            }
            document["created_at"] = timestamp(now)
            standards.validator("consent-agreement").check(document)
            session.add(
                AgreementRow(
                    agreement_id=document["agreement_id"],
                    version=version,
                    consumer=document["consumer"],
                    purpose=document["purpose"],
                    document=document,
                    created_at=now,
                )
            )
            await session.flush()
            if latest is not None:
                await self._move_to_version(session, latest.document, document, now)
            return document

        document, _ = await self._transaction(work)
        return document

    async def _move_to_version(
        self, session: AsyncSession, old: Mapping[str, Any], new: Mapping[str, Any], now: datetime
    ) -> None:
        rows = (
            await session.scalars(
                select(ConsentRow)
                .where(
                    ConsentRow.agreement_id == new["agreement_id"],
                    ConsentRow.agreement_version < new["version"],
                    ConsentRow.state.in_([state.value for state in OPEN_STATES]),
                )
                .with_for_update()
            )
        ).all()
        carry_over = narrows_only(old, new)
        for row in rows:
            state, due = effective_state(row, now)
            if due is not None:
                await self._apply(session, row, due, SYSTEM, Channel.SYSTEM, None, None, now, new)
                if state not in OPEN_STATES:
                    continue
            if carry_over:
                row.agreement_version = new["version"]
                row.fields = sorted(row_field for row_field in row.fields if row_field in _all_fields(new))
                if row.valid_from is not None and row.valid_until is not None:
                    longest = _aware(row.valid_from) + timedelta(days=new["max_validity_days"])
                    row.valid_until = min(_aware(row.valid_until), longest)
                row.updated_at = now
                # Fewer fields or a shorter validity change what a check answers: caches must hear of it.
                await self._announce(session, row)
                continue
            await self._apply(session, row, Action.SUPERSEDE, SYSTEM, Channel.SYSTEM, None, None, now, new)
            await self._new_request(
                session,
                new,
                row.subject,
                _guardianship_of(row),
                row.requested_validity_days,
                SYSTEM,
                now,
            )

    async def agreement(self, agreement_id: str, version: int | None = None) -> dict[str, Any]:
        async with self.sessions() as session:
            row = (
                await _latest_agreement(session, agreement_id)
                if version is None
                else await session.scalar(
                    select(AgreementRow).where(
                        AgreementRow.agreement_id == agreement_id, AgreementRow.version == version
                    )
                )
            )
        if row is None:
            raise DpiError("agreement.not_found", f"no agreement {agreement_id}")
        return dict(row.document)

    # --- records ------------------------------------------------------------------------------------

    async def request(
        self, body: Mapping[str, Any], actor: Actor, *, guardianship_attested: bool = False
    ) -> dict[str, Any]:
        """Ask a subject for consent under the latest version of an agreement (``consent-request``)."""
        record, _ = await self.request_consent(body, actor, guardianship_attested=guardianship_attested)
        return record

    async def request_consent(
        self, body: Mapping[str, Any], actor: Actor, *, guardianship_attested: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """Ask a subject for consent; returns the record and whether it was created.

        Asking again while an earlier request or consent for the same agreement is still open returns
        that one instead of creating a second. A guardianship is accepted only when the caller's source
        is attested for it (a registry or an authority): a data consumer stating who the guardian is
        could otherwise choose who consents.
        """
        standards.validator("consent-request").check(dict(body))
        if "guardianship" in body and not guardianship_attested:
            raise DpiError(
                "consent.actor_not_allowed",
                "a guardianship can only be stated by an attested source",
                details=[ErrorDetail("/guardianship", "consent.actor_not_allowed", "not from this caller")],
            )
        now = self.clock()

        async def work(session: AsyncSession) -> tuple[dict[str, Any], bool]:
            agreement_row = await _latest_agreement(session, body["agreement_id"], lock="share")
            if agreement_row is None:
                raise DpiError("agreement.not_found", f"no agreement {body['agreement_id']}")
            agreement = agreement_row.document
            if actor.role is not ActorRole.SYSTEM and actor.id != agreement["consumer"]:
                raise DpiError(
                    "consent.actor_not_allowed", "only the agreement's consumer may ask for this consent"
                )
            existing = await session.scalar(
                select(ConsentRow).where(
                    ConsentRow.agreement_id == agreement["agreement_id"],
                    ConsentRow.subject == body["subject"],
                    ConsentRow.state.in_([state.value for state in OPEN_STATES]),
                )
            )
            if existing is not None and effective_state(existing, now)[0] in OPEN_STATES:
                return record_document(existing, now), False
            row = await self._new_request(
                session,
                agreement,
                body["subject"],
                body.get("guardianship"),
                body.get("requested_validity_days"),
                actor,
                now,
            )
            return record_document(row, now), True

        outcome, _ = await self._transaction(work)
        return outcome

    async def _new_request(
        self,
        session: AsyncSession,
        agreement: Mapping[str, Any],
        subject: str,
        guardianship: Mapping[str, Any] | None,
        requested_validity_days: int | None,
        actor: Actor,
        now: datetime,
    ) -> ConsentRow:
        row = ConsentRow(
            consent_id=str(uuid.uuid4()),
            agreement_id=agreement["agreement_id"],
            agreement_version=agreement["version"],
            consumer=agreement["consumer"],
            purpose=agreement["purpose"],
            subject=subject,
            state=State.REQUESTED.value,
            guardian=guardianship["guardian"] if guardianship else None,
            guardian_basis=guardianship["basis"] if guardianship else None,
            guardian_until=date.fromisoformat(guardianship["until"])
            if guardianship and "until" in guardianship
            else None,
            fields=sorted(_all_fields(agreement)),
            requested_validity_days=requested_validity_days,
            valid_until=now + REQUEST_TTL,
            requires_reconfirmation=False,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        await self._append_event(
            session, row, Action.REQUEST, None, State.REQUESTED, actor, Channel.API, None, None, now
        )
        # A new request changes what a check answers (not_found becomes pending): caches must hear of it.
        await self._announce(session, row)
        return row

    async def act(
        self,
        consent_id: str,
        action: Action,
        actor: Actor,
        *,
        channel: Channel,
        notice: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> ActResult:
        """Take ``action`` on a consent as ``actor``; returns the record, the event and, for approvals,
        withdrawals and revocations, the signed receipt."""
        now = self.clock()

        async def work(session: AsyncSession) -> ActResult:
            row = await session.get(ConsentRow, consent_id, with_for_update=True)
            if row is None:
                raise DpiError("consent.not_found", "no such consent")
            agreement = await _agreement_row(session, row.agreement_id, row.agreement_version)
            _, due = effective_state(row, now)
            if due is not None:
                await self._apply(session, row, due, SYSTEM, Channel.SYSTEM, None, None, now, agreement)
            _authorise(row, action, actor, channel, now, agreement)
            if action is Action.APPROVE:
                _check_notice(notice, agreement)
            event = await self._apply(session, row, action, actor, channel, notice, reason, now, agreement)
            receipt = None
            if action in _RECEIPT_ACTIONS:
                receipt = await self._issue_receipt(session, row, event, agreement, now)
            return ActResult(record_document(row, now), event_document(event), receipt)

        result, _ = await self._transaction(work)
        return result

    async def _apply(
        self,
        session: AsyncSession,
        row: ConsentRow,
        action: Action,
        actor: Actor,
        channel: Channel,
        notice: Mapping[str, str] | None,
        reason: str | None,
        now: datetime,
        agreement: Mapping[str, Any],
    ) -> EventRow:
        before = State(row.state)
        try:
            after = transition(before, action, actor.role)
        except TransitionRefused as refused:
            raise DpiError(refused.reason_code, refused.message) from None
        row.state = after.value
        row.updated_at = now
        if action is Action.APPROVE:
            validity = min(
                row.requested_validity_days or agreement["max_validity_days"], agreement["max_validity_days"]
            )
            row.valid_from = now
            row.valid_until = now + timedelta(days=validity)
            # An operator's approval is recorded as the operator's (assisted), never as the subject's own.
            row.granted_role = actor.role.value
            row.granted_actor = actor.id
            row.requires_reconfirmation = False
        elif action is Action.REQUIRE_RECONFIRMATION:
            row.requires_reconfirmation = True
            row.granted_role = None
            row.granted_actor = None
            row.valid_until = now + REQUEST_TTL
        elif action is Action.DEFER:
            row.valid_until = now + REQUEST_TTL
        event = await self._append_event(
            session, row, action, before, after, actor, channel, notice, reason, now
        )
        if action in _NOTIFIED_ACTIONS:
            await outbox.enqueue(
                session,
                NOTIFICATION_TOPIC,
                {
                    "notification_id": str(uuid.uuid4()),
                    "event": _NOTIFIED_ACTIONS[action],
                    "consent_id": row.consent_id,
                    "agreement_id": row.agreement_id,
                    "consumer": agreement["consumer"],
                    "providers": list(agreement["providers"]),
                    "purpose": agreement["purpose"],
                    "at": timestamp(now),
                    "state": after.value,
                },
                key=row.consent_id,
            )
        await self._announce(session, row)
        return event

    async def _append_event(
        self,
        session: AsyncSession,
        row: ConsentRow,
        action: Action,
        before: State | None,
        after: State,
        actor: Actor,
        channel: Channel,
        notice: Mapping[str, str] | None,
        reason: str | None,
        now: datetime,
    ) -> EventRow:
        # The head row is locked for the rest of the transaction, so a subject's events are appended
        # one at a time and the chain cannot fork; the unique (subject, seq) is the last line of defence.
        head = await session.get(ChainHead, row.subject, with_for_update=True)
        seq, prev_hash = (1, GENESIS_HASH) if head is None else (head.seq + 1, head.hash)
        event = EventRow(
            event_id=str(uuid.uuid4()),
            consent_id=row.consent_id,
            subject=row.subject,
            seq=seq,
            action=action.value,
            from_state=before.value if before is not None else None,
            to_state=after.value,
            actor_role=actor.role.value,
            actor_id=actor.id,
            channel=channel.value,
            at=now,
            notice_language=notice["language"] if notice else None,
            notice_hash=notice["hash"] if notice else None,
            reason=reason,
            prev_hash=prev_hash,
            hash="",
        )
        event.hash = event_hash(event_document(event))
        if head is None:
            session.add(ChainHead(subject=row.subject, seq=seq, hash=event.hash))
        else:
            head.seq, head.hash = seq, event.hash
        session.add(event)
        await session.flush()
        return event

    async def _issue_receipt(
        self,
        session: AsyncSession,
        row: ConsentRow,
        event: EventRow,
        agreement: Mapping[str, Any],
        now: datetime,
    ) -> str:
        receipt: dict[str, Any] = {
            "receipt_id": str(uuid.uuid4()),
            "consent_id": row.consent_id,
            "event_hash": event.hash,
            "action": event.action,
            "state": row.state,
            "at": timestamp(now),
            "subject": row.subject,
            "agreement": {"agreement_id": row.agreement_id, "version": row.agreement_version},
            "consumer": agreement["consumer"],
            "providers": list(agreement["providers"]),
            "purpose": agreement["purpose"],
            "legal_basis": agreement["legal_basis"],
            "fields": list(row.fields),
            "actor": {"role": event.actor_role, **({"id": event.actor_id} if event.actor_id else {})},
            "channel": event.channel,
            "issuer": self.issuer,
        }
        if row.valid_until is not None and row.state == State.ACTIVE.value:
            receipt["valid_until"] = timestamp(row.valid_until)
        if event.notice_hash is not None and event.notice_language is not None:
            receipt["notice"] = {"language": event.notice_language, "hash": event.notice_hash}
        jws = sign_receipt(receipt, self.keys.active())
        session.add(
            ReceiptRow(
                receipt_id=receipt["receipt_id"],
                consent_id=row.consent_id,
                event_id=event.event_id,
                action=event.action,
                jws=jws,
                created_at=now,
            )
        )
        return jws

    # --- reading --------------------------------------------------------------------------------------

    async def record(self, consent_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await session.get(ConsentRow, consent_id)
        if row is None:
            raise DpiError("consent.not_found", "no such consent")
        return record_document(row, self.clock())

    async def records_for_subject(self, subject: str, *, guardian: bool = False) -> list[dict[str, Any]]:
        """A subject's consents, newest first (or, with ``guardian``, those whose guardian they are while
        the guardianship is in force: a former guardian sees nothing of them)."""
        column = ConsentRow.guardian if guardian else ConsentRow.subject
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(ConsentRow).where(column == subject).order_by(ConsentRow.created_at.desc())
                )
            ).all()
        now = self.clock()
        return [record_document(row, now) for row in rows if not guardian or _guardianship_in_force(row, now)]

    async def history(self, consent_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            if await session.get(ConsentRow, consent_id) is None:
                raise DpiError("consent.not_found", "no such consent")
            rows = (
                await session.scalars(
                    select(EventRow).where(EventRow.consent_id == consent_id).order_by(EventRow.seq)
                )
            ).all()
        return [event_document(row) for row in rows]

    async def receipts(self, consent_id: str) -> list[str]:
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(ReceiptRow)
                    .where(ReceiptRow.consent_id == consent_id)
                    .order_by(ReceiptRow.created_at)
                )
            ).all()
        return [row.jws for row in rows]

    # --- time passing ---------------------------------------------------------------------------------

    async def sweep(self, *, limit: int = 500) -> int:
        """Write the system events for consents whose true state has moved on (expiry, coming of age)."""
        now = self.clock()
        changed = 0
        async with self.sessions() as session:
            candidates = (
                await session.scalars(
                    select(ConsentRow.consent_id)
                    .where(ConsentRow.state.in_([state.value for state in OPEN_STATES]))
                    .where(
                        (ConsentRow.valid_until <= now)
                        | (
                            (ConsentRow.guardian_until <= now.date())
                            & (ConsentRow.granted_role == ActorRole.GUARDIAN.value)
                        )
                    )
                    .limit(limit)
                )
            ).all()
        for consent_id in candidates:

            async def work(session: AsyncSession, consent_id: str = consent_id) -> bool:
                row = await session.get(ConsentRow, consent_id, with_for_update=True)
                if row is None:
                    return False
                _, due = effective_state(row, now)
                if due is None:
                    return False
                agreement = await _agreement_row(session, row.agreement_id, row.agreement_version)
                await self._apply(session, row, due, SYSTEM, Channel.SYSTEM, None, None, now, agreement)
                return True

            moved, _ = await self._transaction(work)
            changed += int(moved)
        return changed


def _all_fields(agreement: Mapping[str, Any]) -> set[str]:
    """The JSON pointers an agreement covers, over all its data items."""
    return {pointer for item in agreement["data_items"] for pointer in item["fields"]}


def _guardianship_of(row: ConsentRow) -> dict[str, Any] | None:
    if row.guardian is None or row.guardian_basis is None:
        return None
    guardianship: dict[str, Any] = {"guardian": row.guardian, "basis": row.guardian_basis}
    if row.guardian_until is not None:
        guardianship["until"] = row.guardian_until.isoformat()
    return guardianship


async def _latest_agreement(
    session: AsyncSession, agreement_id: str, *, lock: str | None = None
) -> AgreementRow | None:
    """The latest version; ``lock`` ("share" for a request, "update" for a new version) keeps a request
    and a new version from passing each other, so no request is left on a superseded version."""
    query = (
        select(AgreementRow)
        .where(AgreementRow.agreement_id == agreement_id)
        .order_by(AgreementRow.version.desc())
        .limit(1)
    )
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    return await session.scalar(query)


async def _agreement_row(session: AsyncSession, agreement_id: str, version: int) -> dict[str, Any]:
    row = await session.scalar(
        select(AgreementRow).where(AgreementRow.agreement_id == agreement_id, AgreementRow.version == version)
    )
    if row is None:
        raise DpiError("agreement.not_found", f"no agreement {agreement_id} version {version}")
    return dict(row.document)


def _check_vocabularies(draft: Mapping[str, Any]) -> None:
    problems: list[ErrorDetail] = []
    if draft["purpose"] not in standards.purpose_codes():
        problems.append(ErrorDetail("/purpose", "agreement.invalid", "not a purpose code of the vocabulary"))
    if draft["legal_basis"] not in standards.legal_bases():
        problems.append(
            ErrorDetail("/legal_basis", "agreement.invalid", "not a legal basis of the vocabulary")
        )
    for index, item in enumerate(draft["data_items"]):
        try:
            standards.load_schema(item["schema"])
        except standards.SchemaNotFound:
            problems.append(
                ErrorDetail(f"/data_items/{index}/schema", "schema.not_found", "no such published schema")
            )
    if problems:
        raise DpiError("agreement.invalid", details=problems)


def _guardianship_in_force(row: ConsentRow, now: datetime) -> bool:
    return row.guardian is not None and (row.guardian_until is None or now.date() < row.guardian_until)


def _authorise(
    row: ConsentRow,
    action: Action,
    actor: Actor,
    channel: Channel,
    now: datetime,
    agreement: Mapping[str, Any],
) -> None:
    """Identity rules on top of the role table in ``consent.lifecycle`` (see the module docstring)."""
    refuse = DpiError(
        "consent.actor_not_allowed", f"this {actor.role.value} may not {action.value} this consent"
    )
    if actor.role is ActorRole.SUBJECT:
        if actor.id != row.subject:
            raise refuse
        if action in _DECISIONS and row.guardian_basis == "minor" and _guardianship_in_force(row, now):
            raise DpiError(
                "consent.actor_not_allowed", "while under guardianship, the guardian decides on requests"
            )
    elif actor.role is ActorRole.GUARDIAN:
        if actor.id != row.guardian or not _guardianship_in_force(row, now):
            raise refuse
    elif actor.role is ActorRole.OPERATOR:
        if not actor.id or channel is not Channel.ASSISTED:
            raise DpiError(
                "consent.actor_not_allowed", "an operator acts only through the assisted channel, with an id"
            )
        # The operator acts for the subject who is present, so the subject's own limits apply.
        if action in _DECISIONS and row.guardian_basis == "minor" and _guardianship_in_force(row, now):
            raise DpiError(
                "consent.actor_not_allowed", "while under guardianship, the guardian decides on requests"
            )
    elif actor.role is ActorRole.CONTROLLER:
        if actor.id != agreement["consumer"]:
            raise refuse
    elif actor.role is ActorRole.PROVIDER and actor.id not in {p["provider"] for p in agreement["providers"]}:
        raise refuse
    if action in (Action.WITHDRAW, Action.REVOKE) and not agreement["revocable"]:
        raise DpiError("consent.not_revocable", "this agreement's consents cannot be withdrawn or revoked")


def _check_notice(notice: Mapping[str, str] | None, agreement: Mapping[str, Any]) -> None:
    if notice is None:
        raise DpiError(
            "consent.notice_mismatch",
            "an approval must name the notice the subject saw",
            details=[ErrorDetail("/notice", "schema.required", "notice is required to approve")],
        )
    shown = agreement["notices"].get(notice["language"])
    if shown is None or shown["hash"] != notice["hash"]:
        raise DpiError(
            "consent.notice_mismatch",
            "the notice hash does not match this agreement's notice in that language",
            details=[ErrorDetail("/notice/hash", "consent.notice_mismatch", "not the current notice")],
        )
