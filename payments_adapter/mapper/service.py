"""The ID-to-account mapper: where each beneficiary chose to be paid, as G2P Connect's mapper
(``api/g2p-mapper.yaml``, https://github.com/G2P-Connect/specs) links, updates, unlinks and resolves it.

Rules this service holds, whatever the caller:

- **The person chooses.** A link or an update is made by the beneficiary (``Channel.SELF``, their own
  id only) or by an operator with the person present (``Channel.ASSISTED``, the operator recorded), and
  carries the person's consent receipt for ``benefit-payment`` (see :mod:`.receipts`); without a valid
  one the change is refused.
- **One address, one beneficiary**, unless an administrator allowed the address to be shared (a
  household wallet, with the reason and who allowed it); then every link to it is flagged ``shared``.
  Any other attempt is refused with ``payments.mapper.address.taken`` and kept as a conflict for review
  (the other beneficiary is never named to the caller).
- **Nothing is forgotten.** A change closes the open link and opens a new one; every change is an event
  (who, through which channel, when, why, and from when it counts).
- **Changes freeze before a cycle's cut-off.** A change made while a cycle's freeze window (its cut-off
  to its end) is open is accepted and recorded, but takes effect at the end of the window (of the last
  of overlapping windows), so it never alters that cycle's payments; the answer says from when it counts.
  :meth:`MapperService.financial_addresses` answers from the history for any moment, so the disbursement
  engine asks with ``as_of`` = the cycle's cut-off.
- **Resends are harmless.** A change is answered once per caller and ``reference_id``: the same request
  again gets the same answer; a different request under a used ``reference_id`` is refused.
- **Items are independent.** Each item of a message is processed in its own transaction and answered
  on its own; a refused item never fails the others.
"""

from __future__ import annotations

import enum
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from dpi.blocks import BlockContext
from dpi.errors import DpiError
from dpi.signing import canonical_json
from payments_adapter.contract import BeneficiaryAccounts, FinancialAddress
from payments_adapter.mapper.models import (
    ConflictRow,
    FreezeRow,
    LinkEventRow,
    LinkRow,
    MapperRequestRow,
    SharedAddressRow,
)
from payments_adapter.mapper.receipts import (
    ConsentRefused,
    KeyStoreReceiptKeys,
    ReceiptKeys,
    check_receipt,
)

__all__ = [
    "RESOLVE_TYPES",
    "Actor",
    "Channel",
    "MapperService",
    "beneficiary_accounts",
    "wire_time",
]

RESOLVE_TYPES: Final = (
    "FA_TO_ACCOUNT_PROVIDER_INFO",
    "FA_TO_ACCOUNT_INFO",
    "FA_TO_BENEFICIARY_ID",
    "BENEFICIARY_ID_TO_FA",
    "BENEFICIARY_ID_TO_ACCOUNT_PROVIDER_INFO",
    "BENEFICIARY_ID_TO_ACCOUNT_INFO",
)
_LOOKUP_CHUNK: Final = 500
_MAX_FREEZE_CHAIN: Final = 100
_MAX_LISTED: Final = 1000
_ATTEMPTS: Final = 3
# Answers that depend on something passing (the consent keys unreachable, a concurrent change) are not
# kept: the same request may succeed when sent again.
_TRANSIENT: Final = frozenset({"payments.mapper.consent.unverifiable", "payments.mapper.request.concurrent"})


def wire_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``."""
    return _aware(moment).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; every moment stored here is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Channel(enum.StrEnum):
    """Through whom a change came."""

    SELF = "self"
    """The beneficiary, signed in (the token's subject is their id)."""
    ASSISTED = "assisted"
    """An operator at a service point, with the person present."""


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: ``caller`` scopes ``reference_id`` uniqueness, ``id`` is recorded."""

    id: str
    channel: Channel
    caller: str

    @property
    def operator_id(self) -> str | None:
        return self.id if self.channel is Channel.ASSISTED else None


class _Refused(Exception):
    def __init__(self, reason_code: str, message: str | None = None) -> None:
        standards.reason_code(reason_code)
        super().__init__(reason_code)
        self.reason_code = reason_code
        self.message = message or standards.reason_code(reason_code).message("en")


def _event_id() -> str:
    # Ordered by the moment of recording, so the history lists events made within one clock tick
    # in the order they were made.
    return f"{time.time_ns():016x}-{uuid.uuid4().hex[:19]}"


def _address(text: Any) -> FinancialAddress:
    try:
        return FinancialAddress.parse(text)
    except ValueError:
        raise _Refused("payments.mapper.address.invalid", "a financial address is account@provider") from None


def _content_hash(action: str, item: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"action": action, "item": dict(item)})).hexdigest()


def _open_at(moment: datetime) -> Any:
    return and_(
        LinkRow.effective_from <= moment,
        or_(LinkRow.effective_until.is_(None), LinkRow.effective_until > moment),
    )


class MapperService:
    """Links, updates, unlinks and resolves; freeze windows and shared addresses; history.

    Implements :class:`payments_adapter.contract.BeneficiaryAccounts` for the disbursement engine.
    ``receipt_keys`` is the consent block's published key set; ``clock`` gives the current UTC time.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        receipt_keys: ReceiptKeys,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._receipt_keys = receipt_keys
        self._clock = clock

    # --- changes ------------------------------------------------------------------------------------

    async def link(self, item: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        """Link a beneficiary (without an open link) to an address: a ``LinkResponse``."""
        return await self._change("link", item, actor)

    async def update(self, item: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        """Move a linked beneficiary to another address (or restate the same one): an ``UpdateResponse``."""
        return await self._change("update", item, actor)

    async def unlink(self, item: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        """Close a beneficiary's link to an address: an ``UnlinkResponse``."""
        return await self._change("unlink", item, actor)

    def refused(self, item: Mapping[str, Any], reason_code: str, message: str) -> dict[str, Any]:
        """The answer to an item refused before it reached the service (its schema, say)."""
        reference_id = item.get("reference_id") if isinstance(item, Mapping) else None
        answer: dict[str, Any] = {
            "reference_id": reference_id if isinstance(reference_id, str) and reference_id else "-",
            "timestamp": wire_time(self._clock()),
            "status": "rjct",
            "status_reason_code": reason_code,
            "status_reason_message": message[:999],
        }
        return answer

    async def _change(self, action: str, item: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        # A concurrent change that won is seen on the next attempt: its answer is replayed (the same
        # request) or the item is judged again against what it wrote (the address now taken, say).
        answer: dict[str, Any] = {}
        for _ in range(_ATTEMPTS):
            answer = await self._attempt(action, item, actor)
            if answer.get("status_reason_code") != "payments.mapper.request.concurrent":
                break
        return answer

    async def _attempt(self, action: str, item: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        now = self._clock()
        reference_id = str(item["reference_id"])
        content_hash = _content_hash(action, item)
        async with self._sessions() as session:
            known = await session.get(MapperRequestRow, (actor.caller, reference_id))
        if known is not None:
            if known.content_hash == content_hash:
                return dict(known.answer)
            return self.refused(
                item,
                "payments.mapper.reference.duplicate",
                "this reference_id was already used for a different request",
            )
        try:
            answer = await self._apply(action, item, actor, now, content_hash)
        except _Refused as refusal:
            answer = self.refused(item, refusal.reason_code, refusal.message)
            if "fa" in item and isinstance(item["fa"], str):
                answer["fa"] = item["fa"]
            if refusal.reason_code not in _TRANSIENT:
                answer = await self._remember(actor, reference_id, action, content_hash, answer, now)
        return answer

    async def _remember(
        self,
        actor: Actor,
        reference_id: str,
        action: str,
        content_hash: str,
        answer: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """Keep a refusal's answer for resends; a concurrent twin that got there first wins."""
        try:
            async with self._sessions.begin() as session:
                session.add(self._request_row(actor, reference_id, action, content_hash, answer, now))
        except IntegrityError:
            async with self._sessions() as session:
                known = await session.get(MapperRequestRow, (actor.caller, reference_id))
            if known is not None and known.content_hash == content_hash:
                return dict(known.answer)
        return answer

    @staticmethod
    def _request_row(
        actor: Actor, reference_id: str, action: str, content_hash: str, answer: dict[str, Any], now: datetime
    ) -> MapperRequestRow:
        return MapperRequestRow(
            caller=actor.caller,
            reference_id=reference_id,
            action=action,
            content_hash=content_hash,
            answer=answer,
            received_at=now,
        )

    async def _apply(
        self, action: str, item: Mapping[str, Any], actor: Actor, now: datetime, content_hash: str
    ) -> dict[str, Any]:
        beneficiary_id = item.get("beneficiary_id")
        if actor.channel is Channel.SELF:
            if beneficiary_id is None and action == "unlink":
                beneficiary_id = actor.id
            if beneficiary_id != actor.id:
                raise _Refused(
                    "payments.mapper.beneficiary.forbidden",
                    "a beneficiary changes only their own links; an operator acts for others",
                )
        address = _address(item["fa"])
        consent = None
        if action in ("link", "update"):
            if not isinstance(beneficiary_id, str):
                raise _Refused("payments.mapper.item.invalid", f"a {action} names the beneficiary_id")
            try:
                jwks = await self._receipt_keys.jwks()
                consent = check_receipt(
                    item.get("consent_receipt"), jwks, beneficiary_id=beneficiary_id, now=now
                )
            except ConsentRefused as refusal:
                raise _Refused(refusal.reason_code, refusal.message) from None
        try:
            async with self._sessions.begin() as session:
                effective_at = await self._effective_at(session, now)
                if action == "unlink":
                    answer = await self._close(
                        session, item, address, beneficiary_id, actor, now, effective_at
                    )
                else:
                    assert consent is not None
                    assert isinstance(beneficiary_id, str)
                    answer = await self._open(
                        session, action, item, address, beneficiary_id, consent, actor, now, effective_at
                    )
                session.add(
                    self._request_row(actor, str(item["reference_id"]), action, content_hash, answer, now)
                )
        except IntegrityError:
            raise _Refused(
                "payments.mapper.request.concurrent",
                "a concurrent change of this beneficiary, address or reference_id won; send it again",
            ) from None
        except _AddressTaken as taken:
            await self._record_conflict(taken, actor, str(item["reference_id"]), now)
            raise _Refused(
                "payments.mapper.address.taken",
                "this financial address is already linked to another beneficiary; the conflict is recorded "
                "for review (an administrator may allow a shared address)",
            ) from None
        return answer

    async def _effective_at(self, session: AsyncSession, now: datetime) -> datetime:
        """``now``, or the end of the freeze windows ``now`` falls in (following overlapping ones)."""
        moment = now
        for _ in range(_MAX_FREEZE_CHAIN):
            latest = await session.scalar(
                select(FreezeRow.ends_at)
                .where(FreezeRow.cut_off <= moment, FreezeRow.ends_at > moment)
                .order_by(FreezeRow.ends_at.desc())
                .limit(1)
            )
            if latest is None:
                return moment
            moment = _aware(latest)
        return moment

    async def _open(
        self,
        session: AsyncSession,
        action: str,
        item: Mapping[str, Any],
        address: FinancialAddress,
        beneficiary_id: str,
        consent: Any,
        actor: Actor,
        now: datetime,
        effective_at: datetime,
    ) -> dict[str, Any]:
        fa = str(address)
        current = await session.scalar(
            select(LinkRow)
            .where(LinkRow.beneficiary_id == beneficiary_id, LinkRow.effective_until.is_(None))
            .with_for_update()
        )
        if action == "link" and current is not None:
            raise _Refused(
                "payments.mapper.beneficiary.already_linked",
                "this beneficiary already has a financial address; use update to change it",
            )
        if action == "update" and current is None:
            raise _Refused("payments.mapper.link.not_found", "this beneficiary has no link to update")
        holders = list(
            await session.scalars(
                select(LinkRow)
                .where(
                    LinkRow.fa == fa,
                    LinkRow.effective_until.is_(None),
                    LinkRow.beneficiary_id != beneficiary_id,
                )
                .with_for_update()
            )
        )
        shared = False
        if holders:
            allowance = await session.get(SharedAddressRow, fa)
            if allowance is None:
                raise _AddressTaken(fa, beneficiary_id, holders[0].beneficiary_id)
            shared = True
            await session.execute(
                update(LinkRow)
                .where(LinkRow.link_id.in_([holder.link_id for holder in holders]))
                .values(shared=True)
            )
        elif await session.get(SharedAddressRow, fa) is not None:
            shared = True
        previous_fa = None
        if current is not None:
            previous_fa = current.fa
            current.effective_until = effective_at
            await session.flush()
        session.add(
            LinkRow(
                link_id=str(uuid.uuid4()),
                beneficiary_id=beneficiary_id,
                fa=fa,
                account_info=item.get("account_info"),
                shared=shared,
                consent_receipt=str(item["consent_receipt"]).strip(),
                consent_id=consent.consent_id,
                receipt_id=consent.receipt_id,
                effective_from=effective_at,
                effective_until=None,
                recorded_at=now,
            )
        )
        session.add(
            self._event(
                action,
                beneficiary_id,
                fa,
                previous_fa,
                shared,
                actor,
                item,
                now,
                effective_at,
                consent.receipt_id,
            )
        )
        return self._succeeded(item, fa, now, effective_at, shared=shared)

    async def _close(
        self,
        session: AsyncSession,
        item: Mapping[str, Any],
        address: FinancialAddress,
        beneficiary_id: Any,
        actor: Actor,
        now: datetime,
        effective_at: datetime,
    ) -> dict[str, Any]:
        fa = str(address)
        query = select(LinkRow).where(LinkRow.fa == fa, LinkRow.effective_until.is_(None))
        if beneficiary_id is not None:
            query = query.where(LinkRow.beneficiary_id == beneficiary_id)
        links = list(await session.scalars(query.with_for_update()))
        if not links:
            raise _Refused("payments.mapper.link.not_found", "no open link to this financial address")
        if len(links) > 1:
            raise _Refused(
                "payments.mapper.address.ambiguous",
                "this shared address is linked to several beneficiaries; name the beneficiary_id",
            )
        link = links[0]
        link.effective_until = effective_at
        session.add(
            self._event(
                "unlink", link.beneficiary_id, None, fa, link.shared, actor, item, now, effective_at, None
            )
        )
        return self._succeeded(item, fa, now, effective_at, shared=link.shared)

    @staticmethod
    def _event(
        action: str,
        beneficiary_id: str,
        fa: str | None,
        previous_fa: str | None,
        shared: bool,
        actor: Actor,
        item: Mapping[str, Any],
        now: datetime,
        effective_at: datetime,
        receipt_id: str | None,
    ) -> LinkEventRow:
        reason = item.get("additional_info")
        return LinkEventRow(
            event_id=_event_id(),
            beneficiary_id=beneficiary_id,
            action=action,
            fa=fa,
            previous_fa=previous_fa,
            shared=shared,
            actor=actor.id,
            channel=actor.channel.value,
            operator_id=actor.operator_id,
            reason=reason if isinstance(reason, str) else None,
            receipt_id=receipt_id,
            reference_id=str(item["reference_id"]),
            recorded_at=now,
            effective_at=effective_at,
        )

    @staticmethod
    def _succeeded(
        item: Mapping[str, Any], fa: str, now: datetime, effective_at: datetime, *, shared: bool
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "reference_id": item["reference_id"],
            "timestamp": wire_time(now),
            "fa": fa,
            "status": "succ",
            "effective_from": wire_time(effective_at),
            "shared": shared,
        }
        if effective_at > now:
            answer["status_reason_message"] = (
                "recorded; a payment cycle's freeze is on, so the change counts from "
                f"{wire_time(effective_at)}"
            )
        return answer

    async def _record_conflict(
        self, taken: _AddressTaken, actor: Actor, reference_id: str, now: datetime
    ) -> None:
        async with self._sessions.begin() as session:
            session.add(
                ConflictRow(
                    conflict_id=str(uuid.uuid4()),
                    fa=taken.fa,
                    beneficiary_id=taken.beneficiary_id,
                    holder_id=taken.holder_id,
                    actor=actor.id,
                    reference_id=reference_id,
                    recorded_at=now,
                )
            )

    # --- resolution ---------------------------------------------------------------------------------

    async def resolve(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one ``ResolveRequest`` as things stand now: a ``ResolveResponse``."""
        now = self._clock()
        resolve_type = item["resolve_type"]
        try:
            async with self._sessions() as session:
                if resolve_type.startswith("FA_TO_"):
                    if "fa" not in item:
                        raise _Refused("payments.mapper.resolve.incomplete", f"{resolve_type} needs fa")
                    fa = str(_address(item["fa"]))
                    links = list(
                        await session.scalars(select(LinkRow).where(LinkRow.fa == fa, _open_at(now)))
                    )
                    if not links:
                        raise _Refused("payments.mapper.address.not_linked")
                else:
                    if "beneficiary_id" not in item:
                        raise _Refused(
                            "payments.mapper.resolve.incomplete", f"{resolve_type} needs beneficiary_id"
                        )
                    links = list(
                        await session.scalars(
                            select(LinkRow).where(
                                LinkRow.beneficiary_id == item["beneficiary_id"], _open_at(now)
                            )
                        )
                    )
                    if not links:
                        raise _Refused("payments.mapper.beneficiary.not_linked")
        except _Refused as refusal:
            answer = self.refused(item, refusal.reason_code, refusal.message)
            for member in ("fa", "beneficiary_id"):
                if member in item:
                    answer[member] = item[member]
            return answer
        link = links[0]
        answer = {
            "reference_id": item["reference_id"],
            "timestamp": wire_time(now),
            "status": "succ",
            "fa": link.fa,
        }
        if resolve_type == "FA_TO_BENEFICIARY_ID":
            if len(links) > 1:
                return {
                    **self.refused(
                        item,
                        "payments.mapper.address.shared",
                        f"this address is shared by {len(links)} beneficiaries (allowed household wallet)",
                    ),
                    "fa": link.fa,
                }
            answer["beneficiary_id"] = link.beneficiary_id
        elif resolve_type.startswith("BENEFICIARY_ID_TO_"):
            answer["beneficiary_id"] = link.beneficiary_id
        if resolve_type.endswith("ACCOUNT_PROVIDER_INFO"):
            answer["account_provider_info"] = _provider_info(link)
        elif resolve_type.endswith("ACCOUNT_INFO"):
            answer["account_info"] = _account_info(link)
        if link.shared:
            answer["shared"] = True
        return answer

    async def financial_addresses(
        self, beneficiary_ids: Sequence[str], *, as_of: datetime
    ) -> Mapping[str, FinancialAddress]:
        """Where each beneficiary was to be paid at ``as_of`` (a cycle's cut-off), from the history:
        a change made in the cycle's freeze window counts only after it, so it is not in the answer."""
        found: dict[str, FinancialAddress] = {}
        wanted = list(dict.fromkeys(beneficiary_ids))
        async with self._sessions() as session:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                rows = await session.execute(
                    select(LinkRow.beneficiary_id, LinkRow.fa).where(
                        LinkRow.beneficiary_id.in_(chunk), _open_at(as_of)
                    )
                )
                for beneficiary_id, fa in rows:
                    found[beneficiary_id] = FinancialAddress.parse(fa)
        return found

    # --- administration -----------------------------------------------------------------------------

    async def register_freeze(self, document: Mapping[str, Any], actor: str) -> tuple[dict[str, Any], bool]:
        """Register a cycle's freeze window (``payments-mapper-freeze``); the same window again is
        accepted (``False``: not new), a different window for the same cycle is refused."""
        cut_off = datetime.fromisoformat(document["cut_off"].replace("Z", "+00:00"))
        ends_at = datetime.fromisoformat(document["ends_at"].replace("Z", "+00:00"))
        if ends_at <= cut_off:
            raise DpiError("payments.mapper.freeze.invalid", "a freeze window ends after its cut-off")
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                known = await session.get(FreezeRow, document["cycle_id"])
                if known is not None:
                    if _aware(known.cut_off) == cut_off and _aware(known.ends_at) == ends_at:
                        return _freeze_document(known), False
                    raise DpiError(
                        "payments.mapper.freeze.conflict", "this cycle already has a different freeze window"
                    )
                row = FreezeRow(
                    cycle_id=document["cycle_id"],
                    cut_off=cut_off,
                    ends_at=ends_at,
                    registered_by=actor,
                    registered_at=now,
                )
                session.add(row)
        except IntegrityError:
            raise DpiError(
                "payments.mapper.freeze.conflict", "this cycle's freeze was registered meanwhile"
            ) from None
        return _freeze_document(row), True

    async def freezes(self) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(FreezeRow).order_by(FreezeRow.cut_off.desc()).limit(_MAX_LISTED)
            )
            return [_freeze_document(row) for row in rows]

    async def allow_shared(self, document: Mapping[str, Any], actor: str) -> dict[str, Any]:
        """Allow an address to be linked to several beneficiaries (``payments-mapper-shared-address``)."""
        fa = str(_address_or_error(document["fa"]))
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                known = await session.get(SharedAddressRow, fa)
                if known is None:
                    known = SharedAddressRow(
                        fa=fa, reason=document["reason"], allowed_by=actor, allowed_at=now
                    )
                    session.add(known)
                return _shared_document(known)
        except IntegrityError:
            async with self._sessions() as session:
                known = await session.get(SharedAddressRow, fa)
                assert known is not None
                return _shared_document(known)

    async def conflicts(self) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ConflictRow).order_by(ConflictRow.recorded_at.desc()).limit(_MAX_LISTED)
            )
            return [
                {
                    "fa": row.fa,
                    "beneficiary_id": row.beneficiary_id,
                    "holder_id": row.holder_id,
                    "actor": row.actor,
                    "reference_id": row.reference_id,
                    "recorded_at": wire_time(row.recorded_at),
                }
                for row in rows
            ]

    async def history(self, beneficiary_id: str) -> list[dict[str, Any]]:
        """Every change of a beneficiary's links, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(LinkEventRow)
                .where(LinkEventRow.beneficiary_id == beneficiary_id)
                .order_by(LinkEventRow.recorded_at, LinkEventRow.event_id)
                .limit(_MAX_LISTED)
            )
            events = []
            for row in rows:
                event: dict[str, Any] = {
                    "action": row.action,
                    "actor": row.actor,
                    "channel": row.channel,
                    "reference_id": row.reference_id,
                    "recorded_at": wire_time(row.recorded_at),
                    "effective_at": wire_time(row.effective_at),
                    "shared": row.shared,
                }
                for name in ("fa", "previous_fa", "operator_id", "reason", "receipt_id"):
                    value = getattr(row, name)
                    if value is not None:
                        event[name] = value
                events.append(event)
            return events


def beneficiary_accounts(context: BlockContext) -> BeneficiaryAccounts:
    """The mapper of a mounted app as the disbursement engine sees it (in the same process)."""
    return MapperService(context.sessions, KeyStoreReceiptKeys(context.keys))


class _AddressTaken(Exception):
    def __init__(self, fa: str, beneficiary_id: str, holder_id: str) -> None:
        super().__init__(fa)
        self.fa = fa
        self.beneficiary_id = beneficiary_id
        self.holder_id = holder_id


def _address_or_error(text: str) -> FinancialAddress:
    try:
        return FinancialAddress.parse(text)
    except ValueError:
        raise DpiError("payments.mapper.address.invalid", "a financial address is account@provider") from None


def _provider_info(link: LinkRow) -> dict[str, Any]:
    stored = (link.account_info or {}).get("provider_info")
    if isinstance(stored, dict) and "name" in stored and "code" in stored:
        return dict(stored)
    provider = link.fa.rpartition("@")[2]
    return {"name": provider, "code": provider}


def _account_info(link: LinkRow) -> dict[str, Any]:
    account, _, _ = link.fa.rpartition("@")
    info: dict[str, Any] = {"number": account, "provider_info": _provider_info(link)}
    stored_type = (link.account_info or {}).get("type")
    if isinstance(stored_type, str):
        info["type"] = stored_type
    return info


def _freeze_document(row: FreezeRow) -> dict[str, Any]:
    return {
        "cycle_id": row.cycle_id,
        "cut_off": wire_time(row.cut_off),
        "ends_at": wire_time(row.ends_at),
        "registered_by": row.registered_by,
        "registered_at": wire_time(row.registered_at),
    }


def _shared_document(row: SharedAddressRow) -> dict[str, Any]:
    return {
        "fa": row.fa,
        "reason": row.reason,
        "allowed_by": row.allowed_by,
        "allowed_at": wire_time(row.allowed_at),
    }
