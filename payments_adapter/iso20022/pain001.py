"""ISO 20022 pain.001.001.09, CustomerCreditTransferInitiationV09: the file a payer sends its bank.

https://www.iso20022.org/iso-20022-message-definitions (Payments Initiation, pain.001.001.09). One file
is one submission run: a group header (``MsgId``, ``NbOfTxs``, ``CtrlSum``), one payment information
block per currency (the debtor and its account and agent), and one ``CdtTrfTxInf`` per instruction
whose ``EndToEndId`` is the instruction's idempotency key, so the bank's status reports and statements
name the payment by the key. Amounts are written exactly, with the currency's decimal places, in
``InstdAmt/@Ccy``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Final

from lxml import etree

from payments_adapter.contract import FinancialAddress, Money, PaymentInstruction
from payments_adapter.iso20022.documents import (
    DEFAULT_MAX_FILE_BYTES,
    MESSAGES,
    Document,
    Iso20022FileError,
    iso_date,
    iso_datetime,
    read_document,
    validate,
)

__all__ = [
    "PAIN001",
    "CreditTransferRun",
    "Debtor",
    "InstructionNotRepresentableError",
    "Pain001Builder",
    "check_representable",
    "read_pain001",
    "write_pain001",
]

PAIN001: Final = "pain.001.001.09"
_NS: Final = MESSAGES[PAIN001]
_BIC: Final = re.compile(r"^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_IBAN: Final = re.compile(r"^[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}$")
# Characters XML 1.0 cannot carry at all; a name or narrative holding one is refused, not mangled.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NARRATIVE_LENGTH: Final = 140


class InstructionNotRepresentableError(ValueError):
    """An instruction this file format cannot carry as given (too long an account, a control
    character in a name); ``reason_code`` is from the payments vocabulary."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code


@dataclass(frozen=True)
class Debtor:
    """The paying organisation: its name, the account debited and the bank holding it (a BIC, or the
    bank's identifier in a local scheme), and the party that initiates the files."""

    name: str
    account: str
    agent: str
    initiating_party: str = ""
    charge_bearer: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.name, 140, "the debtor's name")
        _check_text(self.initiating_party or self.name, 140, "the initiating party")
        _check_text(self.account, 34, "the debtor's account")
        _check_text(self.agent, 35, "the debtor's bank")
        if self.charge_bearer not in (None, "DEBT", "CRED", "SHAR", "SLEV"):
            raise ValueError(f"charge bearer {self.charge_bearer!r} is not DEBT, CRED, SHAR or SLEV")


@dataclass(frozen=True)
class CreditTransferRun:
    """The content of one pain.001 file: a run of instructions under one message identification."""

    message_id: str
    created_at: datetime
    execution_date: date
    debtor: Debtor
    instructions: tuple[PaymentInstruction, ...] = field(default=())

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9\-]{1,30}", self.message_id):
            raise ValueError(f"message id {self.message_id!r} must be 1 to 30 letters, digits or hyphens")

    def payment_information_id(self, currency: str) -> str:
        """The ``PmtInfId`` of the block paying in ``currency`` (one block per currency)."""
        return f"{self.message_id}-{currency}"

    @property
    def control_sum(self) -> Decimal:
        """The sum of every amount, whatever its currency, as ISO 20022 defines ``CtrlSum``."""
        return sum((instruction.amount.amount for instruction in self.instructions), Decimal(0))


def _check_text(value: str, length: int, what: str) -> None:
    if not value or len(value) > length or _NOT_XML.search(value) or value != value.strip():
        raise ValueError(f"{what} must be 1 to {length} characters XML can carry, without outer spaces")


def check_representable(instruction: PaymentInstruction) -> None:
    """Refuse an instruction that a pain.001 could only carry by altering it."""
    if len(instruction.payee.account) > 34:
        raise InstructionNotRepresentableError(
            "payments.address.invalid", "an account identification has at most 34 characters"
        )
    if len(instruction.payee.provider) > 35:
        raise InstructionNotRepresentableError(
            "payments.address.invalid", "a bank identification has at most 35 characters"
        )
    name = instruction.payee_name
    if name is not None and (not name.strip() or len(name) > 140 or _NOT_XML.search(name)):
        raise InstructionNotRepresentableError(
            "payments.instruction.invalid", "the payee's name must be 1 to 140 characters XML can carry"
        )
    if _NOT_XML.search(instruction.narrative):
        raise InstructionNotRepresentableError(
            "payments.instruction.invalid", "the narrative holds characters XML cannot carry"
        )


def _element(parent: etree._Element, path: str, text: str | None = None, **attributes: str) -> etree._Element:
    """Append the elements of ``path`` (``FinInstnId/BICFI``) under ``parent``; the last gets ``text``."""
    *parents, last = _tags(path)
    for tag in parents:
        parent = etree.SubElement(parent, tag)
    element = etree.SubElement(parent, last, attributes or None)
    if text is not None:
        element.text = text
    return element


@cache
def _tags(path: str) -> tuple[str, ...]:
    return tuple(f"{{{_NS}}}{step}" for step in path.split("/"))


def _account(parent: etree._Element, tag: str, account: str) -> None:
    identification = _element(parent, f"{tag}/Id")
    if _IBAN.match(account):
        _element(identification, "IBAN", account)
    else:
        _element(identification, "Othr/Id", account)


def _agent(parent: etree._Element, tag: str, agent: str) -> None:
    institution = _element(parent, f"{tag}/FinInstnId")
    if _BIC.match(agent.upper()):
        _element(institution, "BICFI", agent.upper())
    else:
        _element(institution, "Othr/Id", agent)


@dataclass
class _Block:
    element: etree._Element
    count: etree._Element
    total: etree._Element
    transactions: int = 0
    amount: Decimal = Decimal(0)


class Pain001Builder:
    """A pain.001.001.09 being built for a run that grows: each :meth:`append` adds only the new
    transactions and brings the counts and control sums up to date, so rewriting a large open run
    costs what the new instructions cost plus one serialisation, not a rebuild."""

    def __init__(self, run: CreditTransferRun) -> None:
        self.run = replace(run, instructions=())
        self._document = etree.Element(f"{{{_NS}}}Document", nsmap={None: _NS})
        self._initiation = _element(self._document, "CstmrCdtTrfInitn")
        header = _element(self._initiation, "GrpHdr")
        _element(header, "MsgId", run.message_id)
        _element(header, "CreDtTm", run.created_at.isoformat(timespec="seconds"))
        self._count = _element(header, "NbOfTxs", "0")
        self._total = _element(header, "CtrlSum", "0")
        _element(header, "InitgPty/Nm", run.debtor.initiating_party or run.debtor.name)
        self._blocks: dict[str, _Block] = {}
        self.append(run.instructions)

    def _block(self, currency: str) -> _Block:
        block = self._blocks.get(currency)
        if block is not None:
            return block
        run = self.run
        element = _element(self._initiation, "PmtInf")
        _element(element, "PmtInfId", run.payment_information_id(currency))
        _element(element, "PmtMtd", "TRF")
        count = _element(element, "NbOfTxs", "0")
        total = _element(element, "CtrlSum", "0")
        _element(element, "ReqdExctnDt/Dt", run.execution_date.isoformat())
        _element(element, "Dbtr/Nm", run.debtor.name)
        _account(element, "DbtrAcct", run.debtor.account)
        _agent(element, "DbtrAgt", run.debtor.agent)
        if run.debtor.charge_bearer:
            _element(element, "ChrgBr", run.debtor.charge_bearer)
        block = self._blocks[currency] = _Block(element, count, total)
        return block

    def append(self, instructions: Iterable[PaymentInstruction]) -> None:
        """Add credit transfers (one ``CdtTrfTxInf`` each) to the block of their currency."""
        added = tuple(instructions)
        for instruction in added:
            currency = instruction.amount.currency
            block = self._block(currency)
            transaction = _element(block.element, "CdtTrfTxInf")
            _element(transaction, "PmtId/EndToEndId", instruction.idempotency_key)
            _element(transaction, "Amt/InstdAmt", instruction.amount.wire(), Ccy=currency)
            _agent(transaction, "CdtrAgt", instruction.payee.provider)
            creditor = _element(transaction, "Cdtr")
            if instruction.payee_name:
                _element(creditor, "Nm", instruction.payee_name.strip())
            _account(transaction, "CdtrAcct", instruction.payee.account)
            narrative = instruction.narrative.strip()[:_NARRATIVE_LENGTH].strip()
            if narrative:
                _element(transaction, "RmtInf/Ustrd", narrative)
            block.transactions += 1
            block.amount += instruction.amount.amount
        for block in self._blocks.values():
            block.count.text = str(block.transactions)
            block.total.text = f"{block.amount:f}"
        self.run = replace(self.run, instructions=self.run.instructions + added)
        self._count.text = str(len(self.run.instructions))
        self._total.text = f"{self.run.control_sum:f}"

    def content(self) -> bytes:
        """The file as it stands, checked against the XSD."""
        if not self.run.instructions:
            raise ValueError("a pain.001 file holds at least one instruction")
        problems = validate(PAIN001, self._document)
        if problems:
            raise ValueError(f"the pain.001 written is not valid against its XSD: {problems[:3]}")
        body = etree.tostring(self._document, xml_declaration=False, encoding="UTF-8", pretty_print=True)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(body)


def write_pain001(run: CreditTransferRun) -> bytes:
    """The pain.001.001.09 file of ``run``, checked against its XSD before it is returned."""
    return Pain001Builder(run).content()


def _address(document: Document, transaction: etree._Element) -> FinancialAddress:
    account = document.text(transaction, "CdtrAcct/Id/IBAN") or document.text(
        transaction, "CdtrAcct/Id/Othr/Id"
    )
    agent = document.text(transaction, "CdtrAgt/FinInstnId/BICFI") or document.text(
        transaction, "CdtrAgt/FinInstnId/Othr/Id"
    )
    if account is None or agent is None:
        raise Iso20022FileError("payments.file.invalid", "a transaction names no creditor account or bank")
    try:
        return FinancialAddress.parse(f"{account}@{agent}")
    except ValueError as error:
        raise Iso20022FileError("payments.file.invalid", str(error)) from None


def read_pain001(content: bytes, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> CreditTransferRun:
    """The run held by a pain.001.001.09 that :func:`write_pain001` wrote (to resume it after a restart)."""
    document = read_document(content, accept={PAIN001}, max_bytes=max_bytes)
    initiation = document.find(document.root, "CstmrCdtTrfInitn")
    assert initiation is not None  # the XSD requires it
    message_id = document.text(initiation, "GrpHdr/MsgId") or ""
    created_at = iso_datetime(document.text(initiation, "GrpHdr/CreDtTm"))
    blocks = document.find_all(initiation, "PmtInf")
    first = blocks[0]
    debtor = Debtor(
        name=document.text(first, "Dbtr/Nm") or "",
        account=document.text(first, "DbtrAcct/Id/IBAN") or document.text(first, "DbtrAcct/Id/Othr/Id") or "",
        agent=document.text(first, "DbtrAgt/FinInstnId/BICFI")
        or document.text(first, "DbtrAgt/FinInstnId/Othr/Id")
        or "",
        initiating_party=document.text(initiation, "GrpHdr/InitgPty/Nm") or "",
        charge_bearer=document.text(first, "ChrgBr"),
    )
    instructions: list[PaymentInstruction] = []
    for block in blocks:
        for transaction in document.find_all(block, "CdtTrfTxInf"):
            amount = document.find(transaction, "Amt/InstdAmt")
            if amount is None or amount.text is None:
                raise Iso20022FileError("payments.file.invalid", "a transaction has no instructed amount")
            try:
                money = Money(Decimal(amount.text.strip()), amount.get("Ccy", ""))
                instructions.append(
                    PaymentInstruction(
                        idempotency_key=document.text(transaction, "PmtId/EndToEndId") or "",
                        payee=_address(document, transaction),
                        amount=money,
                        payee_name=document.text(transaction, "Cdtr/Nm"),
                        narrative=document.text(transaction, "RmtInf/Ustrd") or "",
                    )
                )
            except ValueError as error:
                raise Iso20022FileError(
                    "payments.file.invalid", f"a transaction is unreadable: {error}"
                ) from None
    execution = document.text(first, "ReqdExctnDt/Dt") or created_at.date().isoformat()
    return CreditTransferRun(
        message_id=message_id,
        created_at=created_at,
        execution_date=iso_date(execution),
        debtor=debtor,
        instructions=tuple(instructions),
    )
