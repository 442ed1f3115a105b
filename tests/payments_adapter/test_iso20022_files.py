"""ISO 20022 files: pain.001 written valid against its XSD, pain.002 and camt.054 read, bad files refused."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import standards
from payments_adapter.contract import (
    FinancialAddress,
    Money,
    PaymentInstruction,
    ProviderState,
    StatementEntryKind,
)
from payments_adapter.iso20022 import (
    CreditTransferRun,
    Debtor,
    Iso20022FileError,
    read_camt054,
    read_document,
    read_pain001,
    read_pain002,
    write_pain001,
)
from payments_adapter.iso20022.documents import MESSAGES, validate
from payments_adapter.iso20022.pain001 import Pain001Builder
from payments_adapter.iso20022.reasons import iso_reason, iso_state, mapped_reason_codes

DEBTOR = Debtor("Social Protection Agency", "SN08SN0100152000048500003035", "SGSNSNDA")
NS_PAIN001 = MESSAGES["pain.001.001.09"]


def instruction(key: str, account: str, amount: str, currency: str, **extra: str) -> PaymentInstruction:
    return PaymentInstruction(key, FinancialAddress.parse(account), Money.parse(amount, currency), **extra)


def run_of(*instructions: PaymentInstruction, message_id: str = "DPI20261124A") -> CreditTransferRun:
    created = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    return CreditTransferRun(message_id, created, date(2026, 11, 24), DEBTOR, tuple(instructions))


def _reason(code: str | None, info: str = "") -> str:
    if code is None:
        return ""
    extra = f"<AddtlInf>{info}</AddtlInf>" if info else ""
    return f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn>{extra}</StsRsnInf>"


def pain002_file(
    original_message_id: str,
    *,
    group: tuple[str, str | None] | None = None,
    blocks: Sequence[tuple[str, tuple[str, str | None] | None, Sequence[tuple[str, str, str | None]]]] = (),
    version: str = "pain.002.001.12",
    message_id: str = "BANKSTS0001",
    created: str = "2026-11-24T09:00:00Z",
) -> bytes:
    """A bank's status report: ``group`` and each block's status as (code, reason), each transaction
    as (end-to-end id, status, reason)."""
    group_xml = f"<GrpSts>{group[0]}</GrpSts>{_reason(group[1])}" if group else ""
    blocks_xml = ""
    for block_id, block_status, transactions in blocks:
        status_xml = (
            f"<PmtInfSts>{block_status[0]}</PmtInfSts>{_reason(block_status[1])}" if block_status else ""
        )
        transactions_xml = "".join(
            f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>{status}</TxSts>"
            f"{_reason(reason, 'as reported by the creditor bank')}</TxInfAndSts>"
            for key, status, reason in transactions
        )
        blocks_xml += (
            f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{block_id}</OrgnlPmtInfId>{status_xml}{transactions_xml}"
            "</OrgnlPmtInfAndSts>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{MESSAGES[version]}"><CstmrPmtStsRpt>'
        f"<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{original_message_id}</OrgnlMsgId>"
        f"<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>{group_xml}</OrgnlGrpInfAndSts>"
        f"{blocks_xml}</CstmrPmtStsRpt></Document>"
    ).encode()


def camt054_entry(
    amount: str,
    currency: str,
    indicator: str,
    transactions: Sequence[dict[str, str]] = (),
    *,
    status: str = "BOOK",
    reversal: bool = False,
    booked: str = "<Dt>2026-11-25</Dt>",
    reference: str = "BOOKREF1",
) -> str:
    """One ``Ntry``; each transaction may give ``key``, ``amount``, ``indicator``, ``return_reason``,
    ``narrative``."""
    details = ""
    for tx in transactions:
        refs = f"<Refs><AcctSvcrRef>{reference}-TX</AcctSvcrRef><EndToEndId>{tx['key']}</EndToEndId></Refs>"
        tx_amount = f'<Amt Ccy="{currency}">{tx["amount"]}</Amt>' if "amount" in tx else ""
        tx_indicator = f"<CdtDbtInd>{tx['indicator']}</CdtDbtInd>" if "indicator" in tx else ""
        narrative = f"<RmtInf><Ustrd>{tx['narrative']}</Ustrd></RmtInf>" if "narrative" in tx else ""
        returned = (
            f"<RtrInf><Rsn><Cd>{tx['return_reason']}</Cd></Rsn></RtrInf>" if "return_reason" in tx else ""
        )
        details += f"<TxDtls>{refs}{tx_amount}{tx_indicator}{narrative}{returned}</TxDtls>"
    return (
        f'<Ntry><Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
        f"{'<RvslInd>true</RvslInd>' if reversal else ''}<Sts><Cd>{status}</Cd></Sts>"
        f"<BookgDt>{booked}</BookgDt><AcctSvcrRef>{reference}</AcctSvcrRef>"
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
        f"{f'<NtryDtls>{details}</NtryDtls>' if details else ''}</Ntry>"
    )


def camt054_file(*entries: str, message_id: str = "BANKNTF0001") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{MESSAGES["camt.054.001.08"]}">'
        f"<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>{message_id}</MsgId>"
        "<CreDtTm>2026-11-25T18:00:00+01:00</CreDtTm></GrpHdr>"
        "<Ntfctn><Id>NTF-1</Id><Acct><Id><IBAN>SN08SN0100152000048500003035</IBAN></Id></Acct>"
        f"{''.join(entries)}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


# -- pain.001 ------------------------------------------------------------------------------------


def test_pain001_has_the_group_header_one_block_per_currency_and_the_key_as_end_to_end_id() -> None:
    run = run_of(
        instruction("PRG1-C01-B0001-E1", "0700000001@wallet1", "1500", "XOF", payee_name="Amina Diallo"),
        instruction(
            "PRG1-C01-B0002-E1", "0700000002@wallet1", "2500", "XOF", narrative="Youth stipend 11/2026"
        ),
        instruction("PRG1-C01-B0003-E1", "DE89370400440532013000@cobadeffxxx", "12.50", "EUR"),
        instruction("PRG1-C01-B0004-E1", "KW81CBKU0000000000001234560101@nbokkwkw", "1.250", "KWD"),
    )
    content = write_pain001(run)
    root = etree.fromstring(content)
    assert validate("pain.001.001.09", root) == []

    def texts(path: str) -> list[str]:
        return [element.text or "" for element in root.iterfind(path, {"p": NS_PAIN001})]

    assert texts("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId") == ["DPI20261124A"]
    assert texts("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs") == ["4"]
    assert texts("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum") == ["4013.750"]
    assert texts("p:CstmrCdtTrfInitn/p:PmtInf/p:PmtInfId") == [
        "DPI20261124A-XOF",
        "DPI20261124A-EUR",
        "DPI20261124A-KWD",
    ]
    assert texts("p:CstmrCdtTrfInitn/p:PmtInf/p:CtrlSum") == ["4000", "12.50", "1.250"]
    assert texts(".//p:CdtTrfTxInf/p:PmtId/p:EndToEndId") == [i.idempotency_key for i in run.instructions]
    amounts = [
        (element.text, element.get("Ccy")) for element in root.iterfind(".//p:InstdAmt", {"p": NS_PAIN001})
    ]
    assert amounts == [("1500", "XOF"), ("2500", "XOF"), ("12.50", "EUR"), ("1.250", "KWD")]
    assert texts(".//p:CdtrAcct/p:Id/p:IBAN") == ["DE89370400440532013000", "KW81CBKU0000000000001234560101"]
    assert texts(".//p:CdtrAgt/p:FinInstnId/p:BICFI") == ["COBADEFFXXX", "NBOKKWKW"]
    assert texts(".//p:Cdtr/p:Nm") == ["Amina Diallo"]
    assert texts(".//p:RmtInf/p:Ustrd") == ["Youth stipend 11/2026"]
    assert read_pain001(content).instructions == run.instructions


def test_an_empty_run_is_not_written() -> None:
    with pytest.raises(ValueError, match="at least one"):
        write_pain001(run_of())


_keys = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=8, max_size=35)
_DECIMALS = {"EUR": 2, "XOF": 0, "KWD": 3, "USD": 2}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            _keys, st.integers(1, 10**12), st.sampled_from(sorted(_DECIMALS)), st.integers(10**5, 10**12)
        ),
        min_size=1,
        max_size=12,
        unique_by=lambda item: item[0],
    )
)
def test_any_run_is_valid_against_the_xsd_sums_exactly_and_reads_back(
    items: list[tuple[str, int, str, int]],
) -> None:
    instructions = [
        PaymentInstruction(
            key,
            FinancialAddress(str(account), "wallet1"),
            Money(Decimal(minor).scaleb(-_DECIMALS[currency]), currency),
        )
        for key, minor, currency, account in items
    ]
    content = write_pain001(run_of(*instructions))
    run = read_pain001(content)
    # One payment information block per currency: the file's order is by currency, then submission.
    assert sorted(run.instructions, key=lambda i: i.idempotency_key) == sorted(
        instructions, key=lambda i: i.idempotency_key
    )
    assert run.control_sum == sum((i.amount.amount for i in instructions), Decimal(0))
    # A run grown in pieces is the same file as the run written at once.
    builder = Pain001Builder(run_of(*instructions[: len(instructions) // 2]))
    builder.append(instructions[len(instructions) // 2 :])
    assert builder.content() == content
    header_sum = etree.fromstring(content).find(f".//{{{NS_PAIN001}}}GrpHdr/{{{NS_PAIN001}}}CtrlSum")
    assert header_sum is not None
    assert Decimal(header_sum.text or "") == run.control_sum


# -- pain.002 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["pain.002.001.12", "pain.002.001.03"])
def test_pain002_reports_group_block_and_transaction_statuses_with_reasons(version: str) -> None:
    content = pain002_file(
        "DPI20261124A",
        group=("PART", None),
        blocks=[
            (
                "DPI20261124A-XOF",
                ("PART", None),
                [
                    ("PRG1-C01-B0001-E1", "ACSC", None),
                    ("PRG1-C01-B0002-E1", "RJCT", "AC04"),
                    ("PRG1-C01-B0003-E1", "RJCT", "AM04"),
                    ("PRG1-C01-B0004-E1", "RJCT", "ZZ99"),
                ],
            )
        ],
        version=version,
    )
    report = read_pain002(content)
    assert report.message == version
    assert report.original_message_id == "DPI20261124A"
    assert report.created_at == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert report.group_status is not None
    assert report.group_status.state is ProviderState.ACCEPTED
    (block,) = report.payment_information
    at = report.created_at
    statuses = {
        tx.end_to_end_id: tx.status.provider_status(reference="R", at=at) if tx.status else None
        for tx in block.transactions
    }
    completed = statuses["PRG1-C01-B0001-E1"]
    assert completed is not None
    assert (completed.state, completed.reason_code) == (ProviderState.COMPLETED, None)
    closed = statuses["PRG1-C01-B0002-E1"]
    assert closed is not None
    assert (closed.state, closed.reason_code) == (ProviderState.REJECTED, "payments.address.not_found")
    assert closed.message is not None
    assert "AC04" in closed.message
    assert "as reported by the creditor bank" in closed.message
    funds = statuses["PRG1-C01-B0003-E1"]
    assert funds is not None
    assert funds.reason_code == "payments.payer.insufficient_funds"
    unknown = statuses["PRG1-C01-B0004-E1"]
    assert unknown is not None
    assert unknown.reason_code == "payments.provider.error"
    assert unknown.message is not None
    assert "ZZ99" in unknown.message


def test_a_group_rejection_carries_its_reason() -> None:
    report = read_pain002(pain002_file("DPI20261124A", group=("RJCT", "FF01")))
    assert report.payment_information == ()
    assert report.group_status is not None
    status = report.group_status.provider_status(reference=None, at=report.created_at)
    assert status is not None
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.provider.error")


# -- camt.054 ------------------------------------------------------------------------------------


def test_camt054_reads_booked_debits_returns_and_reversals_and_skips_the_rest() -> None:
    content = camt054_file(
        camt054_entry("1500", "XOF", "DBIT", [{"key": "PRG1-C01-B0001-E1", "narrative": "Youth stipend"}]),
        camt054_entry(
            "4000",
            "XOF",
            "DBIT",
            [{"key": "PRG1-C01-B0002-E1", "amount": "2500"}, {"key": "PRG1-C01-B0003-E1", "amount": "1500"}],
            booked="<DtTm>2026-11-25T10:15:00+01:00</DtTm>",
            reference="BATCH7",
        ),
        camt054_entry(
            "1500", "XOF", "CRDT", [{"key": "PRG1-C01-B0001-E1", "return_reason": "AC04"}], reference="RET1"
        ),
        camt054_entry("2500", "XOF", "CRDT", [{"key": "PRG1-C01-B0002-E1"}], reversal=True, reference="RVS1"),
        camt054_entry("1000000", "XOF", "CRDT", [{"key": "NOTPROVIDED"}], reference="FUNDING"),
        camt054_entry("700", "XOF", "DBIT", [{"key": "PRG1-C01-B0009-E1"}], status="PDNG"),
        camt054_entry("300", "XOF", "DBIT", [{"key": "NOTPROVIDED"}], reference="FEE"),
        camt054_entry("5", "XOF", "DBIT", reference="CHARGES"),
    )
    notification = read_camt054(content)
    assert notification.message_id == "BANKNTF0001"
    assert notification.created_at == datetime(2026, 11, 25, 17, tzinfo=UTC)
    summary = [
        (e.idempotency_key, e.amount.wire(), e.kind, e.reason_code, e.provider_reference)
        for e in notification.entries
    ]
    assert summary == [
        ("PRG1-C01-B0001-E1", "1500", StatementEntryKind.DEBIT, None, "BOOKREF1-TX"),
        ("PRG1-C01-B0002-E1", "2500", StatementEntryKind.DEBIT, None, "BATCH7-TX"),
        ("PRG1-C01-B0003-E1", "1500", StatementEntryKind.DEBIT, None, "BATCH7-TX"),
        ("PRG1-C01-B0001-E1", "1500", StatementEntryKind.RETURN, "payments.address.not_found", "RET1-TX"),
        ("PRG1-C01-B0002-E1", "2500", StatementEntryKind.REVERSAL, None, "RVS1-TX"),
        (None, "300", StatementEntryKind.DEBIT, None, "FEE-TX"),
        (None, "5", StatementEntryKind.DEBIT, None, "CHARGES"),
    ]
    assert notification.entries[0].narrative == "Youth stipend"
    assert notification.entries[0].booked_at == datetime(2026, 11, 25, tzinfo=UTC)
    assert notification.entries[1].booked_at == datetime(2026, 11, 25, 9, 15, tzinfo=UTC)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["debit", "return", "reversal", "funding"]), st.integers(1, 10**9)),
        min_size=1,
        max_size=15,
    )
)
def test_the_entries_read_sum_to_what_was_booked_kind_by_kind(bookings: list[tuple[str, int]]) -> None:
    entries = []
    expected: dict[StatementEntryKind, Decimal] = {}
    kinds = {
        "debit": StatementEntryKind.DEBIT,
        "return": StatementEntryKind.RETURN,
        "reversal": StatementEntryKind.REVERSAL,
    }
    for number, (kind, cents) in enumerate(bookings):
        amount = f"{Decimal(cents).scaleb(-2):f}"
        key = {"key": f"KEY-{number:08d}"}
        if kind == "debit":
            entries.append(camt054_entry(amount, "EUR", "DBIT", [key]))
        elif kind == "return":
            entries.append(camt054_entry(amount, "EUR", "CRDT", [{**key, "return_reason": "MS03"}]))
        elif kind == "reversal":
            entries.append(camt054_entry(amount, "EUR", "CRDT", [key], reversal=True))
        else:
            entries.append(camt054_entry(amount, "EUR", "CRDT", [{"key": "NOTPROVIDED"}]))
        if kind in kinds:
            expected[kinds[kind]] = expected.get(kinds[kind], Decimal(0)) + Decimal(cents).scaleb(-2)
    read: dict[StatementEntryKind, Decimal] = {}
    for entry in read_camt054(camt054_file(*entries)).entries:
        read[entry.kind] = read.get(entry.kind, Decimal(0)) + entry.amount.amount
    assert read == expected


def test_a_prefixed_or_utf16_status_report_reads_the_same() -> None:
    plain = read_pain002(pain002_file("DPI20261124A", group=("RJCT", "AM04")))
    prefixed = (
        pain002_file("DPI20261124A", group=("RJCT", "AM04"))
        .replace(b'<Document xmlns="', b'<p:Document xmlns:p="')
        .replace(b"</Document>", b"</p:Document>")
    )
    prefixed = re.sub(rb"<(/?)(?!p:|\?)([A-Za-z])", rb"<\1p:\2", prefixed)
    utf16 = (
        pain002_file("DPI20261124A", group=("RJCT", "AM04"))
        .decode()
        .replace("UTF-8", "UTF-16")
        .encode("utf-16")
    )
    assert read_pain002(prefixed) == plain
    assert read_pain002(utf16) == plain


def test_an_entry_of_several_transactions_without_their_amounts_is_refused() -> None:
    content = camt054_file(
        camt054_entry("4000", "XOF", "DBIT", [{"key": "KEY-0000001"}, {"key": "KEY-0000002"}])
    )
    with pytest.raises(Iso20022FileError) as refused:
        read_camt054(content)
    assert refused.value.reason_code == "payments.file.invalid"


# -- refusals ------------------------------------------------------------------------------------

_GOOD_PAIN002 = pain002_file("DPI20261124A", group=("ACTC", None))
_BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><Document>&lol9;</Document>"
)
_EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12">&x;</Document>'
)
_UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY a "b">]><Document/>'.encode(
    "utf-16"
)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "payments.file.malformed", id="empty"),
        pytest.param(b"%PDF-1.7 not xml", "payments.file.malformed", id="not-xml"),
        pytest.param(_GOOD_PAIN002[:-20], "payments.file.malformed", id="truncated"),
        pytest.param(_BILLION_LAUGHS, "payments.file.malformed", id="entity-expansion-bomb"),
        pytest.param(_EXTERNAL_ENTITY, "payments.file.malformed", id="external-entity"),
        pytest.param(_UTF16_DOCTYPE, "payments.file.malformed", id="doctype-in-utf16"),
        pytest.param(b"<Document/>", "payments.file.unsupported", id="no-namespace"),
        pytest.param(
            _GOOD_PAIN002.replace(b"pain.002.001.12", b"pain.002.001.10"),
            "payments.file.unsupported",
            id="version-without-xsd",
        ),
        pytest.param(
            write_pain001(run_of(instruction("KEY-0000001", "07001@wallet1", "1", "XOF"))),
            "payments.file.unsupported",
            id="a-pain001-offered-as-status-report",
        ),
        pytest.param(
            _GOOD_PAIN002.replace(b"<MsgId>BANKSTS0001</MsgId>", b""), "payments.file.invalid", id="no-msgid"
        ),
        pytest.param(
            _GOOD_PAIN002.replace(b"<GrpSts>ACTC</GrpSts>", b"<GrpSts>accepted</GrpSts>"),
            "payments.file.invalid",
            id="status-not-a-code",
        ),
        pytest.param(
            _GOOD_PAIN002.replace(b"2026-11-24T09:00:00Z", b"yesterday"),
            "payments.file.invalid",
            id="bad-date",
        ),
        pytest.param(
            _GOOD_PAIN002.replace(b"<CstmrPmtStsRpt>", b"<CstmrPmtStsRpt><Extra/>"),
            "payments.file.invalid",
            id="unknown-element",
        ),
        pytest.param(b"<a>" * 10 + b"x" * (1024 * 1024), "payments.file.too_large", id="over-the-limit"),
    ],
)
def test_a_bad_status_report_is_refused_with_a_reason(content: bytes, reason: str) -> None:
    with pytest.raises(Iso20022FileError) as refused:
        read_pain002(content, max_bytes=1024 * 1024)
    assert refused.value.reason_code == reason
    assert not refused.value.retryable


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        pytest.param(
            camt054_entry("1.005", "EUR", "DBIT"), "payments.file.invalid", id="more-decimals-than-eur"
        ),
        pytest.param(camt054_entry("10", "ABC", "DBIT"), "payments.file.invalid", id="not-a-currency"),
        pytest.param(camt054_entry("10", "EUR", "SIDEWAYS"), "payments.file.invalid", id="bad-indicator"),
        pytest.param(camt054_entry("-10", "EUR", "DBIT"), "payments.file.invalid", id="negative-amount"),
    ],
)
def test_a_bad_notification_is_refused_with_a_reason(entry: str, reason: str) -> None:
    with pytest.raises(Iso20022FileError) as refused:
        read_camt054(camt054_file(entry))
    assert refused.value.reason_code == reason


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_damaged_file_is_read_or_refused_with_a_reason_never_anything_else(data: st.DataObject) -> None:
    original = bytearray(
        pain002_file(
            "DPI20261124A",
            group=("PART", None),
            blocks=[("DPI20261124A-XOF", None, [("PRG1-C01-B0001-E1", "RJCT", "AC04")])],
        )
    )
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    reason = "read"
    try:
        read_pain002(bytes(original))
    except Iso20022FileError as refused:
        reason = refused.reason_code
    assert reason == "read" or reason.startswith("payments.file.")


def test_a_file_is_read_only_as_bytes() -> None:
    with pytest.raises(Iso20022FileError) as refused:
        read_document("<Document/>", accept={"pain.002.001.12"})  # type: ignore[arg-type]
    assert refused.value.reason_code == "payments.file.malformed"


# -- the reason table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iso_code", "ours"),
    [
        ("AC01", "payments.address.invalid"),
        ("AC04", "payments.address.not_found"),
        ("AC06", "payments.account.blocked"),
        ("AG01", "payments.payee.rejected"),
        ("AM04", "payments.payer.insufficient_funds"),
        ("MD07", "payments.payee.deceased"),
        ("MS03", "payments.provider.error"),
        ("NARR", "payments.provider.error"),
        ("XX42", "payments.provider.error"),
        (None, "payments.provider.error"),
    ],
)
def test_iso_reasons_map_to_the_payments_vocabulary(iso_code: str | None, ours: str) -> None:
    assert iso_reason(iso_code).reason_code == ours


def test_every_mapped_reason_is_a_payments_code_and_every_status_a_state() -> None:
    vocabulary = set(standards.reason_codes())
    for code in mapped_reason_codes():
        assert code in vocabulary, code
    for status in standards.iso20022_statuses():
        assert iso_state(status) is not None
    assert iso_state("ACSC") is ProviderState.COMPLETED
    assert iso_state("RJCT") is ProviderState.REJECTED
    assert iso_state("ABCD") is None


def test_the_codes_this_adapter_adds_are_in_the_vocabulary_in_three_languages() -> None:
    for code in (
        "payments.file.too_large",
        "payments.file.malformed",
        "payments.file.unsupported",
        "payments.file.invalid",
        "payments.instruction.invalid",
        "payments.payee.deceased",
        "payments.request.too_large",
    ):
        entry = standards.reason_code(code)
        assert len({entry.message("en"), entry.message("fr"), entry.message("ar")}) == 3
