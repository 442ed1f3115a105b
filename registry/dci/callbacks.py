"""Asynchronous DCI searches and notifications: an asynchronous search is stored and announced in the
outbox in the transaction that acknowledges it, then :func:`dispatch_once` answers it and delivers
``on-search`` to ``<callback>/on-search``; registry events become ``notify`` deliveries to
``<callback>/notify`` of the matching subscriptions (:mod:`registry.dci.subscriptions`).

- The search runs once: its answer is stored with the transaction (``txn/status`` returns it) before
  any delivery is attempted, so a retried delivery never reads the records again (nor logs the reads
  twice).
- The on-search callback is the ``dci-search-response`` envelope signed with our active key (detached JWS over
  ``{header, message}``) and POSTed with an RFC 9421 HTTP message signature and its Content-Digest, with
  ``Idempotency-Key`` set to the transaction's correlation id: receivers deduplicate on it, as delivery
  is at least once.
- A 2xx answer is a delivery. Anything else is retried with exponential backoff (:data:`RETRY_DELAYS`)
  until :data:`MAX_ATTEMPTS`, after which the answer stays available through ``txn/status`` only.
- Callback URLs pass the kernel's egress rules (:mod:`dpi.egress`) before every attempt, and redirects are
  never followed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dpi import egress, outbox
from dpi.errors import DpiError
from dpi.keys import SigningKey
from dpi.models import OutboxMessage
from registry.dci.envelope import (
    DCI_VERSION,
    MESSAGE_WINDOW,
    Received,
    new_header,
    record_message_id,
    signed,
    verify,
    wire_time,
)
from registry.dci.search import Searcher, reg_type
from registry.dci.senders import find_sender
from registry.dci.subscriptions import NOTIFY_TOPIC, fan_out
from registry.models import DciSubscriptionRow, DciTransactionRow
from registry.service import RegistryService

__all__ = [
    "EVENT_RECORD_TYPE",
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "TOPIC",
    "DispatchReport",
    "accept_search",
    "dispatch_once",
    "transaction_status",
]

_log = logging.getLogger("registry.dci")

TOPIC: Final = "registry.dci.on-search"
RETRY_DELAYS: Final = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
MAX_ATTEMPTS: Final = 8
_LEASE: Final = timedelta(minutes=2)
EVENT_RECORD_TYPE: Final = "dpi:registry-event"


@dataclass(frozen=True)
class DispatchReport:
    """What one :func:`dispatch_once` did with the transactions it claimed."""

    answered: int = 0
    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    events: int = 0


def _search_response(
    transaction_id: str, correlation_id: str, answers: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The ``message`` of a search answer."""
    return {
        "transaction_id": transaction_id,
        "correlation_id": correlation_id,
        "search_response": list(answers),
    }


async def accept_search(
    service: RegistryService,
    received: Received,
    *,
    registry: str,
    now: datetime,
    window: timedelta = MESSAGE_WINDOW,
) -> str:
    """Check, store and announce an asynchronous search; its correlation id. Nothing is stored when
    the envelope is refused."""
    correlation_id = str(uuid.uuid4())
    header, message = received.header, received.message
    try:
        async with service.sessions.begin() as session:
            sender = await verify(session, received, registry=registry, now=now, window=window)
            await record_message_id(
                session, sender.sender_id, str(header["message_id"]), now=now, window=window
            )
            session.add(
                DciTransactionRow(
                    sender_id=sender.sender_id,
                    transaction_id=str(message["transaction_id"]),
                    registry_code=registry,
                    action="search",
                    correlation_id=correlation_id,
                    status="pdng",
                    request={
                        "header": dict(header),
                        "message": dict(message),
                        "problems": received.item_problems,
                    },
                    response=None,
                    received_at=now,
                    completed_at=None,
                )
            )
            await session.flush()
            await outbox.enqueue(
                session,
                TOPIC,
                {"sender_id": sender.sender_id, "transaction_id": str(message["transaction_id"])},
                key=correlation_id,
            )
    except IntegrityError:
        raise DpiError("err.request.bad", "this sender already used this transaction_id") from None
    return correlation_id


async def transaction_status(
    service: RegistryService, sender_id: str, registry: str, attribute_type: str, value: str
) -> DciTransactionRow:
    """The sender's own transaction named by its transaction id or our correlation id."""
    async with service.sessions() as session:
        if attribute_type == "transaction_id":
            row = await session.get(DciTransactionRow, (sender_id, value))
        else:
            row = await session.scalar(
                select(DciTransactionRow).where(
                    DciTransactionRow.correlation_id == value, DciTransactionRow.sender_id == sender_id
                )
            )
    if row is None or row.registry_code != registry:
        raise DpiError("err.request.not_found")
    return row


async def _answer(searcher: Searcher, row: DciTransactionRow, now: datetime) -> None:
    service = searcher.service
    definition = service.definition(row.registry_code)
    async with service.sessions() as session:
        sender = await find_sender(session, row.sender_id)
    message = row.request["message"]
    if sender is None or not sender.may_search(row.registry_code):
        answers = [
            {
                "reference_id": str(item.get("reference_id", "")) if isinstance(item, Mapping) else "",
                "timestamp": new_header("on-search", now=now, receiver_id="", sender_id="")["message_ts"],
                "status": "rjct",
                "status_reason_code": "rjct.search_criteria.invalid",
                "status_reason_message": "the sender was disabled before the search ran",
            }
            for item in message["search_request"]
        ]
    else:
        problems = {int(index): text for index, text in row.request.get("problems", {}).items()}
        answers = await searcher.answer(
            definition, sender, message["search_request"], now=now, problems=problems
        )
    row.response = _search_response(row.transaction_id, row.correlation_id, answers)
    row.status = "succ"
    row.completed_at = now
    async with service.sessions.begin() as session:
        await session.merge(row)


def _callback(base: str, action: str) -> str:
    """Where ``action`` (on-search, notify) goes: the sender's callback base URL plus the DCI path."""
    return f"{base.rstrip('/')}/{action}"


@dataclass
class _Tally:
    answered: int = 0
    delivered: int = 0
    failed: int = 0
    given_up: int = 0


async def _settle(
    service: RegistryService, message: OutboxMessage, problem: str | None, now: datetime, tally: _Tally
) -> None:
    """Record a delivery attempt: delivered, retried later, or given up after the last attempt."""
    async with service.sessions.begin() as session:
        outcome = await outbox.record_attempt(
            session, message, problem, now=now, delays=RETRY_DELAYS, max_attempts=MAX_ATTEMPTS
        )
    if outcome is outbox.Attempt.DELIVERED:
        tally.delivered += 1
    elif outcome is outbox.Attempt.GIVEN_UP:
        tally.given_up += 1
        _log.warning(
            "DCI callback given up", extra={"event": "dci_callback_given_up", "topic": message.topic}
        )
    else:
        tally.failed += 1


async def _on_search(
    searcher: Searcher,
    key: SigningKey,
    client: httpx.AsyncClient,
    message: OutboxMessage,
    *,
    system_id: Callable[[str], str],
    now: datetime,
    allow_private_networks: bool,
    tally: _Tally,
) -> None:
    service = searcher.service
    payload = message.payload
    async with service.sessions() as session:
        row = await session.get(DciTransactionRow, (payload["sender_id"], payload["transaction_id"]))
        sender = await find_sender(session, payload["sender_id"])
    if row is not None and row.response is None:
        await _answer(searcher, row, now)
        tally.answered += 1
    if row is None or row.response is None or sender is None or sender.callback_url is None:
        # Nothing to deliver to: the answer waits in txn/status.
        await _settle(service, message, None, now, _Tally())
        return
    answers = row.response.get("search_response", [])
    header = new_header(
        "on-search",
        now=now,
        sender_id=system_id(row.registry_code),
        receiver_id=row.sender_id,
        status="succ",
        total_count=len(answers),
        completed_count=sum(1 for answer in answers if answer.get("status") == "succ"),
    )
    problem = await egress.post_signed(
        client,
        key,
        _callback(sender.callback_url, "on-search"),
        signed(header, row.response, key),
        row.correlation_id,
        allow_private_networks=allow_private_networks,
    )
    await _settle(service, message, problem, now, tally)


async def _notify(
    service: RegistryService,
    key: SigningKey,
    client: httpx.AsyncClient,
    message: OutboxMessage,
    *,
    system_id: Callable[[str], str],
    now: datetime,
    allow_private_networks: bool,
    tally: _Tally,
) -> None:
    payload = message.payload
    async with service.sessions() as session:
        subscription = await session.get(DciSubscriptionRow, payload["subscription_code"])
        sender = await find_sender(session, subscription.sender_id) if subscription is not None else None
    if (
        subscription is None
        or subscription.status != "active"
        or sender is None
        or sender.callback_url is None
        or not sender.may_search(subscription.registry_code)
    ):
        # Unsubscribed, disabled or no longer granted since the event: nothing is owed any more.
        await _settle(service, message, None, now, _Tally())
        return
    definition = service.definition(subscription.registry_code)
    event = payload["event"]
    header = new_header(
        "notify",
        now=now,
        sender_id=system_id(subscription.registry_code),
        receiver_id=sender.sender_id,
        status="succ",
        total_count=1,
        completed_count=1,
    )
    # The same event to the same subscription always has the same id: receivers deduplicate on it.
    transaction_id = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription.subscription_code}/{payload['event_id']}")
    )
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "notify_event": [
            {
                "reference_id": subscription.reference_id,
                "timestamp": wire_time(now),
                "subscription_code": subscription.subscription_code,
                "data": {
                    "version": DCI_VERSION,
                    "reg_type": reg_type(definition),
                    "reg_event_type": str(event.get("action")),
                    "reg_record_type": EVENT_RECORD_TYPE,
                    "reg_records": [event],
                },
            }
        ],
    }
    problem = await egress.post_signed(
        client,
        key,
        _callback(sender.callback_url, "notify"),
        signed(header, body, key),
        transaction_id,
        allow_private_networks=allow_private_networks,
    )
    await _settle(service, message, problem, now, tally)


async def dispatch_once(
    searcher: Searcher,
    key: SigningKey,
    client: httpx.AsyncClient,
    *,
    system_id: Callable[[str], str],
    allow_private_networks: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    limit: int = 20,
) -> DispatchReport:
    """One round: fan registry events out to subscriptions, answer and deliver asynchronous searches,
    deliver notifications."""
    service = searcher.service
    events = await fan_out(service, limit=limit * 5)
    async with service.sessions.begin() as session:
        claimed = await outbox.claim(session, topics=[TOPIC, NOTIFY_TOPIC], limit=limit, lease=_LEASE)
    tally = _Tally()
    for message in claimed:
        options: dict[str, Any] = {
            "system_id": system_id,
            "now": clock(),
            "allow_private_networks": allow_private_networks,
            "tally": tally,
        }
        if message.topic == TOPIC:
            await _on_search(searcher, key, client, message, **options)
        else:
            await _notify(service, key, client, message, **options)
    return DispatchReport(
        answered=tally.answered,
        delivered=tally.delivered,
        failed=tally.failed,
        given_up=tally.given_up,
        events=events,
    )
