"""Published JSON Schemas (https://json-schema.org/draft/2020-12): discovery, loading and references.

A schema lives in ``schemas/<name>/<MAJOR.MINOR.PATCH>.json`` and is named
``urn:dpi:schema:<name>:<version>``.
Published files never change; a change is a new version.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SCHEMA_DIRECTORY",
    "SUBSCHEMAS",
    "SUBSCHEMA_LISTS",
    "SUBSCHEMA_MAPS",
    "SchemaNotFound",
    "load_schema",
    "parse_ref",
    "published",
    "reference_registry",
    "schema_id",
    "schema_names",
    "schema_versions",
    "split_schema_id",
    "version_key",
]

SCHEMA_DIRECTORY = Path(__file__).parent / "schemas"

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_ID_PREFIX = "urn:dpi:schema:"


class SchemaNotFound(LookupError):
    """No published schema has this name, or not this version (reason code ``schema.not_found``)."""

    reason_code = "schema.not_found"


def version_key(version: str) -> tuple[int, int, int]:
    """The sort key of a semantic version ``MAJOR.MINOR.PATCH``."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"not a semantic version MAJOR.MINOR.PATCH: {version!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def schema_id(name: str, version: str) -> str:
    """The ``$id`` of a published schema: ``urn:dpi:schema:<name>:<version>``."""
    return f"{_ID_PREFIX}{name}:{version}"


def split_schema_id(uri: str) -> tuple[str, str, str] | None:
    """``(name, version, fragment)`` of a reference to a published schema, or None for any other URI.

    The fragment keeps its leading ``#`` ("" when there is none).
    """
    if not uri.startswith(_ID_PREFIX):
        return None
    resource, _, fragment = uri[len(_ID_PREFIX) :].partition("#")
    name, _, version = resource.partition(":")
    if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
        return None
    return name, version, f"#{fragment}" if fragment else ""


@cache
def published() -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
    """Every published schema, by name then version (versions ascending). Read once."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for directory in sorted(SCHEMA_DIRECTORY.iterdir()):
        if not directory.is_dir() or not _NAME.fullmatch(directory.name):
            continue
        files = [path for path in directory.glob("*.json") if _VERSION.fullmatch(path.stem)]
        versions: dict[str, dict[str, Any]] = {}
        for path in sorted(files, key=lambda path: version_key(path.stem)):
            versions[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        if versions:
            found[directory.name] = versions
    return found


def schema_names() -> list[str]:
    """The names of every published schema, sorted."""
    return sorted(published())


def schema_versions(name: str) -> list[str]:
    """The published versions of a schema, ascending by semantic version; raises SchemaNotFound."""
    versions = published().get(name)
    if versions is None:
        raise SchemaNotFound(f"no published schema named {name!r}")
    return list(versions)


def parse_ref(ref: str, version: str | None = None) -> tuple[str, str]:
    """Resolve ``"name"``, ``"name@x.y.z"`` or ``(name, version)`` to a published ``(name, version)``.

    Without a version the latest published version is used. Raises SchemaNotFound.
    """
    name, at, pinned = ref.partition("@")
    if at:
        if version is not None and version != pinned:
            raise SchemaNotFound(f"{ref!r} names version {pinned}, but version {version} was asked for")
        version = pinned
    versions = schema_versions(name)
    if version is None:
        return name, versions[-1]
    if version not in published()[name]:
        raise SchemaNotFound(f"schema {name!r} has no version {version!r} (published: {', '.join(versions)})")
    return name, version


def load_schema(ref: str, version: str | None = None) -> dict[str, Any]:
    """A copy of a published schema: ``load_schema("error")``, ``load_schema("error@1.0.0")``.

    The latest version when none is given. Raises SchemaNotFound.
    """
    name, version = parse_ref(ref, version)
    return copy.deepcopy(dict(published()[name][version]))


@cache
def reference_registry() -> Registry[Any]:
    """A ``referencing`` registry of every published schema under its ``$id``, so ``urn:`` refs resolve."""
    # Each resource is registered without its "$schema": every published schema is 2020-12 anyway, and
    # jsonschema picks the validator class of a referenced resource from its "$schema", which would
    # swap our extended validator (ECMA-262 patterns, per-member errors) for the stock one inside a
    # "$ref" to a whole schema.
    resources = [
        (
            schema_id(name, version),
            Resource.from_contents(
                {key: value for key, value in schema.items() if key != "$schema"},
                default_specification=DRAFT202012,
            ),
        )
        for name, versions in published().items()
        for version, schema in versions.items()
    ]
    return Registry().with_resources(resources)


#: Keywords whose value is a map of names to subschemas.
SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
#: Keywords whose value is a list of subschemas.
SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
#: Keywords whose value is one subschema.
SUBSCHEMAS = frozenset(
    {
        "items",
        "additionalProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "contains",
        "not",
        "if",
        "then",
        "else",
    }
)
