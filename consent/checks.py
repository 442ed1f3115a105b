"""The consent check: may this consumer obtain these fields of this subject from this provider service
for this purpose, now? (the decision the exchange asks for before personal data flows; schemas
``consent-check-request`` and ``consent-check-decision``, anchored in ISO/IEC TS 27560 consent status).

How a decision is reached, in order, so a deny carries the most precise reason:

1. The subject's consents whose agreement names this consumer and this provider and service; none is
   ``consent.not_found``. Of those, the ones for this purpose; none is ``consent.purpose_mismatch``.
2. Each candidate's true state at this moment (:func:`consent.service.effective_state`: expiry and
   coming of age apply without anyone having called the API). An ACTIVE candidate is preferred;
   otherwise the one that describes the current relationship (an open state before a terminal one,
   then the newest) gives the reason: ``consent.pending`` (requested, deferred, or awaiting
   reconfirmation), ``consent.refused``, ``consent.paused``, ``consent.withdrawn``, ``consent.revoked``,
   ``consent.expired``, ``consent.invalidated`` or ``consent.superseded``.
3. Every requested field must be one of the consent's fields or lie inside one (``/address`` covers
   ``/address/city``): otherwise ``consent.fields_not_covered``.
4. When the agreement limits the data range, the requested range must lie inside it (a request without
   a range asks for everything, which a limited agreement does not cover): otherwise
   ``consent.data_range_not_covered``.
5. When the agreement limits the frequency, the access is counted in its fixed period window
   (``period_index = floor(days since 1970-01-01 / period_days)``) by one atomic statement, and only
   an access within ``max_accesses`` permits: otherwise ``consent.frequency_exceeded``. The same
   statement counts only while the consent is still in force (ACTIVE, within its validity and, when a
   guardian gave it, before the minor comes of age), so a withdrawal committed after step 2 read the
   state is never followed by a permit: the check then answers the deny reason of the fresh state.

A permit names the consent, the permitted fields (those requested) and ``valid_until``: the moment the
consent stops permitting by itself (its end of validity, or the end of the guardianship under which it
was given), which also bounds how long any cache may keep the permit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Final

from sqlalchemy import ColumnElement, exists, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from consent.lifecycle import OPEN_STATES, ActorRole, State
from consent.models import AgreementRow, ConsentRow, UsageRow
from consent.service import effective_state, timestamp
from dpi.errors import DpiError, ErrorDetail

__all__ = ["PERMITTED", "ConsentChecker", "Decision", "period_index", "validate_request"]

PERMITTED: Final = "consent.permitted"
REQUEST_SCHEMA: Final = "consent-check-request@1.0.0"
DECISION_SCHEMA: Final = "consent-check-decision@1.0.0"

_STATE_REASONS: Final[Mapping[State, str]] = {
    State.REQUESTED: "consent.pending",
    State.DEFERRED: "consent.pending",
    State.REFUSED: "consent.refused",
    State.PAUSED: "consent.paused",
    State.WITHDRAWN: "consent.withdrawn",
    State.REVOKED: "consent.revoked",
    State.EXPIRED: "consent.expired",
    State.INVALIDATED: "consent.invalidated",
    State.SUPERSEDED: "consent.superseded",
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_DETAILS: Final = 100


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def period_index(now: datetime, period_days: int) -> int:
    """The fixed frequency window ``now`` falls in: whole days since 1970-01-01 UTC, divided by the period."""
    return (_aware(now) - _EPOCH).days // period_days


@dataclass(frozen=True)
class Decision:
    """A ``consent-check-decision`` document and whether a cache may keep it.

    Not cacheable: every decision that counted (or would have counted) an access against a frequency
    limit, since each permit consumes one and the next check may be refused.
    """

    document: dict[str, Any]
    cacheable: bool


def _deny(reason_code: str, consent_id: str | None = None) -> Decision:
    document: dict[str, Any] = {"decision": "deny", "reason_code": reason_code, "permitted_fields": []}
    if consent_id is not None:
        document["consent_id"] = consent_id
    return Decision(document, cacheable=True)


def _covered(pointer: str, granted: frozenset[str]) -> bool:
    if pointer in granted:
        return True
    cut = pointer.rfind("/")
    while cut > 0:
        pointer = pointer[:cut]
        if pointer in granted:
            return True
        cut = pointer.rfind("/")
    return False


# The same rule as consent.service._within (which that module keeps private): kept here until it is public.
def _range_within(requested: Mapping[str, str] | None, allowed: Mapping[str, str] | None) -> bool:
    if allowed is None:
        return True
    if requested is None:
        return False
    # ISO 8601 full-dates compare correctly as strings.
    starts_inside = "from" not in allowed or ("from" in requested and requested["from"] >= allowed["from"])
    ends_inside = "to" not in allowed or ("to" in requested and requested["to"] <= allowed["to"])
    return starts_inside and ends_inside


def _permits_until(row: ConsentRow) -> datetime | None:
    ends: list[datetime] = []
    if row.valid_until is not None:
        ends.append(_aware(row.valid_until))
    if row.granted_role == ActorRole.GUARDIAN.value and row.guardian_until is not None:
        ends.append(datetime.combine(row.guardian_until, time(), tzinfo=UTC))
    return min(ends) if ends else None


def _preference(candidate: tuple[ConsentRow, State]) -> tuple[bool, bool, datetime]:
    row, state = candidate
    return (state is State.ACTIVE, state in OPEN_STATES, _aware(row.created_at))


def _invalid(request: Any) -> DpiError:
    issues = standards.validator(REQUEST_SCHEMA).issues(request)[:_MAX_DETAILS]
    return DpiError(
        "request.invalid",
        details=[ErrorDetail(issue.pointer, issue.reason_code, issue.message) for issue in issues],
    )


def validate_request(request: Mapping[str, Any]) -> None:
    """Raise ``request.invalid`` (with a pointer per problem) unless ``request`` is a valid check request."""
    if not standards.validator(REQUEST_SCHEMA).is_valid(request):
        raise _invalid(request)
    data_range = request.get("data_range")
    if data_range is not None and data_range.get("from", "") > data_range.get("to", "9999-12-31"):
        raise DpiError(
            "request.invalid",
            details=[ErrorDetail("/data_range", "request.invalid", "the range ends before it starts")],
        )


class ConsentChecker:
    """Decides consent checks from the consent tables (the engine behind ``POST /consent/v1/checks``).

    ``clock`` gives the moment of the decision (UTC). Agreement versions never change once published,
    so their documents are kept in memory after the first read.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._agreements: dict[tuple[str, int], dict[str, Any]] = {}

    async def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The ``consent-check-decision`` for ``request`` (a ``consent-check-request``).

        A permit under a frequency limit counts the access, atomically. Invalid input raises
        :class:`dpi.errors.DpiError` ``request.invalid`` with a detail per problem.
        """
        return (await self.decide(request)).document

    async def decide(self, request: Mapping[str, Any]) -> Decision:
        """:meth:`check`, also telling whether the decision may be cached."""
        validate_request(request)
        now = self._clock()
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(ConsentRow).where(
                        ConsentRow.subject == request["subject"],
                        ConsentRow.consumer == request["consumer"],
                    )
                )
            ).all()
            agreements = {(row.agreement_id, row.agreement_version) for row in rows}
            missing = [key for key in agreements if key not in self._agreements]
            if missing:
                await self._load_agreements(session, missing)
        provider = (request["provider"], request["service"])
        serving = [row for row in rows if self._names_provider(row, provider)]
        if not serving:
            return _deny("consent.not_found")
        for_purpose = [row for row in serving if row.purpose == request["purpose"]]
        if not for_purpose:
            return _deny("consent.purpose_mismatch")
        candidates = sorted(
            ((row, effective_state(row, now)[0]) for row in for_purpose), key=_preference, reverse=True
        )
        best, best_state = candidates[0]
        if best_state is not State.ACTIVE:
            return _deny(_STATE_REASONS[best_state], best.consent_id)
        active = [row for row, state in candidates if state is State.ACTIVE]
        first_refusal: Decision | None = None
        for row in active:
            refusal = self._scope_refusal(row, request)
            if refusal is None:
                return await self._permit(row, request, now)
            first_refusal = first_refusal or refusal
        assert first_refusal is not None
        return first_refusal

    def _names_provider(self, row: ConsentRow, provider: tuple[str, str]) -> bool:
        agreement = self._agreements[(row.agreement_id, row.agreement_version)]
        return any((item["provider"], item["service"]) == provider for item in agreement["providers"])

    async def _load_agreements(self, session: AsyncSession, keys: Sequence[tuple[str, int]]) -> None:
        found = await session.scalars(
            select(AgreementRow).where(
                AgreementRow.agreement_id.in_({agreement_id for agreement_id, _ in keys})
            )
        )
        for row in found:
            self._agreements[(row.agreement_id, row.version)] = dict(row.document)
        for key in keys:
            # A consent always points at a published version; guard against a broken row anyway.
            self._agreements.setdefault(key, {"providers": []})

    def _scope_refusal(self, row: ConsentRow, request: Mapping[str, Any]) -> Decision | None:
        granted = frozenset(row.fields)
        if not all(_covered(pointer, granted) for pointer in request["fields"]):
            return _deny("consent.fields_not_covered", row.consent_id)
        agreement = self._agreements[(row.agreement_id, row.agreement_version)]
        if not _range_within(request.get("data_range"), agreement.get("data_range")):
            return _deny("consent.data_range_not_covered", row.consent_id)
        return None

    async def _permit(self, row: ConsentRow, request: Mapping[str, Any], now: datetime) -> Decision:
        agreement = self._agreements[(row.agreement_id, row.agreement_version)]
        frequency = agreement.get("frequency")
        if frequency is not None and not await self._count_access(row.consent_id, frequency, now):
            return await self._uncounted(row.consent_id, now)
        document: dict[str, Any] = {
            "decision": "permit",
            "reason_code": PERMITTED,
            "consent_id": row.consent_id,
            "permitted_fields": list(dict.fromkeys(request["fields"])),
        }
        until = _permits_until(row)
        if until is not None:
            document["valid_until"] = timestamp(until)
        return Decision(document, cacheable=frequency is None)

    async def _uncounted(self, consent_id: str, now: datetime) -> Decision:
        """The deny for an access that was not counted: the consent's fresh state when it no longer
        permits (changed since it was read), else the full window. Never cached: it follows a change or
        a count."""
        async with self._sessions() as session:
            fresh = await session.get(ConsentRow, consent_id)
        if fresh is None:
            reason = "consent.not_found"
        else:
            state = effective_state(fresh, now)[0]
            reason = "consent.frequency_exceeded" if state is State.ACTIVE else _STATE_REASONS[state]
        return Decision(_deny(reason, consent_id).document, cacheable=False)

    async def _count_access(self, consent_id: str, frequency: Mapping[str, int], now: datetime) -> bool:
        """Count one access in the current window unless the window is full or the consent no longer
        permits at ``now``; True when counted.

        One statement, so that N concurrent checks against a limit of K permit exactly K: on
        PostgreSQL the conflicting insert waits for the row lock and re-evaluates the condition on the
        committed count; SQLite runs one writer at a time. The statement opens its own short
        transaction, so it never upgrades an earlier read (which SQLite in WAL mode may refuse). Its
        condition also re-reads the consent, so a change committed since :meth:`decide` read it (a
        withdrawal, say) stops the count, and with it the permit.
        """
        limit = frequency["max_accesses"]
        window = period_index(now, frequency["period_days"])
        in_force = _in_force(consent_id, now)
        async with self._sessions() as session, session.begin():
            source = select(literal(consent_id), literal(window), literal(1)).where(in_force)
            columns = [UsageRow.consent_id, UsageRow.period_index, UsageRow.count]
            conflict: dict[str, Any] = {
                "index_elements": [UsageRow.consent_id, UsageRow.period_index],
                "set_": {"count": UsageRow.count + 1},
                "where": (UsageRow.count < limit) & in_force,
            }
            statement: postgresql.Insert | sqlite.Insert
            if session.get_bind().dialect.name == "postgresql":
                statement = postgresql.insert(UsageRow).from_select(columns, source)
                statement = statement.on_conflict_do_update(**conflict)
            else:
                statement = sqlite.insert(UsageRow).from_select(columns, source)
                statement = statement.on_conflict_do_update(**conflict)
            counted = await session.scalar(statement.returning(UsageRow.count))
        return counted is not None


def _in_force(consent_id: str, now: datetime) -> ColumnElement[bool]:
    """SQL for: the consent is ACTIVE at ``now`` (what :func:`consent.service.effective_state` says)."""
    return exists().where(
        ConsentRow.consent_id == consent_id,
        ConsentRow.state == State.ACTIVE.value,
        (ConsentRow.valid_until.is_(None)) | (ConsentRow.valid_until > now),
        or_(
            ConsentRow.granted_role.is_(None),
            ConsentRow.granted_role != ActorRole.GUARDIAN.value,
            ConsentRow.guardian_until.is_(None),
            ConsentRow.guardian_until > now.date(),
        ),
    )
