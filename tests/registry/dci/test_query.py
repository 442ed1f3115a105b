"""DCI queries: the compiled SQL selects exactly the records a pure-Python reading of the same predicate
selects (property-based, over generated records, on SQLite and PostgreSQL), and malformed or disallowed
queries are refused with the DCI reason code."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from dpi import db
from dpi.errors import DpiError
from registry.dci.query import compile_condition, expand_fuzzy, matching_ids, parse_query
from registry.definition import PHONETIC_SUFFIX, load_definitions
from registry.models import AttributeRow, RecordRow
from registry.phonetic import phonetic_key, similarity
from tests.registry.conftest import MIGRATIONS

DEFINITION = load_definitions()["jobseekers"]
NAMES = ["amina", "amir", "ali", "youssef", "aïcha", "yusuf", "يوسف", "aminata"]
SKILLS = ["2511", "2512", "2611", "7411"]
DAYS = [date(1967, 3, 1), date(1990, 1, 1), date(2001, 6, 15), date(2001, 6, 16)]

records = st.lists(
    st.fixed_dictionaries(
        {
            "given_name": st.none() | st.sampled_from(NAMES),
            "sex": st.none() | st.sampled_from(["male", "female"]),
            "education_level": st.none() | st.integers(min_value=0, max_value=8),
            "date_of_birth": st.none() | st.sampled_from(DAYS),
            "isco08": st.lists(st.sampled_from(SKILLS), max_size=3, unique=True),
            "active": st.booleans() | st.just(True),
        }
    ),
    max_size=12,
)

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "given_name": st.sampled_from([*NAMES, "AMINA", "Ali", "zz"]),
    "sex": st.sampled_from(["male", "female", "other"]),
    "education_level": st.integers(min_value=-1, max_value=9) | st.sampled_from([2.5, "3", "4.25"]),
    "date_of_birth": st.sampled_from([day.isoformat() for day in DAYS] + ["2000-01-01"]),
    "isco08": st.sampled_from([*SKILLS, "9999"]),
}
_FUZZY: Final = st.sampled_from(["Amina", "amine", "Youcef", "yousef", "aisha", "aly", "zz", "أمينة"])
_PREFIXES: dict[str, st.SearchStrategy[str]] = {
    "given_name": st.sampled_from(["a", "AM", "ami", "y", "aï", "z"]),
    "isco08": st.sampled_from(["2", "25", "251", "7", "9"]),
}


@st.composite
def comparisons(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(_VALUES)))
    operator = draw(st.sampled_from(sorted(DEFINITION.attributes[name].operators)))
    values = _VALUES[name]
    if operator == "in":
        value: Any = draw(st.lists(values, min_size=1, max_size=3))
    elif operator == "between":
        value = [draw(values), draw(values)]
    elif operator == "prefix":
        value = draw(_PREFIXES[name])
    elif operator == "fuzzy":
        value = draw(_FUZZY)
    else:
        value = draw(values)
    return {"attribute_name": name, "operator": operator, "attribute_value": value}


def _items(expression: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda first: {"expression1": first}, expression),
        st.builds(
            lambda first, condition, second: {
                "expression1": first,
                "condition": condition,
                "expression2": second,
            },
            expression,
            st.sampled_from(["and", "or", "not"]),
            expression,
        ),
        st.builds(lambda first: {"expression1": first, "condition": "not"}, expression),
    )


expressions = st.recursive(comparisons(), _items, max_leaves=6)
predicates = st.lists(_items(expressions), min_size=1, max_size=3).map(
    lambda items: [{"seq_num": index, **item} for index, item in enumerate(items)]
)


def _typed(name: str, raw: Any) -> Any:
    kind = DEFINITION.attributes[name].type
    if kind == "number":
        return Decimal(str(raw))
    if kind == "date":
        return date.fromisoformat(raw)
    return str(raw).casefold() if name == "given_name" else raw


def _values(record: dict[str, Any], name: str) -> list[Any]:
    value = record[name]
    if isinstance(value, list):
        return value
    if value is None:
        return []
    return [Decimal(value) if name == "education_level" else value]


def _holds(record: dict[str, Any], expression: dict[str, Any]) -> bool:
    if "expression1" in expression:
        return _item_holds(record, expression)
    name, operator, raw = expression["attribute_name"], expression["operator"], expression["attribute_value"]
    tests = {
        "eq": lambda value: value == _typed(name, raw),
        "gt": lambda value: value > _typed(name, raw),
        "ge": lambda value: value >= _typed(name, raw),
        "lt": lambda value: value < _typed(name, raw),
        "le": lambda value: value <= _typed(name, raw),
        "in": lambda value: value in [_typed(name, item) for item in raw],
        "between": lambda value: _typed(name, raw[0]) <= value <= _typed(name, raw[1]),
        "prefix": lambda value: value.startswith(_typed(name, raw)),
        "fuzzy": lambda value: (
            phonetic_key(value) == phonetic_key(raw)
            and similarity(value, raw) >= (DEFINITION.attributes[name].fuzzy or 1.0)
        ),
    }
    return any(tests[operator](value) for value in _values(record, name))


def _item_holds(record: dict[str, Any], item: dict[str, Any]) -> bool:
    first = _holds(record, item["expression1"])
    condition = item.get("condition")
    if condition is None:
        return first
    if condition == "not":
        return first and not _holds(record, item["expression2"]) if "expression2" in item else not first
    second = _holds(record, item["expression2"])
    return first and second if condition == "and" else first or second


def _rows(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    record_rows: list[dict[str, Any]] = []
    attribute_rows: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        record_id = f"{index:08d}-0000-4000-8000-000000000000"
        record_rows.append(
            {
                "record_id": record_id,
                "registry": DEFINITION.code,
                "record_type": "jobseeker",
                "identifiers": [],
                "document": {},
                "version": 1,
                "status": "active" if record["active"] else "deleted",
                "merged_into": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        # As the service keeps them: a deleted or merged record has no attribute rows.
        for name in _VALUES if record["active"] else ():
            for position, value in enumerate(_values(record, name)):
                attribute_rows.append(
                    {
                        "record_id": record_id,
                        "attribute": name,
                        "position": position,
                        "registry": DEFINITION.code,
                        "value_text": value if isinstance(value, str) else None,
                        "value_number": value if isinstance(value, Decimal) else None,
                        "value_date": value if isinstance(value, date) else None,
                    }
                )
                if DEFINITION.attributes[name].fuzzy is not None:
                    attribute_rows.append(
                        {
                            "record_id": record_id,
                            "attribute": name + PHONETIC_SUFFIX,
                            "position": position,
                            "registry": DEFINITION.code,
                            "value_text": phonetic_key(value),
                            "value_number": None,
                            "value_date": None,
                        }
                    )
    return record_rows, attribute_rows


async def _selected(
    database_url: str, records: list[dict[str, Any]], predicate: list[dict[str, Any]]
) -> set[str]:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, [MIGRATIONS])
        async with engine.begin() as connection:
            await connection.execute(delete(AttributeRow))
            await connection.execute(delete(RecordRow))
            record_rows, attribute_rows = _rows(records)
            if record_rows:
                await connection.execute(insert(RecordRow), record_rows)
            if attribute_rows:
                await connection.execute(insert(AttributeRow), attribute_rows)
            try:
                node = await expand_fuzzy(
                    connection, DEFINITION, parse_query(DEFINITION, "predicate", predicate)
                )
            except DpiError as refusal:
                return refusal.reason_code
            found = await connection.scalars(
                select(RecordRow.record_id).where(
                    RecordRow.registry_code == DEFINITION.code,
                    RecordRow.status == "active",
                    compile_condition(DEFINITION, node),
                )
            )
            ids = matching_ids(DEFINITION, node)
            listed = (await connection.scalars(select(ids.c.record_id))).all()
            # Both forms select the same records, and the search's form names each once.
            assert sorted(listed) == sorted(set(found.all()))
            return set(listed)
    finally:
        await engine.dispose()


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=records, predicate=predicates)
def test_compiled_predicates_select_what_the_predicate_says(
    database_url: str, records: list[dict[str, Any]], predicate: list[dict[str, Any]]
) -> None:
    selected = asyncio.run(_selected(database_url, records, predicate))
    if isinstance(selected, str):
        # Only values an attribute cannot hold are refused (such as an education level of 2.5).
        assert selected == "rjct.filter.invalid"
        return
    expected = {
        row["record_id"]
        for row, record in zip(_rows(records)[0], records, strict=True)
        if record["active"] and all(_item_holds(record, item) for item in predicate)
    }
    assert selected == expected


@pytest.mark.parametrize(
    ("query_type", "query", "reason_code"),
    [
        (
            "expression",
            {"type": "ns:org:QueryType:Sql", "value": {"expression": "1=1"}},
            "rjct.search_criteria.invalid",
        ),
        ("graphql", {}, "rjct.search_criteria.invalid"),
        ("idtype-value", {"type": "PASSPORT", "value": "X1"}, "rjct.filter.invalid"),
        ("idtype-value", {"type": "UIN", "value": ""}, "rjct.filter.invalid"),
        ("idtype-value", ["UIN"], "rjct.filter.invalid"),
        ("predicate", [], "rjct.filter.invalid"),
        ("predicate", ["sex = 'male'"], "rjct.filter.invalid"),
        (
            "predicate",
            [{"expression1": {"attribute_name": "password", "operator": "eq", "attribute_value": "x"}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [{"expression1": {"attribute_name": "sex", "operator": "regex", "attribute_value": ".*"}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [{"expression1": {"attribute_name": "sex", "operator": "fuzzy", "attribute_value": "mal"}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [{"expression1": {"attribute_name": "given_name", "operator": "fuzzy", "attribute_value": ""}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "given_name",
                        "operator": "fuzzy",
                        "attribute_value": ["a"],
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [{"expression1": {"attribute_name": "sex", "operator": "gt", "attribute_value": "m"}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "date_of_birth",
                        "operator": "eq",
                        "attribute_value": "01/02/2001",
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "date_of_birth",
                        "operator": "eq",
                        "attribute_value": "2001-02-30",
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "education_level",
                        "operator": "ge",
                        "attribute_value": True,
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "education_level",
                        "operator": "ge",
                        "attribute_value": "1e400",
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "education_level",
                        "operator": "between",
                        "attribute_value": [1],
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [{"expression1": {"attribute_name": "sex", "operator": "in", "attribute_value": []}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [{"expression1": {"attribute_name": "sex", "operator": "in", "attribute_value": ["m"] * 101}}],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {
                        "attribute_name": "given_name",
                        "operator": "prefix",
                        "attribute_value": "a" * 201,
                    }
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "m"},
                    "condition": "xor",
                    "expression2": {},
                }
            ],
            "rjct.filter.invalid",
        ),
        (
            "predicate",
            [
                {
                    "expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "m"},
                    "condition": "and",
                }
            ],
            "rjct.filter.invalid",
        ),
    ],
)
def test_refused_queries(query_type: str, query: Any, reason_code: str) -> None:
    with pytest.raises(DpiError) as refused:
        parse_query(DEFINITION, query_type, query)
    assert refused.value.reason_code == reason_code


def test_nesting_is_bounded() -> None:
    expression: dict[str, Any] = {"attribute_name": "sex", "operator": "eq", "attribute_value": "male"}
    for _ in range(12):
        expression = {"expression1": expression, "condition": "not"}
    with pytest.raises(DpiError) as refused:
        parse_query(DEFINITION, "predicate", [expression])
    assert refused.value.reason_code == "rjct.filter.invalid"


def test_values_are_bound_parameters_never_statement_text() -> None:
    hostile = "x' OR '1'='1"
    node = parse_query(
        DEFINITION,
        "predicate",
        [{"expression1": {"attribute_name": "given_name", "operator": "eq", "attribute_value": hostile}}],
    )
    statement = select(RecordRow.record_id).where(compile_condition(DEFINITION, node))
    compiled = statement.compile()
    assert hostile.casefold() not in str(compiled)
    assert hostile.casefold() in compiled.params.values()
