"""Consent notifications: webhooks of consumers and providers, and signed notices delivered at least once.

The notice is a compact JWS (RFC 7515, https://www.rfc-editor.org/rfc/rfc7515) over the canonical JSON of a
``consent-notification`` document, typed ``dpi-consent-notification+jws`` and POSTed as
``application/jose``; the request also carries an HTTP message signature (RFC 9421,
https://www.rfc-editor.org/rfc/rfc9421) with its Content-Digest (RFC 9530).

How a notice travels:

1. :class:`consent.service.ConsentService` enqueues it on the kernel outbox (topic
   ``consent.notification``) in the transaction of the change it announces: a change that is rolled back
   never announces anything.
2. :func:`dispatch_once` claims those outbox messages and, in the transaction that marks them delivered,
   writes one delivery row per webhook that should hear of it: the webhooks of the agreement's consumer and
   of each of its providers that subscribed to the event. The pair (notification, webhook) is unique, so a
   notice is fanned out once however many dispatchers run. A consumer or provider with no webhook
   subscribed to the event gets an ``unroutable`` delivery row instead (no webhook, no URL, never sent), so
   operators see every notice that reached nobody.
3. :func:`dispatch_once` then sends the due deliveries. A delivery is leased before it is sent and its
   outcome recorded after, so a process that dies in between sends it again once the lease runs out.
   Delivery is therefore **at least once**: receivers must deduplicate on ``notification_id`` (also sent as
   the ``Idempotency-Key`` and ``X-Correlation-Id`` headers).
4. The receiver acknowledges by answering 2xx with a ``consent-notification-ack`` document naming that
   notification and itself as receiver. The acknowledgement is stored with the delivery: it is the
   consumer's receipt of the withdrawal or revocation. Any other answer (another status, a timeout, a body
   that is not that acknowledgement) is a failed attempt, retried with exponential backoff and jitter
   (:class:`RetryPolicy`) until the last attempt, after which the delivery is ``dead``. Every delivery,
   pending, delivered, dead or unroutable, stays listed for operators (:func:`deliveries`).

Where notices may go (server-side request forgery): a webhook URL must be ``https`` and its host must be a
public internet address, never one that is, or resolves to, a loopback, link-local, private, shared,
multicast, reserved or unspecified address. The host is checked when the webhook is registered (a name
that does not resolve then is accepted) and resolved again before every attempt, so a name later pointed
at an internal address is not followed; the HTTP client never follows redirects. Every network failure
is recorded with the same text, so the delivery list cannot be used to probe which ports answer.
``allow_private_networks=True`` (development, demonstrations, tests on one machine) lifts these rules and
allows ``http``. A name that resolves to a public address when checked and to an internal one a moment
later, when the HTTP client connects, is not caught: deployments that must rule that out too send
webhooks through an egress proxy that applies the same rules.

A notice names the consent, the agreement, the consumer and providers; never the subject. A webhook
registered after a notice was fanned out does not receive it; a webhook deleted afterwards still receives
the notices already owed to it (and they end ``dead`` if nobody answers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import httpx
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from consent.notification_models import DeliveryRow, WebhookRow
from consent.service import NOTIFICATION_TOPIC, timestamp
from dpi import egress, outbox
from dpi.errors import DpiError, ErrorDetail
from dpi.keys import SigningKey
from dpi.signing import sign_compact, sign_request

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "JOSE_MEDIA_TYPE",
    "NOTIFICATION_JWS_TYPE",
    "DeliveryStatus",
    "DispatchReport",
    "RetryPolicy",
    "delete_webhook",
    "deliveries",
    "dispatch_once",
    "list_webhooks",
    "register_webhook",
]

_log = logging.getLogger("consent.notifications")

NOTIFICATION_JWS_TYPE: Final = "dpi-consent-notification+jws"
JOSE_MEDIA_TYPE: Final = "application/jose"

_NOTIFICATION_SCHEMA: Final = "consent-notification@1.0.0"
_ACK_SCHEMA: Final = "consent-notification-ack@1.0.0"
_WEBHOOK_INPUT_SCHEMA: Final = "consent-webhook-input@1.0.0"
# Only the members the notification schema defines ever leave the system, whatever the outbox holds.
_NOTIFICATION_MEMBERS: Final = frozenset(standards.load_schema(_NOTIFICATION_SCHEMA)["properties"])

# The fan-out claim only needs to outlive one transaction.
_FAN_OUT_LEASE: Final = timedelta(seconds=60)
_UNREADABLE_NOTICE_RETRY: Final = timedelta(hours=1)
# Each send is bounded by _SEND_TIMEOUT in total; the lease must outlast a whole chunk of them, or a second
# dispatcher would send the same notice while the first is still waiting for the answer.
_SEND_TIMEOUT: Final = 15.0
_SEND_LEASE: Final = timedelta(minutes=2)
_CONCURRENCY: Final = 20
_MAX_ACK_BYTES: Final = 64 * 1024
_MAX_ERROR: Final = 500
_MAX_LISTED: Final = 1000
# Unroutable delivery ids derive from (notification, member), so fanning a notice out again adds none.
_UNROUTABLE_IDS: Final = uuid.UUID("6f1c1d2e-5b8a-4c3e-9f7d-2a4b6c8d0e1f")


class DeliveryStatus(StrEnum):
    """Where a delivery stands: retried until ``delivered`` (acknowledged) or ``dead`` (given up);
    ``unroutable`` when the member had no webhook subscribed to the event (never sent)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    UNROUTABLE = "unroutable"


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again and how many attempts it gets before it is ``dead``.

    After the n-th failed attempt the next one is due ``delays[n - 1]`` later (the last delay once the
    table runs out), spread by ``jitter`` (±20 % by default) so that receivers coming back up are not hit
    by every sender at the same moment. The default gives up after 12 attempts, about 34 hours.
    """

    delays: tuple[timedelta, ...] = (
        timedelta(seconds=10),
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=3),
        timedelta(hours=6),
    )
    max_attempts: int = 12
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.delays or self.max_attempts < 1 or not 0 <= self.jitter < 1:
            raise ValueError("a retry policy needs delays, at least one attempt and a jitter in [0, 1)")

    def delay(self, failed_attempts: int) -> timedelta:
        """How long to wait after ``failed_attempts`` attempts have failed."""
        base = self.delays[min(max(failed_attempts, 1), len(self.delays)) - 1]
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


@dataclass(frozen=True)
class DispatchReport:
    """What one :func:`dispatch_once` did: delivery rows created for webhooks (``fanned_out``) and for
    members without one (``unroutable``), and attempts acknowledged, failed (to be retried) and failed for
    the last time (now ``dead``)."""

    fanned_out: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    unroutable: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- webhooks -----------------------------------------------------------------------------------------------


def _acts_for(caller: str, member: str) -> bool:
    """A member (``INSTANCE/CLASS/MEMBER``) acts for its subsystems; a subsystem for itself."""
    return member == caller or member.startswith(caller + "/")


def _webhook_document(row: WebhookRow) -> dict[str, Any]:
    return {
        "webhook_id": row.webhook_id,
        "member": row.member,
        "url": row.url,
        "events": list(row.events),
        "created_at": timestamp(row.created_at),
    }


async def register_webhook(
    sessions: async_sessionmaker[AsyncSession],
    member: str,
    body: Mapping[str, Any],
    *,
    allow_private_networks: bool = False,
) -> dict[str, Any]:
    """Register where ``body["member"]`` receives notices (``consent-webhook-input``); returns the
    ``consent-webhook``.

    ``member`` is the authenticated caller: a subsystem registers for itself, a member for its subsystems
    (``auth.scope_missing`` otherwise). Registering a URL the member already registered replaces that
    webhook's events and returns it, so a repeated registration never doubles the notices.

    The URL must be ``https`` on a public internet address (``request.invalid`` at ``/url`` otherwise),
    unless ``allow_private_networks`` (development only) also allows ``http`` and internal addresses.
    """
    document = dict(body)
    validator = standards.validator(_WEBHOOK_INPUT_SCHEMA)
    if not validator.is_valid(document):
        raise DpiError(
            "request.invalid",
            details=[
                ErrorDetail(issue.pointer, issue.reason_code, issue.message)
                for issue in validator.issues(document)[:100]
            ],
        )
    if not _acts_for(member, document["member"]):
        raise DpiError("auth.scope_missing", "a member registers webhooks for itself and its subsystems only")
    try:
        url = httpx.URL(document["url"])
    except httpx.InvalidURL:
        url = None
    if url is None or not url.host or url.userinfo or url.fragment:
        raise DpiError(
            "request.invalid",
            details=[
                ErrorDetail(
                    "/url", "schema.format", "an http(s) URL with a host, no credentials, no fragment"
                )
            ],
        )
    if not allow_private_networks:
        if url.scheme != "https":
            raise DpiError("request.invalid", details=[ErrorDetail("/url", "schema.format", "an https URL")])
        # A name that does not resolve yet is accepted: every attempt resolves and checks it again.
        if await egress.refusal(url, allow_private_networks=False) == egress.NOT_PUBLIC:
            raise DpiError(
                "request.invalid",
                details=[
                    ErrorDetail(
                        "/url", "schema.format", "the host must be (and resolve to) a public internet address"
                    )
                ],
            )
    events = list(document["events"])
    async with sessions() as session, session.begin():
        row = await session.scalar(
            select(WebhookRow)
            .where(
                WebhookRow.member == document["member"],
                WebhookRow.url == document["url"],
                WebhookRow.deleted_at.is_(None),
            )
            .order_by(WebhookRow.created_at)
            .limit(1)
            .with_for_update()
        )
        if row is None:
            row = WebhookRow(
                webhook_id=str(uuid.uuid4()),
                member=document["member"],
                url=document["url"],
                events=events,
                created_at=_utcnow(),
            )
            session.add(row)
        else:
            row.events = events
        await session.flush()
        return _webhook_document(row)


def _owned_by(member: str) -> ColumnElement[bool]:
    return (WebhookRow.member == member) | WebhookRow.member.startswith(member + "/", autoescape=True)


async def list_webhooks(sessions: async_sessionmaker[AsyncSession], member: str) -> list[dict[str, Any]]:
    """The webhooks ``member`` registered (for itself or, as a member, its subsystems), oldest first."""
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(WebhookRow)
                .where(_owned_by(member), WebhookRow.deleted_at.is_(None))
                .order_by(WebhookRow.created_at, WebhookRow.webhook_id)
            )
        ).all()
    return [_webhook_document(row) for row in rows if _acts_for(member, row.member)]


async def delete_webhook(sessions: async_sessionmaker[AsyncSession], member: str, webhook_id: str) -> None:
    """Stop fanning notices out to a webhook of ``member``; ``webhook.not_found`` for an unknown webhook
    or another member's (which is not told apart, so ids cannot be probed)."""
    async with sessions() as session, session.begin():
        row = await session.get(WebhookRow, webhook_id, with_for_update=True)
        if row is None or row.deleted_at is not None or not _acts_for(member, row.member):
            raise DpiError("webhook.not_found")
        row.deleted_at = _utcnow()


# --- fan-out ------------------------------------------------------------------------------------------------


def _notice(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    notice = {name: value for name, value in payload.items() if name in _NOTIFICATION_MEMBERS}
    return notice if standards.validator(_NOTIFICATION_SCHEMA).is_valid(notice) else None


def _recipients(notice: Mapping[str, Any]) -> set[str]:
    return {notice["consumer"], *(provider["provider"] for provider in notice["providers"])}


async def _insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert delivery rows, skipping every one already there (the same (notification, webhook) pair or,
    for an unroutable one, the same id); the statuses of those inserted."""
    if not rows:
        return []
    statement: PostgresInsert | SqliteInsert
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(DeliveryRow).values(list(rows)).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(DeliveryRow).values(list(rows)).on_conflict_do_nothing()
    inserted = await session.scalars(statement.returning(DeliveryRow.status))
    return list(inserted.all())


def _delivery_rows(
    notice: Mapping[str, Any], subscribed: Sequence[WebhookRow], now: datetime
) -> list[dict[str, Any]]:
    """A pending row per webhook subscribed to the notice's event, an unroutable one per recipient without."""
    common = {
        "notification_id": notice["notification_id"],
        "consent_id": notice["consent_id"],
        "notification": dict(notice),
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }
    rows: list[dict[str, Any]] = []
    for member in sorted(_recipients(notice)):
        webhooks = [
            webhook
            for webhook in subscribed
            if webhook.member == member and notice["event"] in webhook.events
        ]
        rows.extend(
            {
                **common,
                "delivery_id": str(uuid.uuid4()),
                "webhook_id": webhook.webhook_id,
                "member": member,
                "url": webhook.url,
                "status": DeliveryStatus.PENDING.value,
            }
            for webhook in webhooks
        )
        if not webhooks:
            rows.append(
                {
                    **common,
                    "delivery_id": str(uuid.uuid5(_UNROUTABLE_IDS, f"{notice['notification_id']} {member}")),
                    "webhook_id": None,
                    "member": member,
                    "url": None,
                    "status": DeliveryStatus.UNROUTABLE.value,
                }
            )
    return rows


async def _fan_out(sessions: async_sessionmaker[AsyncSession], now: datetime, batch: int) -> tuple[int, int]:
    """Delivery rows created: (for webhooks, unroutable)."""
    async with sessions() as session, session.begin():
        messages = await outbox.claim(session, topics=[NOTIFICATION_TOPIC], limit=batch, lease=_FAN_OUT_LEASE)
        if not messages:
            return 0, 0
        notices: dict[int, dict[str, Any]] = {}
        for message in messages:
            notice = _notice(message.payload)
            if notice is None:
                # A bug upstream, not a receiver's fault: keep the message (operators see last_error).
                await outbox.mark_failed(
                    session,
                    message.id,
                    "not a consent-notification document",
                    _utcnow() + _UNREADABLE_NOTICE_RETRY,
                )
                _log.error("unreadable consent notification", extra={"outbox_id": message.id})
                continue
            notices[message.id] = notice
        members = {member for notice in notices.values() for member in _recipients(notice)}
        webhooks = (
            await session.scalars(
                select(WebhookRow)
                .where(WebhookRow.member.in_(sorted(members)), WebhookRow.deleted_at.is_(None))
                .order_by(WebhookRow.created_at, WebhookRow.webhook_id)
            )
            if members
            else None
        )
        subscribed = list(webhooks.all()) if webhooks is not None else []
        rows = [row for notice in notices.values() for row in _delivery_rows(notice, subscribed, now)]
        created = await _insert_new(session, rows)
        await outbox.mark_delivered(session, list(notices))
    unroutable = created.count(DeliveryStatus.UNROUTABLE.value)
    if unroutable:
        _log.warning(
            "consent notices owed to members without a webhook",
            extra={"event": "consent_notification_unroutable", "count": unroutable},
        )
    return len(created) - unroutable, unroutable


# --- sending ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Due:
    delivery_id: str
    notification: dict[str, Any]
    member: str
    url: str
    attempts: int


@dataclass(frozen=True)
class _Outcome:
    acknowledgement: dict[str, Any] | None = None
    error: str | None = None


async def _claim_due(
    sessions: async_sessionmaker[AsyncSession], now: datetime, limit: int, policy: RetryPolicy
) -> tuple[list[_Due], int]:
    """Lease up to ``limit`` due deliveries; also bury those whose last attempt never reported back."""
    async with sessions() as session, session.begin():
        # A process died after starting the last allowed attempt: nothing more will be tried.
        buried = (
            await session.scalars(
                update(DeliveryRow)
                .where(
                    DeliveryRow.status == DeliveryStatus.PENDING.value,
                    DeliveryRow.attempts >= policy.max_attempts,
                    DeliveryRow.next_attempt_at <= now,
                )
                .values(
                    status=DeliveryStatus.DEAD.value, last_error="no outcome recorded for the last attempt"
                )
                .returning(DeliveryRow.delivery_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        candidates = (
            select(DeliveryRow.delivery_id)
            .where(DeliveryRow.status == DeliveryStatus.PENDING.value, DeliveryRow.next_attempt_at <= now)
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.delivery_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        rows = (
            await session.scalars(
                update(DeliveryRow)
                .where(DeliveryRow.delivery_id.in_(candidates))
                .values(
                    next_attempt_at=now + _SEND_LEASE,
                    attempts=DeliveryRow.attempts + 1,
                    last_attempt_at=now,
                )
                .returning(DeliveryRow)
                .execution_options(synchronize_session=False)
            )
        ).all()
        due = [
            _Due(row.delivery_id, dict(row.notification), row.member, row.url or "", row.attempts)
            for row in sorted(rows, key=lambda row: row.delivery_id)
        ]
    return due, len(buried)


def _target_uri(url: httpx.URL) -> str:
    # What the receiver reconstructs from the request line and Host, which the signature must cover.
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.raw_path.decode('ascii')}"


async def _read_limited(response: httpx.Response) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > _MAX_ACK_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _acknowledgement(answer: bytes | None, due: _Due) -> _Outcome:
    if answer is None:
        return _Outcome(error="the answer is larger than an acknowledgement can be")
    try:
        document = json.loads(answer)
    except (ValueError, RecursionError):
        return _Outcome(error="the answer is not a JSON acknowledgement")
    validator = standards.validator(_ACK_SCHEMA)
    if not validator.is_valid(document):
        # Pointers and reason codes only: the receiver's values are not ours to keep.
        problems = ", ".join(
            f"{issue.pointer or '/'} {issue.reason_code}" for issue in validator.issues(document)[:5]
        )
        return _Outcome(error=f"the answer is not a consent-notification-ack ({problems})")
    if document["notification_id"] != due.notification["notification_id"]:
        return _Outcome(error="the acknowledgement names another notification")
    if document["receiver"] != due.member:
        return _Outcome(error="the acknowledgement names another receiver than the webhook's member")
    return _Outcome(acknowledgement=document)


async def _attempt(
    client: httpx.AsyncClient, key: SigningKey, due: _Due, allow_private_networks: bool
) -> _Outcome:
    notification_id = due.notification["notification_id"]
    body = sign_compact(due.notification, key, typ=NOTIFICATION_JWS_TYPE).encode("ascii")
    try:
        url = httpx.URL(due.url)
        refusal = await egress.refusal(url, allow_private_networks=allow_private_networks)
        if refusal is not None:
            return _Outcome(error=refusal)
        headers = {
            "Content-Type": JOSE_MEDIA_TYPE,
            "Idempotency-Key": notification_id,
            "X-Correlation-Id": notification_id,
        }
        headers.update(sign_request("POST", _target_uri(url), headers, body, key))
        async with (
            asyncio.timeout(_SEND_TIMEOUT),
            client.stream(
                "POST", url, content=body, headers=headers, timeout=_SEND_TIMEOUT, follow_redirects=False
            ) as response,
        ):
            if not response.is_success:
                return _Outcome(error=f"HTTP {response.status_code}")
            answer = await _read_limited(response)
    except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, UnicodeError):
        return _Outcome(error=egress.UNREACHABLE)
    return _acknowledgement(answer, due)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    outcomes: Sequence[tuple[_Due, _Outcome]],
    now: datetime,
    policy: RetryPolicy,
) -> tuple[int, int, int]:
    delivered = failed = dead = 0
    async with sessions() as session, session.begin():
        for due, outcome in outcomes:
            # Only a pending delivery moves: one acknowledged meanwhile (after a lease ran out) stays so.
            statement = update(DeliveryRow).where(
                DeliveryRow.delivery_id == due.delivery_id,
                DeliveryRow.status == DeliveryStatus.PENDING.value,
            )
            if outcome.acknowledgement is not None:
                delivered += 1
                values: dict[str, Any] = {
                    "status": DeliveryStatus.DELIVERED.value,
                    "acknowledged_at": now,
                    "acknowledgement": outcome.acknowledgement,
                    "last_error": None,
                }
            elif due.attempts >= policy.max_attempts:
                dead += 1
                values = {
                    "status": DeliveryStatus.DEAD.value,
                    "last_error": (outcome.error or "")[:_MAX_ERROR],
                }
            else:
                failed += 1
                values = {
                    "next_attempt_at": now + policy.delay(due.attempts),
                    "last_error": (outcome.error or "")[:_MAX_ERROR],
                }
            if outcome.acknowledgement is None:
                _log.warning(
                    "consent notification not acknowledged",
                    extra={
                        "event": "consent_notification_failed",
                        "delivery_id": due.delivery_id,
                        "attempts": due.attempts,
                        "error": outcome.error,
                    },
                )
            await session.execute(statement.values(**values).execution_options(synchronize_session=False))
    return delivered, failed, dead


async def dispatch_once(
    sessions: async_sessionmaker[AsyncSession],
    key: SigningKey,
    client: httpx.AsyncClient,
    *,
    now: datetime | None = None,
    batch: int = 100,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    allow_private_networks: bool = False,
) -> DispatchReport:
    """Fan out up to ``batch`` new notices, then send up to ``batch`` due deliveries signed with ``key``.

    Run it in a loop (every few seconds) from as many processes as wanted: the outbox claim, the unique
    (notification, webhook) pair and the delivery leases keep each notice fanned out once and each
    delivery sent by one dispatcher at a time. ``now`` replaces the clock for scheduling (tests).
    Each URL is checked again before each attempt: only ``https`` to public internet addresses, unless
    ``allow_private_networks`` (development only; see the module docstring).
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")

    def clock() -> datetime:
        return _utcnow() if now is None else now.astimezone(UTC)

    fanned_out, unroutable = await _fan_out(sessions, clock(), batch)
    delivered = failed = dead = 0
    remaining = batch
    while remaining > 0:
        due, buried = await _claim_due(sessions, clock(), min(remaining, _CONCURRENCY), policy)
        dead += buried
        if not due:
            break
        remaining -= len(due)
        results = await asyncio.gather(*(_attempt(client, key, item, allow_private_networks) for item in due))
        counts = await _record(sessions, list(zip(due, results, strict=True)), clock(), policy)
        delivered, failed, dead = delivered + counts[0], failed + counts[1], dead + counts[2]
    return DispatchReport(
        fanned_out=fanned_out, delivered=delivered, failed=failed, dead=dead, unroutable=unroutable
    )


# --- operators ----------------------------------------------------------------------------------------------


def _delivery_document(row: DeliveryRow) -> dict[str, Any]:
    document: dict[str, Any] = {
        "delivery_id": row.delivery_id,
        "notification": dict(row.notification),
        "member": row.member,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": timestamp(row.created_at),
    }
    if row.webhook_id is not None:
        document["webhook_id"] = row.webhook_id
    if row.url is not None:
        document["url"] = row.url
    if row.status == DeliveryStatus.PENDING.value:
        document["next_attempt_at"] = timestamp(row.next_attempt_at)
    if row.last_attempt_at is not None:
        document["last_attempt_at"] = timestamp(row.last_attempt_at)
    if row.last_error:
        document["last_error"] = row.last_error
    if row.acknowledged_at is not None:
        document["acknowledged_at"] = timestamp(row.acknowledged_at)
    if row.acknowledgement is not None:
        document["acknowledgement"] = dict(row.acknowledgement)
    return document


async def deliveries(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: str | None = None,
    member: str | None = None,
    consent_id: str | None = None,
    limit: int = _MAX_LISTED,
) -> list[dict[str, Any]]:
    """Deliveries for operators (``consent-delivery@1.1.0`` documents, listed in a
    ``consent-delivery-list@1.1.0``), oldest first; narrowed to a ``status`` (pending, delivered, dead,
    unroutable), a ``member`` (the webhook's, or the recipient's without one) or a consent.

    A delivered one carries the receiver's acknowledgement, the consumer's receipt of the notice; an
    unroutable one has no webhook or URL: a notice its recipient never subscribed to receive.
    ``request.invalid_parameter`` for an unknown status or a limit outside 1..1000.
    """
    if status is not None and status not in {item.value for item in DeliveryStatus}:
        raise DpiError(
            "request.invalid_parameter",
            details=[
                ErrorDetail(
                    "/status",
                    "request.invalid_parameter",
                    "one of " + ", ".join(item.value for item in DeliveryStatus),
                )
            ],
        )
    if not 1 <= limit <= _MAX_LISTED:
        raise DpiError(
            "request.invalid_parameter",
            details=[ErrorDetail("/limit", "request.invalid_parameter", f"from 1 to {_MAX_LISTED}")],
        )
    query = select(DeliveryRow)
    if status is not None:
        query = query.where(DeliveryRow.status == status)
    if member is not None:
        query = query.where(DeliveryRow.member == member)
    if consent_id is not None:
        query = query.where(DeliveryRow.consent_id == consent_id)
    async with sessions() as session:
        rows = (
            await session.scalars(
                query.order_by(DeliveryRow.created_at, DeliveryRow.delivery_id).limit(limit)
            )
        ).all()
    return [_delivery_document(row) for row in rows]
