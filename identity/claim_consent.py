"""A person's consent to release claims to a client (OpenID Connect Core 1.0 section 3.1.2.4,
https://openid.net/specs/openid-connect-core-1_0.html#Consent), kept per (person, client) with an expiry.

The person is named by their pseudonym in the client's sector, never by UIN. A stored choice answers
the next sign-in when it is in force (not withdrawn, not expired) and the client asks for no claim
beyond those it asked for when the person chose; anything more, or ``prompt=consent``, asks again.

When a :class:`consent.client.ClaimReleaseRecorder` is configured, every choice and every withdrawal is
first recorded as a consent of the consent block, whose signed receipt is kept with the choice; if that
fails nothing is stored and no claim is released. Without a recorder the choice is stored alone and no
receipt exists.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consent.client import ClaimRelease, ClaimReleaseRecorder
from identity.clients import RegisteredClient
from identity.oidc_models import ClaimConsentRow
from identity.pages import LANGUAGES, strings

__all__ = ["CONSENT_TTL", "ClaimChoice", "ClaimConsents", "notice_text"]

CONSENT_TTL: Final = timedelta(days=180)
# Read and written with Core statements: every sign-in looks the choice up.
_CHOICES: Final = cast(Table, ClaimConsentRow.__table__)
# Built once, run with bound parameters: building a statement cost more CPU than running it.
_CHOICE: Final = select(
    _CHOICES.c.requested,
    _CHOICES.c.granted,
    _CHOICES.c.expires_at,
    _CHOICES.c.withdrawn_at,
    _CHOICES.c.consent_id,
    _CHOICES.c.receipt,
).where(_CHOICES.c.client_id == bindparam("client_"), _CHOICES.c.subject == bindparam("subject_"))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ClaimChoice:
    """A stored choice: the claims the client asked for and those the person released."""

    requested: frozenset[str]
    granted: frozenset[str]
    expires_at: datetime
    consent_id: str | None = None
    receipt: str | None = None

    def covers(self, requested: Collection[str]) -> bool:
        """Whether this choice answers a request for ``requested`` without asking the person again."""
        return set(requested) <= self.requested


def notice_text(language: str, client_name: str, claims: Collection[str], days: int) -> str:
    """The notice of a release in ``language``: who receives which claims, for what, for how long."""
    text = strings(language)
    labels = [text[f"claim_{claim}"] for claim in sorted(claims) if claim != "sub"]
    return text["consent_notice"].format(
        client=client_name,
        claims=text["list_separator"].join(labels) if labels else text["claims_none"],
        days=days,
    )


def _contact(client: RegisteredClient) -> str:
    parts = urlsplit(str(client.metadata["redirect_uris"][0]))
    return f"{parts.scheme}://{parts.netloc}"


class ClaimConsents:
    """The stored choices of the OpenID provider, and their records in the consent block."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        recorder: ClaimReleaseRecorder | None = None,
        ttl: timedelta = CONSENT_TTL,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.sessions = sessions
        self.recorder = recorder
        self.ttl = ttl
        self.clock = clock

    async def current(
        self, subject: str, client_id: str, session: AsyncSession | None = None
    ) -> ClaimChoice | None:
        """The person's choice for the client while it is in force, else None; read in ``session`` when
        the caller has one open (one connection for a whole request)."""
        parameters = {"client_": client_id, "subject_": subject}
        if session is None:
            async with self.sessions() as own:
                row = (await own.execute(_CHOICE, parameters)).first()
        else:
            row = (await session.execute(_CHOICE, parameters)).first()
        if row is None or row.withdrawn_at is not None or _aware(row.expires_at) <= self.clock():
            return None
        return ClaimChoice(
            frozenset(row.requested),
            frozenset(row.granted),
            _aware(row.expires_at),
            row.consent_id,
            row.receipt,
        )

    async def choose(
        self,
        subject: str,
        client: RegisteredClient,
        requested: Collection[str],
        granted: Collection[str],
        language: str,
        transaction: AsyncSession | None = None,
    ) -> ClaimChoice:
        """Store the person's choice (``granted`` within ``requested``), its receipt recorded first; the
        choice is written in ``transaction`` when given (the recorder is asked before anything is
        written to it)."""
        released = frozenset(granted) & frozenset(requested)
        now = self.clock()
        days = max(1, self.ttl.days)
        consent_id, receipt = None, None
        if self.recorder is not None:
            name = str(client.metadata["client_name"])
            recorded = await self.recorder.record_release(
                ClaimRelease(
                    subject=subject,
                    consumer=client.sector,
                    client_id=client.client_id,
                    client_name=name,
                    contact=_contact(client),
                    claims=tuple(sorted({"sub", *released})),
                    notices=_notices(name, {"sub", *released}, days),
                    language=language,
                    validity_days=days,
                )
            )
            consent_id, receipt = recorded.consent_id, recorded.receipt
        expires_at = now + timedelta(days=days)
        choice = {
            "requested": sorted(requested),
            "granted": sorted(released),
            "given_at": now,
            "expires_at": expires_at,
            "withdrawn_at": None,
            "consent_id": consent_id,
            "receipt": receipt,
            "withdrawal_receipt": None,
        }
        if transaction is not None:
            await _store(transaction, client.client_id, subject, choice)
        else:
            async with self.sessions() as session, session.begin():
                await _store(session, client.client_id, subject, choice)
        return ClaimChoice(frozenset(requested), released, _aware(expires_at), consent_id, receipt)

    async def withdraw(self, subject: str, client_id: str) -> str | None:
        """Withdraw the person's choice for the client: from now on only ``sub`` is released to it, and
        the next sign-in asks again. Returns the withdrawal's signed receipt (None without a recorder, or
        when no choice was in force)."""
        choice = await self.current(subject, client_id)
        if choice is None:
            return None
        receipt = None
        if self.recorder is not None and choice.consent_id is not None:
            receipt = (await self.recorder.withdraw_release(choice.consent_id, subject)).receipt
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(ClaimConsentRow)
                .where(ClaimConsentRow.client_id == client_id, ClaimConsentRow.subject == subject)
                .values(withdrawn_at=self.clock(), withdrawal_receipt=receipt)
            )
        return receipt


async def _store(session: AsyncSession, client_id: str, subject: str, choice: Mapping[str, Any]) -> None:
    statement: postgresql.Insert | sqlite.Insert
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(_CHOICES)
    else:
        statement = sqlite.insert(_CHOICES)
    # One statement replaces the earlier choice, if any (the person chose again).
    await session.execute(
        statement.values(client_id=client_id, subject=subject, **choice).on_conflict_do_update(
            index_elements=[_CHOICES.c.client_id, _CHOICES.c.subject], set_=dict(choice)
        )
    )


def _notices(client_name: str, claims: Collection[str], days: int) -> Mapping[str, str]:
    return {language: notice_text(language, client_name, claims, days) for language in LANGUAGES}
