"""The DCI message envelope (SPDCI registry API 1.0, https://github.com/spdci/standards): ``{signature,
header, message}``, how a received one is checked, and how ours are built and signed.

The signature is a detached JWS (RFC 7515 Appendix F, https://www.rfc-editor.org/rfc/rfc7515) over the
RFC 8785 canonical JSON of ``{"header": ..., "message": ...}``, as the dpi signature profile
(``standards/profiles/signature.md``) describes: EdDSA, ES256 or PS256, the key found by ``kid`` in the
sender's registered JWK Set. Answers and callbacks are signed the same way with this system's active key
(published at ``/.well-known/jwks.json``).

A received envelope is checked in a fixed order; the first failure decides the answer, an HTTP 4xx with
the ``dci-error`` body and the DCI code:

1. JSON and envelope structure (``err.request.bad``, 400); header ``version`` 1.0.0
   (``err.version.not_supported``, 400); header ``action`` matching the endpoint (``rjct.action.invalid``,
   400);
2. the sender is registered and active (``err.sender_id.invalid``, 401);
3. the signature is present (``err.signature.missing``, 401) and verifies (``err.signature.invalid``, 401);
4. ``message_ts`` lies within the window around our clock (``rjct.message_ts.invalid``, 400);
5. the sender is granted this registry (``err.request.forbidden``, 403);
6. ``message_id`` was not received from this sender within the window (``rjct.message_id.duplicate``, 409).

Problems inside one item of a batch (a ``search_request`` entry) are not envelope problems: they are
reported in that item's answer, and the other items are answered normally.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

import standards
from dpi.errors import MAX_JSON_DEPTH, DpiError, ErrorDetail, deeper_than
from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_detached, verify_detached
from registry.dci.senders import Sender, find_sender
from registry.models import DciMessageRow

__all__ = [
    "DCI_VERSION",
    "MESSAGE_WINDOW",
    "Received",
    "error_document",
    "new_header",
    "parse",
    "record_message_id",
    "signed",
    "verify",
    "wire_time",
]

DCI_VERSION: Final = "1.0.0"
MESSAGE_WINDOW: Final = timedelta(minutes=5)
_MAX_DETAILS: Final = 20


def wire_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as DCI timestamps are written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Received:
    """An envelope that passed the structural checks: its parts, and the problems of each batch item
    (by index) that its schema found."""

    document: Mapping[str, Any]
    item_problems: Mapping[int, str] = field(default_factory=dict)

    @property
    def header(self) -> Mapping[str, Any]:
        header: Mapping[str, Any] = self.document["header"]
        return header

    @property
    def message(self) -> Mapping[str, Any]:
        message: Mapping[str, Any] = self.document["message"]
        return message


def parse(raw: bytes, schema: str, *, action: str, items: str | None = None) -> Received:
    """Step 1: ``raw`` as an envelope of ``schema`` for ``action``. Schema problems under
    ``/message/<items>/<n>`` belong to item ``n`` and are returned, not raised."""
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DpiError("err.request.bad", "the body is not JSON") from None
    if not isinstance(document, dict) or deeper_than(document, MAX_JSON_DEPTH):
        raise DpiError("err.request.bad", "the body is not a DCI envelope")
    validator = standards.validator(schema)
    item_problems: dict[int, list[str]] = defaultdict(list)
    if not validator.is_valid(document):
        envelope: list[ErrorDetail] = []
        prefix = f"/message/{items}/" if items else None
        for issue in validator.issues(document, limit=200):
            head, _, _ = issue.pointer.removeprefix(prefix or "").partition("/")
            if prefix and issue.pointer.startswith(prefix) and head.isdigit():
                item_problems[int(head)].append(f"{issue.pointer}: {issue.message}")
            else:
                envelope.append(ErrorDetail(issue.pointer, issue.reason_code, issue.message))
        if envelope:
            raise DpiError("err.request.bad", details=envelope[:_MAX_DETAILS])
    header = document["header"]
    if header["version"] != DCI_VERSION:
        raise DpiError("err.version.not_supported", f"this registry speaks DCI {DCI_VERSION}")
    if header["action"] != action:
        raise DpiError("rjct.action.invalid", f"this endpoint takes action {action!r}")
    return Received(document, {index: "; ".join(found[:3]) for index, found in item_problems.items()})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _message_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


async def verify(
    session: AsyncSession, received: Received, *, registry: str, now: datetime, window: timedelta
) -> Sender:
    """Steps 2 to 5: the sender, its signature, the time of the message and the sender's grant."""
    sender = await find_sender(session, str(received.header["sender_id"]))
    if sender is None:
        raise DpiError("err.sender_id.invalid")
    signature = received.document.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        raise DpiError("err.signature.missing")
    signed_part = {"header": received.header, "message": received.message}
    try:
        verify_detached(signed_part, signature, sender.jwks)
    except SignatureError as error:
        raise DpiError("err.signature.invalid", str(error)) from None
    sent_at = _message_time(str(received.header["message_ts"]))
    if sent_at is None or abs(sent_at - now) > window:
        raise DpiError("rjct.message_ts.invalid", f"message_ts must be within {window} of {wire_time(now)}")
    if not sender.may_search(registry):
        raise DpiError("err.request.forbidden")
    return sender


async def record_message_id(
    session: AsyncSession, sender_id: str, message_id: str, *, now: datetime, window: timedelta
) -> None:
    """Step 6, in the caller's transaction: remember ``message_id``; refused if already received.

    Ids older than twice the window are forgotten: a message that old is refused by its timestamp.
    """
    await session.execute(delete(DciMessageRow).where(DciMessageRow.received_at < now - 2 * window))
    try:
        async with session.begin_nested():
            await session.execute(
                insert(DciMessageRow).values(sender_id=sender_id, message_id=message_id, received_at=now)
            )
    except IntegrityError:
        raise DpiError("rjct.message_id.duplicate") from None


def new_header(
    action: str, *, now: datetime, receiver_id: str, sender_id: str, **members: Any
) -> dict[str, Any]:
    """The header of a message we send (an answer, a callback)."""
    return {
        "version": DCI_VERSION,
        "message_id": str(uuid.uuid4()),
        "message_ts": wire_time(now),
        "action": action,
        "sender_id": sender_id,
        "receiver_id": receiver_id,
        "is_msg_encrypted": False,
        **members,
    }


def signed(header: Mapping[str, Any], message: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The envelope of ``header`` and ``message`` with our detached JWS over both."""
    body = {"header": dict(header), "message": dict(message)}
    return {"signature": sign_detached(body, key), **body}


def error_document(
    error: DpiError, *, now: datetime, language: str = "en", correlation_id: str | None = None
) -> dict[str, Any]:
    """The ``dci-error`` body of a refused envelope: a DCI ``ERR`` acknowledgement with the code."""
    message: dict[str, Any] = {
        "ack_status": "ERR",
        "timestamp": wire_time(now),
        "error": {
            "code": error.reason_code,
            "message": error.custom_message or error.reason.message(language),
        },
    }
    if correlation_id is not None:
        message["correlation_id"] = correlation_id
    body: dict[str, Any] = {"message": message}
    if error.details:
        body["details"] = [detail.as_document() for detail in error.details]
    return body
