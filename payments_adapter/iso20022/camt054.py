"""ISO 20022 camt.054.001.08, BankToCustomerDebitCreditNotificationV08: the bank's word on each booking.

https://www.iso20022.org/iso-20022-message-definitions (Cash Management, camt.054.001.08). Each
notification lists entries (``Ntry``) on the payer's account; only booked ones (``Sts/Cd`` = ``BOOK``)
are read. Each transaction of an entry (``NtryDtls/TxDtls``) names the payment by ``Refs/EndToEndId``
(our idempotency key). Reconciliation needs three kinds:

- a debit (``CdtDbtInd`` = ``DBIT``): the payment left the account;
- a return (``RtrInf`` present, with its reason ``RtrInf/Rsn/Cd``): the receiving side sent it back;
- a reversal (``RvslInd`` = true on a credit): the bank undid the debit.

Credits that are neither (the programme's account being funded) are not payments and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from lxml import etree

from payments_adapter.contract import Money, StatementEntry, StatementEntryKind
from payments_adapter.iso20022.documents import (
    DEFAULT_MAX_FILE_BYTES,
    Document,
    Iso20022FileError,
    iso_date,
    iso_datetime,
    read_document,
    start_of_day,
)
from payments_adapter.iso20022.reasons import iso_reason

__all__ = ["CAMT054", "Notification", "notification", "read_camt054"]

CAMT054: Final = "camt.054.001.08"
# ISO 20022's placeholder for a reference the originator did not give.
_NOT_PROVIDED: Final = "NOTPROVIDED"


@dataclass(frozen=True)
class Notification:
    """A camt.054 as read: its identification and the payment entries it books."""

    message_id: str
    created_at: datetime
    entries: tuple[StatementEntry, ...]


def _money(document: Document, element: etree._Element | None) -> Money | None:
    if element is None or element.text is None:
        return None
    try:
        return Money(Decimal(element.text.strip()), element.get("Ccy", ""))
    except (InvalidOperation, ValueError) as error:
        raise Iso20022FileError(
            "payments.file.invalid", f"amount {element.text!r} is unreadable: {error}"
        ) from None


def _when(document: Document, entry: etree._Element, fallback: datetime) -> datetime:
    for path in ("BookgDt", "ValDt"):
        moment = document.text(entry, f"{path}/DtTm")
        if moment is not None:
            return iso_datetime(moment)
        day = document.text(entry, f"{path}/Dt")
        if day is not None:
            return start_of_day(iso_date(day))
    return fallback


def _kind(indicator: str | None, reversal: bool, returned: bool) -> StatementEntryKind | None:
    if returned:
        return StatementEntryKind.RETURN
    if reversal:
        # A reversal of a debit is booked as a credit; a reversed credit is not a payment of ours.
        return StatementEntryKind.REVERSAL if indicator == "CRDT" else None
    return StatementEntryKind.DEBIT if indicator == "DBIT" else None


def _entries(document: Document, entry: etree._Element, created_at: datetime) -> list[StatementEntry]:
    indicator = document.text(entry, "CdtDbtInd")
    reversal = document.text(entry, "RvslInd") in ("true", "1")
    booked_at = _when(document, entry, created_at)
    entry_reference = document.text(entry, "AcctSvcrRef") or document.text(entry, "NtryRef")
    transactions = [
        tx for details in document.find_all(entry, "NtryDtls") for tx in document.find_all(details, "TxDtls")
    ]
    entry_amount = _money(document, document.find(entry, "Amt"))
    assert entry_amount is not None  # the XSD requires it
    if not transactions:
        kind = _kind(indicator, reversal, returned=False)
        narrative = document.text(entry, "AddtlNtryInf") or ""
        if kind is None:
            return []
        return [StatementEntry(None, entry_amount, kind, booked_at, entry_reference, None, narrative)]
    found: list[StatementEntry] = []
    for transaction in transactions:
        returned = document.find(transaction, "RtrInf") is not None
        kind = _kind(document.text(transaction, "CdtDbtInd") or indicator, reversal, returned)
        if kind is None:
            continue
        amount = (
            _money(document, document.find(transaction, "Amt"))
            or _money(document, document.find(transaction, "AmtDtls/TxAmt/Amt"))
            or (entry_amount if len(transactions) == 1 else None)
        )
        if amount is None:
            raise Iso20022FileError(
                "payments.file.invalid", "an entry of several transactions gives no amount for one of them"
            )
        key = document.text(transaction, "Refs/EndToEndId")
        reason_code: str | None = None
        if returned:
            code = document.text(transaction, "RtrInf/Rsn/Cd") or document.text(
                transaction, "RtrInf/Rsn/Prtry"
            )
            reason_code = iso_reason(code).reason_code
        narrative = " ".join(
            (line.text or "").strip() for line in document.find_all(transaction, "RmtInf/Ustrd")
        ).strip() or (document.text(transaction, "AddtlTxInf") or "")
        found.append(
            StatementEntry(
                idempotency_key=None if key in (None, _NOT_PROVIDED) else key,
                amount=amount,
                kind=kind,
                booked_at=booked_at,
                provider_reference=document.text(transaction, "Refs/AcctSvcrRef") or entry_reference,
                reason_code=reason_code,
                narrative=narrative,
            )
        )
    return found


def read_camt054(content: bytes, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Notification:
    """Read the booked payment entries of a camt.054.001.08 (refused with ``payments.file.*`` if invalid)."""
    return notification(read_document(content, accept={CAMT054}, max_bytes=max_bytes))


def notification(document: Document) -> Notification:
    """The entries of a camt.054 already read by :func:`.read_document`."""
    root = document.find(document.root, "BkToCstmrDbtCdtNtfctn")
    assert root is not None  # the XSD requires it
    created_at = iso_datetime(document.text(root, "GrpHdr/CreDtTm"))
    entries: list[StatementEntry] = []
    for account in document.find_all(root, "Ntfctn"):
        for entry in document.find_all(account, "Ntry"):
            if document.text(entry, "Sts/Cd") != "BOOK":
                continue
            entries.extend(_entries(document, entry, created_at))
    return Notification(
        message_id=document.text(root, "GrpHdr/MsgId") or "",
        created_at=created_at,
        entries=tuple(entries),
    )
