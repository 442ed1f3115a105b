"""Published schemas embedded as self-contained OpenAPI 3.1 components."""

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from standards import SchemaNotFound, component_key, openapi_components, validator


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_component_key() -> None:
    assert component_key("error", "1.0.0") == "error-1.0.0"


def test_components_include_everything_referenced_and_every_ref_stays_inside() -> None:
    components = openapi_components(["error@1.0.0", "capabilities@1.0.0", "conformance-summary@1.0.0"])
    assert set(components) == {
        "error-1.0.0",
        "capabilities-1.0.0",
        "conformance-summary-1.0.0",
        "common-1.0.0",
    }
    document = {"openapi": "3.1.0", "components": {"schemas": components}}
    text = json.dumps(document)
    assert "urn:dpi:schema" not in text
    assert '"$id"' not in text
    for ref in _refs(components):
        assert ref.startswith("#/components/schemas/")
        assert isinstance(_resolve(document, ref), dict), ref


def test_unknown_ref_raises() -> None:
    with pytest.raises(SchemaNotFound):
        openapi_components(["error@7.0.0"])


def test_embedded_component_validates_like_the_published_schema() -> None:
    components = openapi_components(["person@1.0.0"])
    document = {"openapi": "3.1.0", "components": {"schemas": components}}
    root = "urn:example:openapi"
    registry: Registry[Any] = Registry().with_resource(root, Resource.opaque(document))
    embedded = Draft202012Validator(
        {"$ref": f"{root}#/components/schemas/person-1.0.0"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    good = {
        "names": [{"script": "Latn", "given_name": "A", "family_name": "B"}],
        "date_of_birth": "2000-01-31",
    }
    bad = {**good, "preferred_language": "not a tag"}
    assert embedded.is_valid(good)
    assert validator("person").is_valid(good)
    assert not embedded.is_valid(bad)
    assert not validator("person").is_valid(bad)
