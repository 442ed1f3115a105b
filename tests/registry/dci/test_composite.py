"""Composite indexes (``registry-definition@1.2.0``): a search comparing both attributes of a declared
pair reads the pair's index and selects exactly the records the comparisons select one by one, after
corrections, and for rows written before the pair was declared; definitions that pair attributes the
index cannot hold are refused."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any, Final

import pytest
from sqlalchemy import select, text, update

from registry.dci.query import Condition, compile_condition, matching_ids, parse_query
from registry.definition import DefinitionError, RegistryDefinition, load_definitions
from registry.models import AttributeRow, RecordRow
from registry.service import RegistryService, create_attribute_indexes
from registry.synthetic import generate

CIVIL: Final = load_definitions()["civil"]
FAMILIES: Final = ("diop", "ndiaye", "fall")


def _comparison(name: str, operator: str, value: Any) -> dict[str, Any]:
    return {"attribute_name": name, "operator": operator, "attribute_value": value}


def _and(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"expression1": first, "condition": "and", "expression2": second}


BORN_1980S: Final = _comparison("date_of_birth", "between", ["1980-01-01", "1989-12-31"])
PREDICATES: Final = {
    "family eq, born between": [_and(_comparison("family_name", "eq", "Diop"), BORN_1980S)],
    "born between, family eq": [_and(BORN_1980S, _comparison("family_name", "eq", "DIOP"))],
    "as two items": [
        {"expression1": _comparison("family_name", "eq", "diop")},
        {"expression1": _comparison("date_of_birth", "ge", "1990-01-01")},
    ],
    "family in, born before": [
        _and(
            _comparison("family_name", "in", ["ndiaye", "fall"]),
            _comparison("date_of_birth", "lt", "1975-06-01"),
        )
    ],
    "family prefix, born on": [
        _and(_comparison("family_name", "prefix", "nd"), _comparison("date_of_birth", "ge", "1950-01-01"))
    ],
    "with a third comparison": [
        _and(_and(_comparison("family_name", "eq", "fall"), BORN_1980S), _comparison("sex", "eq", "female"))
    ],
    "and not born between": [
        {
            "expression1": _comparison("family_name", "eq", "diop"),
            "condition": "not",
            "expression2": BORN_1980S,
        }
    ],
    "or of two pairs": [
        {
            "expression1": _and(_comparison("family_name", "eq", "diop"), BORN_1980S),
            "condition": "or",
            "expression2": _and(
                _comparison("family_name", "eq", "ndiaye"), _comparison("date_of_birth", "le", "1960-12-31")
            ),
        }
    ],
    "arabic script": [
        _and(_comparison("family_name", "eq", "ديوب"), _comparison("date_of_birth", "ge", "1900-01-01"))
    ],
    "nothing matches": [
        _and(_comparison("family_name", "eq", "diop"), _comparison("date_of_birth", "lt", "1800-01-01"))
    ],
}


def _persons(count: int) -> list[dict[str, Any]]:
    """Persons of the seed generator, their family names narrowed to a few so that pairs meet."""
    found: list[dict[str, Any]] = []
    for document in generate("civil", count * 3, seed=5):
        if document["record_type"] != "person" or len(found) == count:
            continue
        family = FAMILIES[len(found) % len(FAMILIES)]
        for name in document["names"]:
            name["family"] = (
                family.title() if name.get("script") == "Latn" else {"diop": "ديوب"}.get(family, "فال")
            )
        document["date_of_birth"] = date(1940 + len(found) * 3 % 70, 1 + len(found) % 12, 10).isoformat()
        found.append(document)
    return found


async def _selected(service: RegistryService, predicate: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """What the search reads (each id once), and what the comparisons select one by one on the records."""
    node = parse_query(CIVIL, "predicate", predicate)
    ids = matching_ids(CIVIL, node)
    async with service.sessions() as session:
        read = list((await session.scalars(select(ids.c.record_id))).all())
        reference = set(
            (
                await session.scalars(
                    select(RecordRow.record_id).where(
                        RecordRow.registry_code == CIVIL.code,
                        RecordRow.status == "active",
                        compile_condition(CIVIL, node),
                    )
                )
            ).all()
        )
    return sorted(read), reference


async def _each_predicate_agrees(service: RegistryService) -> int:
    matched = 0
    for name, predicate in PREDICATES.items():
        read, reference = await _selected(service, predicate)
        assert read == sorted(reference), name
        matched += len(reference)
    return matched


def test_the_civil_registry_pairs_family_name_with_birth_date() -> None:
    assert CIVIL.composites == (("family_name", "date_of_birth"),)
    node = parse_query(CIVIL, "predicate", PREDICATES["family eq, born between"])
    assert isinstance(node, Condition)
    statement = str(select(matching_ids(CIVIL, node).c.record_id).compile())
    # One read of the attribute rows: the pair is one range of its index, not two subqueries.
    assert statement.count("FROM registry_attribute") == 1
    family_rows = CIVIL.attribute_values(_persons(1)[0])
    carried = {value.day for value in family_rows if value.attribute == "family_name"}
    assert carried == {date.fromisoformat(_persons(1)[0]["date_of_birth"])}


async def test_a_pair_selects_what_its_comparisons_select(service: RegistryService) -> None:
    """Also after a correction, and for rows written before the pair was declared."""
    documents = _persons(36)
    await service.create_many("civil", documents, actor="clerk", reason="test")
    async with service.sessions.begin() as session:
        connection = await session.connection()
        await connection.run_sync(create_attribute_indexes, service.definitions)
    assert await _each_predicate_agrees(service) > 0
    # A corrected birth date moves the record in the pair's index too.
    record_id = await service.find_by_identifier("civil", "UIN", documents[0]["uin"])
    assert record_id is not None
    corrected = copy.deepcopy(documents[0]) | {"date_of_birth": "1984-05-05"}
    await service.update("civil", record_id, version=1, document=corrected, actor="clerk", reason="test")
    read, _ = await _selected(service, PREDICATES["family eq, born between"])
    assert record_id in read
    assert await _each_predicate_agrees(service) > 0
    async with service.sessions.begin() as session:
        # As rows were before the definition declared the pair: no companion, no index. Declaring it
        # gives the rows their companion before the index is built.
        await session.execute(
            update(AttributeRow).where(AttributeRow.attribute == "family_name").values(value_date=None)
        )
        await session.execute(text("DROP INDEX ix_regattr_civil_family_name_date_of_birth"))
        connection = await session.connection()
        names = await connection.run_sync(create_attribute_indexes, service.definitions)
    assert "ix_regattr_civil_family_name_date_of_birth" in names
    assert await _each_predicate_agrees(service) > 0


def _civil_with(indexes: list[Any]) -> dict[str, Any]:
    document = copy.deepcopy(dict(CIVIL.document))
    document["indexes"] = indexes
    return document


@pytest.mark.parametrize(
    "indexes",
    [
        [{"attributes": ["family_name", "given_name"]}],
        [{"attributes": ["date_of_birth", "family_name"]}],
        [{"attributes": ["family_name", "spouse_uin"]}],
        [{"attributes": ["family_name", "unknown"]}],
        [{"attributes": ["family_name", "date_of_birth"]}, {"attributes": ["family_name", "registered_on"]}],
        [{"attribute": "family_name", "attributes": ["family_name", "date_of_birth"]}],
        [{}],
    ],
)
def test_a_pair_the_index_cannot_hold_is_refused(indexes: list[Any]) -> None:
    with pytest.raises((DefinitionError, ValueError)):
        RegistryDefinition.from_document(_civil_with(indexes))


def test_a_declared_pair_is_accepted() -> None:
    definition = RegistryDefinition.from_document(
        _civil_with([{"attributes": ["given_name", "registered_on"]}, {"attribute": "sex"}])
    )
    assert definition.composites == (("given_name", "registered_on"),)
    assert definition.indexes == ("sex",)


async def test_indexes_no_definition_declares_any_more_are_dropped(service: RegistryService) -> None:
    async with service.sessions.begin() as session:
        # The single-attribute index the civil registry declared before it paired family name and birth date.
        await session.execute(
            text(
                "CREATE INDEX ix_regattr_civil_family_name ON registry_attribute (value_text, record_id) "
                "WHERE registry = 'civil' AND attribute = 'family_name'"
            )
        )
        connection = await session.connection()
        names = await connection.run_sync(create_attribute_indexes, service.definitions)
        present = await connection.run_sync(_index_names)
    assert "ix_regattr_civil_family_name" not in present
    assert set(names) <= present
    # The table's own indexes are never touched.
    assert any(not name.startswith("ix_regattr_") for name in present)


def _index_names(connection: Any) -> set[str]:
    from sqlalchemy import inspect

    return {str(entry["name"]) for entry in inspect(connection).get_indexes("registry_attribute")}
