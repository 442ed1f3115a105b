"""A payment provider that speaks to a bank through ISO 20022 files: pain.001 out, pain.002 and camt.054 in.

https://www.iso20022.org/iso-20022-message-definitions. The bank is reached only through files in a
directory that a transfer agent (EBICS, SFTP, the bank's portal) carries both ways:

``runs/``
    every pain.001 this adapter ever wrote, the open run as ``<MsgId>.open.xml``; its record, kept.
``outgoing/``
    sealed runs, ready for the bank (the transfer agent takes them from here).
``inbox/``
    where the transfer agent leaves the bank's pain.002 and camt.054 files (written under a name
    starting with ``.`` or ending in ``.part`` or ``.tmp``, then renamed); they are ingested when a
    status is asked (at most once a second) or by :meth:`Iso20022Provider.ingest_inbox`.
``received/``
    every pain.002 and camt.054 ingested, in order, so the statuses are rebuilt after a restart.
``refused/``
    inbox files that were refused, each with a ``.reason`` file naming the reason code and why.

``submit``/``submit_many`` append instructions to the open run's pain.001, rewritten atomically (a
temporary file, fsync, rename) before they answer, so an instruction is either in the file or was
never accepted. A run is sealed (moved to ``outgoing/``) by :meth:`Iso20022Provider.seal_run`, when it
reaches its size limit, or when the adapter is closed.

Why this adapter declares both idempotency and a status query, though a bank file channel has no
synchronous question to ask: the only way to the bank is a file this adapter wrote, and every key is in
at most one of them, so resubmitting a key never pays twice; and :meth:`~Iso20022Provider.status` says
``NOT_FOUND`` exactly when no file ever carried the key (the bank cannot have it), otherwise what the
latest pain.002 or camt.054 said of it, ``ACCEPTED`` until the bank has said anything. A process holds
the directory alone (an exclusive lock), so its view of the files is the whole truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from stdnum import iban

from payments_adapter.contract import (
    AddressResolution,
    Capabilities,
    FinancialAddress,
    NotSupportedError,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderError,
    ProviderState,
    ProviderStatus,
    StatementEntry,
    StatementEntryKind,
)
from payments_adapter.iso20022.camt054 import CAMT054, notification
from payments_adapter.iso20022.documents import DEFAULT_MAX_FILE_BYTES, Iso20022FileError, read_document
from payments_adapter.iso20022.pain001 import (
    CreditTransferRun,
    Debtor,
    InstructionNotRepresentableError,
    Pain001Builder,
    check_representable,
    read_pain001,
)
from payments_adapter.iso20022.pain002 import PAIN002_VERSIONS, ReportedStatus, StatusReport, status_report

__all__ = ["IngestReport", "Iso20022Provider", "create_provider"]

STATEMENT_FORMATS: Final = ("camt.054", CAMT054)
_INBOX_POLL_NS: Final = 1_000_000_000
_IBAN_SHAPE: Final = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Za-z0-9]{1,30}$")
# A later report may settle a payment, or undo a settled one, but never put it back in progress.
_RANK: Final = {
    ProviderState.NOT_FOUND: 0,
    ProviderState.ACCEPTED: 0,
    ProviderState.COMPLETED: 1,
    ProviderState.REJECTED: 1,
    ProviderState.CANCELLED: 1,
    ProviderState.RETURNED: 2,
    ProviderState.REVERSED: 2,
}
_STATEMENT_STATES: Final = {
    StatementEntryKind.DEBIT: ProviderState.COMPLETED,
    StatementEntryKind.RETURN: ProviderState.RETURNED,
    StatementEntryKind.REVERSAL: ProviderState.REVERSED,
}


@dataclass(frozen=True)
class IngestReport:
    """What one ingested pain.002 or camt.054 did: the payments whose state or reason it changed, the
    references it named that no file of ours carried, and its booked entries (camt.054)."""

    message: str
    message_id: str
    duplicate: bool = False
    updated: Mapping[str, ProviderStatus] = field(default_factory=dict)
    unmatched: tuple[str, ...] = ()
    entries: tuple[StatementEntry, ...] = ()


@dataclass
class _Payment:
    instruction: PaymentInstruction
    message_id: str
    status: ProviderStatus


def _same_payment(one: PaymentInstruction, other: PaymentInstruction) -> bool:
    return (one.payee, one.amount) == (other.payee, other.amount)


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("xb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Iso20022Provider(PaymentProvider):
    """ISO 20022 bank files: pain.001.001.09 out; pain.002.001.12 (or .03) and camt.054.001.08 in."""

    def __init__(
        self,
        name: str,
        *,
        directory: Path,
        debtor: Debtor,
        currencies: Sequence[str] = (),
        address_schemes: Sequence[str] = (),
        max_run_transactions: int = 10_000,
        max_bulk: int = 1_000,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        message_prefix: str = "DPI",
        seal_on_close: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9]{1,10}", message_prefix):
            raise ValueError("the message prefix is 1 to 10 letters or digits")
        if max_run_transactions < 1 or max_bulk < 1:
            raise ValueError("run and bulk sizes are at least 1")
        self.name = name
        self._debtor = debtor
        self._capabilities = Capabilities(
            idempotency=True,
            status_query=True,
            max_bulk=max_bulk,
            statement_formats=STATEMENT_FORMATS,
            address_schemes=tuple(scheme.lower() for scheme in address_schemes),
            currencies=tuple(currencies),
        )
        self._max_run = max_run_transactions
        self._max_file_bytes = max_file_bytes
        self._prefix = message_prefix
        self._seal_on_close = seal_on_close
        self._clock = clock
        self._runs_directory = directory / "runs"
        self._outgoing = directory / "outgoing"
        self._received_directory = directory / "received"
        self._inbox = directory / "inbox"
        self._refused = directory / "refused"
        folders = (self._runs_directory, self._outgoing, self._received_directory, self._inbox, self._refused)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self._lock_file = (directory / ".lock").open("a")
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise ProviderError(
                "payments.provider.unavailable",
                "another process holds this ISO 20022 directory",
                retryable=True,
            ) from None
        self._lock = asyncio.Lock()
        self._payments: dict[str, _Payment] = {}
        self._runs: dict[str, tuple[str, ...]] = {}
        self._open: CreditTransferRun | None = None
        self._builder: Pain001Builder | None = None
        self._received: set[str] = set()
        self._inbox_polled_ns = 0
        self._closed = False
        try:
            self._load()
        except Exception:
            self._release()
            raise

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    # -- reading the directory back -------------------------------------------------------------

    def _load(self) -> None:
        for leftover in self._runs_directory.glob(".*.tmp"):
            leftover.unlink()
        for path in sorted(self._runs_directory.glob("*.xml")):
            if path.name.endswith(".open.xml"):
                continue
            self._index(read_pain001(path.read_bytes(), max_bytes=self._max_file_bytes))
        open_runs = sorted(self._runs_directory.glob("*.open.xml"))
        for path in open_runs:
            run = read_pain001(path.read_bytes(), max_bytes=self._max_file_bytes)
            self._index(run)
            if path is open_runs[-1] and not (self._outgoing / f"{run.message_id}.xml").exists():
                self._open = run
            else:
                self._finish_sealing(run)
        for path in sorted(self._received_directory.glob("*.xml")):
            content = path.read_bytes()
            self._received.add(hashlib.sha256(content).hexdigest())
            self._apply(self._read_incoming(content))

    def _index(self, run: CreditTransferRun, added: Sequence[PaymentInstruction] | None = None) -> None:
        """Know the payments of ``run`` (only those ``added`` to it when given)."""
        at = run.created_at
        for instruction in run.instructions if added is None else added:
            status = ProviderStatus(
                ProviderState.ACCEPTED, None, run.message_id, f"in pain.001 {run.message_id}", at
            )
            self._payments[instruction.idempotency_key] = _Payment(instruction, run.message_id, status)
        self._runs[run.message_id] = tuple(i.idempotency_key for i in run.instructions)

    def _run_path(self, run: CreditTransferRun, *, sealed: bool) -> Path:
        return self._runs_directory / f"{run.message_id}{'' if sealed else '.open'}.xml"

    def _finish_sealing(self, run: CreditTransferRun) -> None:
        content = self._run_path(run, sealed=False).read_bytes()
        outgoing = self._outgoing / f"{run.message_id}.xml"
        if not outgoing.exists():
            _write_atomically(outgoing, content)
        os.replace(self._run_path(run, sealed=False), self._run_path(run, sealed=True))

    # -- the provider contract ------------------------------------------------------------------

    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        """A bank file cannot ask the bank; this checks only that the address can be carried (an IBAN
        with a valid check digit, or an account identification of at most 34 characters) to a bank
        this adapter reaches."""
        problem = self._address_problem(address)
        return AddressResolution(
            address,
            resolved=problem is None,
            reason_code=problem,
            currencies=self._capabilities.currencies,
        )

    def _address_problem(self, address: FinancialAddress) -> str | None:
        schemes = self._capabilities.address_schemes
        if schemes and address.provider not in schemes:
            return "payments.address.invalid"
        if len(address.account) > 34 or len(address.provider) > 35:
            return "payments.address.invalid"
        if _IBAN_SHAPE.match(address.account) and not iban.is_valid(address.account):
            return "payments.address.invalid"
        return None

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        (answer,) = await self.submit_many([instruction])
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def submit_many(
        self, instructions: Sequence[PaymentInstruction]
    ) -> list[ProviderStatus | ProviderError]:
        """Add the instructions to the open run's pain.001 in one atomic rewrite; one answer per item."""
        if len(instructions) > self._capabilities.max_bulk:
            raise ProviderError(
                "payments.request.too_large",
                f"at most {self._capabilities.max_bulk} instructions are submitted at once",
            )
        async with self._lock:
            self._check_open()
            answers: list[ProviderStatus | ProviderError | None] = []
            additions: dict[str, PaymentInstruction] = {}
            now = self._clock()
            for instruction in instructions:
                known = self._payments.get(instruction.idempotency_key)
                earlier = known.instruction if known else additions.get(instruction.idempotency_key)
                if earlier is not None:
                    if not _same_payment(earlier, instruction):
                        answers.append(
                            ProviderError(
                                "payments.request.duplicate",
                                f"{instruction.idempotency_key} was submitted with another payee or amount",
                            )
                        )
                    elif known is not None:
                        answers.append(known.status)
                    else:
                        answers.append(None)
                    continue
                refusal = self._refusal(instruction)
                if refusal is not None:
                    answers.append(ProviderStatus(ProviderState.REJECTED, refusal[0], None, refusal[1], now))
                    continue
                additions[instruction.idempotency_key] = instruction
                answers.append(None)
            failed = await self._append(list(additions.values()))
            final: list[ProviderStatus | ProviderError] = []
            for instruction, answer in zip(instructions, answers, strict=True):
                key = instruction.idempotency_key
                final.append(answer or failed.get(key) or self._payments[key].status)
            return final

    def _refusal(self, instruction: PaymentInstruction) -> tuple[str, str] | None:
        currencies = self._capabilities.currencies
        if currencies and instruction.amount.currency not in currencies:
            return "payments.currency.not_supported", f"this account pays in {', '.join(currencies)}"
        problem = self._address_problem(instruction.payee)
        if problem is not None:
            return problem, f"{instruction.payee} cannot be paid through this bank file"
        try:
            check_representable(instruction)
        except InstructionNotRepresentableError as error:
            return error.reason_code, str(error)
        return None

    async def _append(self, instructions: list[PaymentInstruction]) -> dict[str, ProviderError]:
        """Write ``instructions`` into open runs (sealing each that fills up); the payments are known
        only once their file is on disk. Answers the error of each instruction that was not written
        (those of an earlier, full run were)."""
        remaining = list(instructions)
        while remaining:
            run = self._open or self._new_run()
            room = self._max_run - len(run.instructions)
            chunk, remaining = remaining[:room], remaining[room:]
            builder = self._builder if self._open is not None else None
            # The builder holds what is on disk; on any failure it is dropped and rebuilt from the run.
            self._builder = None
            try:
                if builder is None:
                    builder = Pain001Builder(run)
                builder.append(chunk)
                content = builder.content()
            except ValueError as error:
                refused = ProviderError("payments.instruction.invalid", f"the run cannot be written: {error}")
                return dict.fromkeys((i.idempotency_key for i in chunk + remaining), refused)
            if len(content) > self._max_file_bytes:
                if run.instructions:
                    # The open run is as large as a file may be: it goes out, the chunk opens the next.
                    await self._seal()
                    remaining = chunk + remaining
                    continue
                too_large = ProviderError("payments.request.too_large", "one file cannot hold these payments")
                return dict.fromkeys((i.idempotency_key for i in chunk + remaining), too_large)
            grown = builder.run
            path = self._run_path(grown, sealed=False)
            try:
                await asyncio.to_thread(_write_atomically, path, content)
            except OSError as error:
                if not self._file_holds(path, content):
                    unavailable = ProviderError(
                        "payments.provider.unavailable",
                        f"the run could not be written: {error}",
                        retryable=True,
                    )
                    return dict.fromkeys((i.idempotency_key for i in chunk + remaining), unavailable)
                # The rename happened; only the directory's fsync failed. The file may not survive a
                # power cut, so the answer is unknown until a status query after restart settles it.
                self._open = grown
                self._index(grown, chunk)
                unknown = OutcomeUnknownError(f"the run was written but not made durable: {error}")
                unwritten = ProviderError(
                    "payments.provider.unavailable", f"not written after a failure: {error}", retryable=True
                )
                failed: dict[str, ProviderError] = dict.fromkeys((i.idempotency_key for i in chunk), unknown)
                return failed | dict.fromkeys((i.idempotency_key for i in remaining), unwritten)
            self._open = grown
            self._builder = builder
            self._index(grown, chunk)
            if len(grown.instructions) >= self._max_run:
                await self._seal()
        return {}

    @staticmethod
    def _file_holds(path: Path, content: bytes) -> bool:
        try:
            return path.read_bytes() == content
        except OSError:
            return False

    def _new_run(self) -> CreditTransferRun:
        now = self._clock()
        message_id = f"{self._prefix}{now:%Y%m%d%H%M%S}{secrets.token_hex(3).upper()}"
        return CreditTransferRun(message_id, now, now.date(), self._debtor)

    async def seal_run(self) -> Path | None:
        """Close the open run: its pain.001 goes to ``outgoing/`` for the bank. ``None`` if none is open."""
        async with self._lock:
            self._check_open()
            return await self._seal()

    async def _seal(self) -> Path | None:
        run = self._open
        if run is None:
            return None
        await asyncio.to_thread(self._finish_sealing, run)
        self._open = None
        self._builder = None
        return self._outgoing / f"{run.message_id}.xml"

    async def status(self, idempotency_key: str) -> ProviderStatus:
        """What the files say of the payment: ``NOT_FOUND`` if no pain.001 carried it, else the latest
        word of a pain.002 or camt.054, ``ACCEPTED`` until the bank says anything."""
        now = time.monotonic_ns()
        if now - self._inbox_polled_ns >= _INBOX_POLL_NS:
            self._inbox_polled_ns = now
            await self.ingest_inbox()
        payment = self._payments.get(idempotency_key)
        if payment is None:
            return ProviderStatus(ProviderState.NOT_FOUND, None, None, "no pain.001 carried this key")
        return payment.status

    def parse_statement(self, content: bytes, statement_format: str) -> list[StatementEntry]:
        if statement_format not in STATEMENT_FORMATS:
            raise NotSupportedError(f"statements in {statement_format}")
        document = read_document(content, accept={CAMT054}, max_bytes=self._max_file_bytes)
        return list(notification(document).entries)

    # -- files from the bank --------------------------------------------------------------------

    def _read_incoming(self, content: bytes) -> StatusReport | tuple[str, tuple[StatementEntry, ...]]:
        document = read_document(content, accept=PAIN002_VERSIONS | {CAMT054}, max_bytes=self._max_file_bytes)
        if document.message == CAMT054:
            read = notification(document)
            return read.message_id, read.entries
        return status_report(document)

    async def ingest(self, content: bytes) -> IngestReport:
        """Read a pain.002 or camt.054 from the bank, keep it in ``received/`` and apply what it says.

        A file is refused whole (``payments.file.*``) before anything changes; the same file ingested
        twice changes nothing the second time.
        """
        incoming = await asyncio.to_thread(self._read_incoming, content)
        digest = hashlib.sha256(content).hexdigest()
        async with self._lock:
            self._check_open()
            if digest in self._received:
                message_id = incoming.message_id if isinstance(incoming, StatusReport) else incoming[0]
                return IngestReport(self._message_name(incoming), message_id, duplicate=True)
            path = self._received_directory / f"{len(self._received) + 1:08d}-{digest[:16]}.xml"
            try:
                await asyncio.to_thread(_write_atomically, path, content)
            except OSError as error:
                raise ProviderError(
                    "payments.provider.unavailable", f"the file could not be kept: {error}", retryable=True
                ) from None
            self._received.add(digest)
            return self._apply(incoming)

    async def ingest_inbox(self) -> list[tuple[str, IngestReport | ProviderError]]:
        """Ingest the files waiting in ``inbox/``, oldest first: each one ingested leaves the inbox (it
        is kept in ``received/``), each one refused moves to ``refused/`` with its reason; a file that
        could not be kept for a passing reason stays for the next time."""
        results: list[tuple[str, IngestReport | ProviderError]] = []
        waiting = await asyncio.to_thread(self._waiting_in_inbox)
        for path in waiting:
            try:
                if not path.is_file():
                    continue
                if path.stat().st_size > self._max_file_bytes:
                    raise Iso20022FileError(
                        "payments.file.too_large", f"the file is larger than {self._max_file_bytes} bytes"
                    )
                report = await self.ingest(path.read_bytes())
            except OSError as error:
                results.append(
                    (path.name, ProviderError("payments.provider.unavailable", str(error), retryable=True))
                )
                continue
            except Iso20022FileError as refused:
                await asyncio.to_thread(self._refuse, path, refused)
                results.append((path.name, refused))
                continue
            except ProviderError as error:
                results.append((path.name, error))
                continue
            path.unlink()
            results.append((path.name, report))
        return results

    def _waiting_in_inbox(self) -> list[Path]:
        ready: list[tuple[int, str, Path]] = []
        try:
            entries = list(os.scandir(self._inbox))
        except OSError:
            return []
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith((".part", ".tmp")):
                continue
            try:
                if entry.is_file():
                    ready.append((entry.stat().st_mtime_ns, entry.name, Path(entry.path)))
            except OSError:
                continue  # gone (or going) while we looked: the next poll sees what remains
        return [path for _, _, path in sorted(ready)]

    def _refuse(self, path: Path, refused: Iso20022FileError) -> None:
        target = self._refused / f"{self._clock_stamp()}-{path.name}"
        _write_atomically(
            target.with_name(target.name + ".reason"), f"{refused.reason_code}: {refused}\n".encode()
        )
        os.replace(path, target)

    def _clock_stamp(self) -> str:
        return f"{self._clock():%Y%m%dT%H%M%S}"

    @staticmethod
    def _message_name(incoming: StatusReport | tuple[str, tuple[StatementEntry, ...]]) -> str:
        return incoming.message if isinstance(incoming, StatusReport) else CAMT054

    def _apply(self, incoming: StatusReport | tuple[str, tuple[StatementEntry, ...]]) -> IngestReport:
        entries: tuple[StatementEntry, ...] = ()
        if isinstance(incoming, StatusReport):
            candidates, unmatched = self._statuses_of(incoming)
            message_id = incoming.message_id
        else:
            message_id, entries = incoming
            candidates, unmatched = self._statuses_of_entries(entries)
        updated: dict[str, ProviderStatus] = {}
        for key, status in candidates.items():
            payment = self._payments[key]
            if _RANK[status.state] < _RANK[payment.status.state]:
                continue
            if (status.state, status.reason_code) != (payment.status.state, payment.status.reason_code):
                updated[key] = status
            payment.status = status
        return IngestReport(
            self._message_name(incoming), message_id, False, updated, tuple(unmatched), tuple(entries)
        )

    def _statuses_of(self, report: StatusReport) -> tuple[dict[str, ProviderStatus], list[str]]:
        """Each covered payment's status, the most specific level winning: transaction, then payment
        information block, then the whole message."""
        keys = self._runs.get(report.original_message_id)
        candidates: dict[str, ProviderStatus] = {}
        unmatched: list[str] = []
        reference = report.message_id

        def give(covered: Sequence[str], reported: ReportedStatus | None, own: str | None = None) -> None:
            status = (
                reported.provider_status(reference=own or reference, at=report.created_at)
                if reported
                else None
            )
            if status is not None:
                candidates.update(dict.fromkeys(covered, status))

        if keys is None:
            unmatched.append(report.original_message_id)
        else:
            give(keys, report.group_status)
        for block in report.payment_information:
            if keys is not None:
                in_block = [
                    key
                    for key in keys
                    if block.payment_information_id
                    == f"{report.original_message_id}-{self._payments[key].instruction.amount.currency}"
                ]
                if not in_block and block.status is not None:
                    unmatched.append(block.payment_information_id)
                give(in_block, block.status)
            for transaction in block.transactions:
                if transaction.end_to_end_id not in self._payments:
                    unmatched.append(transaction.end_to_end_id)
                    continue
                give([transaction.end_to_end_id], transaction.status, transaction.account_servicer_reference)
        return candidates, unmatched

    def _statuses_of_entries(
        self, entries: Sequence[StatementEntry]
    ) -> tuple[dict[str, ProviderStatus], list[str]]:
        candidates: dict[str, ProviderStatus] = {}
        unmatched: list[str] = []
        for entry in entries:
            key = entry.idempotency_key
            payment = self._payments.get(key) if key is not None else None
            if key is None or payment is None or not self._books(entry, payment.instruction):
                unmatched.append(key or entry.provider_reference or "")
                continue
            state = _STATEMENT_STATES[entry.kind]
            current = candidates.get(key)
            if current is not None and _RANK[current.state] > _RANK[state]:
                continue
            candidates[key] = ProviderStatus(
                state,
                entry.reason_code,
                entry.provider_reference,
                f"camt.054 {entry.kind.value} booked {entry.booked_at.date().isoformat()}",
                entry.booked_at,
            )
        return candidates, unmatched

    @staticmethod
    def _books(entry: StatementEntry, instruction: PaymentInstruction) -> bool:
        """Whether ``entry`` can be a booking of ``instruction``: a debit of exactly the amount, or a
        return or reversal of at most it (a return may come back short of the banks' fees)."""
        expected = instruction.amount
        if entry.amount.currency != expected.currency:
            return False
        if entry.kind is StatementEntryKind.DEBIT:
            return entry.amount == expected
        return entry.amount.amount <= expected.amount

    # -- lifetime -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("payments.provider.unavailable", "this provider has been closed")

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._lock_file.close()

    async def aclose(self) -> None:
        """Seal the open run (unless configured not to) and release the directory."""
        async with self._lock:
            if self._closed:
                return
            if self._seal_on_close:
                await self._seal()
            self._closed = True
            self._release()


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise ValueError(f"{value!r} is not true or false")
    return value.lower() == "true"


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def create_provider(name: str, config: Mapping[str, str]) -> PaymentProvider:
    """Build the adapter from its configuration (entry point ``iso20022`` of ``dpi.payment_providers``).

    Keys: ``directory``, ``debtor_name``, ``debtor_account`` (IBAN or other identification),
    ``debtor_agent`` (BIC or the bank's identifier) are required; ``initiating_party``,
    ``charge_bearer`` (DEBT, CRED, SHAR, SLEV), ``currencies`` and ``address_schemes`` (comma
    separated), ``max_run_transactions``, ``max_bulk``, ``max_file_bytes``, ``message_prefix`` and
    ``seal_on_close`` (true or false) are optional.
    """
    missing = [
        key for key in ("directory", "debtor_name", "debtor_account", "debtor_agent") if not config.get(key)
    ]
    if missing:
        raise ValueError(f"the iso20022 provider needs {', '.join(missing)}")
    debtor = Debtor(
        name=config["debtor_name"],
        account=config["debtor_account"],
        agent=config["debtor_agent"],
        initiating_party=config.get("initiating_party", ""),
        charge_bearer=config.get("charge_bearer") or None,
    )
    return Iso20022Provider(
        name,
        directory=Path(config["directory"]),
        debtor=debtor,
        currencies=_list(config.get("currencies")),
        address_schemes=_list(config.get("address_schemes")),
        max_run_transactions=int(config.get("max_run_transactions", "10000")),
        max_bulk=int(config.get("max_bulk", "1000")),
        max_file_bytes=int(config.get("max_file_bytes", str(DEFAULT_MAX_FILE_BYTES))),
        message_prefix=config.get("message_prefix", "DPI"),
        seal_on_close=_flag(config.get("seal_on_close"), True),
    )
