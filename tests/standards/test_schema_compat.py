"""Backward compatibility: every kind of breaking change is caught, compatible changes are not reported."""

from typing import Any

import pytest

from standards import load_schema, schema_names, schema_versions
from standards._schemas import version_key
from standards.compat import KINDS, breaking_changes

C0 = "urn:dpi:schema:common:1.0.0#/$defs/"
C1 = "urn:dpi:schema:common:1.1.0#/$defs/"
BASE: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z]+$", "minLength": 1, "maxLength": 20},
        "kind": {"enum": ["a", "b"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "when": {"type": "string"},
        "member": {"$ref": C0 + "memberId"},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
        "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "$defs": {"code": {"type": "string", "maxLength": 8}},
}


def _change(path: list[str | int], value: Any) -> dict[str, Any]:
    import copy

    new = copy.deepcopy(BASE)
    node: Any = new
    for part in path[:-1]:
        node = node[part]
    if value is _REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return new


_REMOVE = object()

BREAKING = [
    (["properties", "kind"], _REMOVE, "/properties/kind", "property_removed"),
    (["required"], ["id", "kind"], "/required", "required_added"),
    (["properties", "count", "type"], "string", "/properties/count/type", "type_narrowed"),
    (["type"], ["array"], "/type", "type_narrowed"),
    (["properties", "kind", "enum"], ["a"], "/properties/kind/enum", "enum_value_removed"),
    (["properties", "when", "enum"], ["x"], "/properties/when/enum", "enum_added"),
    (["additionalProperties"], False, "/additionalProperties", "additional_properties_closed"),
    (["additionalProperties"], {"type": "string"}, "/additionalProperties", "additional_properties_closed"),
    (["properties", "count", "minimum"], 1, "/properties/count/minimum", "bound_tightened"),
    (["properties", "count", "maximum"], 9, "/properties/count/maximum", "bound_tightened"),
    (
        ["properties", "count", "exclusiveMaximum"],
        10,
        "/properties/count/exclusiveMaximum",
        "bound_tightened",
    ),
    (["properties", "id", "minLength"], 2, "/properties/id/minLength", "bound_tightened"),
    (["properties", "id", "maxLength"], 19, "/properties/id/maxLength", "bound_tightened"),
    (["properties", "tags", "maxItems"], 4, "/properties/tags/maxItems", "bound_tightened"),
    (["properties", "tags", "minItems"], 1, "/properties/tags/minItems", "bound_tightened"),
    (["properties", "id", "pattern"], "^[a-z]{2,}$", "/properties/id/pattern", "pattern_changed"),
    (["properties", "when", "pattern"], "^x", "/properties/when/pattern", "pattern_changed"),
    (["properties", "when", "const"], "now", "/properties/when/const", "const_added"),
    (["properties", "when", "format"], "date-time", "/properties/when/format", "format_added"),
    (["properties", "member", "$ref"], C1 + "subsystemId", "/properties/member/$ref", "ref_changed"),
    (["properties", "member", "$ref"], C0 + "currency", "/properties/member/$ref", "ref_changed"),
    (["properties", "member", "$ref"], C0 + "noSuchDefinition", "/properties/member/$ref", "ref_changed"),
    (["properties", "tags", "items", "type"], "integer", "/properties/tags/items/type", "type_narrowed"),
    (
        ["properties", "pair", "prefixItems", 1, "type"],
        "integer",
        "/properties/pair/prefixItems/1/type",
        "type_narrowed",
    ),
    (
        ["properties", "choice", "anyOf"],
        [{"type": "string"}],
        "/properties/choice/anyOf",
        "alternative_removed",
    ),
    (
        ["properties", "choice", "anyOf", 1, "type"],
        "boolean",
        "/properties/choice/anyOf/1/type",
        "type_narrowed",
    ),
    (["$defs", "code", "maxLength"], 4, "/$defs/code/maxLength", "bound_tightened"),
    (["$defs", "code"], _REMOVE, "/$defs/code", "definition_removed"),
    (["properties", "when"], False, "/properties/when", "schema_closed"),
    (["properties", "when", "not"], {"const": ""}, "/properties/when/not", "constraint_added"),
    (["allOf"], [{"required": ["when"]}], "/allOf", "constraint_added"),
    (["properties", "extra"], {"type": "string"}, "/properties/extra/type", "type_narrowed"),
]

COMPATIBLE = [
    (["properties", "extra"], True),
    (["required"], []),
    (["properties", "count", "type"], "number"),
    (["properties", "count", "type"], ["integer", "null"]),
    (["properties", "kind", "enum"], ["a", "b", "c"]),
    (["properties", "count", "minimum"], -1),
    (["properties", "count", "maximum"], 11),
    (["properties", "id", "maxLength"], 40),
    (["properties", "id", "pattern"], _REMOVE),
    (["properties", "tags", "maxItems"], _REMOVE),
    (["properties", "member", "$ref"], C1 + "memberId"),
    (["properties", "member", "$ref"], C0 + "memberOrSubsystemId"),
    (["properties", "choice", "anyOf"], [{"type": "string"}, {"type": "integer"}, {"type": "null"}]),
    (["$defs", "other"], {"type": "string"}),
    (["title"], "A new title"),
    (["description"], "Described at last"),
    (["properties", "id", "description"], "The identifier"),
    (["additionalProperties"], True),
]


@pytest.mark.parametrize(("path", "value", "pointer", "kind"), BREAKING)
def test_each_kind_of_breaking_change_is_reported_at_its_pointer(
    path: list[str | int], value: Any, pointer: str, kind: str
) -> None:
    changes = breaking_changes(BASE, _change(path, value))
    assert [(change.pointer, change.kind) for change in changes] == [(pointer, kind)]
    assert changes[0].message
    assert changes[0].kind in KINDS


@pytest.mark.parametrize(("path", "value"), COMPATIBLE)
def test_compatible_change_reports_nothing(path: list[str | int], value: Any) -> None:
    assert breaking_changes(BASE, _change(path, value)) == []


def test_identical_schema_is_compatible() -> None:
    assert breaking_changes(BASE, BASE) == []


def test_removing_definitions_other_schemas_use_is_breaking() -> None:
    changes = breaking_changes(load_schema("common@1.1.0"), load_schema("common@1.0.0"))
    assert {(change.pointer, change.kind) for change in changes} == {
        ("/$defs/localizedText", "definition_removed"),
        ("/$defs/identifierType", "definition_removed"),
    }


def test_recursive_local_refs_terminate() -> None:
    old = {
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "$ref": "#/$defs/node",
    }
    new = {
        "$defs": {"tree": {"type": "object", "properties": {"next": {"$ref": "#/$defs/tree"}, "v": False}}},
        "$ref": "#/$defs/tree",
    }
    changes = breaking_changes(old, new)
    assert [(change.pointer, change.kind) for change in changes] == [
        ("/$ref", "ref_changed"),
        ("/$defs/node", "definition_removed"),
    ]
    assert "schema_closed at /properties/v" in changes[0].message


PAIRS = [
    (name, older, newer)
    for name in schema_names()
    for older, newer in zip(schema_versions(name), schema_versions(name)[1:], strict=False)
    if version_key(older)[0] == version_key(newer)[0]
]


def test_there_is_at_least_one_consecutive_pair() -> None:
    assert ("common", "1.0.0", "1.1.0") in PAIRS


@pytest.mark.parametrize(("name", "older", "newer"), PAIRS)
def test_published_versions_within_a_major_are_backward_compatible(name: str, older: str, newer: str) -> None:
    changes = breaking_changes(load_schema(name, older), load_schema(name, newer))
    assert changes == [], f"{name} {older} -> {newer} breaks: {changes}"
