"""Bulk import of records into a hosted registry from JSON Lines (https://jsonlines.org) or CSV
(RFC 4180, https://www.rfc-editor.org/rfc/rfc4180) files, as ``dpi registry import`` runs it.

A file is read one line at a time and written in batches, so memory stays bounded by the batch size
whatever the size of the file. Every line passes the rules of :meth:`RegistryService.create`: the
registry's schema and record types, check digits, code lists and identifier uniqueness. CSV columns
become JSON pointers, and local dates (dd/mm/yyyy...) ISO 8601 dates, as a ``registry-import-mapping``
document declares.

- **Idempotent.** A line whose identifiers already belong to a record with the same document (imported
  by an earlier run, or earlier in the same file) is counted as unchanged and writes nothing, so running
  the same file again creates no duplicates. A line whose identifier belongs to a record with another
  document is refused (``registry.identifier_taken``). A record without any identifier cannot be
  recognised on a second run, so it is refused (``registry.import_identifier_missing``).
- **Two modes.** ``all_or_nothing`` writes the whole file in one transaction and stops at the first
  bad line, leaving the registry as it was. Otherwise each batch is its own transaction and only the
  good lines are written; every bad line is reported (line, field, reason code) and skipped.
- Like :meth:`RegistryService.create_many`, a bulk load sends no notification per record.
- **Indexes set aside, on request** (``defer_indexes``, ``dpi registry import --defer-indexes``): on
  PostgreSQL a large load may drop the secondary indexes (:func:`registry.service.bulk_load_indexes`;
  never the primary keys that keep identifiers unique) and rebuild them from sorted rows once the file
  is read. The rule (:func:`defers_indexes`): the file has at least :data:`BULK_LOAD_MIN_LINES` lines
  and at least as many as the registry tables hold records, so the rebuild sorts at most twice what the
  load brings. It is not the default: with the tables in memory on two cores, a million persons cost
  PostgreSQL as much CPU either way, and the rebuild then runs alone after the load instead of beside
  the reading and checking (bench/README.md); it pays when index maintenance waits on the disk. The
  rebuild runs whatever happens to the load (an exception, a cancellation); a process killed in between
  leaves them missing until the next import or the next start of the block, which recreate every
  missing one. While they are aside, searches still answer, more slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import json
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
from sqlalchemy import Index, func, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

import standards
from dpi.errors import DpiError, ErrorDetail
from registry.definition import RegistryDefinition, resolve
from registry.models import IdentifierRow, RecordRow
from registry.service import (
    BulkTable,
    DocumentRows,
    RegistryService,
    bulk_load_indexes,
    bulk_tables,
    document_rows,
    ensure_indexes,
)

__all__ = [
    "BULK_LOAD_MIN_LINES",
    "MAPPING_SCHEMA",
    "ImportMapping",
    "ImportReport",
    "LineError",
    "SourceLine",
    "defers_indexes",
    "import_lines",
    "read_csv",
    "read_file",
    "read_jsonl",
]

MAPPING_SCHEMA: Final = "registry-import-mapping@1.0.0"
_DATE_FORMATS: Final[Mapping[str, str]] = {
    "dd/mm/yyyy": "%d/%m/%Y",
    "mm/dd/yyyy": "%m/%d/%Y",
    "yyyy/mm/dd": "%Y/%m/%d",
    "dd-mm-yyyy": "%d-%m-%Y",
    "dd.mm.yyyy": "%d.%m.%Y",
    "yyyy-mm-dd": "%Y-%m-%d",
    "yyyymmdd": "%Y%m%d",
}
_TRUE: Final = frozenset({"true", "yes", "oui", "1", "y", "o", "نعم"})
_FALSE: Final = frozenset({"false", "no", "non", "0", "n", "لا"})
_MALFORMED: Final = "registry.import_line_malformed"
_VALUE_INVALID: Final = "registry.import_value_invalid"
_MAPPING_INVALID: Final = "registry.import_mapping_invalid"
_MAX_LINE_ERRORS: Final = 20
BULK_LOAD_MIN_LINES: Final = 100_000
# Memory for each index rebuild's sort (PostgreSQL's default, 64 MB, spills a million persons to disk).
_REBUILD_MEMORY: Final = "512MB"
_COLLECTION_THRESHOLD: Final = 10_000


@dataclass(frozen=True)
class LineError:
    """Why one line of the file was not imported: its line number, the field (a JSON pointer into the
    record, or the CSV column) and a reason code from ``standards``."""

    line: int
    pointer: str
    reason_code: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "pointer": self.pointer,
            "reason_code": self.reason_code,
            "message": self.message,
        }


@dataclass(frozen=True)
class SourceLine:
    """A line of the file as a record document, or the errors that kept it from being one."""

    line: int
    document: dict[str, Any] | None
    errors: tuple[LineError, ...] = ()


@dataclass
class ImportReport:
    """What an import did: lines read, records created, lines already imported, lines refused."""

    lines: int = 0
    created: int = 0
    unchanged: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    stopped_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "created": self.created,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "reasons": dict(sorted(self.reasons.items())),
            "stopped_at": self.stopped_at,
        }


def _tokens(pointer: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]


def _place(document: dict[str, Any], pointer: str, value: Any, *, overwrite: bool) -> bool:
    """Set ``value`` at ``pointer``, creating objects (and array items for number tokens) on the way;
    False when the document's shape does not allow it."""
    tokens = _tokens(pointer)
    target: Any = document
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        last = following is None
        empty: Any = None if following is None else ([] if following.isdigit() else {})
        if isinstance(target, dict):
            if last:
                if overwrite or token not in target:
                    target[token] = value
                return True
            target = target.setdefault(token, empty)
        elif isinstance(target, list) and token.isdigit():
            index = int(token)
            if index > len(target):
                return False
            if index == len(target):
                target.append(value if last else empty)
            elif last and overwrite:
                target[index] = value
            if last:
                return True
            target = target[index]
        else:
            return False
    return False


@dataclass(frozen=True)
class _Column:
    column: str
    pointer: str
    type: str


@dataclass(frozen=True)
class ImportMapping:
    """A ``registry-import-mapping@1.0.0`` document: CSV columns to JSON pointers, constants, dates."""

    registry: str
    delimiter: str = ","
    columns: tuple[_Column, ...] = ()
    constants: tuple[tuple[str, Any], ...] = ()
    dates: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_document(cls, document: Any) -> ImportMapping:
        validator = standards.validator(MAPPING_SCHEMA)
        if not validator.is_valid(document):
            raise DpiError(
                _MAPPING_INVALID,
                details=[
                    ErrorDetail(issue.pointer, issue.reason_code, issue.message)
                    for issue in validator.issues(document, limit=10)
                ],
            )
        return cls(
            registry=document["registry"],
            delimiter=document.get("delimiter", ","),
            columns=tuple(
                _Column(entry["column"], entry["pointer"], entry.get("type", "string"))
                for entry in document.get("columns", ())
            ),
            constants=tuple((entry["pointer"], entry["value"]) for entry in document.get("constants", ())),
            dates=tuple(
                (entry["pointer"], _DATE_FORMATS[entry["format"]]) for entry in document.get("dates", ())
            ),
        )

    @classmethod
    def load(cls, path: Path) -> ImportMapping:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DpiError(_MAPPING_INVALID, f"{path.name}: {error}") from None
        return cls.from_document(document)

    def complete(self, line: int, document: dict[str, Any]) -> list[LineError]:
        """Add the constants and convert the declared dates of ``document`` in place."""
        errors: list[LineError] = []
        for pointer, value in self.constants:
            if not _place(document, pointer, value, overwrite=False):
                errors.append(
                    LineError(line, pointer, _MAPPING_INVALID, "the record has no place for this constant")
                )
        for pointer, pattern in self.dates:
            for concrete, value in resolve(document, pointer):
                try:
                    converted = datetime.strptime(value, pattern).date().isoformat()
                except (TypeError, ValueError):
                    errors.append(
                        LineError(line, concrete, _VALUE_INVALID, "not a date in the declared format")
                    )
                    continue
                _place(document, concrete, converted, overwrite=True)
        return errors

    def from_row(self, line: int, row: Mapping[str, str]) -> SourceLine:
        """The record a CSV row describes, converted as the columns declare."""
        document: dict[str, Any] = {}
        errors: list[LineError] = []
        for column in self.columns:
            text = (row.get(column.column) or "").strip()
            if not text:
                continue
            value: Any = text
            try:
                if column.type == "integer":
                    value = int(text)
                elif column.type == "number":
                    value = float(text.replace(",", "."))
                elif column.type == "boolean":
                    folded = text.casefold()
                    if folded not in _TRUE | _FALSE:
                        raise ValueError(text)
                    value = folded in _TRUE
            except ValueError:
                errors.append(
                    LineError(
                        line, column.pointer, _VALUE_INVALID, f"column {column.column}: not a {column.type}"
                    )
                )
                continue
            if not _place(document, column.pointer, value, overwrite=True):
                errors.append(
                    LineError(
                        line, column.pointer, _MAPPING_INVALID, f"column {column.column}: no place for it"
                    )
                )
        errors += self.complete(line, document)
        return SourceLine(line, None if errors else document, tuple(errors))


def read_jsonl(path: Path, mapping: ImportMapping | None = None) -> Iterator[SourceLine]:
    """Each non-empty line of a JSON Lines file as a record (constants and dates of ``mapping`` applied)."""
    with path.open(encoding="utf-8", errors="replace") as source:
        for number, text in enumerate(source, start=1):
            if not text.strip():
                continue
            try:
                document = json.loads(text)
            except json.JSONDecodeError as error:
                yield SourceLine(number, None, (LineError(number, "", _MALFORMED, f"not JSON: {error.msg}"),))
                continue
            if not isinstance(document, dict):
                yield SourceLine(number, None, (LineError(number, "", _MALFORMED, "not a JSON object"),))
                continue
            errors = mapping.complete(number, document) if mapping is not None else []
            yield SourceLine(number, None if errors else document, tuple(errors))


def read_csv(path: Path, mapping: ImportMapping) -> Iterator[SourceLine]:
    """Each row of a CSV file with a header line, as the record ``mapping`` makes of it; the line
    number is that of the row's last physical line."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as source:
        reader = csv.reader(source, delimiter=mapping.delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        missing = [column.column for column in mapping.columns if column.column not in header]
        if missing:
            raise DpiError(_MAPPING_INVALID, f"the file has no column {', '.join(missing)}")
        for cells in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                message = f"{len(cells)} cells for {len(header)} columns"
                yield SourceLine(number, None, (LineError(number, "", _MALFORMED, message),))
                continue
            yield mapping.from_row(number, dict(zip(header, cells, strict=True)))


def read_file(path: Path, mapping: ImportMapping | None) -> Iterator[SourceLine]:
    """The lines of ``path``: CSV when it ends in ``.csv`` (a mapping is then required), else JSON Lines."""
    if path.suffix.casefold() == ".csv":
        if mapping is None:
            raise DpiError(_MAPPING_INVALID, "a CSV file needs a mapping of its columns (--mapping)")
        return read_csv(path, mapping)
    return read_jsonl(path, mapping)


def _line_errors(definition: RegistryDefinition, line: SourceLine) -> list[LineError]:
    if line.document is None:
        return list(line.errors)
    problems = definition.problems(line.document)
    if problems:
        return [
            LineError(line.line, problem.pointer, problem.reason_code, problem.message)
            for problem in problems[:_MAX_LINE_ERRORS]
        ]
    if not definition.identifiers_of(line.document):
        return [
            LineError(line.line, "", "registry.import_identifier_missing", "the record has no identifier")
        ]
    return []


class _Batch:
    """Lines checked against the rules of the registry, waiting to be written together: line number,
    document, identifiers and, when prepared ahead, the rows that would add it."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, dict[str, Any], list[tuple[str, str]], DocumentRows | None]] = []

    def __len__(self) -> int:
        return len(self.lines)


async def _held(
    session: AsyncSession, code: str, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The document of the record holding each of ``pairs`` already, for the pairs that are held."""
    if not pairs:
        return {}
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # One probe of the primary key per pair. An IN list of thousands of bound parameters is not
        # hashed by PostgreSQL: on a large table each row was compared with every value in turn.
        ordered = sorted(pairs)
        rows = (
            await session.execute(
                text(
                    "SELECT i.identifier_type, i.value, i.record_id FROM registry_identifier AS i "
                    "JOIN unnest(CAST(:kinds AS varchar[]), CAST(:values AS varchar[])) AS p(kind, value) "
                    "ON i.registry = :code AND i.identifier_type = p.kind AND i.value = p.value"
                ),
                {
                    "code": code,
                    "kinds": [kind for kind, _ in ordered],
                    "values": [value for _, value in ordered],
                },
            )
        ).all()
    else:
        rows = (
            await session.execute(
                select(IdentifierRow.identifier_type, IdentifierRow.value, IdentifierRow.record_id).where(
                    IdentifierRow.registry_code == code,
                    IdentifierRow.identifier_type.in_({kind for kind, _ in pairs}),
                    IdentifierRow.value.in_({value for _, value in pairs}),
                )
            )
        ).all()
    holders = {(row.identifier_type, row.value): row.record_id for row in rows}
    holders = {pair: record_id for pair, record_id in holders.items() if pair in pairs}
    if not holders:
        return {}
    stored = await session.execute(
        select(RecordRow.record_id, RecordRow.document).where(RecordRow.record_id.in_(set(holders.values())))
    )
    documents: dict[str, dict[str, Any]] = {row.record_id: row.document for row in stored}
    return {pair: documents[record_id] for pair, record_id in holders.items()}


_JSON_ENCODER: Final = msgspec.json.Encoder()


def _json_text(value: Any) -> str:
    return _JSON_ENCODER.encode(value).decode()


async def _copy(session: AsyncSession, table: BulkTable) -> None:
    """Write ``table`` with PostgreSQL COPY (binary, through asyncpg, in the session's transaction)."""
    connection = await session.connection()
    mapper = inspect(table.model)
    columns = [mapper.column_attrs[key].columns[0].name for key in table.keys]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table.model.__tablename__, records=table.rows, columns=columns)


@dataclass
class _Outcome:
    created: int = 0
    unchanged: int = 0
    refused: list[LineError] = field(default_factory=list)


async def _write(
    session: AsyncSession,
    definition: RegistryDefinition,
    batch: _Batch,
    *,
    actor: str,
    reason: str,
    now: datetime,
    stop_at_first: bool,
) -> _Outcome:
    """Write the records of ``batch`` not imported yet, in ``session``'s transaction."""
    outcome = _Outcome()
    pairs = {pair for _, _, line_pairs, _ in batch.lines for pair in line_pairs}
    held = await _held(session, definition.code, pairs)
    connection = await session.connection()
    postgres = connection.dialect.name == "postgresql"
    fresh: list[DocumentRows] = []
    for number, document, line_pairs, prepared in batch.lines:
        owners = [held.get(pair) for pair in line_pairs]
        if all(owner is not None and owner == document for owner in owners):
            outcome.unchanged += 1
            continue
        taken = next(
            (pair for pair, owner in zip(line_pairs, owners, strict=True) if owner is not None), None
        )
        if taken is not None:
            message = f"another record holds this {taken[0]}"
            outcome.refused.append(LineError(number, "", "registry.identifier_taken", message))
            if stop_at_first:
                return outcome
            continue
        held.update(dict.fromkeys(line_pairs, document))
        fresh.append(
            prepared
            or document_rows(
                definition,
                document,
                actor=actor,
                reason=reason,
                now=now,
                encode_json=_json_text if postgres else None,
            )
        )
    for table in bulk_tables(fresh):
        if not table.rows:
            continue
        if postgres:
            await _copy(session, table)
        else:
            await session.execute(insert(table.model), table.as_dicts())
    outcome.created = len(fresh)
    return outcome


async def import_lines(
    service: RegistryService,
    code: str,
    lines: Iterable[SourceLine],
    *,
    actor: str,
    reason: str,
    all_or_nothing: bool = False,
    batch_size: int = 2000,
    on_error: Callable[[LineError], object] = lambda _error: None,
    on_progress: Callable[[int], object] = lambda _count: None,
    expected_lines: int | None = None,
    defer_indexes: bool | None = False,
) -> ImportReport:
    """Import ``lines`` into registry ``code``; see the module's documentation for the rules.

    ``on_error`` receives every error of every refused line; ``on_progress`` the number of lines
    handled since its last call. With ``all_or_nothing``, nothing is written if a line is refused, and
    the report's ``stopped_at`` names the first refused line found. ``defer_indexes`` None sets the
    secondary indexes aside when :func:`defers_indexes` finds the load large (``expected_lines``, the
    length of the file), True always, False (the default) never; only on PostgreSQL, never with
    ``all_or_nothing``.
    """
    definition = service.definition(code)
    report = ImportReport()

    def refuse(errors: Iterable[LineError]) -> None:
        lines_refused = set()
        for error in errors:
            lines_refused.add(error.line)
            report.reasons[error.reason_code] += 1
            on_error(error)
        report.failed += len(lines_refused)

    def count(outcome: _Outcome) -> None:
        report.created += outcome.created
        report.unchanged += outcome.unchanged
        refuse(outcome.refused)

    async def write_batch(batch: _Batch) -> None:
        try:
            async with service.sessions.begin() as session:
                outcome = await _write(
                    session,
                    definition,
                    batch,
                    actor=actor,
                    reason=reason,
                    now=_now(service),
                    stop_at_first=False,
                )
            count(outcome)
        except IntegrityError:
            # Another writer took an identifier between our check and our write: line by line, the
            # lines of the batch that still hold are written.
            for entry in batch.lines:
                single = _Batch()
                single.lines.append(entry)
                try:
                    async with service.sessions.begin() as session:
                        outcome = await _write(
                            session,
                            definition,
                            single,
                            actor=actor,
                            reason=reason,
                            now=_now(service),
                            stop_at_first=False,
                        )
                    count(outcome)
                except IntegrityError:
                    refuse(
                        [
                            LineError(
                                entry[0],
                                "",
                                "registry.identifier_taken",
                                "another record holds an identifier",
                            )
                        ]
                    )

    with _fewer_collections():
        if all_or_nothing:
            return await _import_all_or_nothing(
                service, definition, lines, report, refuse, actor, reason, batch_size, on_progress
            )
        return await _import_batched(
            service,
            definition,
            lines,
            report,
            refuse,
            write_batch,
            actor,
            reason,
            batch_size,
            on_progress,
            expected_lines,
            defer_indexes,
        )


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Let the cyclic garbage collector run less often while a load holds batches of records.

    A batch keeps tens of thousands of containers alive (documents and their rows); at the default
    threshold the collector scanned them hundreds of times per batch, about a quarter of the CPU time
    spent preparing rows. Nothing an import makes is cyclic: reference counting frees it.
    """
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], _COLLECTION_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


async def _import_batched(
    service: RegistryService,
    definition: RegistryDefinition,
    lines: Iterable[SourceLine],
    report: ImportReport,
    refuse: Callable[[Iterable[LineError]], None],
    write_batch: Callable[[_Batch], Coroutine[Any, Any, None]],
    actor: str,
    reason: str,
    batch_size: int,
    on_progress: Callable[[int], object],
    expected_lines: int | None,
    defer_indexes: bool | None,
) -> ImportReport:
    async with service.sessions() as session:
        postgres = (await session.connection()).dialect.name == "postgresql"

    def prepare(document: dict[str, Any]) -> DocumentRows:
        return document_rows(
            definition,
            document,
            actor=actor,
            reason=reason,
            now=_now(service),
            encode_json=_json_text if postgres else None,
        )

    aside = await _set_indexes_aside(service, expected_lines, defer_indexes) if postgres else []
    try:
        await _import_batches(
            definition, lines, report, refuse, write_batch, prepare, batch_size, on_progress
        )
    finally:
        if aside:
            await _rebuild_indexes(service, aside)
    return report


async def defers_indexes(service: RegistryService, expected_lines: int | None) -> bool:
    """Whether a load of ``expected_lines`` lines sets the secondary indexes aside: on PostgreSQL, when it
    brings at least :data:`BULK_LOAD_MIN_LINES` lines and at least as many as the registry tables hold
    records (the planner's estimate, counted when the table was never analysed)."""
    if expected_lines is None or expected_lines < BULK_LOAD_MIN_LINES:
        return False
    async with service.sessions() as session:
        if (await session.connection()).dialect.name != "postgresql":
            return False
        held = await session.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('registry_record')")
        )
        if held is None or held < 0:
            held = await session.scalar(select(func.count()).select_from(RecordRow))
    return expected_lines >= (held or 0)


async def _set_indexes_aside(
    service: RegistryService, expected_lines: int | None, defer_indexes: bool | None
) -> list[Index]:
    """Drop the secondary indexes for a large load on PostgreSQL (see :func:`defers_indexes`); the
    dropped ones."""
    # An earlier load killed before its rebuild left indexes missing: they come back first.
    async with service.sessions.begin() as session:
        connection = await session.connection()
        await connection.run_sync(ensure_indexes, service.definitions)
    defer = defer_indexes if defer_indexes is not None else await defers_indexes(service, expected_lines)
    if not defer:
        return []
    aside = bulk_load_indexes(service.definitions)
    async with service.sessions.begin() as session:
        for index in aside:
            # Names come from the models and from definition codes and attribute names, which the
            # definition schema limits to [a-z0-9_-]: safe to quote into DDL.
            await session.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
    return aside


async def _rebuild_indexes(service: RegistryService, indexes: list[Index]) -> None:
    """Build ``indexes`` again (each in its own transaction, so one built stays built), then refresh the
    planner's statistics of the tables the load doubled at least."""
    tables = sorted({index.table.name for index in indexes if index.table is not None})
    for index in indexes:
        async with service.sessions.begin() as session:
            await session.execute(text(f"SET LOCAL maintenance_work_mem = '{_REBUILD_MEMORY}'"))
            connection = await session.connection()
            await connection.run_sync(_create_index, index)
    async with service.sessions.begin() as session:
        await session.execute(text(f"ANALYZE {', '.join(tables)}"))


def _create_index(connection: Connection, index: Index) -> None:
    index.create(connection, checkfirst=True)


async def _import_batches(
    definition: RegistryDefinition,
    lines: Iterable[SourceLine],
    report: ImportReport,
    refuse: Callable[[Iterable[LineError]], None],
    write_batch: Callable[[_Batch], Coroutine[Any, Any, None]],
    prepare: Callable[[dict[str, Any]], DocumentRows],
    batch_size: int,
    on_progress: Callable[[int], object],
) -> None:
    # The next batch is read and checked in a worker thread while the previous one is written, so
    # the database's work on one batch overlaps the checks of the next. Writes stay one at a time and
    # in file order: each batch's identifier lookup sees every batch written before it.
    # The rows of each line are built in the reading thread too, while the database writes the
    # previous batch; a line found already imported at write time just drops its rows.
    source = iter(lines)
    writing: asyncio.Task[None] | None = None
    written = 0
    while True:
        try:
            read, refused, batch = await asyncio.to_thread(_collect, definition, source, batch_size, prepare)
        except BaseException:
            if writing is not None:
                await writing
            raise
        if writing is not None:
            await writing
            on_progress(written)
        report.lines += read
        refuse(refused)
        if not read:
            break
        if batch.lines:
            writing, written = asyncio.create_task(write_batch(batch)), read
        else:
            writing = None
            on_progress(read)


def _collect(
    definition: RegistryDefinition,
    source: Iterator[SourceLine],
    size: int,
    prepare: Callable[[dict[str, Any]], DocumentRows],
) -> tuple[int, list[LineError], _Batch]:
    """Read lines from ``source`` until ``size`` of them pass the registry's rules (or the file ends):
    the number of lines read, the errors of the refused ones and the batch of the others, each with
    the rows that would add it (``prepare``)."""
    read = 0
    refused: list[LineError] = []
    batch = _Batch()
    for line in source:
        read += 1
        errors = _line_errors(definition, line)
        if errors:
            refused += errors
        elif line.document is not None:
            document = line.document
            batch.lines.append((line.line, document, definition.identifiers_of(document), prepare(document)))
        if len(batch) >= size:
            break
    return read, refused, batch


def _now(service: RegistryService) -> datetime:
    clock: Callable[[], datetime] = getattr(service, "_clock", lambda: datetime.now(UTC))
    return clock()


async def _import_all_or_nothing(
    service: RegistryService,
    definition: RegistryDefinition,
    lines: Iterable[SourceLine],
    report: ImportReport,
    refuse: Callable[[Iterable[LineError]], None],
    actor: str,
    reason: str,
    batch_size: int,
    on_progress: Callable[[int], object],
) -> ImportReport:
    # One transaction for the whole file: its batches are flushed as they fill (memory stays bounded)
    # and rolled back together at the first refused line.
    created = unchanged = 0
    async with service.sessions() as session, session.begin() as transaction:
        batch = _Batch()
        exhausted = False
        iterator = iter(lines)
        while report.stopped_at is None and not exhausted:
            line = next(iterator, None)
            exhausted = line is None
            if line is not None:
                report.lines += 1
                errors = _line_errors(definition, line)
                if errors:
                    refuse(errors)
                    report.stopped_at = line.line
                    break
                if line.document is not None:
                    batch.lines.append(
                        (line.line, line.document, definition.identifiers_of(line.document), None)
                    )
            if batch.lines and (exhausted or len(batch) >= batch_size):
                try:
                    outcome = await _write(
                        session,
                        definition,
                        batch,
                        actor=actor,
                        reason=reason,
                        now=_now(service),
                        stop_at_first=True,
                    )
                except IntegrityError:
                    outcome = _Outcome(
                        refused=[
                            LineError(
                                batch.lines[0][0],
                                "",
                                "registry.identifier_taken",
                                "another record holds an identifier of this batch",
                            )
                        ]
                    )
                if outcome.refused:
                    refuse(outcome.refused[:1])
                    report.stopped_at = outcome.refused[0].line
                    break
                created += outcome.created
                unchanged += outcome.unchanged
                on_progress(len(batch))
                batch = _Batch()
        if report.stopped_at is not None:
            await transaction.rollback()
        else:
            report.created, report.unchanged = created, unchanged
    return report
