"""DCI search (SPDCI registry API 1.0 ``SearchRequest`` / ``SearchResponse``): every ``search_request``
item answered on its own, with ``succ`` and a page of records or ``rjct`` with the DCI reason code.

One bad item never fails the others and never becomes a 500: an item's refusal (a ``DpiError`` raised
while it is parsed or run) is its ``rjct`` answer, and every item of the request gets exactly one answer,
in request order.

- **Purpose.** Reads go through the registry service, so the read log and field-level scopes apply. The
  purpose is ``search_criteria.consent.purpose`` (a code of the ``purpose-codes`` vocabulary), required
  for registries about persons; ``search_criteria.consent.consent_ref``, when given, is logged with it.
- **Pagination.** ``page_size`` 1 to :data:`MAX_PAGE_SIZE` (default :data:`DEFAULT_PAGE_SIZE`),
  ``page_number`` from 1; anything else is ``rjct.pagination.invalid``. The answer gives ``total_count``
  and, when more pages follow, ``next_cursor``: an opaque token (HMAC-SHA256 over the page and a digest of
  the criteria) that a later request passes as ``pagination.cursor`` with the same criteria. A cursor
  that was altered, or sent with other criteria, is ``rjct.pagination.invalid``.
- **Sorting** on searchable number, date and text attributes (by their smallest value), then by record
  id, so pages never overlap; a sort on anything else is ``rjct.sort.invalid``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select

import standards
from dpi.errors import DpiError
from dpi.signing import canonical_json
from registry.dci.envelope import DCI_VERSION, wire_time
from registry.dci.query import (
    Comparison,
    Identifier,
    Node,
    attribute_column,
    expand_fuzzy,
    matching_ids,
    parse_query,
)
from registry.dci.senders import Sender
from registry.definition import RegistryDefinition
from registry.models import AttributeRow
from registry.service import Reader, RegistryService

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "RECORD_TYPE",
    "Searcher",
    "reg_type",
]

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 200
MAX_PAGE_NUMBER: Final = 10_000
MAX_BATCH: Final = 50
RECORD_TYPE: Final = "dpi:registry-record@1.0.0"


def reg_type(definition: RegistryDefinition) -> str:
    """The ``reg_type`` our answers name: ``ns:dpi:RegistryType:<code>``."""
    return f"ns:dpi:RegistryType:{definition.code}"


@dataclass(frozen=True)
class _Page:
    size: int
    number: int


class Searcher:
    """Answers the search items of one registry's DCI API."""

    def __init__(self, service: RegistryService, cursor_key: bytes) -> None:
        self.service = service
        self._cursor_key = cursor_key

    # -- cursors ---------------------------------------------------------------------------------------

    def _criteria_digest(self, code: str, criteria: Mapping[str, Any]) -> str:
        unpaged = {name: value for name, value in criteria.items() if name != "pagination"}
        return hashlib.sha256(canonical_json({"registry": code, "criteria": unpaged})).hexdigest()[:32]

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._cursor_key, payload, hashlib.sha256).digest()

    def cursor(self, code: str, criteria: Mapping[str, Any], page: _Page) -> str:
        payload = canonical_json(
            {"c": self._criteria_digest(code, criteria), "n": page.number, "s": page.size}
        )
        token = payload + b"." + base64.urlsafe_b64encode(self._mac(payload))
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def _from_cursor(self, code: str, criteria: Mapping[str, Any], cursor: str) -> _Page:
        invalid = DpiError("rjct.pagination.invalid", "the cursor is not one this registry issued")
        try:
            token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, _, mac = token.rpartition(b".")
            if not hmac.compare_digest(base64.urlsafe_b64decode(mac), self._mac(payload)):
                raise invalid
            fields = json.loads(payload)
        except (binascii.Error, ValueError):
            raise invalid from None
        if fields.get("c") != self._criteria_digest(code, criteria):
            raise DpiError("rjct.pagination.invalid", "the cursor belongs to other search criteria")
        return _Page(size=int(fields["s"]), number=int(fields["n"]))

    # -- one item --------------------------------------------------------------------------------------

    def _page(self, code: str, criteria: Mapping[str, Any]) -> _Page:
        pagination = criteria.get("pagination") or {}
        if not isinstance(pagination, Mapping):
            raise DpiError("rjct.pagination.invalid", "pagination is an object")
        cursor = pagination.get("cursor")
        if cursor is not None:
            if not isinstance(cursor, str) or len(cursor) > 500:
                raise DpiError("rjct.pagination.invalid", "the cursor is not one this registry issued")
            return self._from_cursor(code, criteria, cursor)
        size, number = pagination.get("page_size", DEFAULT_PAGE_SIZE), pagination.get("page_number", 1)
        if type(size) is not int or not 1 <= size <= MAX_PAGE_SIZE:
            raise DpiError("rjct.pagination.invalid", f"page_size is 1 to {MAX_PAGE_SIZE}")
        if type(number) is not int or not 1 <= number <= MAX_PAGE_NUMBER:
            raise DpiError("rjct.pagination.invalid", f"page_number is 1 to {MAX_PAGE_NUMBER}")
        return _Page(size=size, number=number)

    @staticmethod
    def _sort(definition: RegistryDefinition, sort: Any) -> list[tuple[str, str]]:
        if sort is None:
            sort = []
        if not isinstance(sort, list) or len(sort) > 3:
            raise DpiError("rjct.sort.invalid", "sort is a list of at most 3 {attribute_name, sort_order}")
        keys: list[tuple[str, str]] = []
        for entry in sort:
            name = entry.get("attribute_name") if isinstance(entry, Mapping) else None
            direction = entry.get("sort_order", "asc") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or name not in definition.attributes:
                raise DpiError("rjct.sort.invalid", f"{name!r} is not a searchable attribute")
            if direction not in {"asc", "desc"}:
                raise DpiError("rjct.sort.invalid", "sort_order is asc or desc")
            keys.append((name, direction))
        return keys

    @staticmethod
    def _order(definition: RegistryDefinition, keys: list[tuple[str, str]], record_id: Any) -> list[Any]:
        order: list[Any] = []
        for name, direction in keys:
            column = attribute_column(definition.attributes[name])
            key = (
                select(func.min(column))
                .where(AttributeRow.record_id == record_id, AttributeRow.attribute == name)
                .scalar_subquery()
            )
            order.append((key.asc() if direction == "asc" else key.desc()).nulls_last())
        return [*order, record_id]

    @staticmethod
    def _reader(definition: RegistryDefinition, sender: Sender, criteria: Mapping[str, Any]) -> Reader:
        consent = criteria.get("consent") or {}
        purpose = consent.get("purpose") if isinstance(consent, Mapping) else None
        consent_ref = consent.get("consent_ref") if isinstance(consent, Mapping) else None
        if purpose is None and definition.about_persons:
            raise DpiError(
                "rjct.search_criteria.invalid",
                "consent.purpose is required: this registry holds records about persons",
            )
        if purpose is not None and purpose not in standards.purpose_codes():
            raise DpiError("rjct.search_criteria.invalid", "consent.purpose is not a known purpose code")
        return Reader(actor=sender.sender_id, purpose=purpose, consent_ref=consent_ref)

    async def _answer(
        self, definition: RegistryDefinition, sender: Sender, criteria: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if criteria.get("version", DCI_VERSION) != DCI_VERSION:
            raise DpiError("rjct.search_criteria.invalid", f"search_criteria.version is {DCI_VERSION}")
        node = parse_query(definition, criteria.get("query_type"), criteria.get("query"))
        sort = self._sort(definition, criteria.get("sort"))
        _within_grants(definition, sender.groups(definition.code), node, criteria.get("sort"))
        page = self._page(definition.code, criteria)
        reader = self._reader(definition, sender, criteria)
        async with self.service.sessions() as session:
            matched = matching_ids(definition, await expand_fuzzy(session, definition, node))
            # One statement for the page and the total: the window counts every match before the
            # limit, so the matches are found once.
            rows = (
                await session.execute(
                    select(matched.c.record_id, func.count().over())
                    .order_by(*self._order(definition, sort, matched.c.record_id))
                    .limit(page.size)
                    .offset((page.number - 1) * page.size)
                )
            ).all()
            ids = [row[0] for row in rows]
            if rows:
                total = int(rows[0][1])
            elif page.number > 1:
                # A page past the end has no row to carry the total.
                total = await session.scalar(select(func.count()).select_from(matched)) or 0
            else:
                total = 0
        records = await self.service.read_many(
            definition.code, ids, reader=reader, groups=sender.groups(definition.code)
        )
        pagination: dict[str, Any] = {
            "page_size": page.size,
            "page_number": page.number,
            "total_count": total,
        }
        if page.number * page.size < total and page.number < MAX_PAGE_NUMBER:
            pagination["next_cursor"] = self.cursor(
                definition.code, criteria, _Page(size=page.size, number=page.number + 1)
            )
        return records, pagination

    async def answer_item(
        self,
        definition: RegistryDefinition,
        sender: Sender,
        item: Mapping[str, Any],
        *,
        now: datetime,
        problem: str | None = None,
        duplicate: bool = False,
    ) -> dict[str, Any]:
        """The ``search_response`` entry for one ``search_request`` item."""
        answer: dict[str, Any] = {
            "reference_id": str(item.get("reference_id", "")),
            "timestamp": wire_time(now),
        }
        try:
            if duplicate:
                raise DpiError("rjct.reference_id.duplicate")
            if problem is not None:
                raise DpiError("rjct.search_criteria.invalid", problem)
            criteria = item["search_criteria"]
            records, pagination = await self._answer(definition, sender, criteria)
        except DpiError as refusal:
            answer.update(
                status="rjct",
                status_reason_code=refusal.reason_code,
                status_reason_message=(refusal.custom_message or refusal.reason.message("en"))[:999],
            )
            return answer
        answer.update(
            status="succ",
            data={
                "version": DCI_VERSION,
                "reg_type": reg_type(definition),
                "reg_record_type": RECORD_TYPE,
                "reg_records": records,
            },
            pagination=pagination,
        )
        if isinstance(item.get("locale"), str):
            answer["locale"] = item["locale"]
        return answer

    async def answer(
        self,
        definition: RegistryDefinition,
        sender: Sender,
        items: Sequence[Mapping[str, Any]],
        *,
        now: datetime,
        problems: Mapping[int, str],
    ) -> list[dict[str, Any]]:
        """Every item's answer, in request order; a ``reference_id`` used twice is refused both times."""
        seen: dict[str, int] = {}
        for item in items:
            reference = str(item.get("reference_id", "")) if isinstance(item, Mapping) else ""
            seen[reference] = seen.get(reference, 0) + 1
        return [
            await self.answer_item(
                definition,
                sender,
                item,
                now=now,
                problem=problems.get(index),
                duplicate=seen.get(str(item.get("reference_id", "")), 0) > 1,
            )
            for index, item in enumerate(entry if isinstance(entry, Mapping) else {} for entry in items)
        ]


def _within_grants(
    definition: RegistryDefinition,
    groups: frozenset[str] | None,
    node: Node | Identifier,
    sort: Any,
) -> None:
    """Refuse a filter or sort on an attribute outside the sender's field groups.

    A sender that may read only some fields must not learn the others by filtering on them: which records
    match ``sex eq female`` tells the value of ``sex`` as surely as reading it. A lookup by identifier
    stays open to every sender of the registry, since finding a record by its key is what a grant is for.
    """
    if groups is None:
        return
    names = [] if isinstance(node, Identifier) else list(_attribute_names(node))
    if isinstance(sort, list):
        names += [entry["attribute_name"] for entry in sort if isinstance(entry, Mapping)]
    readable = {
        pointer
        for group in groups & definition.field_groups.keys()
        for pointer in definition.field_groups[group]
    }
    for name in names:
        pointer = definition.attributes[name].pointer
        if not any(pointer == field or pointer.startswith(field + "/") for field in readable):
            raise DpiError("rjct.filter.invalid", f"{name!r} is outside the fields this sender may read")


def _attribute_names(node: Node) -> Iterator[str]:
    if isinstance(node, Comparison):
        yield node.attribute.name
    else:
        for part in node.parts:
            yield from _attribute_names(part)
