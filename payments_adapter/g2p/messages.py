"""G2P Connect disburse messages (G2P Connect disburse API 0.1.0, ``api/g2p-disburse.yaml`` of
https://github.com/G2P-Connect/specs): the ``{signature, header, message}`` envelope, how a received one is
checked, how ours are built and signed, and the status and reason codes of its items.

The signature is a detached JWS (RFC 7515 Appendix F, https://www.rfc-editor.org/rfc/rfc7515) over the
RFC 8785 canonical JSON of ``{"header": ..., "message": ...}`` (the dpi signature profile,
``standards/profiles/signature.md``), made with a key of the sender's registered JWK Set. Answers and
callbacks are signed the same way with this system's active key (published at ``/.well-known/jwks.json``).

A refused envelope is answered ``NACK`` with the G2P Connect error code (``ERR_INVALID_SIGNATURE``, ...) and
our reason code; a problem inside one ``disburse_request`` item refuses that item only, with the item's
``status_reason_code`` (``RJCT_AMOUNT_INVALID``, ...), and the other items go on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

import standards
from dpi.errors import MAX_JSON_DEPTH, deeper_than
from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_detached, verify_detached

__all__ = [
    "AMOUNT_INVALID",
    "CURRENCY_INVALID",
    "DUPLICATE",
    "G2P_VERSION",
    "INSTRUCTION_INVALID",
    "MAX_ITEMS",
    "MESSAGE_WINDOW",
    "PAYEE_FA_INVALID",
    "PAYER_FA_INVALID",
    "PAYMENT_REJECTED",
    "REFERENCE_NOT_FOUND",
    "SCHEDULE_INVALID",
    "TRANSACTION_NOT_FOUND",
    "G2pError",
    "Received",
    "ack",
    "g2p_reason",
    "idempotency_key",
    "nack",
    "new_header",
    "parse",
    "payments_reason",
    "signed",
    "verify_signature",
    "wire_time",
]

G2P_VERSION: Final = "0.1.0"
MESSAGE_WINDOW: Final = timedelta(minutes=5)
MAX_ITEMS: Final = 1000

# DisburseStatusReasonCode of g2p-disburse.yaml (the spec's own spelling, SHCHEDULE included).
PAYER_FA_INVALID: Final = "RJCT_PAYER_FA_INVALID"
PAYEE_FA_INVALID: Final = "RJCT_PAYEE_FA_INVALID"
AMOUNT_INVALID: Final = "RJCT_AMOUNT_INVALID"
SCHEDULE_INVALID: Final = "RJCT_SHCHEDULE_TIMESTAMP_INVALID"
CURRENCY_INVALID: Final = "RJCT_CURRENCY_CODE_INVALID"
DUPLICATE: Final = "RJCT_REFERENCE_ID_DUPLICATE"
REFERENCE_NOT_FOUND: Final = "UKWN_REFERENCE_ID_NOT_FOUND"
TRANSACTION_NOT_FOUND: Final = "UKWN_TRANSACTION_ID_NOT_FOUND"
# Ours, in the same form, where the spec's list ("etc.") has nothing that fits.
INSTRUCTION_INVALID: Final = "RJCT_INSTRUCTION_INVALID"
PAYMENT_REJECTED: Final = "RJCT_PAYMENT_REJECTED"

_REFERENCE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,98}$")
_FIELD_CODES: Final[Mapping[str, str]] = {
    "payer_fa": PAYER_FA_INVALID,
    "payee_fa": PAYEE_FA_INVALID,
    "amount": AMOUNT_INVALID,
    "currency_code": CURRENCY_INVALID,
    "scheduled_timestamp": SCHEDULE_INVALID,
}
# Our payments reason codes as G2P Connect item codes and back: the G2P Connect tables of the
# payment-reasons vocabulary of standards.
_G2P_BY_PAYMENTS: Final[Mapping[str, str | None]] = MappingProxyType(
    {code: entry["g2p_connect"] for code, entry in standards.payment_reasons().items()}
)
_PAYMENTS_BY_G2P: Final[Mapping[str, str]] = MappingProxyType(
    {code: entry["reason_code"] for code, entry in standards.payment_reasons_inbound("g2p_connect").items()}
)


class G2pError(Exception):
    """A refused envelope: the G2P Connect error ``code``, our ``reason_code`` and the HTTP status."""

    def __init__(self, code: str, reason_code: str, message: str, *, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.reason_code = reason_code
        self.message = message
        self.http_status = http_status


def wire_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _time(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class Received:
    """An envelope that passed the structural checks, with the reason code of each refused item (by
    position in the batch)."""

    document: Mapping[str, Any]
    item_problems: Mapping[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def header(self) -> Mapping[str, Any]:
        header: Mapping[str, Any] = self.document["header"]
        return header

    @property
    def message(self) -> Mapping[str, Any]:
        message: Mapping[str, Any] = self.document["message"]
        return message

    @property
    def sent_at(self) -> datetime | None:
        return _time(self.header.get("timestamp"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(raw: bytes, schema: str, *, action: str, items: str | None = None) -> Received:
    """``raw`` as an envelope of ``schema`` for ``action``. A schema problem inside item ``n`` of
    ``message.<items>`` (other than its reference id) refuses that item only and is returned."""
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise G2pError("ERR_INVALID_REQUEST", "request.malformed_json", "the body is not JSON") from None
    if not isinstance(document, dict) or deeper_than(document, MAX_JSON_DEPTH):
        raise G2pError("ERR_INVALID_REQUEST", "request.invalid", "the body is not a G2P Connect envelope")
    header = document.get("header")
    if isinstance(header, dict) and isinstance(header.get("action"), str) and header["action"] != action:
        raise G2pError(
            "ERR_INVALID_ACTION", "payments.g2p.action_invalid", f"this endpoint takes action {action!r}"
        )
    if isinstance(header, dict) and "version" in header and header["version"] != G2P_VERSION:
        raise G2pError(
            "ERR_INVALID_REQUEST",
            "payments.g2p.version_not_supported",
            f"this system speaks G2P Connect {G2P_VERSION}",
        )
    validator = standards.validator(schema)
    problems: dict[int, tuple[str, str]] = {}
    if not validator.is_valid(document):
        prefix = f"/message/{items}/" if items else "\0"
        for issue in validator.issues(document, limit=200):
            position, _, member = issue.pointer.removeprefix(prefix).partition("/")
            member = member.split("/", 1)[0]
            if issue.pointer.startswith(prefix) and position.isdigit() and member != "reference_id":
                if not member:
                    # A missing member: the item's own problem, if it can be answered by its reference.
                    if not _answerable(document, items or "", int(position)):
                        raise G2pError(
                            "ERR_INVALID_REQUEST", "request.invalid", f"{issue.pointer}: {issue.message}"
                        )
                    member = next((name for name in _FIELD_CODES if f"'{name}'" in issue.message), "")
                problems.setdefault(
                    int(position),
                    (_FIELD_CODES.get(member, INSTRUCTION_INVALID), f"{member}: {issue.message}"),
                )
                continue
            if issue.pointer.startswith("/signature") or (
                issue.pointer == "" and "signature" in issue.message
            ):
                raise G2pError(
                    "ERR_INVALID_SIGNATURE",
                    "auth.signature_missing",
                    "the envelope carries no signature",
                    http_status=401,
                )
            raise G2pError(
                "ERR_INVALID_REQUEST", "request.invalid", f"{issue.pointer or '/'}: {issue.message}"
            )
    return Received(document, problems)


def _answerable(document: Mapping[str, Any], items: str, position: int) -> bool:
    """Whether item ``position`` of ``message.<items>`` has a reference id its answer can name."""
    message = document.get("message")
    entries = message.get(items) if isinstance(message, dict) else None
    entry = entries[position] if isinstance(entries, list) and position < len(entries) else None
    reference = entry.get("reference_id") if isinstance(entry, dict) else None
    return isinstance(reference, str) and _REFERENCE.fullmatch(reference) is not None


def verify_signature(received: Received, jwks: Mapping[str, Any]) -> None:
    """The envelope's signature verifies with one of the sender's keys; ``G2pError`` (401) otherwise."""
    signature = received.document.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        raise G2pError(
            "ERR_INVALID_SIGNATURE",
            "auth.signature_missing",
            "the envelope carries no signature",
            http_status=401,
        )
    try:
        verify_detached({"header": received.header, "message": received.message}, signature, jwks)
    except SignatureError as error:
        raise G2pError("ERR_INVALID_SIGNATURE", error.reason_code, str(error), http_status=401) from None


def new_header(
    action: str,
    *,
    now: datetime,
    sender_id: str,
    receiver_id: str,
    status: str,
    total_count: int,
    completed_count: int,
    **members: Any,
) -> dict[str, Any]:
    """The header of a callback or answer we send (MsgCallbackReqHeader)."""
    return {
        "version": G2P_VERSION,
        "message_id": str(uuid.uuid4()),
        "timestamp": wire_time(now),
        "action": action,
        "sender_id": sender_id,
        "receiver_id": receiver_id,
        "status": status,
        "total_count": total_count,
        "completed_count": completed_count,
        **members,
    }


def signed(header: Mapping[str, Any], message: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The envelope of ``header`` and ``message`` with our detached JWS over both."""
    body = {"header": dict(header), "message": dict(message)}
    return {"signature": sign_detached(body, key), **body}


def ack(now: datetime, *, transaction_id: str, correlation_id: str) -> dict[str, Any]:
    """The ``g2p-disburse-ack`` body of an accepted request: a signed callback follows."""
    return {
        "message": {
            "ack": {"status": "ACK"},
            "timestamp": wire_time(now),
            "transaction_id": transaction_id,
            "correlation_id": correlation_id,
        }
    }


def nack(error: G2pError, now: datetime, *, transaction_id: str | None = None) -> dict[str, Any]:
    """The ``g2p-disburse-ack`` body of a refused request: NACK, the G2P Connect code and ours."""
    message: dict[str, Any] = {"ack": {"status": "NACK"}, "timestamp": wire_time(now)}
    if transaction_id is not None:
        message["transaction_id"] = transaction_id[:200]
    return {
        "message": message,
        "error": {"code": error.code, "message": error.message[:999], "reason_code": error.reason_code},
    }


def g2p_reason(payments_code: str | None) -> str:
    """The G2P Connect item reason code for one of our ``payments.*`` reason codes."""
    return _G2P_BY_PAYMENTS.get(payments_code or "") or PAYMENT_REJECTED


def payments_reason(g2p_code: str | None, message: str | None = None) -> str:
    """Our ``payments.*`` reason code for a G2P Connect item answer: the one our provider put at the start
    of ``status_reason_message`` when there is one, else the closest to the G2P Connect code."""
    head = (message or "").split(":", 1)[0].strip()
    if re.fullmatch(r"payments(\.[a-z][a-z0-9_]*)+", head):
        return head
    return _PAYMENTS_BY_G2P.get(g2p_code or "", "payments.payee.rejected")


def idempotency_key(sender_id: str, reference_id: str) -> str:
    """The payment's idempotency key at the provider: one per (sender, reference_id), so an item the
    dispatcher submits again after a crash is the same payment to the provider."""
    digest = hashlib.sha256(f"{sender_id}\n{reference_id}".encode()).digest()
    return "g2p-" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:31]
