"""Backward compatibility of JSON Schema versions (https://json-schema.org/draft/2020-12).

A new version of a schema is backward compatible when every instance valid against the old version is still
valid against the new one. ``breaking_changes(old, new)`` lists the changes that break that promise;
within one MAJOR version there must be none. The check is conservative: it reports a change it cannot
reason about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standards._schemas import SUBSCHEMA_LISTS, SchemaNotFound, load_schema, split_schema_id
from standards._validation import json_pointer

__all__ = ["KINDS", "BreakingChange", "breaking_changes"]

#: Every kind of breaking change, with what it means.
KINDS: Mapping[str, str] = {
    "property_removed": "a property the old version described is gone",
    "required_added": "a property became required",
    "type_narrowed": "a type the old version accepted is refused",
    "enum_value_removed": "a value the old enum accepted is refused",
    "enum_added": "an enum now restricts a value that was free",
    "const_added": "a const now restricts a value",
    "additional_properties_closed": "members the old version allowed are now refused or constrained",
    "bound_tightened": "a minimum, maximum, length, item or member count limit is stricter",
    "pattern_changed": "a pattern was added or changed",
    "format_added": "a format was added or changed",
    "ref_changed": "a $ref now points at a narrower schema",
    "definition_removed": "a $defs entry other schemas may reference is gone",
    "alternative_removed": "an anyOf/oneOf alternative is gone",
    "constraint_added": "a new constraint (allOf entry, not, if/then/else, ...) was added or changed",
    "schema_closed": "a subschema now refuses everything",
}

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")
_OPAQUE = (
    "not",
    "if",
    "then",
    "else",
    "contains",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
)
_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


@dataclass(frozen=True, slots=True)
class BreakingChange:
    """One backward-incompatible change: where (JSON pointer into the new schema), its kind, a message."""

    pointer: str
    kind: str
    message: str


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _as_dict(schema: Any) -> dict[str, Any] | None:
    """A schema as a dict; None stands for ``false`` (refuses everything)."""
    if schema is False:
        return None
    if schema is True:
        return {}
    return dict(schema) if isinstance(schema, Mapping) else {}


def _pointer_get(document: Any, fragment: str) -> Any:
    node = document
    for part in fragment.lstrip("/").split("/") if fragment not in ("", "/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


class _Comparison:
    def __init__(self) -> None:
        self.changes: list[BreakingChange] = []
        self._visited: set[tuple[str, str]] = set()

    def report(self, pointer: str, kind: str, message: str) -> None:
        self.changes.append(BreakingChange(pointer, kind, message))

    def resolve(self, ref: str, root: Mapping[str, Any]) -> tuple[str, Any, Mapping[str, Any]]:
        """``(absolute uri, target, target's document)``; raises LookupError when it cannot be resolved."""
        base = str(root.get("$id", ""))
        uri = base + ref if ref.startswith("#") else ref
        resource, _, fragment = uri.partition("#")
        if resource == base:
            document = root
        else:
            target = split_schema_id(uri)
            if target is None:
                raise LookupError(f"cannot resolve {ref!r}")
            document = load_schema(target[0], target[1])
        try:
            return uri, _pointer_get(document, fragment), document
        except (KeyError, IndexError, ValueError, TypeError):
            raise LookupError(f"cannot resolve {ref!r}") from None

    def compare(
        self,
        old_schema: Any,
        new_schema: Any,
        pointer: str,
        roots: tuple[Mapping[str, Any], Mapping[str, Any]],
        followed: bool,
    ) -> None:
        old, new = _as_dict(old_schema), _as_dict(new_schema)
        if old is None:
            return
        if new == old:
            text = _canonical(new)
            # Identical text is identical meaning, unless local refs now resolve in another document.
            if not followed or '"$ref": "#' not in text or roots[0].get("$id") == roots[1].get("$id"):
                return
        if new is None:
            self.report(pointer, "schema_closed", "the schema is now false: every value is refused")
            return
        has_ref = "$ref" in old or "$ref" in new
        if has_ref and self._compare_refs(old, new, pointer, roots, followed):
            return
        self._keywords(old, new, pointer, roots, followed)

    def _compare_refs(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        pointer: str,
        roots: tuple[Mapping[str, Any], Mapping[str, Any]],
        followed: bool,
    ) -> bool:
        """Compare what the refs point at; True when the rest of the keywords need no comparison."""
        old_ref, new_ref = old.get("$ref"), new.get("$ref")
        # At the top level, equal local refs point at $defs that are compared one by one anyway.
        if old_ref == new_ref and isinstance(old_ref, str) and old_ref.startswith("#") and not followed:
            old.pop("$ref")
            new.pop("$ref")
            return False
        try:
            old_uri, old_target, old_doc = (
                self.resolve(old_ref, roots[0]) if isinstance(old_ref, str) else ("", old, roots[0])
            )
            new_uri, new_target, new_doc = (
                self.resolve(new_ref, roots[1]) if isinstance(new_ref, str) else ("", new, roots[1])
            )
        except (LookupError, SchemaNotFound) as error:
            self.report(json_pointer([*_split(pointer), "$ref"]), "ref_changed", str(error))
            return True
        if old_uri and old_uri == new_uri:
            old.pop("$ref")
            new.pop("$ref")
            return False
        if (old_uri, new_uri) in self._visited:
            return True
        self._visited.add((old_uri, new_uri))
        if isinstance(old_ref, str):
            old_target = (
                old_target if old_target is not old else {k: v for k, v in old.items() if k != "$ref"}
            )
        inner = _Comparison()
        inner._visited = self._visited
        inner.compare(old_target, new_target, "", (old_doc, new_doc), followed=True)
        if inner.changes:
            details = "; ".join(f"{c.kind} at {c.pointer or '/'}: {c.message}" for c in inner.changes)
            self.report(
                json_pointer([*_split(pointer), "$ref"]),
                "ref_changed",
                f"$ref {old_ref or '(inline)'} -> {new_ref or '(inline)'} is narrower: {details}",
            )
        if isinstance(old_ref, str) and isinstance(new_ref, str):
            old.pop("$ref")
            new.pop("$ref")
            return False
        return True

    def _keywords(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        pointer: str,
        roots: tuple[Mapping[str, Any], Mapping[str, Any]],
        followed: bool,
    ) -> None:
        self._types(old, new, pointer)
        self._values(old, new, pointer)
        self._bounds(old, new, pointer)
        self._objects(old, new, pointer, roots, followed)
        self._arrays(old, new, pointer, roots, followed)
        self._combinators(old, new, pointer, roots, followed)
        for keyword in _OPAQUE:
            if keyword in new and _canonical(new[keyword]) != _canonical(old.get(keyword)):
                self.report(_at(pointer, keyword), "constraint_added", f"{keyword} was added or changed")

    def _types(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        if "type" not in new:
            return
        new_types = set(new["type"] if isinstance(new["type"], list) else [new["type"]])
        old_value = old.get("type", list(_TYPES))
        old_types = set(old_value if isinstance(old_value, list) else [old_value])
        refused = sorted(
            kind
            for kind in old_types
            if kind not in new_types and not (kind == "integer" and "number" in new_types)
        )
        if refused:
            self.report(_at(pointer, "type"), "type_narrowed", f"no longer accepts type {', '.join(refused)}")

    def _values(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        if "enum" in new:
            allowed = {_canonical(value) for value in new["enum"]}
            if "enum" not in old and "const" not in old:
                self.report(_at(pointer, "enum"), "enum_added", "an enum now restricts the value")
            else:
                before = old["enum"] if "enum" in old else [old["const"]]
                removed = [value for value in before if _canonical(value) not in allowed]
                if removed:
                    self.report(
                        _at(pointer, "enum"), "enum_value_removed", f"no longer accepts {_canonical(removed)}"
                    )
        if "const" in new and ("const" not in old or _canonical(old["const"]) != _canonical(new["const"])):
            self.report(
                _at(pointer, "const"), "const_added", f"the value must now be {_canonical(new['const'])}"
            )
        for keyword, kind in (("pattern", "pattern_changed"), ("format", "format_added")):
            if keyword in new and new[keyword] != old.get(keyword):
                before = f" (was {old[keyword]!r})" if keyword in old else ""
                self.report(_at(pointer, keyword), kind, f"{keyword} is now {new[keyword]!r}{before}")

    def _bounds(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        for keyword in _LOWER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
                self._tightened(old, new, pointer, keyword)
        for keyword in _UPPER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
                self._tightened(old, new, pointer, keyword)
        if "multipleOf" in new and ("multipleOf" not in old or new["multipleOf"] % old["multipleOf"] != 0):
            self._tightened(old, new, pointer, "multipleOf")
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self.report(_at(pointer, "uniqueItems"), "constraint_added", "items must now be unique")

    def _tightened(self, old: dict[str, Any], new: dict[str, Any], pointer: str, keyword: str) -> None:
        before = f"{old[keyword]}" if keyword in old else "none"
        self.report(
            _at(pointer, keyword), "bound_tightened", f"{keyword} is now {new[keyword]} (was {before})"
        )

    def _objects(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        pointer: str,
        roots: tuple[Mapping[str, Any], Mapping[str, Any]],
        followed: bool,
    ) -> None:
        added = sorted(set(new.get("required", [])) - set(old.get("required", [])))
        if added:
            self.report(_at(pointer, "required"), "required_added", f"now required: {', '.join(added)}")
        old_properties: dict[str, Any] = old.get("properties", {})
        new_properties: dict[str, Any] = new.get("properties", {})
        old_additional = old.get("additionalProperties", True)
        for name, old_property in old_properties.items():
            here = _at(pointer, "properties", name)
            if name not in new_properties:
                self.report(here, "property_removed", f"property {name!r} was removed")
            else:
                self.compare(old_property, new_properties[name], here, roots, followed)
        for name in new_properties.keys() - old_properties.keys():
            # A new property narrows what the old version let through under additionalProperties.
            self.compare(
                old_additional, new_properties[name], _at(pointer, "properties", name), roots, followed
            )
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            old_value, new_value = old.get(keyword, True), new.get(keyword, True)
            here = _at(pointer, keyword)
            if _as_dict(old_value) == {} and _as_dict(new_value) != {}:
                self.report(
                    here,
                    "additional_properties_closed",
                    f"{keyword} was open and is now {_canonical(new_value)}",
                )
            else:
                self.compare(old_value, new_value, here, roots, followed)
        if "propertyNames" in new:
            self.compare(
                old.get("propertyNames", True),
                new["propertyNames"],
                _at(pointer, "propertyNames"),
                roots,
                followed,
            )
        old_defs: dict[str, Any] = old.get("$defs", {})
        new_defs: dict[str, Any] = new.get("$defs", {})
        for name, old_definition in old_defs.items():
            here = _at(pointer, "$defs", name)
            if name not in new_defs:
                self.report(here, "definition_removed", f"definition {name!r} was removed")
            else:
                self.compare(old_definition, new_defs[name], here, roots, followed)

    def _arrays(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        pointer: str,
        roots: tuple[Mapping[str, Any], Mapping[str, Any]],
        followed: bool,
    ) -> None:
        old_prefix: list[Any] = old.get("prefixItems", [])
        new_prefix: list[Any] = new.get("prefixItems", [])
        old_items = old.get("items", True)
        for index, new_item in enumerate(new_prefix):
            old_item = old_prefix[index] if index < len(old_prefix) else old_items
            self.compare(old_item, new_item, _at(pointer, "prefixItems", index), roots, followed)
        for index in range(len(new_prefix), len(old_prefix)):
            self.compare(old_prefix[index], new.get("items", True), _at(pointer, "items"), roots, followed)
        for keyword in ("items", "unevaluatedItems"):
            if keyword in old or keyword in new:
                self.compare(
                    old.get(keyword, True), new.get(keyword, True), _at(pointer, keyword), roots, followed
                )

    def _combinators(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        pointer: str,
        roots: tuple[Mapping[str, Any], Mapping[str, Any]],
        followed: bool,
    ) -> None:
        for keyword in sorted(SUBSCHEMA_LISTS - {"prefixItems"}):
            if keyword not in new:
                continue
            old_list: list[Any] = old.get(keyword, [])
            new_list: list[Any] = new[keyword]
            if keyword not in old:
                if keyword != "anyOf" or not self._within_an_alternative(old, new_list, roots):
                    self.report(_at(pointer, keyword), "constraint_added", f"{keyword} was added")
                continue
            for index, (old_sub, new_sub) in enumerate(zip(old_list, new_list, strict=False)):
                self.compare(old_sub, new_sub, _at(pointer, keyword, index), roots, followed)
            if keyword == "allOf" and len(new_list) > len(old_list):
                self.report(
                    _at(pointer, keyword),
                    "constraint_added",
                    f"{len(new_list) - len(old_list)} allOf entries added",
                )
            if keyword != "allOf" and len(new_list) < len(old_list):
                self.report(
                    _at(pointer, keyword),
                    "alternative_removed",
                    f"{len(old_list) - len(new_list)} alternatives removed",
                )

    def _within_an_alternative(
        self, old: dict[str, Any], alternatives: list[Any], roots: tuple[Mapping[str, Any], Mapping[str, Any]]
    ) -> bool:
        """Whether everything ``old`` accepted is accepted by one of the new anyOf alternatives."""
        rest = {keyword: value for keyword, value in old.items() if keyword not in SUBSCHEMA_LISTS}
        for alternative in alternatives:
            trial = _Comparison()
            trial._visited = set(self._visited)
            trial.compare(rest, alternative, "", roots, followed=True)
            if not trial.changes:
                return True
        return False


def _split(pointer: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]] if pointer else []


def _at(pointer: str, *segments: str | int) -> str:
    return pointer + json_pointer(segments)


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[BreakingChange]:
    """Every change from ``old`` to ``new`` that could refuse an instance the old schema accepted.

    Walks properties, items, prefixItems, $defs and allOf/anyOf/oneOf, and follows ``$ref``s (local ones and
    ``urn:dpi:schema:`` ones to other published schemas) when they differ. Pointers point into ``new``.
    """
    comparison = _Comparison()
    comparison.compare(old, new, "", (old, new), followed=False)
    return comparison.changes
