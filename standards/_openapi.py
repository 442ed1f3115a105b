"""Published schemas as OpenAPI 3.1 components (https://spec.openapis.org/oas/v3.1.0#components-object).

OpenAPI 3.1 schema objects are JSON Schema 2020-12, so a published schema is embedded as it is, except that
its ``$id``/``$schema`` are dropped and every ``$ref`` is rewritten to point inside the OpenAPI document,
which then resolves without any network access.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from standards._schemas import (
    SUBSCHEMA_LISTS,
    SUBSCHEMA_MAPS,
    SUBSCHEMAS,
    load_schema,
    parse_ref,
    split_schema_id,
)

__all__ = ["component_key", "openapi_components"]

_COMPONENTS = "#/components/schemas/"


def component_key(name: str, version: str) -> str:
    """The OpenAPI component name of a published schema version.

    ``component_key("error", "1.0.0") == "error-1.0.0"``.
    """
    return f"{name}-{version}"


def _rewrite(schema: Any, key: str, wanted: list[tuple[str, str]]) -> Any:
    if not isinstance(schema, dict):
        return schema
    rewritten: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in ("$id", "$schema"):
            continue
        if keyword == "$ref" and isinstance(value, str):
            rewritten[keyword] = _component_ref(value, key, wanted)
        elif keyword in SUBSCHEMA_MAPS and isinstance(value, dict):
            rewritten[keyword] = {name: _rewrite(sub, key, wanted) for name, sub in value.items()}
        elif keyword in SUBSCHEMA_LISTS and isinstance(value, list):
            rewritten[keyword] = [_rewrite(sub, key, wanted) for sub in value]
        elif keyword in SUBSCHEMAS:
            rewritten[keyword] = _rewrite(value, key, wanted)
        else:
            rewritten[keyword] = value
    return rewritten


def _component_ref(ref: str, key: str, wanted: list[tuple[str, str]]) -> str:
    if ref.startswith("#"):
        return f"{_COMPONENTS}{key}{ref[1:]}"
    target = split_schema_id(ref)
    if target is None:
        raise ValueError(f"cannot embed a reference outside the published schemas: {ref!r}")
    name, version, fragment = target
    wanted.append((name, version))
    return f"{_COMPONENTS}{component_key(name, version)}{fragment[1:]}"


def openapi_components(refs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Component schemas for ``name@version`` refs and every schema they reference, transitively.

    Keys are ``component_key(name, version)``; every cross-schema ``$ref`` becomes
    ``#/components/schemas/<key>`` plus the original fragment. Raises SchemaNotFound for an unknown ref.
    """
    wanted = [parse_ref(ref) for ref in refs]
    components: dict[str, dict[str, Any]] = {}
    while wanted:
        name, version = wanted.pop()
        key = component_key(name, version)
        if key in components:
            continue
        components[key] = _rewrite(load_schema(name, version), key, wanted)
    return dict(sorted(components.items()))
