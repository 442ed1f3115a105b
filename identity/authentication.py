"""One-time codes by SMS for people with a basic phone: a 6-digit code sent to the phone of the person a
UIN or virtual ID names, verified once (an out-of-band authenticator with throttling, NIST SP 800-63B
sections 5.1.3 and 5.2.2, https://pages.nist.gov/800-63-3/sp800-63b.html).

No HTTP here: the OpenID provider's sign-in pages call :class:`OtpAuthenticator`. Every refusal is a
:class:`dpi.errors.DpiError` with a reason code from ``standards``.

Rules written down (and tested in ``tests/identity/test_authentication.py``):

- **Codes.** 6 digits from :mod:`secrets`, valid 5 minutes, single use. Only an HMAC-SHA256 of
  (transaction id, code) under the authenticator's secret is stored; the comparison is constant-time.
  A transaction verifies only for the client that asked for it.
- **Failures.** Failures count per transaction and per person; the 5th failure within 15 minutes locks
  OTP for that person for 15 minutes (``otp.locked``). While locked, every verification answers
  ``otp.locked`` whether the code is right or wrong, so a guess learns nothing, and no code is sent.
- **Rate limits.** At most 3 sends per person (or per unknown identifier) per 15 minutes and 120 per
  client per minute, over sliding windows counted in the database, so the limits hold across processes:
  each send locks its throttle rows before it counts the recent transactions (``otp.rate_limited``).
- **No enumeration.** An identifier that names nobody, a deactivated or deceased person and a person with
  no phone get the very answer a real send gets: a transaction id (that can never verify), an expiry and a
  destination hint (two digits derived from the identifier with the secret, stable across requests). Rate
  limits and failure locks apply to those identifiers too, and those sends wait about as long as real
  deliveries take. Otherwise anyone could test which UINs exist, or who has died. Two signals remain, by
  choice: ``auth.type_locked`` (the holder locked OTP and should be told why no code comes) and
  ``otp.delivery_failed`` (only a real delivery can fail, and the person must know to ask again).
  Where the caller is trusted (an operator with the person present),
  ``OtpPolicy(conceal_refusals=False)`` answers those cases with their own reason codes instead: the
  register's ``identity.not_found``, ``identity.deactivated``, ``identity.deceased``, and
  ``otp.no_destination``.
- **Delivery.** Through the :class:`identity.senders.OtpSender`, in the person's preferred language (en,
  fr, ar). A transaction becomes usable only once the sender accepted the message, so a failed delivery
  leaves no usable transaction.
- **Holder locks.** The holder may lock and unlock each authentication type (``otp`` for now); a locked
  type neither sends nor verifies (``auth.type_locked``).

Logs name transactions and clients, never a code, phone number, UIN or VID.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi.errors import DpiError, ErrorDetail
from identity.otp_models import AuthTypeLockRow, OtpGuardRow, OtpThrottleRow, OtpTransactionRow
from identity.senders import OtpSender

__all__ = [
    "AUTH_TYPES",
    "CHANNEL",
    "OTP",
    "OtpAuthenticator",
    "OtpPolicy",
    "PersonLookup",
    "otp_text",
]

_log = logging.getLogger("identity.authentication")
# Sending and verifying run Core statements on the tables: the ORM's per-statement work (entities,
# identity map, unit of work) cost several times the statement itself on the sign-in path.
_TRANSACTIONS: Final = cast(Table, OtpTransactionRow.__table__)
_THROTTLES: Final = cast(Table, OtpThrottleRow.__table__)
_GUARDS: Final = cast(Table, OtpGuardRow.__table__)
_TYPE_LOCKS: Final = cast(Table, AuthTypeLockRow.__table__)


def _recent(sent_by: ColumnElement[str]) -> Select[int]:
    # Counting stops at the limit: a client allowed many sends a minute costs no more than it must.
    return select(func.count()).select_from(
        select(_TRANSACTIONS.c.transaction_id)
        .where(sent_by == bindparam("by_"), _TRANSACTIONS.c.created_at > bindparam("since_"))
        .limit(bindparam("limit_", type_=Integer))
        .subquery()
    )


def _touch(dialect: Any) -> Any:
    statement = dialect.insert(_THROTTLES).values(key=bindparam("key_"), touched_at=bindparam("now_"))
    return statement.on_conflict_do_update(
        index_elements=[_THROTTLES.c.key], set_={"touched_at": statement.excluded.touched_at}
    )


def _guard_upsert(dialect: Any) -> Any:
    statement = dialect.insert(_GUARDS).values(subject_key=bindparam("subject_"), failures=0)
    return statement.on_conflict_do_update(
        index_elements=[_GUARDS.c.subject_key], set_={"failures": _GUARDS.c.failures}
    ).returning(_GUARDS.c.failures, _GUARDS.c.last_failure_at, _GUARDS.c.locked_until)


# The statements are built once, with bound parameters: building a statement's expression tree cost
# more than running it.
_RECENT_BY_SUBJECT: Final = _recent(_TRANSACTIONS.c.subject_key)
_RECENT_BY_CLIENT: Final = _recent(_TRANSACTIONS.c.client_id)
_TOUCH: Final = {"postgresql": _touch(postgresql), "sqlite": _touch(sqlite)}
_GUARD: Final = {"postgresql": _guard_upsert(postgresql), "sqlite": _guard_upsert(sqlite)}
_TYPE_LOCKED: Final = select(_TYPE_LOCKS.c.uin).where(
    _TYPE_LOCKS.c.uin == bindparam("uin_"), _TYPE_LOCKS.c.auth_type == bindparam("type_")
)
_GUARD_LOCK: Final = select(_GUARDS.c.locked_until).where(_GUARDS.c.subject_key == bindparam("subject_"))
_NEW_TRANSACTION: Final = insert(_TRANSACTIONS)
_SET_STATE: Final = (
    update(_TRANSACTIONS)
    .where(_TRANSACTIONS.c.transaction_id == bindparam("id_"), _TRANSACTIONS.c.state == bindparam("from_"))
    .values(state=bindparam("to_"))
)
_ATTEMPT: Final = (
    update(_TRANSACTIONS)
    .where(_TRANSACTIONS.c.transaction_id == bindparam("id_"))
    .values(attempts=_TRANSACTIONS.c.attempts + 1)
    .returning(
        _TRANSACTIONS.c.subject_key,
        _TRANSACTIONS.c.client_id,
        _TRANSACTIONS.c.uin,
        _TRANSACTIONS.c.code_hash,
        _TRANSACTIONS.c.state,
        _TRANSACTIONS.c.failures,
        _TRANSACTIONS.c.expires_at,
    )
)
_USE: Final = (
    update(_TRANSACTIONS)
    .where(_TRANSACTIONS.c.transaction_id == bindparam("id_"))
    .values(state=bindparam("state_"), used_at=bindparam("now_"))
)
_GUARD_CLEAR: Final = (
    update(_GUARDS)
    .where(_GUARDS.c.subject_key == bindparam("subject_"))
    .values(failures=0, last_failure_at=None)
)
_FAILED_ATTEMPT: Final = (
    update(_TRANSACTIONS)
    .where(_TRANSACTIONS.c.transaction_id == bindparam("id_"))
    .values(failures=_TRANSACTIONS.c.failures + 1)
)
_GUARD_FAILURE: Final = (
    update(_GUARDS)
    .where(_GUARDS.c.subject_key == bindparam("subject_"))
    .values(
        failures=bindparam("failures_"),
        last_failure_at=bindparam("now_"),
        locked_until=bindparam("locked_until_"),
    )
)

OTP: Final = "otp"
AUTH_TYPES: Final = frozenset({OTP})
CHANNEL: Final = "sms"

_NOT_FOUND: Final = "identity.not_found"
_ACTIVE: Final = "active"
_INACTIVE: Final[Mapping[str, str]] = {"deactivated": "identity.deactivated", "deceased": "identity.deceased"}
_MAX_IDENTIFIER: Final = 64
_MAX_CLIENT_ID: Final = 255
_TRANSACTION_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MIN_SECRET: Final = 32

_PENDING: Final = "pending"
_SENT: Final = "sent"
_USED: Final = "used"
_FAILED: Final = "failed"

_MESSAGES: Final[Mapping[str, str]] = {
    "en": "Your code is {code}. It expires in {minutes} minutes. Never share it.",
    "fr": "Votre code est {code}. Il expire dans {minutes} minutes. Ne le communiquez jamais.",
    "ar": "رمزك هو {code}. تنتهي صلاحيته خلال {minutes} دقائق. لا تشاركه مع أي شخص أبدًا.",
}


class PersonLookup(Protocol):
    """What authentication needs of :class:`identity.service.PersonRegister`; each reads in the session
    it is given (the authenticator's own, on the same database), or in one of its own."""

    async def resolve(self, identifier: str, session: AsyncSession | None = None) -> str: ...

    async def contact(self, uin: str, session: AsyncSession | None = None) -> tuple[str | None, str]: ...

    async def status(self, uin: str, session: AsyncSession | None = None) -> str: ...


@dataclass(frozen=True)
class OtpPolicy:
    """How codes are made and how hard the authenticator pushes back; the defaults are the contract's."""

    digits: int = 6
    ttl: timedelta = timedelta(minutes=5)
    max_failures: int = 5
    lock: timedelta = timedelta(minutes=15)
    sends_per_identifier: int = 3
    identifier_window: timedelta = timedelta(minutes=15)
    sends_per_client: int = 120
    client_window: timedelta = timedelta(minutes=1)
    conceal_refusals: bool = True

    def __post_init__(self) -> None:
        if not 4 <= self.digits <= 10:
            raise ValueError("a code has from 4 to 10 digits")
        if min(self.max_failures, self.sends_per_identifier, self.sends_per_client) < 1:
            raise ValueError("failure and send limits are at least 1")
        if min(self.ttl, self.lock, self.identifier_window, self.client_window) <= timedelta(0):
            raise ValueError("durations are positive")


def otp_text(code: str, ttl: timedelta, language: str) -> str:
    """The message that carries ``code``, in ``language`` (en, fr, ar; English for any other)."""
    minutes = max(1, math.ceil(ttl.total_seconds() / 60))
    return _MESSAGES.get(language, _MESSAGES["en"]).format(code=code, minutes=minutes)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _timestamp(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Target:
    """Whom a send is for. ``phone`` is None when no code will really leave (``refusal`` says why)."""

    subject: str
    uin: str | None = None
    phone: str | None = None
    language: str = "en"
    refusal: DpiError | None = None


class OtpAuthenticator:
    """Sends and verifies one-time codes for the persons of a register (see the module's rules).

    ``secret`` (at least 32 bytes) keys the code hashes and the throttle keys: keep it stable across the
    processes that share the database, or no transaction verifies in another process. ``clock`` replaces
    the time (tests).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        register: PersonLookup,
        sender: OtpSender,
        *,
        secret: bytes,
        clock: Callable[[], datetime] = _utcnow,
        policy: OtpPolicy = OtpPolicy(),
    ) -> None:
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"the OTP secret must be at least {_MIN_SECRET} bytes")
        self.sessions = sessions
        self.register = register
        self.sender = sender
        self.policy = policy
        self._secret = secret
        self._clock = clock
        # Seconds a real delivery takes (moving average): sends that deliver nothing wait about as long.
        self._delivery_seconds = 0.0

    # --- keys ---------------------------------------------------------------------------------------------

    def _keyed(self, label: str, *parts: str) -> str:
        message = b"\x00".join([label.encode(), *(part.encode("utf-8") for part in parts)])
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _subject_key(self, subject: str) -> str:
        return self._keyed("dpi-otp-subject", subject)

    def _code_hash(self, transaction_id: str, code: str) -> str:
        return self._keyed("dpi-otp-code", transaction_id, code)

    def _new_code(self) -> str:
        return f"{secrets.randbelow(10**self.policy.digits):0{self.policy.digits}d}"

    def _hint(self, target: _Target) -> str:
        # Only the last two digits, never the country code or the length: an identifier that can receive
        # nothing gets two digits derived from it, which must look no different.
        if target.phone is not None:
            digits = target.phone[-2:]
        else:
            digits = f"{int(self._keyed('dpi-otp-hint', target.subject)[:8], 16) % 100:02d}"
        return "•" * 6 + digits

    # --- sending ------------------------------------------------------------------------------------------

    async def _target_in(self, session: AsyncSession, identifier: str) -> _Target:
        try:
            uin = await self.register.resolve(identifier, session)
        except DpiError as error:
            if error.reason_code != _NOT_FOUND:
                raise
            return _Target(identifier, refusal=error)
        try:
            phone, language = await self.register.contact(uin, session)
        except DpiError as error:
            # contact() refuses a deactivated or deceased person with that very reason.
            if error.reason_code not in _INACTIVE.values():
                raise
            return _Target(uin, uin, refusal=error)
        if phone is None:
            return _Target(uin, uin, language=language, refusal=DpiError("otp.no_destination"))
        return _Target(uin, uin, phone, language)

    async def _admit(
        self,
        session: AsyncSession,
        key: str,
        recent: Select[int],
        sent_by: str,
        limit: int,
        window: timedelta,
        now: datetime,
    ) -> bool:
        """True when fewer than ``limit`` transactions sent by ``sent_by`` (a subject key or a client id,
        as ``recent`` counts them) were created within ``window``.

        The throttle row is written first: that takes its lock (PostgreSQL) or the write lock (SQLite)
        before counting, so two sends in any processes count one after the other and never both squeeze
        into the last place.
        """
        await session.execute(_TOUCH[_dialect(session)], {"key_": key, "now_": now})
        count = await session.scalar(recent, {"by_": sent_by, "since_": now - window, "limit_": limit})
        return (count or 0) < limit

    async def _type_locked(self, session: AsyncSession, uin: str, auth_type: str = OTP) -> bool:
        row = await session.execute(_TYPE_LOCKED, {"uin_": uin, "type_": auth_type})
        return row.first() is not None

    async def send(self, identifier: str, *, client_id: str) -> dict[str, Any]:
        """Send a code to the person ``identifier`` (a UIN or an active VID) names, for ``client_id``.

        Returns ``{"transaction_id", "expires_at", "channel": "sms", "destination"}`` (the destination is
        a hint: six dots and the phone's last two digits). Refusals: ``otp.rate_limited``, ``otp.locked``,
        ``auth.type_locked``, ``otp.delivery_failed``; ``request.invalid_parameter`` for an identifier or a
        client id that no register could hold. Unknown identifiers, inactive persons and persons without a
        phone get a transaction that never verifies (see the module's rules).
        """
        if not identifier or len(identifier) > _MAX_IDENTIFIER or not identifier.isascii():
            raise DpiError(
                "request.invalid_parameter",
                details=[ErrorDetail("/identifier", "request.invalid_parameter", "a UIN or a virtual ID")],
            )
        if not client_id or len(client_id) > _MAX_CLIENT_ID:
            raise DpiError(
                "request.invalid_parameter",
                details=[ErrorDetail("/client_id", "request.invalid_parameter", "a registered client id")],
            )
        async with self.sessions() as session, session.begin():
            # The person is looked up on the connection that then checks and records the send.
            target = await self._target_in(session, identifier)
            if target.refusal is not None and not self.policy.conceal_refusals:
                raise target.refusal
            subject_key = self._subject_key(target.subject)
            now = self._clock()
            transaction_id = str(uuid.uuid4())
            code = self._new_code()
            expires_at = now + self.policy.ttl
            client_key = "client:" + hashlib.sha256(client_id.encode("utf-8")).hexdigest()
            # The person's throttle row first, the client's last: the client's row is shared by every sign-in
            # through that client, so it is held only for its own count and the insert.
            limits = (
                (
                    "subject:" + subject_key,
                    _RECENT_BY_SUBJECT,
                    subject_key,
                    self.policy.sends_per_identifier,
                    self.policy.identifier_window,
                ),
                (
                    client_key,
                    _RECENT_BY_CLIENT,
                    client_id,
                    self.policy.sends_per_client,
                    self.policy.client_window,
                ),
            )
            guard = (await session.execute(_GUARD_LOCK, {"subject_": subject_key})).first()
            if guard is not None and guard.locked_until is not None and _aware(guard.locked_until) > now:
                _log.info("otp send refused", extra={"event": "otp_locked", "client_id": client_id})
                raise DpiError("otp.locked")
            if target.uin is not None and await self._type_locked(session, target.uin):
                _log.info("otp send refused", extra={"event": "otp_type_locked", "client_id": client_id})
                raise DpiError("auth.type_locked")
            for key, recent, sent_by, limit, window in limits:
                if not await self._admit(session, key, recent, sent_by, limit, window, now):
                    _log.info("otp send refused", extra={"event": "otp_rate_limited", "client_id": client_id})
                    raise DpiError("otp.rate_limited")
            await session.execute(
                _NEW_TRANSACTION,
                {
                    "transaction_id": transaction_id,
                    "subject_key": subject_key,
                    "client_id": client_id,
                    # A transaction without a UIN can never verify, whatever code is tried.
                    "uin": target.uin if target.refusal is None else None,
                    "code_hash": self._code_hash(transaction_id, code),
                    "state": _PENDING,
                    "failures": 0,
                    "attempts": 0,
                    "created_at": now,
                    "expires_at": expires_at,
                    "used_at": None,
                },
            )
        await self._deliver(transaction_id, code, target, client_id)
        return {
            "transaction_id": transaction_id,
            "expires_at": _timestamp(expires_at),
            "channel": CHANNEL,
            "destination": self._hint(target),
        }

    async def _deliver(self, transaction_id: str, code: str, target: _Target, client_id: str) -> None:
        log_fields: dict[str, Any] = {"transaction_id": transaction_id, "client_id": client_id}
        if target.phone is None:
            # Nothing leaves; wait about as long as a real delivery so that timing tells nothing either.
            await asyncio.sleep(self._delivery_seconds * random.uniform(0.8, 1.2))
            await self._set_state(transaction_id, _SENT)
            reason = target.refusal.reason_code if target.refusal is not None else None
            _log.info("otp not sent", extra={"event": "otp_not_sent", "reason": reason, **log_fields})
            return
        started = time.monotonic()
        try:
            await self.sender.send(
                target.phone, otp_text(code, self.policy.ttl, target.language), target.language
            )
        except Exception as error:
            await self._set_state(transaction_id, _FAILED)
            _log.warning(
                "otp delivery failed",
                extra={"event": "otp_delivery_failed", "error": type(error).__name__, **log_fields},
            )
            raise DpiError("otp.delivery_failed") from None
        self._delivery_seconds = 0.8 * self._delivery_seconds + 0.2 * (time.monotonic() - started)
        await self._set_state(transaction_id, _SENT)
        _log.info("otp sent", extra={"event": "otp_sent", **log_fields})

    async def _set_state(self, transaction_id: str, state: str) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(_SET_STATE, {"id_": transaction_id, "from_": _PENDING, "to_": state})

    # --- verifying ----------------------------------------------------------------------------------------

    async def verify(self, transaction_id: str, code: str, *, client_id: str) -> str:
        """The UIN of the person whose code this is; the transaction is then used and never verifies again.

        Refusals, all ``DpiError``: ``otp.invalid`` (wrong code, unknown or used transaction, another
        client's transaction, an inactive person), ``otp.expired``, ``otp.locked`` (too many failures for
        this person, whatever the code), ``auth.type_locked`` (the holder locked OTP).
        """
        now = self._clock()
        if not _TRANSACTION_ID.fullmatch(transaction_id):
            raise DpiError("otp.invalid")
        async with self.sessions() as session, session.begin():
            outcome, uin = await self._check(session, transaction_id, code, client_id, now)
            if outcome is None and uin is not None and await self.register.status(uin, session) != _ACTIVE:
                outcome = "otp.invalid"
        log_fields = {"transaction_id": transaction_id, "client_id": client_id}
        if outcome is not None or uin is None:
            _log.info("otp refused", extra={"event": "otp_refused", "reason": outcome, **log_fields})
            raise DpiError(outcome or "otp.invalid")
        _log.info("otp verified", extra={"event": "otp_verified", **log_fields})
        return uin

    async def _check(
        self, session: AsyncSession, transaction_id: str, code: str, client_id: str, now: datetime
    ) -> tuple[str | None, str | None]:
        """(refusal reason, None) or (None, UIN), with the outcome written in ``session``.

        The first statement writes the transaction row, which takes its lock (PostgreSQL) or the write
        lock (SQLite): a second verification of the same transaction waits, then sees it used.
        """
        row = (await session.execute(_ATTEMPT, {"id_": transaction_id})).one_or_none()
        if row is None:
            return "otp.invalid", None
        guard = await self._guard(session, row.subject_key)
        if guard.locked_until is not None and _aware(guard.locked_until) > now:
            return "otp.locked", None
        if row.uin is not None and await self._type_locked(session, row.uin):
            return "auth.type_locked", None
        if row.state != _SENT or row.failures >= self.policy.max_failures:
            return "otp.invalid", None
        if _aware(row.expires_at) <= now:
            return "otp.expired", None
        well_formed = len(code) == self.policy.digits and code.isascii() and code.isdigit()
        matches = hmac.compare_digest(
            self._code_hash(transaction_id, code if well_formed else ""), row.code_hash
        )
        if well_formed and matches and row.client_id == client_id and row.uin is not None:
            await session.execute(_USE, {"id_": transaction_id, "state_": _USED, "now_": now})
            await session.execute(_GUARD_CLEAR, {"subject_": row.subject_key})
            return None, row.uin
        await session.execute(_FAILED_ATTEMPT, {"id_": transaction_id})
        stale = guard.last_failure_at is None or _aware(guard.last_failure_at) <= now - self.policy.lock
        failures = 1 if stale else guard.failures + 1
        locked = failures >= self.policy.max_failures
        await session.execute(
            _GUARD_FAILURE,
            {
                "subject_": row.subject_key,
                "failures_": 0 if locked else failures,
                "now_": now,
                "locked_until_": now + self.policy.lock if locked else guard.locked_until,
            },
        )
        return ("otp.locked" if locked else "otp.invalid"), None

    async def _guard(
        self, session: AsyncSession, subject_key: str
    ) -> Row[int, datetime | None, datetime | None]:
        """The subject's guard row, created if missing and locked for the rest of the transaction."""
        return (await session.execute(_GUARD[_dialect(session)], {"subject_": subject_key})).one()

    # --- holder locks -------------------------------------------------------------------------------------

    def _known_type(self, auth_type: str) -> None:
        if auth_type not in AUTH_TYPES:
            raise DpiError(
                "request.invalid_parameter",
                details=[ErrorDetail("/auth_type", "request.invalid_parameter", "one of: otp")],
            )

    async def lock_type(self, uin: str, auth_type: str) -> None:
        """Lock ``auth_type`` for the holder ``uin``: no code is sent or verified until they unlock it.

        Idempotent. The register's ``identity.not_found`` for a UIN it does not hold.
        """
        self._known_type(auth_type)
        await self.register.status(uin)
        async with self.sessions() as session, session.begin():
            values = {"uin": uin, "auth_type": auth_type, "locked_at": self._clock()}
            statement: postgresql.Insert | sqlite.Insert
            if session.get_bind().dialect.name == "postgresql":
                statement = postgresql.insert(AuthTypeLockRow).values(values)
            else:
                statement = sqlite.insert(AuthTypeLockRow).values(values)
            await session.execute(statement.on_conflict_do_nothing())

    async def unlock_type(self, uin: str, auth_type: str) -> None:
        """Unlock ``auth_type`` for the holder ``uin``; idempotent."""
        self._known_type(auth_type)
        await self.register.status(uin)
        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(AuthTypeLockRow).where(
                    AuthTypeLockRow.uin == uin, AuthTypeLockRow.auth_type == auth_type
                )
            )

    async def locked_types(self, uin: str) -> list[str]:
        """The authentication types the holder ``uin`` has locked, sorted."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(AuthTypeLockRow.auth_type)
                .where(AuthTypeLockRow.uin == uin)
                .order_by(AuthTypeLockRow.auth_type)
            )
            return list(rows.all())

    # --- housekeeping -------------------------------------------------------------------------------------

    async def purge(self) -> int:
        """Delete what no rule needs any more: transactions past their expiry and every rate-limit window,
        idle throttle rows, and guards with no lock or recent failure. Returns the transactions deleted.

        Run it now and then (hourly is plenty) from any one process or from all of them.
        """
        now = self._clock()
        horizon = now - max(self.policy.ttl, self.policy.identifier_window, self.policy.client_window)
        async with self.sessions() as session, session.begin():
            deleted = await session.scalars(
                delete(OtpTransactionRow)
                .where(OtpTransactionRow.created_at < horizon, OtpTransactionRow.expires_at < now)
                .returning(OtpTransactionRow.transaction_id)
            )
            count = len(deleted.all())
            await session.execute(delete(OtpThrottleRow).where(OtpThrottleRow.touched_at < horizon))
            await session.execute(
                delete(OtpGuardRow).where(
                    (OtpGuardRow.locked_until.is_(None)) | (OtpGuardRow.locked_until < now),
                    (OtpGuardRow.last_failure_at.is_(None))
                    | (OtpGuardRow.last_failure_at < now - self.policy.lock),
                )
            )
        return count


def _dialect(session: AsyncSession) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"
