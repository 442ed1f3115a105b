"""DCI queries (SPDCI registry API 1.0, ``RegistryQueries``: https://github.com/spdci/standards) as
predicate trees over a registry's allow-listed attributes, compiled to parameterised SQL.

Accepted query types:

- ``idtype-value``: ``{"type": "UIN", "value": "..."}``, an identifier type of the registry.
- ``predicate``: a list of ``{seq_num, expression1, condition, expression2}`` items, all of which must
  hold. ``condition`` is ``and`` or ``or`` between the two expressions, or ``not``: ``not expression1``
  alone, or ``expression1 and not expression2``. An expression is a comparison
  ``{attribute_name, operator, attribute_value}`` or, nested, another such item (at most
  :data:`MAX_DEPTH` levels). Operators ``eq gt ge lt le in`` as in DCI, plus the declared extensions
  ``prefix`` (text starting with a value), ``between`` (``[low, high]``, both included) and ``fuzzy`` on
  the text attributes a definition declares it for: a value holds when it has the phonetic key of the
  searched text (:func:`registry.phonetic.phonetic_key`, so Youcef finds Youssef and يوسف) and its
  Jaro-Winkler similarity with it reaches the attribute's declared threshold.

Raw ``expression`` queries (GraphQL, SQL, Mongo text) are refused: they cannot be checked against the
allow-list.

Semantics, also those of the pure evaluator the property tests compare with: a comparison holds for a
record when *any* of its values of that attribute satisfies it (skills, household members and corridors
are multi-valued); a record without a value for it never satisfies it, and ``not`` is the complement.
Text compares by equality and prefix only: ordering text depends on the database's collation, so
``gt``/``lt`` on text would answer differently on PostgreSQL and SQLite.

Every comparison becomes ``record_id IN (SELECT record_id FROM registry_attribute WHERE registry = :r AND
attribute = :a AND value_<type> <op> :v)``: values are bound parameters, never text in the statement.
A search reads :func:`matching_ids`: a predicate made of comparisons joined by ``and`` and ``or`` (with
``not`` only beside a comparison it narrows) is answered from the attribute rows alone, the indexes
intersecting the comparisons before any record is read; the records table is the universe of ``not``
only when nothing else bounds it. Attribute rows exist for active records only (the service removes
them when a record is deleted or merged), so both forms select the same records. When an ``and``
compares both attributes of a composite index the definition declares (a text attribute and a
single-valued date or number), the two comparisons are one range of that index: each row of the text
attribute carries the record's value of the other.

A ``fuzzy`` comparison is first expanded (:func:`expand_fuzzy`): the distinct spellings stored under the
searched phonetic key are read through the key's own attribute rows (an indexed equality), filtered by
similarity in Python, and the comparison becomes ``in`` those spellings; so ``not``, counting and
pagination work on it as on any other comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, Subquery, and_, bindparam, false, func, not_, or_, select, union
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from dpi.errors import DpiError
from registry.definition import PHONETIC_SUFFIX, Attribute, RegistryDefinition
from registry.models import AttributeRow, IdentifierRow, RecordRow
from registry.phonetic import phonetic_key, similarity
from registry.service import ACTIVE

__all__ = [
    "EXTENSION_OPERATORS",
    "MAX_DEPTH",
    "MAX_FUZZY_SPELLINGS",
    "MAX_IN_VALUES",
    "OPERATORS",
    "QUERY_TYPES",
    "Comparison",
    "Condition",
    "Identifier",
    "Node",
    "attribute_column",
    "compile_condition",
    "expand_fuzzy",
    "matching_ids",
    "parse_query",
]

QUERY_TYPES: Final = ("idtype-value", "predicate")
OPERATORS: Final = ("eq", "gt", "ge", "lt", "le", "in", "prefix", "between", "fuzzy")
EXTENSION_OPERATORS: Final = ("prefix", "between", "fuzzy")
_RANGE: Final = frozenset({"gt", "ge", "lt", "le", "between"})
MAX_DEPTH: Final = 8
MAX_IN_VALUES: Final = 100
# A phonetic key shared by more spellings than this is too broad to search.
MAX_FUZZY_SPELLINGS: Final = 500
_MAX_PREDICATES: Final = 20
_MAX_TEXT: Final = 200
_NUMBER: Final = re.compile(r"^-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?$")
_NUMBER_LIMIT: Final = Decimal(10) ** 18
_DATE: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

Value = str | Decimal | date


@dataclass(frozen=True)
class Comparison:
    """``attribute operator values`` (one value, or several for ``in`` and ``between``)."""

    attribute: Attribute
    operator: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Condition:
    """``and`` or ``or`` of its parts, or ``not`` of its single part."""

    kind: str
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Identifier:
    """An ``idtype-value`` query: the record holding this identifier (or the survivor it was merged into)."""

    type: str
    value: str


Node = Comparison | Condition


def _filter(message: str) -> DpiError:
    return DpiError("rjct.filter.invalid", message)


def _criteria(message: str) -> DpiError:
    return DpiError("rjct.search_criteria.invalid", message)


def typed_value(attribute: Attribute, raw: Any) -> Value:
    """``raw`` as the attribute stores it, or ``rjct.filter.invalid``."""
    if attribute.type == "number":
        refusal = _filter(f"{attribute.name} takes numbers below 10^18 with at most 6 decimals")
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise refusal
        if isinstance(raw, str) and not _NUMBER.match(raw):
            raise refusal
        try:
            number = Decimal(raw if isinstance(raw, str) else str(raw))
        except InvalidOperation:
            raise refusal from None
        if not number.is_finite() or abs(number) >= _NUMBER_LIMIT or number != round(number, 6):
            raise refusal
        return number
    if attribute.type == "date":
        if not isinstance(raw, str) or not _DATE.match(raw):
            raise _filter(f"{attribute.name} takes dates written YYYY-MM-DD")
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise _filter(f"{attribute.name} takes dates written YYYY-MM-DD") from None
    if attribute.type == "boolean":
        if not isinstance(raw, bool):
            raise _filter(f"{attribute.name} takes true or false")
        return "true" if raw else "false"
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_TEXT:
        raise _filter(f"{attribute.name} takes text of 1 to {_MAX_TEXT} characters")
    return attribute.normalized(raw)


def _comparison(definition: RegistryDefinition, expression: Mapping[str, Any]) -> Comparison:
    name, operator = expression.get("attribute_name"), expression.get("operator")
    if not isinstance(name, str) or name not in definition.attributes:
        raise _filter(f"attribute {name!r} is not searchable in registry {definition.code}")
    attribute = definition.attributes[name]
    if operator not in OPERATORS:
        raise _filter(f"operator {operator!r} is not supported")
    if operator not in attribute.operators:
        raise _filter(f"operator {operator} is not allowed on {name}")
    if operator in _RANGE and attribute.type not in {"number", "date"}:
        raise _filter(f"operator {operator} compares numbers and dates only")
    raw = expression.get("attribute_value")
    if operator == "in":
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_IN_VALUES:
            raise _filter(f"operator in takes a list of 1 to {MAX_IN_VALUES} values")
        return Comparison(attribute, operator, tuple(typed_value(attribute, item) for item in raw))
    if operator == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise _filter("operator between takes a list [low, high]")
        return Comparison(attribute, operator, tuple(typed_value(attribute, item) for item in raw))
    if operator in {"prefix", "fuzzy"} and attribute.type != "string":
        raise _filter(f"operator {operator} compares text only")
    return Comparison(attribute, operator, (typed_value(attribute, raw),))


def _expression(definition: RegistryDefinition, expression: Any, depth: int) -> Node:
    if not isinstance(expression, Mapping):
        raise _filter("an expression is an object")
    if "expression1" in expression:
        return _item(definition, expression, depth + 1)
    return _comparison(definition, expression)


def _item(definition: RegistryDefinition, item: Mapping[str, Any], depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise _filter(f"predicates nest at most {MAX_DEPTH} levels")
    first = _expression(definition, item.get("expression1"), depth)
    condition, second = item.get("condition"), item.get("expression2")
    if condition is None:
        if second is not None:
            raise _filter("expression2 needs a condition")
        return first
    if condition not in {"and", "or", "not"}:
        raise _filter(f"condition {condition!r} is not and, or, not")
    if condition == "not":
        if second is None:
            return Condition("not", (first,))
        return Condition("and", (first, Condition("not", (_expression(definition, second, depth),))))
    if second is None:
        raise _filter(f"condition {condition} needs expression2")
    return Condition(condition, (first, _expression(definition, second, depth)))


def parse_query(definition: RegistryDefinition, query_type: Any, query: Any) -> Node | Identifier:
    """The query of a search item as a tree, or ``rjct.search_criteria.invalid`` / ``rjct.filter.invalid``."""
    if query_type == "expression":
        raise _criteria("expression queries are not accepted; use idtype-value or predicate")
    if query_type not in QUERY_TYPES:
        raise _criteria(f"query_type {query_type!r} is not supported; use idtype-value or predicate")
    if query_type == "idtype-value":
        if not isinstance(query, Mapping):
            raise _filter("an idtype-value query is {type, value}")
        kind, value = query.get("type"), query.get("value")
        types = {field.type for field in definition.identifiers}
        if kind not in types:
            raise _filter(f"identifier type {kind!r} is not one of {', '.join(sorted(types))}")
        if not isinstance(value, str) or not 1 <= len(value) <= 100:
            raise _filter("an identifier value is text of 1 to 100 characters")
        return Identifier(str(kind), value)
    items = [query] if isinstance(query, Mapping) else query
    if not isinstance(items, list) or not 1 <= len(items) <= _MAX_PREDICATES:
        raise _filter(f"a predicate query is a list of 1 to {_MAX_PREDICATES} items")
    ordered = sorted(items, key=lambda item: item.get("seq_num", 0) if isinstance(item, Mapping) else 0)
    nodes = [_item(definition, item, 1) if isinstance(item, Mapping) else None for item in ordered]
    if any(node is None for node in nodes):
        raise _filter("a predicate item is an object")
    parts = tuple(node for node in nodes if node is not None)
    return parts[0] if len(parts) == 1 else Condition("and", parts)


def attribute_column(attribute: Attribute) -> Any:
    """The typed column of the attribute table the attribute's values are in."""
    if attribute.type == "number":
        return AttributeRow.value_number
    if attribute.type == "date":
        return AttributeRow.value_date
    return AttributeRow.value_text


def _test(comparison: Comparison) -> ColumnElement[bool]:
    column = attribute_column(comparison.attribute)
    values = comparison.values
    match comparison.operator:
        case "eq":
            return column == values[0]  # type: ignore[no-any-return]
        case "in":
            return column.in_(values)  # type: ignore[no-any-return]
        case "gt":
            return column > values[0]  # type: ignore[no-any-return]
        case "ge":
            return column >= values[0]  # type: ignore[no-any-return]
        case "lt":
            return column < values[0]  # type: ignore[no-any-return]
        case "le":
            return column <= values[0]  # type: ignore[no-any-return]
        case "between":
            return and_(column >= values[0], column <= values[1])
        case "fuzzy":
            raise ValueError("expand fuzzy comparisons (expand_fuzzy) before compiling them")
        case _:
            prefix = str(values[0])
            # LIKE finds candidates through the index; SQLite's LIKE ignores ASCII case, so the exact
            # comparison of the first characters decides on both databases.
            return and_(
                column.startswith(prefix, autoescape=True),
                func.substr(column, 1, len(prefix)) == prefix,
            )


def compile_condition(
    definition: RegistryDefinition, node: Node | Identifier, record_id: Any = RecordRow.record_id
) -> ColumnElement[bool]:
    """A condition on ``RecordRow`` selecting the records of ``definition`` that ``node`` describes
    (on another column of record ids when ``record_id`` names one)."""
    if isinstance(node, Identifier):
        holders = select(IdentifierRow.record_id).where(
            IdentifierRow.registry_code == definition.code,
            IdentifierRow.identifier_type == node.type,
            IdentifierRow.value == node.value,
        )
        survivors = select(RecordRow.merged_into).where(
            RecordRow.record_id.in_(holders), RecordRow.merged_into.is_not(None)
        )
        # One IN over the union: an OR of two IN subqueries is not an index condition for
        # PostgreSQL, which then scanned every record of the registry.
        return record_id.in_(holders.union(survivors))  # type: ignore[no-any-return]
    if isinstance(node, Comparison):
        return record_id.in_(_comparison_ids(definition, node))  # type: ignore[no-any-return]
    parts = [compile_condition(definition, part, record_id) for part in node.parts]
    if node.kind == "not":
        return not_(parts[0])
    if not parts:
        return false()
    return and_(*parts) if node.kind == "and" else or_(*parts)


def _rows_of(definition: RegistryDefinition, attribute_name: str) -> tuple[ColumnElement[bool], ...]:
    """The rows of one attribute of the registry, its code and name written into the statement: a
    partial index declared for the attribute (``WHERE registry = ... AND attribute = ...``) is then
    provably usable by a prepared statement's generic plan too, which PostgreSQL switches to after a
    few runs (with bound parameters it fell back to the shared index and read every row of the value).
    Both come from the definition, whose schema limits them to ``[a-z0-9_-]``; values stay bound."""
    return (
        AttributeRow.registry_code
        == bindparam("registry", definition.code, unique=True, literal_execute=True),
        AttributeRow.attribute == bindparam("attribute", attribute_name, unique=True, literal_execute=True),
    )


def _comparison_ids(definition: RegistryDefinition, comparison: Comparison) -> Select[Any]:
    return select(AttributeRow.record_id).where(
        *_rows_of(definition, comparison.attribute.name),
        _test(comparison),
    )


def _attribute_ids(definition: RegistryDefinition, node: Node) -> Select[Any] | None:
    """The ids ``node`` selects, read from the attribute rows alone (repeated when a record has several
    matching values); None when ``node`` needs the records table (a ``not`` that nothing bounds)."""
    if isinstance(node, Comparison):
        return _comparison_ids(definition, node)
    if node.kind == "not":
        return None
    if node.kind == "or":
        if not node.parts:
            return select(AttributeRow.record_id).where(false())
        branches = [_attribute_ids(definition, part) for part in node.parts]
        if any(branch is None for branch in branches):
            return None
        if len(branches) == 1:
            return branches[0]
        either = union(*(branch for branch in branches if branch is not None)).subquery()
        return select(either.c.record_id)
    parts = _conjuncts(node)
    paired = _composite(definition, parts)
    if paired is not None:
        ids = paired[0].subquery()
        return select(ids.c.record_id).where(
            *(compile_condition(definition, other, ids.c.record_id) for other in paired[1])
        )
    # The first part the attribute rows can answer drives; the others become conditions on its ids,
    # which PostgreSQL may turn into semi-joins in whichever order is cheaper.
    for index, part in enumerate(node.parts):
        driver = _attribute_ids(definition, part)
        if driver is None:
            continue
        ids = driver.subquery()
        others = [*node.parts[:index], *node.parts[index + 1 :]]
        return select(ids.c.record_id).where(
            *(compile_condition(definition, other, ids.c.record_id) for other in others)
        )
    return None


def _conjuncts(node: Condition) -> list[Node]:
    """The parts of an ``and``, with the parts of the ``and``s nested in it."""
    parts: list[Node] = []
    for part in node.parts:
        if isinstance(part, Condition) and part.kind == "and":
            parts += _conjuncts(part)
        else:
            parts.append(part)
    return parts


def _composite(definition: RegistryDefinition, parts: list[Node]) -> tuple[Select[Any], list[Node]] | None:
    """The ids that a comparison on a text attribute and one on its companion select together, read
    from the composite index the definition declares for them (the text attribute's rows carry the
    companion's value), and the parts left; None when no declared pair is compared."""
    for text, companion in definition.composites:
        first = next((p for p in parts if isinstance(p, Comparison) and p.attribute.name == text), None)
        second = next((p for p in parts if isinstance(p, Comparison) and p.attribute.name == companion), None)
        if first is None or second is None:
            continue
        both = select(AttributeRow.record_id).where(
            *_rows_of(definition, text),
            _test(first),
            _test(second),
        )
        return both, [part for part in parts if part is not first and part is not second]
    return None


def matching_ids(definition: RegistryDefinition, node: Node | Identifier) -> Subquery:
    """The ids of the active records of ``definition`` that ``node`` selects, each once, as a subquery
    with one column, ``record_id``. See the module's documentation for how it is read."""
    if not isinstance(node, Identifier):
        ids = _attribute_ids(definition, node)
        if ids is not None:
            return ids.distinct().subquery()
    return (
        select(RecordRow.record_id)
        .where(
            RecordRow.registry_code == definition.code,
            RecordRow.status == ACTIVE,
            compile_condition(definition, node),
        )
        .subquery()
    )


async def _spellings(
    connection: AsyncConnection | AsyncSession, definition: RegistryDefinition, comparison: Comparison
) -> tuple[str, ...]:
    attribute, searched = comparison.attribute, str(comparison.values[0])
    threshold = attribute.fuzzy if attribute.fuzzy is not None else 1.0
    key = aliased(AttributeRow)
    value = aliased(AttributeRow)
    rows = await connection.execute(
        select(value.value_text)
        .select_from(key)
        .join(
            value,
            and_(
                value.record_id == key.record_id,
                value.attribute == attribute.name,
                value.position == key.position,
            ),
        )
        .where(
            key.registry_code == definition.code,
            key.attribute == attribute.name + PHONETIC_SUFFIX,
            key.value_text == phonetic_key(searched),
        )
        .distinct()
        .limit(MAX_FUZZY_SPELLINGS + 1)
    )
    spellings = [row[0] for row in rows if row[0] is not None]
    if len(spellings) > MAX_FUZZY_SPELLINGS:
        raise _filter(f"fuzzy {attribute.name} {searched!r} matches too many spellings; narrow the search")
    return tuple(sorted(text for text in spellings if similarity(text, searched) >= threshold))


async def expand_fuzzy(
    connection: AsyncConnection | AsyncSession, definition: RegistryDefinition, node: Node | Identifier
) -> Node | Identifier:
    """``node`` with every ``fuzzy`` comparison replaced by ``in`` the stored spellings it accepts (an
    empty ``or``, which selects nothing, when none does); ready for :func:`compile_condition`."""
    if isinstance(node, Identifier):
        return node
    if isinstance(node, Comparison):
        if node.operator != "fuzzy":
            return node
        spellings = await _spellings(connection, definition, node)
        return Comparison(node.attribute, "in", spellings) if spellings else Condition("or", ())
    parts: list[Node] = []
    for part in node.parts:
        expanded = await expand_fuzzy(connection, definition, part)
        if isinstance(expanded, Identifier):
            raise TypeError("an identifier is never part of a predicate")
        parts.append(expanded)
    return Condition(node.kind, tuple(parts))
