"""Asynchronous DCI searches: the transaction is stored and announced in the outbox in the transaction
that acknowledges it, then :func:`dispatch_once` answers it and delivers ``on-search`` to the sender's
registered callback URL.

- The search runs once: its answer is stored with the transaction (``txn/status`` returns it) before
  any delivery is attempted, so a retried delivery never reads the records again (nor logs the reads
  twice).
- The callback is the ``dci-search-response`` envelope signed with our active key (detached JWS over
  ``{header, message}``) and POSTed with an RFC 9421 HTTP message signature and its Content-Digest, with
  ``Idempotency-Key`` set to the transaction's correlation id: receivers deduplicate on it, as delivery
  is at least once.
- A 2xx answer is a delivery. Anything else is retried with exponential backoff (:data:`RETRY_DELAYS`)
  until :data:`MAX_ATTEMPTS`, after which the answer stays available through ``txn/status`` only.
- Callback URLs pass the kernel's egress rules (:mod:`dpi.egress`) before every attempt, and redirects are
  never followed.
"""

from __future__ import annotations

import json
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
from dpi.signing import sign_request
from registry.dci.envelope import MESSAGE_WINDOW, Received, new_header, record_message_id, signed, verify
from registry.dci.search import Searcher
from registry.dci.senders import find_sender
from registry.models import DciTransactionRow
from registry.service import RegistryService

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "TOPIC",
    "DispatchReport",
    "accept_search",
    "dispatch_once",
    "search_response",
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
_SEND_TIMEOUT: Final = 15.0
_LEASE: Final = timedelta(minutes=2)


@dataclass(frozen=True)
class DispatchReport:
    """What one :func:`dispatch_once` did with the transactions it claimed."""

    answered: int = 0
    delivered: int = 0
    failed: int = 0
    given_up: int = 0


def search_response(
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
    row.response = search_response(row.transaction_id, row.correlation_id, answers)
    row.status = "succ"
    row.completed_at = now
    async with service.sessions.begin() as session:
        await session.merge(row)


def _delay(attempts: int) -> timedelta:
    return RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]


async def _deliver(
    client: httpx.AsyncClient,
    key: SigningKey,
    row: DciTransactionRow,
    url: str,
    *,
    system_id: str,
    now: datetime,
    allow_private_networks: bool,
) -> str | None:
    """POST the signed on-search; None when the receiver took it, else why not."""
    target = httpx.URL(url)
    refusal = await egress.refusal(target, allow_private_networks=allow_private_networks)
    if refusal is not None:
        return refusal
    answers = (row.response or {}).get("search_response", [])
    header = new_header(
        "on-search",
        now=now,
        sender_id=system_id,
        receiver_id=row.sender_id,
        status="succ",
        total_count=len(answers),
        completed_count=sum(1 for answer in answers if answer.get("status") == "succ"),
    )
    body = json.dumps(signed(header, row.response or {}, key), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": row.correlation_id}
    headers.update(sign_request("POST", str(target), headers, body, key))
    try:
        response = await client.post(target, content=body, headers=headers, timeout=_SEND_TIMEOUT)
    except httpx.HTTPError:
        return egress.UNREACHABLE
    return None if response.is_success else f"the receiver answered HTTP {response.status_code}"


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
    """Answer and deliver the asynchronous searches waiting in the outbox (one round)."""
    service = searcher.service
    async with service.sessions.begin() as session:
        claimed = await outbox.claim(session, topics=[TOPIC], limit=limit, lease=_LEASE)
    answered = delivered = failed = given_up = 0
    for message in claimed:
        now = clock()
        payload = message.payload
        async with service.sessions() as session:
            row = await session.get(DciTransactionRow, (payload["sender_id"], payload["transaction_id"]))
            sender = await find_sender(session, payload["sender_id"])
        if row is None:
            async with service.sessions.begin() as session:
                await outbox.mark_delivered(session, [message.id])
            continue
        if row.response is None:
            await _answer(searcher, row, now)
            answered += 1
        if sender is None or sender.callback_url is None:
            # Nothing to deliver to: the answer waits in txn/status.
            async with service.sessions.begin() as session:
                await outbox.mark_delivered(session, [message.id])
            continue
        problem = await _deliver(
            client,
            key,
            row,
            sender.callback_url,
            system_id=system_id(row.registry_code),
            now=now,
            allow_private_networks=allow_private_networks,
        )
        async with service.sessions.begin() as session:
            if problem is None:
                await outbox.mark_delivered(session, [message.id])
                delivered += 1
            elif message.attempts >= MAX_ATTEMPTS:
                await outbox.mark_failed(session, message.id, problem, now + timedelta(days=3650))
                given_up += 1
                _log.warning("on-search given up", extra={"event": "dci_callback_given_up"})
            else:
                await outbox.mark_failed(session, message.id, problem, now + _delay(message.attempts))
                failed += 1
    return DispatchReport(answered=answered, delivered=delivered, failed=failed, given_up=given_up)
