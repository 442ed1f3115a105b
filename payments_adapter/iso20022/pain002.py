"""ISO 20022 pain.002, CustomerPaymentStatusReport: what the bank says about a pain.001 it received.

https://www.iso20022.org/iso-20022-message-definitions (Payments Initiation, pain.002.001.12; the
older pain.002.001.03 that many banks still send has the same shape and is read the same way). A status
is reported at three levels: the whole original message (``OrgnlGrpInfAndSts/GrpSts``), one payment
information block (``OrgnlPmtInfAndSts/PmtInfSts``) and one transaction (``TxInfAndSts/TxSts``, named by
its ``OrgnlEndToEndId``, our idempotency key), each with status reasons (``StsRsnInf/Rsn/Cd``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lxml import etree

from payments_adapter.contract import ProviderState, ProviderStatus
from payments_adapter.iso20022.documents import DEFAULT_MAX_FILE_BYTES, Document, iso_datetime, read_document
from payments_adapter.iso20022.reasons import IsoReason, iso_reason, iso_state

__all__ = [
    "PAIN002_VERSIONS",
    "PaymentInformationStatus",
    "ReportedStatus",
    "StatusReport",
    "TransactionStatus",
    "read_pain002",
    "status_report",
]

PAIN002_VERSIONS: Final = frozenset({"pain.002.001.12", "pain.002.001.03"})


@dataclass(frozen=True)
class ReportedStatus:
    """A status code with its first reason, at whichever level the report gave it."""

    status_code: str
    reason: IsoReason | None
    additional_information: str = ""

    @property
    def state(self) -> ProviderState | None:
        """What the code means for a payment; ``None`` for a code the table does not know."""
        return iso_state(self.status_code)

    def provider_status(self, *, reference: str | None, at: datetime) -> ProviderStatus | None:
        """The status this report gives a payment it covers (``None`` when the code is unknown)."""
        state = self.state
        if state is None:
            return None
        reason_code: str | None = None
        message = f"ISO 20022 status {self.status_code}"
        if self.reason is not None:
            reason_code = self.reason.reason_code
            message += f", reason {self.reason.iso_code or '-'} ({self.reason.name})"
        elif state is not ProviderState.ACCEPTED and state is not ProviderState.COMPLETED:
            reason_code = iso_reason(None).reason_code
        if self.additional_information:
            message += f": {self.additional_information}"
        return ProviderStatus(state, reason_code, reference, message, at)


@dataclass(frozen=True)
class TransactionStatus:
    end_to_end_id: str
    status: ReportedStatus | None
    account_servicer_reference: str | None = None


@dataclass(frozen=True)
class PaymentInformationStatus:
    payment_information_id: str
    status: ReportedStatus | None
    transactions: tuple[TransactionStatus, ...]


@dataclass(frozen=True)
class StatusReport:
    """A pain.002 as read: its own identification and the statuses at each level."""

    message: str
    message_id: str
    created_at: datetime
    original_message_id: str
    group_status: ReportedStatus | None
    payment_information: tuple[PaymentInformationStatus, ...]


def _reported(document: Document, element: etree._Element, code_path: str) -> ReportedStatus | None:
    code = document.text(element, code_path)
    if code is None:
        return None
    reason_element = document.find(element, "StsRsnInf")
    reason: IsoReason | None = None
    additional = ""
    if reason_element is not None:
        iso_code = document.text(reason_element, "Rsn/Cd")
        proprietary = document.text(reason_element, "Rsn/Prtry")
        reason = iso_reason(iso_code) if iso_code or proprietary is None else iso_reason(proprietary)
        additional = " ".join(
            (line.text or "").strip() for line in document.find_all(reason_element, "AddtlInf")
        ).strip()
    return ReportedStatus(code, reason, additional)


def read_pain002(content: bytes, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> StatusReport:
    """Read a pain.002 status report (refused with a ``payments.file.*`` reason when it is not one)."""
    return status_report(read_document(content, accept=PAIN002_VERSIONS, max_bytes=max_bytes))


def status_report(document: Document) -> StatusReport:
    """The statuses of a pain.002 already read by :func:`.read_document`."""
    report = document.find(document.root, "CstmrPmtStsRpt")
    assert report is not None  # the XSD requires it
    group = document.find(report, "OrgnlGrpInfAndSts")
    assert group is not None
    blocks: list[PaymentInformationStatus] = []
    for block in document.find_all(report, "OrgnlPmtInfAndSts"):
        transactions = tuple(
            TransactionStatus(
                end_to_end_id=document.text(transaction, "OrgnlEndToEndId") or "",
                status=_reported(document, transaction, "TxSts"),
                account_servicer_reference=document.text(transaction, "AcctSvcrRef"),
            )
            for transaction in document.find_all(block, "TxInfAndSts")
        )
        blocks.append(
            PaymentInformationStatus(
                payment_information_id=document.text(block, "OrgnlPmtInfId") or "",
                status=_reported(document, block, "PmtInfSts"),
                transactions=transactions,
            )
        )
    return StatusReport(
        message=document.message,
        message_id=document.text(report, "GrpHdr/MsgId") or "",
        created_at=iso_datetime(document.text(report, "GrpHdr/CreDtTm")),
        original_message_id=document.text(group, "OrgnlMsgId") or "",
        group_status=_reported(document, group, "GrpSts"),
        payment_information=tuple(blocks),
    )
