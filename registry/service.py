"""The registry domain: records of the hosted registries, their versions, corrections through change
requests, merges of duplicates, and the log of reads of records about persons.

No HTTP here: ``registry.api`` maps requests onto these calls. Every refusal is a
:class:`dpi.errors.DpiError` with a ``registry.*`` reason code from ``standards``.

Rules written down (and tested in ``tests/registry``):

- **One writer wins.** Every change names the version it was made against; a change against a stale
  version is refused (``registry.version_conflict``) by a conditional UPDATE, so two officers editing
  at once can never overwrite each other.
- **Nothing is lost.** Deletion is soft; every version keeps who, when, why and the RFC 6902 patch from
  the version before, so replaying the patches rebuilds every version.
- **Identifiers stay with their record.** An identifier is unique per registry and type, and stays
  reserved by a deleted or merged record; a correction that changes an identifier releases the old one.
- **Corrections.** A change request is applied in the transaction that approves it, against the version
  it was proposed on; where the registry says so, the proposer cannot decide it.
- **Merges.** The loser redirects to the survivor (reads of the loser return the survivor with a
  redirect marker) until it is unmerged; it leaves the search attributes while merged.
- **Reads about persons are logged** (reader, purpose, consent reference, time) before the record is
  returned, with a keyed hash of each person's identifier, never the identifier itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import Index, and_, delete, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi import outbox
from dpi.errors import DpiError
from registry import rfc6902
from registry.definition import RegistryDefinition
from registry.models import (
    AttributeRow,
    ChangeRequestRow,
    IdentifierRow,
    ReadRow,
    RecordRow,
    RegistryBase,
    VersionRow,
)

__all__ = [
    "EVENT_TOPIC_PREFIX",
    "BulkTable",
    "DocumentRows",
    "Reader",
    "RegistryService",
    "bulk_load_indexes",
    "bulk_rows",
    "bulk_tables",
    "create_attribute_indexes",
    "creation_patch",
    "document_rows",
    "ensure_indexes",
    "new_record_id",
    "timestamp",
]

EVENT_TOPIC_PREFIX: Final = "registry"
ACTIVE: Final = "active"
DELETED: Final = "deleted"
MERGED: Final = "merged"
_MAX_REDIRECTS: Final = 16
_MAX_LISTED: Final = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_record_id() -> str:
    """A UUID version 7 (RFC 9562, https://www.rfc-editor.org/rfc/rfc9562#section-5.7): 48 bits of
    Unix time in milliseconds, then 74 random bits.

    Ids that grow with time land at the right edge of every index keyed by record id, instead of at a
    random page of it; with millions of records that keeps bulk imports from reading and dirtying the
    whole index. The creation time it reveals is in the record anyway (``created_at``).
    """
    milliseconds = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10))
    value = (
        (milliseconds & (2**48 - 1)) << 80
        | 0x7 << 76
        | (random_bits >> 68) << 64
        | 0b10 << 62
        | random_bits & (2**62 - 1)
    )
    return str(uuid.UUID(int=value))


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, as on the wire."""
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Reader:
    """Who reads a record and why: the reader's id, a purpose code and, when given, the consent used."""

    actor: str
    purpose: str | None = None
    consent_ref: str | None = None


def _covered(pointer: str, granted: Sequence[str]) -> bool:
    return any(pointer == field or pointer.startswith(field + "/") for field in granted)


def record_document(
    definition: RegistryDefinition,
    row: RecordRow,
    groups: frozenset[str] | None,
    redirected_from: str | None = None,
) -> dict[str, Any]:
    """The ``registry-record`` body of ``row`` reduced to ``groups`` (every field when None)."""
    granted_groups = sorted(definition.field_groups) if groups is None else sorted(groups)
    if groups is None:
        identifiers = list(row.identifiers)
    else:
        granted = [pointer for group in granted_groups for pointer in definition.field_groups.get(group, ())]
        pointers = {
            field.type: field.pointer for field in definition.identifiers if field.applies_to(row.record_type)
        }
        identifiers = [item for item in row.identifiers if _covered(pointers.get(item["type"], ""), granted)]
    body: dict[str, Any] = {
        "registry": row.registry_code,
        "record_id": row.record_id,
        "record_type": row.record_type,
        "version": row.version,
        "status": row.status,
        "identifiers": identifiers,
        "document": definition.project(row.document, groups),
        "field_groups": granted_groups,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
    }
    if redirected_from is not None:
        body["redirected_from"] = redirected_from
    return body


def _change_request_document(row: ChangeRequestRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "change_request_id": row.change_request_id,
        "registry": row.registry_code,
        "record_id": row.record_id,
        "base_version": row.base_version,
        "status": row.status,
        "reason": row.reason,
        "proposed_by": row.proposed_by,
        "proposed_at": timestamp(row.proposed_at),
        "patch": row.patch,
        "second_approver": row.second_approver,
    }
    if row.decided_by is not None and row.decided_at is not None:
        body["decided_by"] = row.decided_by
        body["decided_at"] = timestamp(row.decided_at)
        if row.decision_reason is not None:
            body["decision_reason"] = row.decision_reason
    if row.applied_version is not None:
        body["applied_version"] = row.applied_version
    return body


def _version_document(row: VersionRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": row.version,
        "action": row.action,
        "actor": row.actor,
        "at": timestamp(row.at),
        "patch": row.patch,
    }
    for name in ("reason", "change_request_id", "other_record_id"):
        value = getattr(row, name)
        if value is not None:
            body[name] = value
    return body


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _typed_column(definition: RegistryDefinition, attribute_name: str) -> Any:
    return {
        "number": AttributeRow.value_number,
        "date": AttributeRow.value_date,
    }.get(definition.attributes[attribute_name].type, AttributeRow.value_text)


_DECLARED_INDEX_PREFIX: Final = "ix_regattr_"


def _attribute_index(
    definition: RegistryDefinition, attribute_name: str, companion: str | None = None
) -> Index:
    """The partial index of one attribute's rows: on its value, or for a composite (``companion``) on
    its text and the companion's value the same rows carry."""
    columns = [_typed_column(definition, attribute_name)]
    if companion is not None:
        columns.append(_typed_column(definition, companion))
    # The code and attribute names match ^[a-z][a-z0-9-_]*$ (definition schema): safe in an index name
    # and as the literals of its WHERE clause (DDL cannot take bound parameters).
    suffix = attribute_name if companion is None else f"{attribute_name}_{companion}"
    name = f"{_DECLARED_INDEX_PREFIX}{definition.code.replace('-', '_')}_{suffix}"[:63]
    condition = and_(AttributeRow.registry_code == definition.code, AttributeRow.attribute == attribute_name)
    return Index(name, *columns, AttributeRow.record_id, postgresql_where=condition, sqlite_where=condition)


def _declared_indexes(
    definitions: Mapping[str, RegistryDefinition],
) -> list[tuple[RegistryDefinition, Index, tuple[str, str] | None]]:
    return [
        *(
            (definition, _attribute_index(definition, attribute_name), None)
            for definition in definitions.values()
            for attribute_name in definition.indexes
        ),
        *(
            (definition, _attribute_index(definition, text, companion), (text, companion))
            for definition in definitions.values()
            for text, companion in definition.composites
        ),
    ]


def _carry_companions(
    connection: Connection, definition: RegistryDefinition, text: str, companion: str
) -> None:
    """Give the rows of ``text`` the record's value of ``companion`` (rows written before the definition
    declared the composite index lack it)."""
    attributes = RegistryBase.metadata.tables[AttributeRow.__tablename__]
    own = _typed_column(definition, companion).key
    source = attributes.alias("companion")
    connection.execute(
        update(attributes)
        .where(attributes.c.registry == definition.code, attributes.c.attribute == text)
        .values(
            {
                own: select(source.c[own])
                .where(source.c.record_id == attributes.c.record_id, source.c.attribute == companion)
                .limit(1)
                .scalar_subquery()
            }
        )
    )


def create_attribute_indexes(
    connection: Connection, definitions: Mapping[str, RegistryDefinition]
) -> list[str]:
    """Create the partial indexes the definitions ask for (``indexes``), skipping those that exist, and
    drop the attribute indexes no definition declares any more (a definition that changed its indexes);
    returns the names of the declared ones. A composite index is created after its rows get their
    companion values. Run through ``AsyncConnection.run_sync``."""
    present = {str(entry["name"]) for entry in inspect(connection).get_indexes(AttributeRow.__tablename__)}
    declared = _declared_indexes(definitions)
    wanted = {str(index.name) for _, index, _ in declared}
    for name in sorted(present - wanted):
        # Only the indexes this function makes (their names are built from codes and attribute names
        # matching ^[a-z][a-z0-9_]*$, so quoting them is safe); the table's own indexes stay.
        if name.startswith(_DECLARED_INDEX_PREFIX):
            connection.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    names: list[str] = []
    for definition, index, composite in declared:
        if index.name not in present:
            if composite is not None:
                _carry_companions(connection, definition, *composite)
            index.create(connection)
        names.append(str(index.name))
    return names


# Taken when the models are defined: the declared indexes (``_attribute_index``) attach themselves to the
# attribute table's metadata as they are made.
_SECONDARY_INDEXES: Final = tuple(
    index
    for model in (RecordRow, IdentifierRow, VersionRow, AttributeRow)
    for index in sorted(
        RegistryBase.metadata.tables[model.__tablename__].indexes, key=lambda index: str(index.name)
    )
    if not index.unique
)


def bulk_load_indexes(definitions: Mapping[str, RegistryDefinition]) -> list[Index]:
    """The indexes a large bulk load may set aside and rebuild once it is done: the non-unique indexes of
    the tables it writes (records, identifiers, versions, search attributes) and those the definitions
    declare. Primary keys are never among them: they keep identifiers unique while the load runs."""
    return [*_SECONDARY_INDEXES, *(index for _, index, _ in _declared_indexes(definitions))]


def ensure_indexes(connection: Connection, definitions: Mapping[str, RegistryDefinition]) -> list[str]:
    """Create every index of :func:`bulk_load_indexes` that is missing (a bulk load that stopped before
    rebuilding them), skipping those that exist; returns the names of the declared ones. Run through
    ``AsyncConnection.run_sync``."""
    present = {
        entry["name"]
        for table in {index.table.name for index in _SECONDARY_INDEXES if index.table is not None}
        for entry in inspect(connection).get_indexes(table)
    }
    for index in _SECONDARY_INDEXES:
        if index.name not in present:
            index.create(connection)
    return create_attribute_indexes(connection, definitions)


def creation_patch(document: Any) -> list[dict[str, Any]]:
    """The history patch of a record's first version: one RFC 6902 ``add`` of the whole document at
    the root (a creation needs no diff). Replayed onto anything, it gives the document."""
    return [{"op": "add", "path": "", "value": document}]


@dataclass(frozen=True)
class BulkTable:
    """Rows of one table for a bulk write: column keys (the model's attribute names) and one tuple
    per row in that order."""

    model: type[RegistryBase]
    keys: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]


_RECORD_KEYS: Final = (
    "record_id",
    "registry_code",
    "record_type",
    "identifiers",
    "document",
    "version",
    "status",
    "merged_into",
    "created_at",
    "updated_at",
)
_IDENTIFIER_KEYS: Final = ("registry_code", "identifier_type", "value", "record_id")
_VERSION_KEYS: Final = ("record_id", "version", "registry_code", "action", "actor", "at", "reason", "patch")
_ATTRIBUTE_KEYS: Final = (
    "record_id",
    "attribute",
    "position",
    "registry_code",
    "value_text",
    "value_number",
    "value_date",
)


@dataclass(frozen=True)
class DocumentRows:
    """The rows one new record adds to each table of a bulk write (see :func:`document_rows`)."""

    record: tuple[Any, ...]
    identifiers: list[tuple[Any, ...]]
    version: tuple[Any, ...]
    attributes: list[tuple[Any, ...]]


def document_rows(
    definition: RegistryDefinition,
    document: Mapping[str, Any],
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    encode_json: Callable[[Any], str] | None = None,
) -> DocumentRows:
    """The rows (record, identifiers, first version, search attributes) that add an already validated
    ``document`` to a registry as a new active record.

    With ``encode_json``, the JSON columns hold JSON text (for PostgreSQL COPY), and the document is
    encoded once: its creation patch is built around that text.
    """
    code = definition.code
    record_id = new_record_id()
    pairs = definition.identifiers_of(document)
    held: Any = [{"type": kind, "value": value} for kind, value in pairs]
    body: Any = document
    patch: Any
    if encode_json is None:
        patch = creation_patch(document)
    else:
        held, body = encode_json(held), encode_json(document)
        patch = '[{"op":"add","path":"","value":' + body + "}]"
    return DocumentRows(
        record=(record_id, code, document["record_type"], held, body, 1, ACTIVE, None, now, now),
        identifiers=[(code, kind, value, record_id) for kind, value in pairs],
        version=(record_id, 1, code, "created", actor, now, reason, patch),
        attributes=[
            (record_id, value.attribute, value.position, code, value.text, value.number, value.day)
            for value in definition.attribute_values(document)
        ],
    )


def bulk_tables(rows: Sequence[DocumentRows]) -> list[BulkTable]:
    """The rows of new records (:func:`document_rows`), by table, in the order to write them."""
    return [
        BulkTable(RecordRow, _RECORD_KEYS, [row.record for row in rows]),
        BulkTable(IdentifierRow, _IDENTIFIER_KEYS, [pair for row in rows for pair in row.identifiers]),
        BulkTable(VersionRow, _VERSION_KEYS, [row.version for row in rows]),
        BulkTable(AttributeRow, _ATTRIBUTE_KEYS, [value for row in rows for value in row.attributes]),
    ]


def bulk_rows(
    definition: RegistryDefinition,
    documents: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    encode_json: Callable[[Any], str] | None = None,
) -> list[BulkTable]:
    """The rows that add already validated ``documents`` to a registry as new active records, by
    table, for a bulk write (:func:`document_rows` of each)."""
    return bulk_tables(
        [
            document_rows(definition, document, actor=actor, reason=reason, now=now, encode_json=encode_json)
            for document in documents
        ]
    )


class RegistryService:
    """Records of the hosted registries (``definitions``, by code)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        definitions: Mapping[str, RegistryDefinition],
        *,
        subject_key: bytes,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if len(subject_key) < 32:
            raise ValueError("the subject key must be at least 32 bytes")
        self.sessions = sessions
        self.definitions = definitions
        self._subject_key = subject_key
        self._clock = clock

    # -- definitions and lookups -------------------------------------------------------------------

    def definition(self, code: str) -> RegistryDefinition:
        """The registry ``code``, or ``registry.not_found``."""
        definition = self.definitions.get(code)
        if definition is None:
            raise DpiError("registry.not_found")
        return definition

    def subject_hash(self, identifier_type: str, value: str) -> str:
        """The keyed hash the read log holds for a person's identifier."""
        digest = hmac.new(self._subject_key, f"{identifier_type}:{value}".encode(), hashlib.sha256)
        return "hmac-sha256:" + digest.hexdigest()

    async def find_by_identifier(self, code: str, identifier_type: str, value: str) -> str | None:
        """The id of the record holding this identifier in registry ``code`` (merged or not), if any."""
        self.definition(code)
        async with self.sessions() as session:
            found = await session.scalar(
                select(IdentifierRow.record_id).where(
                    IdentifierRow.registry_code == code,
                    IdentifierRow.identifier_type == identifier_type,
                    IdentifierRow.value == value,
                )
            )
        return found

    # -- writes --------------------------------------------------------------------------------------

    def _check(self, definition: RegistryDefinition, document: Any) -> dict[str, Any]:
        problems = definition.problems(document)
        if problems:
            codes = {problem.reason_code for problem in problems}
            reason = (
                "registry.identifier_invalid"
                if codes == {"registry.identifier_invalid"}
                else "registry.record_invalid"
            )
            raise DpiError(reason, details=problems)
        return cast(dict[str, Any], document)

    async def _claim_identifiers(
        self, session: AsyncSession, code: str, record_id: str, pairs: Sequence[tuple[str, str]]
    ) -> None:
        if not pairs:
            return
        held = (
            await session.execute(
                select(IdentifierRow.identifier_type, IdentifierRow.value, IdentifierRow.record_id).where(
                    IdentifierRow.registry_code == code,
                    IdentifierRow.value.in_([value for _, value in pairs]),
                )
            )
        ).all()
        mine = {(row.identifier_type, row.value) for row in held if row.record_id == record_id}
        taken = [
            pair
            for pair in pairs
            if pair not in mine and any((row.identifier_type, row.value) == pair for row in held)
        ]
        if taken:
            raise DpiError("registry.identifier_taken", f"another record holds this {taken[0][0]}")
        new = [pair for pair in pairs if pair not in mine]
        if new:
            await session.execute(
                insert(IdentifierRow),
                [
                    {"registry_code": code, "identifier_type": kind, "value": value, "record_id": record_id}
                    for kind, value in new
                ],
            )

    async def _index(
        self,
        session: AsyncSession,
        definition: RegistryDefinition,
        record_id: str,
        document: Mapping[str, Any],
    ) -> None:
        await session.execute(delete(AttributeRow).where(AttributeRow.record_id == record_id))
        values = definition.attribute_values(document)
        if values:
            await session.execute(
                insert(AttributeRow),
                [
                    {
                        "record_id": record_id,
                        "attribute": value.attribute,
                        "position": value.position,
                        "registry_code": definition.code,
                        "value_text": value.text,
                        "value_number": value.number,
                        "value_date": value.day,
                    }
                    for value in values
                ],
            )

    def _version(
        self,
        code: str,
        record_id: str,
        version: int,
        action: str,
        actor: str,
        at: datetime,
        *,
        reason: str | None = None,
        patch: list[dict[str, Any]] | None = None,
        change_request_id: str | None = None,
        other_record_id: str | None = None,
    ) -> VersionRow:
        return VersionRow(
            record_id=record_id,
            version=version,
            registry_code=code,
            action=action,
            actor=actor,
            at=at,
            reason=reason,
            patch=patch or [],
            change_request_id=change_request_id,
            other_record_id=other_record_id,
        )

    async def _announce(
        self, session: AsyncSession, code: str, action: str, row: RecordRow, **extra: str
    ) -> None:
        # Ids only: the notification carries no personal data; subscribers read the record.
        payload = {
            "registry": code,
            "action": action,
            "record_id": row.record_id,
            "record_type": row.record_type,
            "version": row.version,
            **extra,
        }
        await outbox.enqueue(session, f"{EVENT_TOPIC_PREFIX}.{code}.{action}", payload, key=row.record_id)

    async def create(
        self, code: str, document: Any, *, actor: str, reason: str | None = None
    ) -> dict[str, Any]:
        """Add a record to registry ``code``; refused when invalid or when an identifier is taken."""
        definition = self.definition(code)
        checked = self._check(definition, document)
        now = self._clock()
        record_id = new_record_id()
        identifiers = definition.identifiers_of(checked)
        row = RecordRow(
            record_id=record_id,
            registry_code=code,
            record_type=checked["record_type"],
            identifiers=[{"type": kind, "value": value} for kind, value in identifiers],
            document=checked,
            version=1,
            status=ACTIVE,
            merged_into=None,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.sessions.begin() as session:
                await self._claim_identifiers(session, code, record_id, identifiers)
                session.add(row)
                session.add(
                    self._version(
                        code,
                        record_id,
                        1,
                        "created",
                        actor,
                        now,
                        reason=reason,
                        patch=creation_patch(checked),
                    )
                )
                await session.flush()
                await self._index(session, definition, record_id, checked)
                await self._announce(session, code, "created", row)
        except IntegrityError:
            # Another transaction took the identifier between our check and our insert.
            raise DpiError("registry.identifier_taken") from None
        return record_document(definition, row, None)

    async def create_many(self, code: str, documents: Sequence[Any], *, actor: str, reason: str) -> int:
        """Add ``documents`` in one transaction (all or none): a bulk load such as synthetic data.

        Each is validated as by :meth:`create`; no notification is sent for a bulk load.
        """
        definition = self.definition(code)
        checked = [self._check(definition, document) for document in documents]
        tables = bulk_rows(definition, checked, actor=actor, reason=reason, now=self._clock())
        try:
            async with self.sessions.begin() as session:
                for table in tables:
                    if table.rows:
                        await session.execute(insert(table.model), table.as_dicts())
        except IntegrityError:
            raise DpiError("registry.identifier_taken") from None
        return len(checked)

    async def _current(self, session: AsyncSession, code: str, record_id: str) -> RecordRow:
        row = await session.get(RecordRow, record_id)
        if row is None or row.registry_code != code:
            raise DpiError("registry.record_not_found")
        return row

    async def _replace(
        self,
        session: AsyncSession,
        definition: RegistryDefinition,
        row: RecordRow,
        expected_version: int,
        document: dict[str, Any],
        now: datetime,
    ) -> int:
        """Write ``document`` as the next version of ``row`` if it is still at ``expected_version``."""
        if row.status != ACTIVE:
            raise DpiError("registry.record_inactive")
        if row.version != expected_version:
            raise DpiError("registry.version_conflict")
        if document.get("record_type") != row.record_type:
            raise DpiError("registry.record_invalid", "a record keeps its record type")
        identifiers = definition.identifiers_of(document)
        released = [
            (item["type"], item["value"])
            for item in row.identifiers
            if (item["type"], item["value"]) not in identifiers
        ]
        for kind, value in released:
            await session.execute(
                delete(IdentifierRow).where(
                    IdentifierRow.registry_code == definition.code,
                    IdentifierRow.identifier_type == kind,
                    IdentifierRow.value == value,
                    IdentifierRow.record_id == row.record_id,
                )
            )
        await self._claim_identifiers(session, definition.code, row.record_id, identifiers)
        result = await session.execute(
            update(RecordRow)
            .where(
                RecordRow.record_id == row.record_id,
                RecordRow.version == expected_version,
                RecordRow.status == ACTIVE,
            )
            .values(
                document=document,
                identifiers=[{"type": kind, "value": value} for kind, value in identifiers],
                version=expected_version + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            # Changed by another transaction since we read it.
            raise DpiError("registry.version_conflict")
        await self._index(session, definition, row.record_id, document)
        return expected_version + 1

    async def update(
        self, code: str, record_id: str, *, version: int, document: Any, actor: str, reason: str
    ) -> dict[str, Any]:
        """Replace the document of an active record, if it is still at ``version``."""
        definition = self.definition(code)
        checked = self._check(definition, document)
        now = self._clock()
        try:
            async with self.sessions.begin() as session:
                row = await self._current(session, code, record_id)
                previous = row.document
                new_version = await self._replace(session, definition, row, version, checked, now)
                session.add(
                    self._version(
                        code,
                        record_id,
                        new_version,
                        "updated",
                        actor,
                        now,
                        reason=reason,
                        patch=rfc6902.diff(previous, checked),
                    )
                )
                await session.flush()
                await session.refresh(row)
                await self._announce(session, code, "updated", row)
        except IntegrityError:
            raise DpiError("registry.version_conflict") from None
        return record_document(definition, row, None)

    async def delete(
        self, code: str, record_id: str, *, version: int, actor: str, reason: str
    ) -> dict[str, Any]:
        """Soft-delete an active record at ``version``: it leaves searches, its history stays."""
        definition = self.definition(code)
        now = self._clock()
        try:
            async with self.sessions.begin() as session:
                row = await self._current(session, code, record_id)
                if row.status != ACTIVE:
                    raise DpiError("registry.record_inactive")
                await self._set_status(session, row, version, DELETED, None, now)
                session.add(self._version(code, record_id, version + 1, "deleted", actor, now, reason=reason))
                await session.execute(delete(AttributeRow).where(AttributeRow.record_id == record_id))
                await session.flush()
                await session.refresh(row)
                await self._announce(session, code, "deleted", row)
        except IntegrityError:
            raise DpiError("registry.version_conflict") from None
        return record_document(definition, row, None)

    async def _set_status(
        self,
        session: AsyncSession,
        row: RecordRow,
        version: int,
        status: str,
        merged_into: str | None,
        now: datetime,
    ) -> None:
        if row.version != version:
            raise DpiError("registry.version_conflict")
        result = await session.execute(
            update(RecordRow)
            .where(
                RecordRow.record_id == row.record_id,
                RecordRow.version == version,
                RecordRow.status == row.status,
            )
            .values(status=status, merged_into=merged_into, version=version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise DpiError("registry.version_conflict")

    # -- reads ---------------------------------------------------------------------------------------

    def _log_read(
        self,
        session: AsyncSession,
        definition: RegistryDefinition,
        row: RecordRow,
        reader: Reader,
        now: datetime,
    ) -> None:
        """Add the read of ``row`` to the log, once for each person it names (nothing for other records)."""
        subjects = definition.subjects_of(row.document)
        if not subjects or not reader.purpose:
            return
        read_id = str(uuid.uuid4())
        session.add_all(
            ReadRow(
                read_id=read_id,
                registry_code=definition.code,
                record_id=row.record_id,
                subject_hash=self.subject_hash(kind, value),
                reader=reader.actor,
                purpose=reader.purpose,
                consent_ref=reader.consent_ref,
                at=now,
            )
            for kind, value in subjects
        )

    async def read(
        self, code: str, record_id: str, *, reader: Reader, groups: frozenset[str] | None = None
    ) -> dict[str, Any]:
        """A record as ``reader`` may see it (``groups`` of fields; every field when None).

        A merged record answers with its survivor and ``redirected_from``. A read of a record about
        persons needs a purpose, and is logged for each person before the record is returned: a crash
        in between must never leave a read the person cannot see.
        """
        definition = self.definition(code)
        if definition.about_persons and not reader.purpose:
            raise DpiError("registry.purpose_required")
        async with self.sessions.begin() as session:
            row = await self._current(session, code, record_id)
            hops = 0
            while row.status == MERGED and row.merged_into is not None and hops < _MAX_REDIRECTS:
                row = await self._current(session, code, row.merged_into)
                hops += 1
            if row.status != ACTIVE:
                raise DpiError("registry.record_not_found")
            self._log_read(session, definition, row, reader, self._clock())
        redirected_from = record_id if row.record_id != record_id else None
        return record_document(definition, row, groups, redirected_from)

    async def read_many(
        self,
        code: str,
        record_ids: Sequence[str],
        *,
        reader: Reader,
        groups: frozenset[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Active records found by a search, in the order given, as ``reader`` may see them.

        The same rules as :meth:`read`: a purpose for records about persons, and every read logged in
        the transaction that fetches the records, before any is returned. Ids no longer active (deleted
        or merged since the search) are left out.
        """
        definition = self.definition(code)
        if definition.about_persons and not reader.purpose:
            raise DpiError("registry.purpose_required")
        if not record_ids:
            return []
        async with self.sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(RecordRow).where(
                        RecordRow.registry_code == code,
                        RecordRow.record_id.in_(list(record_ids)),
                        RecordRow.status == ACTIVE,
                    )
                )
            ).all()
            by_id = {row.record_id: row for row in rows}
            found = [by_id[record_id] for record_id in dict.fromkeys(record_ids) if record_id in by_id]
            now = self._clock()
            for row in found:
                self._log_read(session, definition, row, reader, now)
        return [record_document(definition, row, groups) for row in found]

    async def history(self, code: str, record_id: str) -> dict[str, Any]:
        """Every version of a record (merged or deleted ones too), oldest first."""
        self.definition(code)
        async with self.sessions() as session:
            await self._current(session, code, record_id)
            rows = (
                await session.scalars(
                    select(VersionRow).where(VersionRow.record_id == record_id).order_by(VersionRow.version)
                )
            ).all()
        return {"record_id": record_id, "versions": [_version_document(row) for row in rows]}

    # -- change requests -----------------------------------------------------------------------------

    async def propose_change(
        self, code: str, record_id: str, *, version: int, document: Any, actor: str, reason: str
    ) -> dict[str, Any]:
        """Propose a correction of a record at ``version``; it waits for a decision."""
        definition = self.definition(code)
        checked = self._check(definition, document)
        now = self._clock()
        async with self.sessions.begin() as session:
            row = await self._current(session, code, record_id)
            if row.status != ACTIVE:
                raise DpiError("registry.record_inactive")
            if row.version != version:
                raise DpiError("registry.version_conflict")
            if checked.get("record_type") != row.record_type:
                raise DpiError("registry.record_invalid", "a record keeps its record type")
            request = ChangeRequestRow(
                change_request_id=str(uuid.uuid4()),
                registry_code=code,
                record_id=record_id,
                base_version=version,
                status="pending",
                reason=reason,
                proposed_by=actor,
                proposed_at=now,
                document=checked,
                patch=rfc6902.diff(row.document, checked),
                second_approver=definition.second_approver,
            )
            session.add(request)
        return _change_request_document(request)

    async def decide_change(
        self, code: str, change_request_id: str, *, approve: bool, actor: str, reason: str
    ) -> dict[str, Any]:
        """Approve (and apply, in the same transaction) or reject a pending change request."""
        definition = self.definition(code)
        now = self._clock()
        try:
            async with self.sessions.begin() as session:
                request = await session.get(ChangeRequestRow, change_request_id)
                if request is None or request.registry_code != code:
                    raise DpiError("registry.change_request_not_found")
                if request.status != "pending":
                    raise DpiError("registry.change_request_decided")
                if request.second_approver and actor == request.proposed_by:
                    raise DpiError("registry.second_approver_required")
                applied: RecordRow | None = None
                if approve:
                    applied = await self._current(session, code, request.record_id)
                    previous = applied.document
                    new_version = await self._replace(
                        session, definition, applied, request.base_version, request.document, now
                    )
                    session.add(
                        self._version(
                            code,
                            request.record_id,
                            new_version,
                            "corrected",
                            actor,
                            now,
                            reason=request.reason,
                            patch=rfc6902.diff(previous, request.document),
                            change_request_id=change_request_id,
                        )
                    )
                    request.applied_version = new_version
                decided = await session.execute(
                    update(ChangeRequestRow)
                    .where(
                        ChangeRequestRow.change_request_id == change_request_id,
                        ChangeRequestRow.status == "pending",
                    )
                    .values(
                        status="applied" if approve else "rejected",
                        decided_by=actor,
                        decided_at=now,
                        decision_reason=reason,
                        applied_version=request.applied_version,
                    )
                    .execution_options(synchronize_session=False)
                )
                if _rowcount(decided) != 1:
                    raise DpiError("registry.change_request_decided")
                if applied is not None:
                    await session.flush()
                    await session.refresh(applied)
                    await self._announce(
                        session, code, "corrected", applied, change_request_id=change_request_id
                    )
                await session.refresh(request)
        except IntegrityError:
            raise DpiError("registry.version_conflict") from None
        return _change_request_document(request)

    async def change_request(self, code: str, change_request_id: str) -> dict[str, Any]:
        self.definition(code)
        async with self.sessions() as session:
            request = await session.get(ChangeRequestRow, change_request_id)
        if request is None or request.registry_code != code:
            raise DpiError("registry.change_request_not_found")
        return _change_request_document(request)

    async def change_requests(self, code: str, status: str | None = None) -> dict[str, Any]:
        """Change requests of a registry (of one status when given), newest first."""
        self.definition(code)
        conditions = [ChangeRequestRow.registry_code == code]
        if status is not None:
            conditions.append(ChangeRequestRow.status == status)
        async with self.sessions() as session:
            total = await session.scalar(
                select(func.count()).select_from(ChangeRequestRow).where(*conditions)
            )
            rows = (
                await session.scalars(
                    select(ChangeRequestRow)
                    .where(*conditions)
                    .order_by(ChangeRequestRow.proposed_at.desc(), ChangeRequestRow.change_request_id)
                    .limit(_MAX_LISTED)
                )
            ).all()
        return {"items": [_change_request_document(row) for row in rows], "total": total or 0}

    # -- merges --------------------------------------------------------------------------------------

    async def merge(
        self, code: str, *, survivor_id: str, loser_id: str, actor: str, reason: str
    ) -> dict[str, Any]:
        """Merge duplicate ``loser_id`` into ``survivor_id``: the loser redirects to the survivor."""
        self.definition(code)
        if survivor_id == loser_id:
            raise DpiError("registry.merge_invalid")
        now = self._clock()
        try:
            async with self.sessions.begin() as session:
                survivor = await self._current(session, code, survivor_id)
                loser = await self._current(session, code, loser_id)
                if (
                    survivor.status != ACTIVE
                    or loser.status != ACTIVE
                    or survivor.record_type != loser.record_type
                ):
                    raise DpiError("registry.merge_invalid")
                await self._set_status(session, loser, loser.version, MERGED, survivor_id, now)
                await self._set_status(session, survivor, survivor.version, ACTIVE, None, now)
                session.add_all(
                    [
                        self._version(
                            code,
                            loser_id,
                            loser.version + 1,
                            "merged_into",
                            actor,
                            now,
                            reason=reason,
                            other_record_id=survivor_id,
                        ),
                        self._version(
                            code,
                            survivor_id,
                            survivor.version + 1,
                            "absorbed",
                            actor,
                            now,
                            reason=reason,
                            other_record_id=loser_id,
                        ),
                    ]
                )
                await session.execute(delete(AttributeRow).where(AttributeRow.record_id == loser_id))
                await session.flush()
                await session.refresh(survivor)
                await session.refresh(loser)
                await self._announce(session, code, "merged", survivor, loser_id=loser_id)
        except IntegrityError:
            raise DpiError("registry.version_conflict") from None
        return {
            "registry": code,
            "survivor_id": survivor_id,
            "loser_id": loser_id,
            "survivor_version": survivor.version,
            "loser_version": loser.version,
            "actor": actor,
            "at": timestamp(now),
            "reason": reason,
        }

    async def unmerge(self, code: str, loser_id: str, *, actor: str, reason: str) -> dict[str, Any]:
        """Undo a merge: the former loser is an active record again, searchable as before."""
        definition = self.definition(code)
        now = self._clock()
        try:
            async with self.sessions.begin() as session:
                loser = await self._current(session, code, loser_id)
                if loser.status != MERGED or loser.merged_into is None:
                    raise DpiError("registry.not_merged")
                survivor_id = loser.merged_into
                await self._set_status(session, loser, loser.version, ACTIVE, None, now)
                session.add(
                    self._version(
                        code,
                        loser_id,
                        loser.version + 1,
                        "unmerged",
                        actor,
                        now,
                        reason=reason,
                        other_record_id=survivor_id,
                    )
                )
                survivor = await session.get(RecordRow, survivor_id)
                if survivor is not None:
                    await self._set_status(
                        session, survivor, survivor.version, survivor.status, survivor.merged_into, now
                    )
                    session.add(
                        self._version(
                            code,
                            survivor_id,
                            survivor.version + 1,
                            "released",
                            actor,
                            now,
                            reason=reason,
                            other_record_id=loser_id,
                        )
                    )
                await session.flush()
                await session.refresh(loser)
                await self._index(session, definition, loser_id, loser.document)
                await self._announce(session, code, "unmerged", loser, survivor_id=survivor_id)
        except IntegrityError:
            raise DpiError("registry.version_conflict") from None
        return record_document(definition, loser, None)

    # -- read audit ----------------------------------------------------------------------------------

    @staticmethod
    def _reads(rows: Sequence[ReadRow]) -> dict[str, Any]:
        seen: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row.read_id in seen:
                continue
            item: dict[str, Any] = {
                "registry": row.registry_code,
                "record_id": row.record_id,
                "reader": row.reader,
                "purpose": row.purpose,
                "at": timestamp(row.at),
            }
            if row.consent_ref is not None:
                item["consent_ref"] = row.consent_ref
            seen[row.read_id] = item
        items = list(seen.values())
        return {"items": items[:_MAX_LISTED], "total": len(items)}

    async def reads_of_record(self, code: str, record_id: str) -> dict[str, Any]:
        """Reads of one record, newest first."""
        self.definition(code)
        async with self.sessions() as session:
            await self._current(session, code, record_id)
            rows = (
                await session.scalars(
                    select(ReadRow)
                    .where(ReadRow.registry_code == code, ReadRow.record_id == record_id)
                    .order_by(ReadRow.at.desc(), ReadRow.id.desc())
                    .limit(_MAX_LISTED * 20)
                )
            ).all()
        return self._reads(rows)

    async def reads_of_subject(self, identifier_type: str, value: str) -> dict[str, Any]:
        """Reads, in every hosted registry, of records about the person holding this identifier."""
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(ReadRow)
                    .where(ReadRow.subject_hash == self.subject_hash(identifier_type, value))
                    .order_by(ReadRow.at.desc(), ReadRow.id.desc())
                    .limit(_MAX_LISTED)
                )
            ).all()
        return self._reads(rows)
