"""The ISO 20022 file adapter: runs written atomically, keys paid once, statuses from the bank's files."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from payments_adapter.contract import (
    ENTRY_POINT_GROUP,
    FinancialAddress,
    NotSupportedError,
    PaymentInstruction,
    ProviderError,
    ProviderState,
    StatementEntryKind,
)
from payments_adapter.iso20022 import Debtor, Iso20022Provider, read_pain001
from tests.payments_adapter.test_iso20022_files import (
    DEBTOR,
    camt054_entry,
    camt054_file,
    instruction,
    pain002_file,
)


class Clock:
    """Moves a second forward at each reading, so every run gets its own message identification."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


Open = Callable[..., Iso20022Provider]


@pytest.fixture
async def open_provider(tmp_path: Path) -> AsyncIterator[Open]:
    opened: list[Iso20022Provider] = []
    clock = Clock()

    def open_(**options: object) -> Iso20022Provider:
        settings: dict[str, object] = {"directory": tmp_path, "debtor": DEBTOR, "clock": clock}
        settings.update(options)
        provider = Iso20022Provider("bank", **settings)  # type: ignore[arg-type]
        opened.append(provider)
        return provider

    yield open_
    for provider in opened:
        await provider.aclose()


def stipend(number: int, amount: str = "1500", account: str | None = None) -> PaymentInstruction:
    return instruction(f"PRG1-C01-B{number:04d}-E1", account or f"07000{number:05d}@wallet1", amount, "XOF")


def open_runs(directory: Path) -> list[Path]:
    return sorted((directory / "runs").glob("*.open.xml"))


def outgoing(directory: Path) -> list[Path]:
    return sorted((directory / "outgoing").glob("*.xml"))


async def test_submissions_append_to_one_run_and_a_key_is_written_once(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider()
    first = await provider.submit(stipend(1))
    assert first.state is ProviderState.ACCEPTED
    answers = await provider.submit_many([stipend(2), stipend(1), stipend(3, "2500"), stipend(2)])
    assert [a.state for a in answers if not isinstance(a, ProviderError)] == [ProviderState.ACCEPTED] * 4
    (path,) = open_runs(tmp_path)
    run = read_pain001(path.read_bytes())
    assert [i.idempotency_key for i in run.instructions] == [
        "PRG1-C01-B0001-E1",
        "PRG1-C01-B0002-E1",
        "PRG1-C01-B0003-E1",
    ]
    assert first.provider_reference == run.message_id
    assert outgoing(tmp_path) == []


async def test_the_same_key_with_another_amount_or_payee_is_refused(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider()
    await provider.submit(stipend(1))
    for changed in (stipend(1, "1600"), stipend(1, account="0799999999@wallet1")):
        with pytest.raises(ProviderError) as refused:
            await provider.submit(changed)
        assert refused.value.reason_code == "payments.request.duplicate"
    (path,) = open_runs(tmp_path)
    assert read_pain001(path.read_bytes()).instructions == (stipend(1),)


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        pytest.param(
            instruction("KEY-EUR-00001", "0700000001@wallet1", "10", "EUR"), "payments.currency.not_supported"
        ),
        pytest.param(
            instruction("KEY-IBAN-0001", "DE00370400440532013000@wallet1", "10", "XOF"),
            "payments.address.invalid",
        ),
        pytest.param(
            instruction("KEY-BANK-0001", "0700000001@otherbank", "10", "XOF"), "payments.address.invalid"
        ),
        pytest.param(
            instruction("KEY-NAME-0001", "0700000001@wallet1", "10", "XOF", payee_name="Amina\x07"),
            "payments.instruction.invalid",
        ),
        pytest.param(
            instruction("KEY-LONG-0001", f"{'7' * 35}@wallet1", "10", "XOF"), "payments.address.invalid"
        ),
    ],
)
async def test_an_instruction_the_file_cannot_carry_is_rejected_alone(
    open_provider: Open, tmp_path: Path, refused: PaymentInstruction, reason: str
) -> None:
    provider = open_provider(currencies=("XOF",), address_schemes=("wallet1",))
    answers = await provider.submit_many([stipend(1), refused, stipend(2)])
    states = [(a.state, a.reason_code) for a in answers if not isinstance(a, ProviderError)]
    assert states == [
        (ProviderState.ACCEPTED, None),
        (ProviderState.REJECTED, reason),
        (ProviderState.ACCEPTED, None),
    ]
    (path,) = open_runs(tmp_path)
    assert len(read_pain001(path.read_bytes()).instructions) == 2
    assert (await provider.status(refused.idempotency_key)).state is ProviderState.NOT_FOUND


async def test_a_sealed_run_goes_out_and_the_next_submission_opens_another(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider()
    await provider.submit_many([stipend(1), stipend(2)])
    sealed = await provider.seal_run()
    assert sealed is not None
    assert outgoing(tmp_path) == [sealed]
    assert open_runs(tmp_path) == []
    assert await provider.seal_run() is None
    await provider.submit(stipend(3))
    again = await provider.submit(stipend(1))
    assert again.provider_reference == sealed.stem
    (second,) = open_runs(tmp_path)
    assert [i.idempotency_key for i in read_pain001(second.read_bytes()).instructions] == [
        "PRG1-C01-B0003-E1"
    ]
    assert read_pain001(sealed.read_bytes()).message_id != read_pain001(second.read_bytes()).message_id


async def test_a_full_run_is_sealed_and_the_rest_goes_into_the_next(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider(max_run_transactions=2)
    await provider.submit_many([stipend(n) for n in range(1, 6)])
    runs = [read_pain001(path.read_bytes()) for path in outgoing(tmp_path)]
    assert [len(run.instructions) for run in runs] == [2, 2]
    (rest,) = open_runs(tmp_path)
    assert len(read_pain001(rest.read_bytes()).instructions) == 1


async def test_more_than_the_bulk_size_is_refused_whole(open_provider: Open, tmp_path: Path) -> None:
    provider = open_provider(max_bulk=2)
    with pytest.raises(ProviderError) as refused:
        await provider.submit_many([stipend(1), stipend(2), stipend(3)])
    assert refused.value.reason_code == "payments.request.too_large"
    assert open_runs(tmp_path) == []


async def test_after_a_restart_the_open_run_resumes_and_keys_stay_paid_once(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider(seal_on_close=False)
    await provider.submit_many([stipend(1), stipend(2)])
    await provider.aclose()
    restarted = open_provider()
    assert (await restarted.status("PRG1-C01-B0001-E1")).state is ProviderState.ACCEPTED
    assert (await restarted.status("PRG1-C01-B0009-E1")).state is ProviderState.NOT_FOUND
    await restarted.submit_many([stipend(2), stipend(3)])
    with pytest.raises(ProviderError) as refused:
        await restarted.submit(stipend(1, "9999"))
    assert refused.value.reason_code == "payments.request.duplicate"
    (path,) = open_runs(tmp_path)
    assert len(read_pain001(path.read_bytes()).instructions) == 3
    await restarted.aclose()
    (sealed,) = outgoing(tmp_path)
    assert len(read_pain001(sealed.read_bytes()).instructions) == 3


async def test_a_crash_between_writing_outgoing_and_closing_the_run_is_finished_at_start(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider(seal_on_close=False)
    await provider.submit(stipend(1))
    await provider.aclose()
    (path,) = open_runs(tmp_path)
    (tmp_path / "outgoing" / path.name.replace(".open", "")).write_bytes(path.read_bytes())
    restarted = open_provider()
    assert open_runs(tmp_path) == []
    assert len(outgoing(tmp_path)) == 1
    await restarted.submit(stipend(2))
    assert len(open_runs(tmp_path)) == 1


async def test_one_process_at_a_time_holds_the_directory(open_provider: Open) -> None:
    provider = open_provider()
    with pytest.raises(ProviderError) as refused:
        open_provider()
    assert refused.value.reason_code == "payments.provider.unavailable"
    await provider.aclose()
    open_provider()


async def test_a_failed_write_leaves_the_run_as_it_was(
    open_provider: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = open_provider()
    await provider.submit(stipend(1))
    (path,) = open_runs(tmp_path)
    before = path.read_bytes()

    def full_disk(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ProviderError) as refused:
        await provider.submit(stipend(2))
    monkeypatch.undo()
    assert refused.value.reason_code == "payments.provider.unavailable"
    assert refused.value.retryable
    assert path.read_bytes() == before
    assert (await provider.status("PRG1-C01-B0002-E1")).state is ProviderState.NOT_FOUND
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [path.name]
    assert (await provider.submit(stipend(2))).state is ProviderState.ACCEPTED


async def test_a_write_failing_in_a_later_run_leaves_the_earlier_runs_payments_accepted(
    open_provider: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = open_provider(max_run_transactions=2)
    real_replace = os.replace
    open_run_paths: set[str] = set()

    def fails_for_a_second_run(source: str | Path, target: str | Path) -> None:
        if str(target).endswith(".open.xml"):
            open_run_paths.add(str(target))
            if len(open_run_paths) > 1:
                raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", fails_for_a_second_run)
    answers = await provider.submit_many([stipend(1), stipend(2), stipend(3)])
    monkeypatch.undo()
    first, second, third = answers
    assert not isinstance(first, ProviderError)
    assert not isinstance(second, ProviderError)
    assert (first.state, second.state) == (ProviderState.ACCEPTED, ProviderState.ACCEPTED)
    assert isinstance(third, ProviderError)
    assert (third.reason_code, third.retryable) == ("payments.provider.unavailable", True)
    (sealed,) = outgoing(tmp_path)
    assert len(read_pain001(sealed.read_bytes()).instructions) == 2
    assert (await provider.status("PRG1-C01-B0003-E1")).state is ProviderState.NOT_FOUND
    assert open_runs(tmp_path) == []


async def test_a_run_goes_out_when_its_file_reaches_the_size_limit(
    open_provider: Open, tmp_path: Path
) -> None:
    one = len((await _file_of([stipend(1)], tmp_path / "probe")).read_bytes())
    provider = open_provider(max_file_bytes=one + 1500)
    for number in range(1, 8):
        assert (await provider.submit(stipend(number))).state is ProviderState.ACCEPTED
    await provider.seal_run()
    files = outgoing(tmp_path)
    assert len(files) > 1
    keys = [i.idempotency_key for path in files for i in read_pain001(path.read_bytes()).instructions]
    assert sorted(keys) == [f"PRG1-C01-B{n:04d}-E1" for n in range(1, 8)]
    assert all(path.stat().st_size <= one + 1500 for path in files)
    tiny = open_provider(directory=tmp_path / "tiny", max_file_bytes=one - 1)
    with pytest.raises(ProviderError) as refused:
        await tiny.submit(stipend(1))
    assert refused.value.reason_code == "payments.request.too_large"


async def _file_of(instructions: list[PaymentInstruction], directory: Path) -> Path:
    provider = Iso20022Provider("probe", directory=directory, debtor=DEBTOR, clock=Clock())
    await provider.submit_many(instructions)
    sealed = await provider.seal_run()
    await provider.aclose()
    assert sealed is not None
    return sealed


async def test_status_reports_settle_payments_at_each_level_and_survive_a_restart(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider()
    await provider.submit_many([stipend(n) for n in range(1, 5)])
    sealed = await provider.seal_run()
    assert sealed is not None
    message_id = sealed.stem
    report = await provider.ingest(
        pain002_file(
            message_id,
            group=("PART", None),
            blocks=[
                (
                    f"{message_id}-XOF",
                    None,
                    [
                        ("PRG1-C01-B0001-E1", "ACSC", None),
                        ("PRG1-C01-B0002-E1", "RJCT", "AC04"),
                        ("PRG1-C01-B0003-E1", "RJCT", "AM04"),
                        ("PRG1-C01-B0099-E1", "RJCT", "AC01"),
                    ],
                )
            ],
        )
    )
    assert report.unmatched == ("PRG1-C01-B0099-E1",)
    assert set(report.updated) == {"PRG1-C01-B0001-E1", "PRG1-C01-B0002-E1", "PRG1-C01-B0003-E1"}
    expected = {
        "PRG1-C01-B0001-E1": (ProviderState.COMPLETED, None),
        "PRG1-C01-B0002-E1": (ProviderState.REJECTED, "payments.address.not_found"),
        "PRG1-C01-B0003-E1": (ProviderState.REJECTED, "payments.payer.insufficient_funds"),
        "PRG1-C01-B0004-E1": (ProviderState.ACCEPTED, None),
    }
    for key, (state, reason) in expected.items():
        status = await provider.status(key)
        assert (status.state, status.reason_code) == (state, reason)
    # A late technical acceptance does not put a settled payment back in progress.
    late = await provider.ingest(
        pain002_file(
            message_id, group=("ACTC", None), message_id="BANKSTS0000", created="2026-11-24T08:59:00Z"
        )
    )
    assert late.updated == {}
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.COMPLETED
    again = await provider.ingest(
        pain002_file(
            message_id, group=("ACTC", None), message_id="BANKSTS0000", created="2026-11-24T08:59:00Z"
        )
    )
    assert again.duplicate
    await provider.aclose()
    restarted = open_provider()
    for key, (state, reason) in expected.items():
        status = await restarted.status(key)
        assert (status.state, status.reason_code) == (state, reason)


async def test_a_rejected_file_rejects_every_payment_in_it(open_provider: Open) -> None:
    provider = open_provider()
    await provider.submit_many([stipend(1), stipend(2)])
    sealed = await provider.seal_run()
    assert sealed is not None
    await provider.submit(stipend(3))
    report = await provider.ingest(pain002_file(sealed.stem, group=("RJCT", "AM04")))
    assert set(report.updated) == {"PRG1-C01-B0001-E1", "PRG1-C01-B0002-E1"}
    for key in report.updated:
        status = await provider.status(key)
        assert (status.state, status.reason_code) == (
            ProviderState.REJECTED,
            "payments.payer.insufficient_funds",
        )
    assert (await provider.status("PRG1-C01-B0003-E1")).state is ProviderState.ACCEPTED
    unknown = await provider.ingest(pain002_file("DPI-NOT-OURS", group=("RJCT", "AM04"), message_id="X2"))
    assert unknown.unmatched == ("DPI-NOT-OURS",)
    assert unknown.updated == {}


async def test_a_block_level_status_covers_the_block(open_provider: Open) -> None:
    provider = open_provider()
    await provider.submit_many(
        [stipend(1), instruction("KEY-EUR-00001", "DE89370400440532013000@cobadeffxxx", "5", "EUR")]
    )
    sealed = await provider.seal_run()
    assert sealed is not None
    await provider.ingest(pain002_file(sealed.stem, blocks=[(f"{sealed.stem}-EUR", ("RJCT", "AM03"), [])]))
    status = await provider.status("KEY-EUR-00001")
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.currency.not_supported")
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.ACCEPTED


async def test_notifications_book_debits_returns_and_reversals(open_provider: Open) -> None:
    provider = open_provider()
    await provider.submit_many([stipend(1), stipend(2), stipend(3)])
    await provider.seal_run()
    content = camt054_file(
        camt054_entry(
            "4500", "XOF", "DBIT", [{"key": f"PRG1-C01-B000{n}-E1", "amount": "1500"} for n in (1, 2, 3)]
        ),
        camt054_entry(
            "1450", "XOF", "CRDT", [{"key": "PRG1-C01-B0002-E1", "return_reason": "AC04"}], reference="R"
        ),
        camt054_entry("1500", "XOF", "CRDT", [{"key": "PRG1-C01-B0003-E1"}], reversal=True, reference="V"),
        camt054_entry("900", "XOF", "DBIT", [{"key": "PRG1-C01-B0001-E1"}], reference="WRONG-AMOUNT"),
    )
    report = await provider.ingest(content)
    assert [e.kind for e in report.entries] == [StatementEntryKind.DEBIT] * 3 + [
        StatementEntryKind.RETURN,
        StatementEntryKind.REVERSAL,
        StatementEntryKind.DEBIT,
    ]
    assert report.unmatched == ("PRG1-C01-B0001-E1",)
    one, two, three = [await provider.status(f"PRG1-C01-B000{n}-E1") for n in (1, 2, 3)]
    assert one.state is ProviderState.COMPLETED
    assert (two.state, two.reason_code) == (ProviderState.RETURNED, "payments.address.not_found")
    assert three.state is ProviderState.REVERSED
    assert provider.parse_statement(content, "camt.054") == list(report.entries)
    with pytest.raises(NotSupportedError):
        provider.parse_statement(content, "mt940")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"<not xml", id="malformed"),
        pytest.param(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', id="doctype"),
        pytest.param(pain002_file("X").replace(b"<MsgId>BANKSTS0001</MsgId>", b""), id="invalid"),
    ],
)
async def test_a_refused_file_changes_nothing_and_is_not_kept(
    open_provider: Open, tmp_path: Path, content: bytes
) -> None:
    provider = open_provider()
    await provider.submit(stipend(1))
    with pytest.raises(ProviderError) as refused:
        await provider.ingest(content)
    assert refused.value.reason_code.startswith("payments.file.")
    assert list((tmp_path / "received").iterdir()) == []
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.ACCEPTED


def deliver(directory: Path, name: str, content: bytes) -> None:
    """What a transfer agent does: write under a temporary name, then rename into the inbox."""
    partial = directory / "inbox" / f"{name}.part"
    partial.write_bytes(content)
    partial.rename(directory / "inbox" / name)


async def test_files_left_in_the_inbox_are_ingested_when_a_status_is_asked(
    open_provider: Open, tmp_path: Path
) -> None:
    provider = open_provider()
    await provider.submit_many([stipend(1), stipend(2)])
    sealed = await provider.seal_run()
    assert sealed is not None
    deliver(tmp_path, "sts-0001.xml", pain002_file(sealed.stem, group=("RJCT", "AC06")))
    (tmp_path / "inbox" / "sts-0002.xml.part").write_bytes(b"<half a file")
    status = await provider.status("PRG1-C01-B0002-E1")
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.account.blocked")
    assert [path.name for path in (tmp_path / "inbox").iterdir()] == ["sts-0002.xml.part"]
    assert len(list((tmp_path / "received").iterdir())) == 1


async def test_a_refused_inbox_file_moves_aside_with_its_reason(open_provider: Open, tmp_path: Path) -> None:
    provider = open_provider(max_file_bytes=4096)
    await provider.submit(stipend(1))
    deliver(tmp_path, "a-broken.xml", b"<Document>")
    deliver(tmp_path, "b-huge.xml", b"<a/>" * 2000)
    deliver(
        tmp_path,
        "c-good.xml",
        camt054_file(camt054_entry("1500", "XOF", "DBIT", [{"key": "PRG1-C01-B0001-E1"}])),
    )
    results = dict(await provider.ingest_inbox())
    assert isinstance(results["a-broken.xml"], ProviderError)
    assert results["a-broken.xml"].reason_code == "payments.file.malformed"
    assert isinstance(results["b-huge.xml"], ProviderError)
    assert results["b-huge.xml"].reason_code == "payments.file.too_large"
    assert list((tmp_path / "inbox").iterdir()) == []
    refused = sorted(path.name for path in (tmp_path / "refused").iterdir())
    assert len(refused) == 4
    reasons = sorted((tmp_path / "refused").glob("*.reason"))
    assert [path.read_text().split(":")[0] for path in reasons] == [
        "payments.file.malformed",
        "payments.file.too_large",
    ]
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.COMPLETED


async def test_resolve_checks_only_what_a_file_can_carry(open_provider: Open) -> None:
    provider = open_provider(address_schemes=("wallet1", "cobadeffxxx"))
    good = await provider.resolve(FinancialAddress.parse("DE89370400440532013000@cobadeffxxx"))
    assert good.resolved
    assert good.holder_name is None
    for text in ("DE00370400440532013000@cobadeffxxx", "0700000001@elsewhere"):
        bad = await provider.resolve(FinancialAddress.parse(text))
        assert (bad.resolved, bad.reason_code) == (False, "payments.address.invalid")


async def test_capabilities_are_declared_honestly(open_provider: Open) -> None:
    capabilities = open_provider(max_bulk=500, currencies=("XOF",)).capabilities
    assert capabilities.idempotency
    assert capabilities.status_query
    assert not capabilities.single_flight
    assert (capabilities.cancel, capabilities.reversal, capabilities.name_check) == (False, False, False)
    assert capabilities.max_bulk == 500
    assert "camt.054" in capabilities.statement_formats
    assert capabilities.currencies == ("XOF",)


async def test_a_closed_provider_refuses_work(open_provider: Open) -> None:
    provider = open_provider()
    await provider.aclose()
    with pytest.raises(ProviderError) as refused:
        await provider.submit(stipend(1))
    assert refused.value.reason_code == "payments.provider.unavailable"


async def test_the_entry_point_builds_the_adapter_from_configuration(tmp_path: Path) -> None:
    (factory,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "iso20022"]
    config = {
        "directory": str(tmp_path),
        "debtor_name": "Social Protection Agency",
        "debtor_account": "SN08SN0100152000048500003035",
        "debtor_agent": "SGSNSNDA",
        "currencies": "XOF",
        "max_bulk": "250",
    }
    provider = factory.load()("bank", config)
    try:
        assert provider.capabilities.max_bulk == 250
        assert (await provider.submit(stipend(1))).state is ProviderState.ACCEPTED
    finally:
        await provider.aclose()
    (sealed,) = outgoing(tmp_path)
    assert read_pain001(sealed.read_bytes()).debtor.name == "Social Protection Agency"
    with pytest.raises(ValueError, match="debtor_agent"):
        factory.load()("bank", {k: v for k, v in config.items() if k != "debtor_agent"})
    with pytest.raises(ValueError, match="charge bearer"):
        Debtor("Agency", "SN08SN0100152000048500003035", "SGSNSNDA", charge_bearer="ALL")
