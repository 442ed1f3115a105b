"""A G2P Connect disburse provider API (G2P Connect disburse API 0.1.0, ``api/g2p-disburse.yaml`` of
https://github.com/G2P-Connect/specs) in front of any :class:`~payments_adapter.contract.PaymentProvider`.

Under the payments block's prefix (``/payments``):

- ``POST /g2p/disburse`` (DSBT-001): checked and stored at once, answered ACK or NACK; every item is then
  paid through the provider and the whole batch answered by a signed ``on-disburse`` callback to
  ``<sender callback>/on-disburse`` (DSBT-002);
- ``POST /g2p/disburse/txn/status`` (DSBT-003): ACK, then a signed ``on-status`` callback to
  ``<sender callback>/disburse/txn/on-status`` (DSBT-004) with each item asked about;
- ``GET /g2p/disburse/search/{reference_id}`` (DSBT-006): one item of the signing sender, answered at once
  and signed; the request carries the sender's RFC 9421 signature (https://www.rfc-editor.org/rfc/rfc9421).

What holds whatever happens:

- A reference id is paid once per sender: the item table's primary key is ``(sender_id, reference_id)``,
  and a second item with a used reference (in a later message or the same one) is answered
  ``RJCT_REFERENCE_ID_DUPLICATE`` and never reaches the provider.
- An ACK is given only once the items and the outbox message announcing them are committed together, so an
  acknowledged batch is never lost; the dispatcher marks an item submitted (committed) before sending it,
  and an item found submitted after a crash is settled by a status query, never by a blind resend.
- Callbacks go only to the sender's registered callback URL, through the kernel's egress rules
  (:mod:`dpi.egress`) before every attempt, without following redirects, retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi import egress, outbox
from dpi.blocks import BlockContext
from dpi.contract import Contract, Parameter
from dpi.errors import DpiError
from dpi.keys import KeyStore, SigningKey
from dpi.models import OutboxMessage
from dpi.signing import SignatureError, verify_request
from payments_adapter.contract import (
    FinancialAddress,
    Money,
    MoneyError,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderError,
    ProviderState,
    ProviderStatus,
)
from payments_adapter.g2p import messages
from payments_adapter.g2p.messages import G2pError, Received, wire_time
from payments_adapter.g2p.models import G2pItemRow, G2pMessageRow, G2pTransactionRow

__all__ = [
    "DISBURSE_TOPIC",
    "MAX_ATTEMPTS",
    "STATUS_TOPIC",
    "DisburseServer",
    "DispatchReport",
    "G2pSender",
    "accept_disburse",
    "accept_status",
    "capabilities_entry",
    "capabilities_for",
    "dispatch_once",
    "load_senders",
    "routes",
    "running",
    "search_reference",
]

_log = logging.getLogger("payments.g2p")

DISBURSE_TOPIC: Final = "payments.g2p.on-disburse"
STATUS_TOPIC: Final = "payments.g2p.on-status"
MAX_ATTEMPTS: Final = 12
RETRY_DELAYS: Final = (
    timedelta(seconds=2),
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
)
_POLL_DELAYS: Final = (
    timedelta(seconds=1),
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=5),
)
_LEASE: Final = timedelta(minutes=2)
_SYSTEM_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_REFERENCE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,98}$")
_PENDING: Final = "PDNG"
_FINAL_REASONS: Final[Mapping[ProviderState, str]] = {
    ProviderState.REJECTED: "payments.payee.rejected",
    ProviderState.CANCELLED: "payments.item.cancelled",
    ProviderState.REVERSED: "payments.item.reversed",
    ProviderState.RETURNED: "payments.item.returned",
}
_ACK_SCHEMA: Final = "g2p-disburse-ack@1.0.0"
_TAGS: Final = ("payments-g2p",)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class G2pSender:
    """A system allowed to send disbursements: its id (the header's ``sender_id``), the JWK Set its
    envelopes are verified with, the base URL its callbacks go to, and the payer accounts it pays from."""

    sender_id: str
    jwks: Mapping[str, Any] = field(repr=False)
    callback_url: str
    payer_fas: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _SYSTEM_ID.fullmatch(self.sender_id):
            raise ValueError(f"sender id {self.sender_id!r} is 1 to 100 letters, digits and ._:/-")
        if httpx.URL(self.callback_url).scheme not in ("http", "https"):
            raise ValueError(f"the callback URL of {self.sender_id} is an http(s) URL")


def load_senders(path: Path) -> dict[str, G2pSender]:
    """Senders from a JSON file ``[{"sender_id", "jwks", "callback_url", "payer_fas"}]``; ``ValueError``
    with a one-line reason for a file that cannot be used."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"cannot read the G2P senders file {path}: {error}") from None
    if not isinstance(document, list):
        raise ValueError(f"{path}: the senders file is a JSON array")
    senders: dict[str, G2pSender] = {}
    for entry in document:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), kind)
            for key, kind in (("sender_id", str), ("jwks", dict), ("callback_url", str), ("payer_fas", list))
        ):
            raise ValueError(f"{path}: each sender has sender_id, jwks, callback_url and payer_fas")
        try:
            senders[entry["sender_id"]] = G2pSender(
                entry["sender_id"], entry["jwks"], entry["callback_url"], tuple(map(str, entry["payer_fas"]))
            )
        except (ValueError, httpx.InvalidURL) as error:
            raise ValueError(f"{path}: {error}") from None
    return senders


@dataclass
class DisburseServer:
    """What the routes and the dispatcher share: the provider that pays, the registered senders, the
    database, our keys and identifier (the ``receiver_id`` senders address), and the clock."""

    provider: PaymentProvider
    senders: Mapping[str, G2pSender]
    sessions: async_sessionmaker[AsyncSession]
    keys: KeyStore
    system_id: str
    allow_private_networks: bool = False
    clock: Callable[[], datetime] = _now
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _by_kid: dict[str, tuple[G2pSender, Mapping[str, Any]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for sender in self.senders.values():
            for jwk in sender.jwks.get("keys", ()):
                kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
                if isinstance(kid, str):
                    if kid in self._by_kid and self._by_kid[kid][0] is not sender:
                        raise ValueError(f"two senders publish a key with kid {kid!r}")
                    self._by_kid[kid] = (sender, jwk)

    @classmethod
    def for_block(
        cls,
        context: BlockContext,
        *,
        provider: PaymentProvider,
        senders: Mapping[str, G2pSender],
        system_id: str,
    ) -> DisburseServer:
        """The server of a block mounted by the kernel: its database, keys and egress setting.

        In the payments block: ``server = DisburseServer.for_block(context, ...)``, then ``routes(server)``
        among its routes and ``running(server)`` in its lifespan."""
        return cls(
            provider,
            senders,
            context.sessions,
            context.keys,
            system_id,
            allow_private_networks=context.settings.allow_private_callbacks,
        )

    def key(self) -> SigningKey:
        return self.keys.active()

    def signer(self, kid: str) -> tuple[G2pSender, Mapping[str, Any]] | None:
        """The sender that registered the key ``kid``, and the key."""
        return self._by_kid.get(kid)


@dataclass(frozen=True)
class DispatchReport:
    """What one :func:`dispatch_once` did."""

    settled: int = 0
    delivered: int = 0
    waiting: int = 0
    failed: int = 0
    given_up: int = 0


# --- receiving ------------------------------------------------------------------------------------


def _authenticate(server: DisburseServer, received: Received, now: datetime) -> G2pSender:
    header = received.header
    sender = server.senders.get(str(header["sender_id"]))
    if sender is None:
        raise G2pError(
            "ERR_INVALID_SENDER",
            "payments.g2p.sender_unknown",
            "the sender is not registered",
            http_status=401,
        )
    if header["receiver_id"] != server.system_id:
        raise G2pError(
            "ERR_INVALID_RECEIVER", "payments.g2p.receiver_invalid", f"this system is {server.system_id}"
        )
    uri = header.get("sender_uri")
    if uri and not str(uri).startswith(sender.callback_url.rstrip("/")):
        raise G2pError(
            "ERR_INVALID_SENDER_URI",
            "payments.g2p.sender_uri_invalid",
            "callbacks go only to the sender's registered callback URL",
        )
    messages.verify_signature(received, sender.jwks)
    sent_at = received.sent_at
    if sent_at is None or abs(sent_at - now) > messages.MESSAGE_WINDOW:
        raise G2pError(
            "ERR_INVALID_TIMESTAMP",
            "payments.g2p.timestamp_invalid",
            f"timestamp must be within {messages.MESSAGE_WINDOW} of {wire_time(now)}",
        )
    return sender


async def _remember_message(session: AsyncSession, sender_id: str, message_id: str, now: datetime) -> None:
    # Ids older than twice the window are forgotten: a message that old is refused by its timestamp.
    await session.execute(
        delete(G2pMessageRow).where(G2pMessageRow.received_at < now - 2 * messages.MESSAGE_WINDOW)
    )
    try:
        async with session.begin_nested():
            await session.execute(
                insert(G2pMessageRow).values(sender_id=sender_id, message_id=message_id, received_at=now)
            )
    except IntegrityError:
        raise G2pError(
            "ERR_INVALID_MESSAGE_ID",
            "payments.g2p.message_duplicate",
            "a message with this message_id was already received",
            http_status=409,
        ) from None


def _item_problem(
    server: DisburseServer, sender: G2pSender, item: Mapping[str, Any], now: datetime
) -> tuple[str, str] | None:
    """Why one schema-valid item cannot be paid (its G2P Connect code and a message), or None."""
    capabilities = server.provider.capabilities
    if item["payer_fa"] not in sender.payer_fas:
        return messages.PAYER_FA_INVALID, "the payer account is not one this sender pays from"
    try:
        payee = FinancialAddress.parse(str(item["payee_fa"]))
    except ValueError:
        return messages.PAYEE_FA_INVALID, "payee_fa is not account@provider"
    if capabilities.address_schemes and payee.provider not in capabilities.address_schemes:
        return messages.PAYEE_FA_INVALID, f"this provider does not reach {payee.provider}"
    try:
        amount = Money.parse(str(item["amount"]), str(item["currency_code"]))
    except MoneyError as error:
        code = messages.CURRENCY_INVALID if error.reason_code.startswith("payments.currency.") else None
        return code or messages.AMOUNT_INVALID, f"{error.reason_code}: {error}"
    if amount.amount == 0:
        return messages.AMOUNT_INVALID, "payments.amount.invalid: the amount is zero"
    if capabilities.currencies and amount.currency not in capabilities.currencies:
        return messages.CURRENCY_INVALID, f"payments.currency.not_supported: {amount.currency}"
    scheduled = item.get("scheduled_timestamp")
    if scheduled is not None:
        try:
            moment = datetime.fromisoformat(str(scheduled).replace("Z", "+00:00"))
        except ValueError:
            return messages.SCHEDULE_INVALID, "scheduled_timestamp is not a date and time"
        if moment - now > timedelta(minutes=1):
            return messages.SCHEDULE_INVALID, "scheduled payments are not offered: send the item when due"
    return None


def _refusal(reference_id: str, code: str, message: str, now: datetime) -> dict[str, Any]:
    return {
        "reference_id": reference_id,
        "timestamp": wire_time(now),
        "status": "RJCT",
        "status_reason_code": code,
        "status_reason_message": message[:999],
    }


async def _admit(
    session: AsyncSession, server: DisburseServer, sender: G2pSender, received: Received, now: datetime
) -> tuple[dict[str, Any], list[G2pItemRow]]:
    """The answers of the items refused now (by position) and the rows of those accepted."""
    items: list[Mapping[str, Any]] = list(received.message["disburse_request"])
    references = [str(item["reference_id"]) for item in items]
    used = set(
        (
            await session.scalars(
                select(G2pItemRow.reference_id).where(
                    G2pItemRow.sender_id == sender.sender_id, G2pItemRow.reference_id.in_(set(references))
                )
            )
        ).all()
    )
    refused: dict[str, Any] = {}
    rows: list[G2pItemRow] = []
    transaction_id = str(received.message["transaction_id"])
    for position, item in enumerate(items):
        reference = references[position]
        problem = received.item_problems.get(position) or _item_problem(server, sender, item, now)
        if reference in used:
            refused[str(position)] = _refusal(reference, messages.DUPLICATE, "reference_id already used", now)
            continue
        used.add(reference)
        if problem is not None:
            refused[str(position)] = _refusal(reference, *problem, now)
            continue
        rows.append(
            G2pItemRow(
                sender_id=sender.sender_id,
                reference_id=reference,
                transaction_id=transaction_id,
                idempotency_key=messages.idempotency_key(sender.sender_id, reference),
                payer_fa=str(item["payer_fa"]),
                payee_fa=str(item["payee_fa"]),
                payee_name=item.get("payee_name"),
                amount=str(item["amount"]),
                currency=str(item["currency_code"]),
                note=str(item.get("note", "")),
                status=_PENDING,
                submitted=False,
                reason_code=None,
                reason_message=None,
                provider_reference=None,
                updated_at=now,
            )
        )
    return refused, rows


class _Race(Exception):
    """Another process admitted one of the references between our read and our write."""


async def accept_disburse(server: DisburseServer, raw: bytes, now: datetime) -> dict[str, Any]:
    """Check, store and announce a disburse request; the ACK body. Nothing is stored when it is refused."""
    received = messages.parse(raw, "g2p-disburse-request@1.0.0", action="disburse", items="disburse_request")
    sender = _authenticate(server, received, now)
    transaction_id = str(received.message["transaction_id"])
    correlation_id = str(uuid.uuid4())
    for _attempt in range(3):
        try:
            async with server.sessions.begin() as session:
                await _remember_message(session, sender.sender_id, str(received.header["message_id"]), now)
                refused, rows = await _admit(session, server, sender, received, now)
                try:
                    async with session.begin_nested():
                        session.add(
                            G2pTransactionRow(
                                sender_id=sender.sender_id,
                                transaction_id=transaction_id,
                                correlation_id=correlation_id,
                                references=[
                                    str(item["reference_id"]) for item in received.message["disburse_request"]
                                ],
                                refused=refused,
                                status="PDNG",
                                received_at=now,
                                completed_at=None,
                            )
                        )
                except IntegrityError:
                    raise G2pError(
                        "ERR_INVALID_REQUEST",
                        "payments.request.duplicate",
                        "this sender already used this transaction_id",
                        http_status=409,
                    ) from None
                try:
                    async with session.begin_nested():
                        session.add_all(rows)
                except IntegrityError:
                    raise _Race from None
                await outbox.enqueue(
                    session,
                    DISBURSE_TOPIC,
                    {"sender_id": sender.sender_id, "transaction_id": transaction_id},
                    key=correlation_id,
                )
        except _Race:
            continue
        server.wake.set()
        return messages.ack(now, transaction_id=transaction_id, correlation_id=correlation_id)
    raise G2pError(
        "ERR_SERVICE_UNAVAILABLE",
        "payments.provider.unavailable",
        "the references are being admitted by another request; send the message again",
        http_status=503,
    )


def _answer(row: G2pItemRow) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "reference_id": row.reference_id,
        "timestamp": wire_time(row.updated_at),
        "status": row.status,
        "amount": row.amount,
        "currency_code": row.currency,
        "payer_fa": row.payer_fa,
        "payee_fa": row.payee_fa,
    }
    if row.reason_code is not None:
        answer["status_reason_code"] = row.reason_code
    if row.reason_message is not None:
        answer["status_reason_message"] = row.reason_message[:999]
    return answer


async def _transaction_answers(session: AsyncSession, transaction: G2pTransactionRow) -> list[dict[str, Any]]:
    rows = {
        row.reference_id: row
        for row in await session.scalars(
            select(G2pItemRow).where(
                G2pItemRow.sender_id == transaction.sender_id,
                G2pItemRow.transaction_id == transaction.transaction_id,
            )
        )
    }
    answers = []
    for position, reference in enumerate(transaction.references):
        refused = transaction.refused.get(str(position))
        row = rows.get(reference)
        if refused is not None or row is None:
            answers.append(
                refused or _refusal(reference, messages.REFERENCE_NOT_FOUND, "no such item", _now())
            )
        else:
            answers.append(_answer(row))
    return answers


async def accept_status(server: DisburseServer, raw: bytes, now: datetime) -> dict[str, Any]:
    """Check a txn/status request and announce its answer (computed now); the ACK body."""
    received = messages.parse(raw, "g2p-disburse-txn-status-request@1.0.0", action="status")
    sender = _authenticate(server, received, now)
    asked = received.message["txnstatus_request"]
    search_type, attribute = asked["search_type"], asked["search_attribute"]
    if (search_type == "transaction_id") != isinstance(attribute, str):
        raise G2pError(
            "ERR_INVALID_REQUEST",
            "request.invalid",
            "search_attribute is a transaction id for transaction_id and a list for reference_id_list",
        )
    correlation_id = str(uuid.uuid4())
    header_status, reason = "COMPLETED", None
    async with server.sessions.begin() as session:
        await _remember_message(session, sender.sender_id, str(received.header["message_id"]), now)
        if isinstance(attribute, str):
            transaction = await session.get(G2pTransactionRow, (sender.sender_id, attribute))
            if transaction is None:
                answers: list[dict[str, Any]] = []
                header_status, reason = "REJECTED", messages.TRANSACTION_NOT_FOUND
            else:
                answers = await _transaction_answers(session, transaction)
        else:
            found = {
                row.reference_id: row
                for row in await session.scalars(
                    select(G2pItemRow).where(
                        G2pItemRow.sender_id == sender.sender_id,
                        G2pItemRow.reference_id.in_({str(value) for value in attribute}),
                    )
                )
            }
            answers = [
                _answer(found[str(value)])
                if str(value) in found
                else _refusal(str(value), messages.REFERENCE_NOT_FOUND, "no item has this reference_id", now)
                for value in attribute
            ]
        await outbox.enqueue(
            session,
            STATUS_TOPIC,
            {
                "sender_id": sender.sender_id,
                "transaction_id": str(received.message["transaction_id"]),
                "correlation_id": correlation_id,
                "status": header_status,
                "reason": reason,
                "answers": answers,
            },
            key=correlation_id,
        )
    server.wake.set()
    return messages.ack(
        now, transaction_id=str(received.message["transaction_id"]), correlation_id=correlation_id
    )


async def search_reference(
    server: DisburseServer,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    reference_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The signed answer about one item of the sender whose RFC 9421 signature the request carries."""
    if not _REFERENCE.fullmatch(reference_id):
        raise G2pError(
            "ERR_INVALID_REQUEST", "request.invalid_parameter", "reference_id is not a reference id"
        )

    def resolve(kid: str) -> Mapping[str, Any]:
        found = server.signer(kid)
        if found is None:
            raise SignatureError("auth.key_unknown", "no registered sender has this key")
        return found[1]

    try:
        kid = verify_request(method, url, headers, body, resolve, now=now)
    except SignatureError as error:
        raise G2pError("ERR_INVALID_SIGNATURE", error.reason_code, str(error), http_status=401) from None
    signer = server.signer(kid)
    if signer is None:  # pragma: no cover - verify_request resolved this kid a moment ago
        raise G2pError("ERR_INVALID_SIGNATURE", "auth.key_unknown", "unknown key", http_status=401)
    sender = signer[0]
    async with server.sessions() as session:
        row = await session.get(G2pItemRow, (sender.sender_id, reference_id))
    answer = (
        _answer(row)
        if row is not None
        else _refusal(reference_id, messages.REFERENCE_NOT_FOUND, "no item has this reference_id", now)
    )
    header = messages.new_header(
        "search",
        now=now,
        sender_id=server.system_id,
        receiver_id=sender.sender_id,
        status="COMPLETED",
        total_count=1,
        completed_count=0 if answer["status"] == _PENDING else 1,
    )
    message = {"transaction_id": row.transaction_id if row is not None else "", "disburse_response": [answer]}
    return messages.signed(header, message, server.key())


# --- paying and answering -------------------------------------------------------------------------


def _instruction(row: G2pItemRow) -> PaymentInstruction:
    return PaymentInstruction(
        idempotency_key=row.idempotency_key,
        payee=FinancialAddress.parse(row.payee_fa),
        amount=Money.parse(row.amount, row.currency),
        payee_name=row.payee_name,
        narrative=row.note,
        batch_reference=row.transaction_id,
    )


def _outcome(answer: ProviderStatus | ProviderError) -> tuple[str, str | None, str | None, str | None] | None:
    """The item's final (status, G2P code, message, provider reference), or None while it is open."""
    if isinstance(answer, ProviderError):
        if isinstance(answer, OutcomeUnknownError) or answer.retryable:
            return None
        return "RJCT", messages.g2p_reason(answer.reason_code), f"{answer.reason_code}: {answer}", None
    if answer.state is ProviderState.COMPLETED:
        return "SUCC", None, None, answer.provider_reference
    if answer.state in _FINAL_REASONS:
        code = answer.reason_code or _FINAL_REASONS[answer.state]
        text = f"{code}: {answer.message}" if answer.message else code
        return "RJCT", messages.g2p_reason(code), text, answer.provider_reference
    return None


async def _record(server: DisburseServer, row: G2pItemRow, answer: ProviderStatus | ProviderError) -> bool:
    outcome = _outcome(answer)
    if outcome is None:
        return False
    status, code, text, reference = outcome
    async with server.sessions.begin() as session:
        await session.execute(
            update(G2pItemRow)
            .where(
                G2pItemRow.sender_id == row.sender_id,
                G2pItemRow.reference_id == row.reference_id,
                G2pItemRow.status == _PENDING,
            )
            .values(
                status=status,
                reason_code=code,
                # A provider's words can be long: kept to the column, never a failed update.
                reason_message=text[:999] if text is not None else None,
                provider_reference=reference[:200] if reference is not None else None,
                updated_at=server.clock(),
            )
        )
    return True


async def _pay(server: DisburseServer, rows: Sequence[G2pItemRow]) -> int:
    """Submit the items never submitted, settle the others by status query; how many became final."""
    provider = server.provider
    capabilities = provider.capabilities
    fresh = [row for row in rows if not row.submitted]
    if fresh:
        async with server.sessions.begin() as session:
            for row in fresh:
                await session.execute(
                    update(G2pItemRow)
                    .where(G2pItemRow.sender_id == row.sender_id, G2pItemRow.reference_id == row.reference_id)
                    .values(submitted=True)
                )
    settled = 0
    size = max(1, capabilities.max_bulk)
    for start in range(0, len(fresh), size):
        chunk = fresh[start : start + size]
        try:
            answers = await provider.submit_many([_instruction(row) for row in chunk])
        except ProviderError as error:
            answers = [error] * len(chunk)
        for row, reply in zip(chunk, answers, strict=True):
            settled += await _record(server, row, reply)
    for row in rows:
        if not row.submitted:
            continue
        answer: ProviderStatus | ProviderError
        try:
            if capabilities.status_query:
                answer = await provider.status(row.idempotency_key)
                if answer.state is ProviderState.NOT_FOUND:
                    answer = await provider.submit(_instruction(row))
            elif capabilities.idempotency:
                answer = await provider.submit(_instruction(row))
            else:
                continue  # neither idempotent nor queryable: left for manual review
        except ProviderError as error:
            answer = error
        settled += await _record(server, row, answer)
    return settled


@dataclass
class _Tally:
    settled: int = 0
    delivered: int = 0
    waiting: int = 0
    failed: int = 0
    given_up: int = 0


async def _settle(
    server: DisburseServer, message: OutboxMessage, problem: str | None, now: datetime, tally: _Tally
) -> None:
    # A message given up on keeps its answer available through txn/status.
    async with server.sessions.begin() as session:
        outcome = await outbox.record_attempt(
            session, message, problem, now=now, delays=RETRY_DELAYS, max_attempts=MAX_ATTEMPTS
        )
    if outcome is outbox.Attempt.DELIVERED:
        tally.delivered += 1
    elif outcome is outbox.Attempt.GIVEN_UP:
        tally.given_up += 1
        _log.warning("G2P callback given up", extra={"event": "g2p_callback_given_up"})
    else:
        tally.failed += 1


async def _on_disburse(
    server: DisburseServer, client: httpx.AsyncClient, message: OutboxMessage, tally: _Tally
) -> None:
    payload = message.payload
    key = (payload["sender_id"], payload["transaction_id"])
    async with server.sessions() as session:
        transaction = await session.get(G2pTransactionRow, key)
        pending = list(
            await session.scalars(
                select(G2pItemRow).where(
                    G2pItemRow.sender_id == key[0],
                    G2pItemRow.transaction_id == key[1],
                    G2pItemRow.status == _PENDING,
                )
            )
        )
    sender = server.senders.get(key[0])
    if transaction is None or sender is None:
        await _settle(server, message, None, server.clock(), _Tally())
        return
    if pending:
        tally.settled += await _pay(server, pending)
    async with server.sessions() as session:
        answers = await _transaction_answers(session, transaction)
    now = server.clock()
    if any(answer["status"] == _PENDING for answer in answers):
        # Items still open at the provider: look again later; the outbox message is the reminder. Its
        # attempts count deliveries only, so a long wait at the provider never uses up the callback's.
        polls = int(payload.get("polls", 0)) + 1
        async with server.sessions.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id)
                .values(
                    available_at=now + outbox.backoff(_POLL_DELAYS, polls),
                    attempts=0,
                    last_error="items in progress",
                    payload={**payload, "polls": polls},
                )
            )
        tally.waiting += 1
        return
    header = messages.new_header(
        "on-disburse",
        now=now,
        sender_id=server.system_id,
        receiver_id=sender.sender_id,
        status="COMPLETED",
        total_count=len(answers),
        completed_count=len(answers),
    )
    body = {
        "transaction_id": transaction.transaction_id,
        "correlation_id": transaction.correlation_id,
        "disburse_response": answers,
    }
    problem = await egress.post_signed(
        client,
        server.key(),
        f"{sender.callback_url.rstrip('/')}/on-disburse",
        messages.signed(header, body, server.key()),
        transaction.correlation_id,
        allow_private_networks=server.allow_private_networks,
    )
    if problem is None:
        async with server.sessions.begin() as session:
            await session.execute(
                update(G2pTransactionRow)
                .where(G2pTransactionRow.sender_id == key[0], G2pTransactionRow.transaction_id == key[1])
                .values(status="DONE", completed_at=now)
            )
    await _settle(server, message, problem, now, tally)


async def _on_status(
    server: DisburseServer, client: httpx.AsyncClient, message: OutboxMessage, tally: _Tally
) -> None:
    payload = message.payload
    sender = server.senders.get(payload["sender_id"])
    now = server.clock()
    if sender is None:
        await _settle(server, message, None, now, _Tally())
        return
    answers = payload["answers"]
    extra = {"status_reason_code": payload["reason"]} if payload["reason"] else {}
    header = messages.new_header(
        "on-status",
        now=now,
        sender_id=server.system_id,
        receiver_id=sender.sender_id,
        status=payload["status"],
        total_count=len(answers),
        completed_count=sum(1 for answer in answers if answer["status"] != _PENDING),
        **extra,
    )
    body = {
        "transaction_id": payload["transaction_id"],
        "correlation_id": payload["correlation_id"],
        "txnstatus_response": answers,
    }
    problem = await egress.post_signed(
        client,
        server.key(),
        f"{sender.callback_url.rstrip('/')}/disburse/txn/on-status",
        messages.signed(header, body, server.key()),
        payload["correlation_id"],
        allow_private_networks=server.allow_private_networks,
    )
    await _settle(server, message, problem, now, tally)


async def dispatch_once(
    server: DisburseServer, client: httpx.AsyncClient, *, limit: int = 20
) -> DispatchReport:
    """One round: pay the items of acknowledged batches, then deliver the callbacks that are due."""
    async with server.sessions.begin() as session:
        claimed = await outbox.claim(
            session, topics=[DISBURSE_TOPIC, STATUS_TOPIC], limit=limit, lease=_LEASE
        )
    tally = _Tally()
    for message in claimed:
        if message.topic == DISBURSE_TOPIC:
            await _on_disburse(server, client, message, tally)
        else:
            await _on_status(server, client, message, tally)
    return DispatchReport(tally.settled, tally.delivered, tally.waiting, tally.failed, tally.given_up)


async def _loop(server: DisburseServer, interval: timedelta) -> None:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        while True:
            server.wake.clear()
            try:
                await dispatch_once(server, client)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning(
                    "G2P dispatch round failed",
                    extra={"event": "g2p_dispatch_failed", "exception_type": type(error).__name__},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wake.wait(), interval.total_seconds())


@asynccontextmanager
async def running(
    server: DisburseServer, *, interval: timedelta = timedelta(seconds=2)
) -> AsyncIterator[None]:
    """Pay and deliver in the background for as long as the context is open (a block's lifespan)."""
    server.wake = asyncio.Event()
    task = asyncio.create_task(_loop(server, interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- HTTP -----------------------------------------------------------------------------------------


def capabilities_entry(server: DisburseServer) -> dict[str, Any]:
    """What the payments block declares of this API in ``/.well-known/dpi-capabilities``."""
    return capabilities_for(server.system_id)


def capabilities_for(system_id: str) -> dict[str, Any]:
    """The capabilities entry of a server whose ``receiver_id`` is ``system_id``."""
    return {
        "g2p_disburse": {
            "version": messages.G2P_VERSION,
            "base_url": "/payments/g2p",
            "receiver_id": system_id,
            "max_items": messages.MAX_ITEMS,
            "jwks_uri": "/.well-known/jwks.json",
        }
    }


def _contract(
    summary: str, response: str, request: str | None, parameters: tuple[Parameter, ...] = ()
) -> Any:
    return Contract(
        summary,
        {200: response, **dict.fromkeys((400, 401, 409, 503), _ACK_SCHEMA)},
        request=request,
        parameters=parameters,
        tags=_TAGS,
        errors=(405, 413, 415, 500),
    ).as_opt()


def routes(server: DisburseServer) -> list[HTTPRouteHandler]:
    """The G2P Connect disburse handlers bound to ``server`` (mounted under the payments block's prefix)."""

    async def answered(
        request: Request[Any, Any, Any], work: Callable[[bytes, datetime], Any]
    ) -> Response[Any]:
        now = server.clock()
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise DpiError("request.unsupported_media_type", "the body is application/json")
        try:
            body = await work(await request.body(), now)
        except G2pError as error:
            if error.reason_code == "request.malformed_json":
                # Not a G2P Connect message at all: the kernel's refusal, like any other endpoint's.
                raise DpiError(error.reason_code, error.message) from None
            return Response(
                messages.nack(error, now), status_code=error.http_status, media_type="application/json"
            )
        return Response(body, status_code=200, media_type="application/json")

    @post(
        "/g2p/disburse",
        status_code=200,
        opt=_contract(
            "G2P Connect disburse: acknowledged, then every item answered by a signed on-disburse callback",
            _ACK_SCHEMA,
            "g2p-disburse-request@1.0.0",
        ),
    )
    async def disburse(request: Request[Any, Any, Any]) -> Response[Any]:
        return await answered(request, lambda raw, now: accept_disburse(server, raw, now))

    @post(
        "/g2p/disburse/txn/status",
        status_code=200,
        opt=_contract(
            "G2P Connect disburse status: acknowledged, then answered by a signed on-status callback",
            _ACK_SCHEMA,
            "g2p-disburse-txn-status-request@1.0.0",
        ),
    )
    async def txn_status(request: Request[Any, Any, Any]) -> Response[Any]:
        return await answered(request, lambda raw, now: accept_status(server, raw, now))

    @get(
        "/g2p/disburse/search/{reference_id:str}",
        opt=_contract(
            "G2P Connect disburse search by reference id: one item of the signing sender, signed",
            "g2p-disburse-search-response@1.0.0",
            None,
            (
                Parameter(
                    "reference_id",
                    "path",
                    {"type": "string", "maxLength": 99, "pattern": _REFERENCE.pattern},
                    description="The sender's reference id of the item.",
                ),
            ),
        ),
    )
    async def search(request: Request[Any, Any, Any]) -> Response[Any]:
        now = server.clock()
        try:
            body = await search_reference(
                server,
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                body=await request.body(),
                reference_id=str(request.path_params["reference_id"]),
                now=now,
            )
        except G2pError as error:
            return Response(
                messages.nack(error, now), status_code=error.http_status, media_type="application/json"
            )
        return Response(body, status_code=200, media_type="application/json")

    return [disburse, txn_status, search]
