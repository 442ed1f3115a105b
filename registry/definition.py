"""Registries defined by data: a ``registry-definition@1.2.0`` document (or an earlier version) per
hosted registry.

A definition names the record schema (in ``standards``), the identifiers unique within the registry
(with their check digits, verified with python-stdnum), the attributes that may be searched (an
allow-list of JSON pointers, RFC 6901 https://www.rfc-editor.org/rfc/rfc6901, with ``*`` for every item
of an array), the code lists values must come from, the persons a record is about, the personal fields
and the field groups that field-level scopes grant. Everything the service does with a record that
depends on the registry is read from here; no registry is special-cased in code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Final, NamedTuple

import pycountry
from stdnum import luhn, verhoeff
from stdnum.iso7064 import mod_97_10

import standards
from dpi.errors import ErrorDetail
from registry.phonetic import phonetic_key

__all__ = [
    "DEFINITIONS_DIRECTORY",
    "FUZZY_THRESHOLD",
    "PHONETIC_SUFFIX",
    "Attribute",
    "AttributeValue",
    "DefinitionError",
    "IdentifierField",
    "RegistryDefinition",
    "load_definitions",
    "resolve",
    "values_at",
]

DEFINITIONS_DIRECTORY: Final = Path(__file__).parent / "definitions"
DEFINITION_SCHEMAS: Final = (
    "registry-definition@1.0.0",
    "registry-definition@1.1.0",
    "registry-definition@1.2.0",
)
FUZZY_THRESHOLD: Final = 0.85
PHONETIC_SUFFIX: Final = "~phonetic"
_INVALID: Final = "registry.record_invalid"
_MAX_TEXT: Final = 200

_CHECK_DIGITS: Final[Mapping[str, Callable[[str], bool]]] = {
    "none": lambda _value: True,
    "verhoeff": lambda value: value.isdigit() and bool(verhoeff.is_valid(value)),
    "luhn": lambda value: value.isdigit() and bool(luhn.is_valid(value)),
    "mod_97_10": lambda value: bool(mod_97_10.is_valid(value)),
}


@cache
def _countries() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


_CODE_LISTS: Final[Mapping[str, Callable[[], frozenset[str]]]] = {
    "isco-08": lambda: frozenset(standards.isco08_unit_groups()),
    "iso-3166-1": _countries,
}


class DefinitionError(ValueError):
    """A definition file that does not hold together (unknown schema, attribute or code list)."""


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


@cache
def _tokens(pointer: str) -> tuple[str, ...]:
    # Definitions name a few dozen pointers, read for every record: each is parsed once.
    return tuple(_unescape(token) for token in pointer.split("/")[1:])


def _walk(value: Any, tokens: Sequence[str], path: str) -> Iterator[tuple[str, Any]]:
    if not tokens:
        yield path, value
        return
    head, rest = tokens[0], tokens[1:]
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _walk(item, rest, f"{path}/{index}")
        return
    if isinstance(value, dict) and head in value:
        escaped = head.replace("~", "~0").replace("/", "~1")
        yield from _walk(value[head], rest, f"{path}/{escaped}")


def _reach(value: Any, tokens: Sequence[str], start: int) -> list[Any]:
    for index in range(start, len(tokens)):
        head = tokens[index]
        if head == "*":
            if not isinstance(value, list):
                return []
            return [found for item in value for found in _reach(item, tokens, index + 1)]
        if not isinstance(value, dict) or head not in value:
            return []
        value = value[head]
    return [value]


def resolve(document: Any, pointer: str) -> list[tuple[str, Any]]:
    """Every value ``pointer`` reaches in ``document`` with its concrete pointer (``*`` expanded);
    nothing for a path that is absent."""
    return list(_walk(document, _tokens(pointer), ""))


def values_at(document: Any, pointer: str) -> list[Any]:
    """The values of :func:`resolve` without their concrete pointers (cheaper, for bulk work)."""
    return _reach(document, _tokens(pointer), 0)


@dataclass(frozen=True)
class IdentifierField:
    """An identifier a record carries; unique per registry and identifier type."""

    type: str
    pointer: str
    check_digit: str
    record_types: frozenset[str] | None

    def applies_to(self, record_type: str) -> bool:
        return self.record_types is None or record_type in self.record_types


class AttributeValue(NamedTuple):
    """One searchable value of a record, in the typed column its attribute uses (a named tuple: bulk
    imports make millions of them)."""

    attribute: str
    position: int
    text: str | None = None
    number: Decimal | None = None
    day: date | None = None


@dataclass(frozen=True)
class Attribute:
    """A searchable attribute: where it is in the record, its type, and the operators allowed on it;
    ``fuzzy`` is the similarity threshold of the ``fuzzy`` operator when it is allowed."""

    name: str
    pointer: str
    type: str
    operators: frozenset[str]
    normalize: str | None = None
    compose: tuple[str, ...] = ()
    fuzzy: float | None = None

    def normalized(self, text: str) -> str:
        """The form stored and compared: case-folded when the definition says so."""
        return text.casefold() if self.normalize == "casefold" else text

    def convert(self, value: Any) -> tuple[str | None, Decimal | None, date | None] | None:
        """``value`` in its typed column, or None for a value of another type (the schema decides
        what is valid; a value the attribute cannot hold is simply not searchable)."""
        if self.compose:
            if not isinstance(value, dict):
                return None
            parts = [values_at(value, pointer) for pointer in self.compose]
            if not all(len(part) == 1 and isinstance(part[0], str) for part in parts):
                return None
            value = "-".join(part[0] for part in parts)
        if self.type == "string" and isinstance(value, str):
            return self.normalized(value)[:_MAX_TEXT], None, None
        if self.type == "boolean" and isinstance(value, bool):
            return ("true" if value else "false"), None, None
        if self.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return None, Decimal(str(value)), None
        if self.type == "number" and isinstance(value, str):
            try:
                return None, Decimal(value), None
            except InvalidOperation:
                return None
        if self.type == "date" and isinstance(value, str):
            try:
                return None, None, date.fromisoformat(value)
            except ValueError:
                return None
        return None


@dataclass(frozen=True)
class RegistryDefinition:
    """A hosted registry, read from its definition document (``registry-definition@1.2.0``)."""

    code: str
    title: Mapping[str, str]
    record_schema: str
    record_types: tuple[str, ...]
    identifiers: tuple[IdentifierField, ...]
    attributes: Mapping[str, Attribute]
    indexes: tuple[str, ...]
    code_lists: tuple[tuple[str, str], ...]
    subjects: tuple[tuple[str, str], ...]
    personal_fields: tuple[str, ...]
    field_groups: Mapping[str, tuple[str, ...]]
    second_approver: bool
    document: Mapping[str, Any]
    composites: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RegistryDefinition:
        if document.get("schema") not in DEFINITION_SCHEMAS:
            raise DefinitionError(f"a definition follows one of {', '.join(DEFINITION_SCHEMAS)}")
        standards.validator(document["schema"]).check(document)
        code = document["code"]
        try:
            standards.validator(document["record_schema"])
        except standards.SchemaNotFound:
            raise DefinitionError(f"registry {code}: no schema {document['record_schema']}") from None
        attributes = {
            entry["name"]: Attribute(
                name=entry["name"],
                pointer=entry["pointer"],
                type=entry["type"],
                operators=frozenset(entry["operators"]),
                normalize=entry.get("normalize"),
                compose=tuple(entry.get("compose", ())),
                fuzzy=float(entry.get("fuzzy_threshold", FUZZY_THRESHOLD))
                if "fuzzy" in entry["operators"]
                else None,
            )
            for entry in document["attributes"]
        }
        if len(attributes) != len(document["attributes"]):
            raise DefinitionError(f"registry {code}: two attributes share a name")
        if any(
            attribute.fuzzy is not None and attribute.type != "string" for attribute in attributes.values()
        ):
            raise DefinitionError(f"registry {code}: the fuzzy operator compares text attributes only")
        entries = document.get("indexes", ())
        if any(("attribute" in entry) == ("attributes" in entry) for entry in entries):
            raise DefinitionError(f"registry {code}: an index names either attribute or attributes")
        indexes = tuple(entry["attribute"] for entry in entries if "attribute" in entry)
        composites = tuple(
            (str(entry["attributes"][0]), str(entry["attributes"][1]))
            for entry in entries
            if "attributes" in entry
        )
        unknown = [
            name
            for name in (*indexes, *(name for pair in composites for name in pair))
            if name not in attributes
        ]
        if unknown:
            raise DefinitionError(f"registry {code}: index on unknown attribute(s) {', '.join(unknown)}")
        for text, companion in composites:
            first, second = attributes[text], attributes[companion]
            if first.type != "string" or second.type not in {"date", "number"} or "*" in second.pointer:
                raise DefinitionError(
                    f"registry {code}: a composite index pairs a text attribute with a single-valued date "
                    f"or number attribute, not {text} with {companion}"
                )
        if len({text for text, _ in composites}) != len(composites):
            raise DefinitionError(f"registry {code}: an attribute leads one composite index at most")
        groups = {name: tuple(pointers) for name, pointers in document["field_groups"].items()}
        if any("*" in pointer for pointers in groups.values() for pointer in pointers):
            raise DefinitionError(f"registry {code}: field groups name whole fields, without '*'")
        return cls(
            code=code,
            title=dict(document["title"]),
            record_schema=document["record_schema"],
            record_types=tuple(document["record_types"]),
            identifiers=tuple(
                IdentifierField(
                    type=entry["type"],
                    pointer=entry["pointer"],
                    check_digit=entry["check_digit"],
                    record_types=frozenset(entry["record_types"]) if "record_types" in entry else None,
                )
                for entry in document["identifiers"]
            ),
            attributes=attributes,
            indexes=indexes,
            code_lists=tuple((entry["pointer"], entry["list"]) for entry in document.get("code_lists", ())),
            subjects=tuple((entry["pointer"], entry["identifier_type"]) for entry in document["subjects"]),
            personal_fields=tuple(document["personal_fields"]),
            field_groups=groups,
            second_approver=bool(document["corrections"]["second_approver"]),
            document=document,
            composites=composites,
        )

    @cached_property
    def _extraction(self) -> tuple[tuple[Attribute, tuple[str, ...], bool, bool, str | None], ...]:
        """Per attribute: the pointer's tokens, whether it is plain text (no composition), whether it is
        case-folded, and the name its phonetic keys go under (None without ``fuzzy``)."""
        return tuple(
            (
                attribute,
                _tokens(attribute.pointer),
                attribute.type == "string" and not attribute.compose,
                attribute.normalize == "casefold",
                attribute.name + PHONETIC_SUFFIX if attribute.fuzzy is not None else None,
            )
            for attribute in self.attributes.values()
        )

    @property
    def about_persons(self) -> bool:
        """Whether records name persons (their reads are logged, and a purpose is required)."""
        return bool(self.subjects)

    def problems(self, document: Any) -> list[ErrorDetail]:
        """Why ``document`` cannot be a record of this registry (empty when it can): its schema, its
        record type, the check digits of its identifiers and its code lists."""
        validator = standards.validator(self.record_schema)
        if not validator.is_valid(document):
            return [
                ErrorDetail(issue.pointer, issue.reason_code, issue.message)
                for issue in validator.issues(document, limit=100)
            ]
        problems: list[ErrorDetail] = []
        record_type = document.get("record_type")
        if record_type not in self.record_types:
            problems.append(ErrorDetail("/record_type", _INVALID, "not a record type of this registry"))
            return problems
        for field in self.identifiers:
            if not field.applies_to(record_type):
                continue
            check = _CHECK_DIGITS[field.check_digit]
            for pointer, value in resolve(document, field.pointer):
                if not isinstance(value, str) or not check(value):
                    problems.append(
                        ErrorDetail(pointer, "registry.identifier_invalid", f"not a valid {field.type}")
                    )
        for pointer, name in self.code_lists:
            allowed = _CODE_LISTS[name]()
            for concrete, value in resolve(document, pointer):
                if value not in allowed:
                    problems.append(ErrorDetail(concrete, _INVALID, f"not a code of {name}"))
        return problems

    def identifiers_of(self, document: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The (identifier type, value) pairs the record holds, in definition order."""
        record_type = str(document.get("record_type"))
        pairs: list[tuple[str, str]] = []
        for field in self.identifiers:
            if field.applies_to(record_type):
                pairs += [(field.type, value) for value in values_at(document, field.pointer)]
        return list(dict.fromkeys(pairs))

    def subjects_of(self, document: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The (identifier type, value) of every person the record is about."""
        pairs = [
            (identifier_type, value)
            for pointer, identifier_type in self.subjects
            for value in values_at(document, pointer)
            if isinstance(value, str)
        ]
        return list(dict.fromkeys(pairs))

    def attribute_values(self, document: Mapping[str, Any]) -> list[AttributeValue]:
        """Every searchable value of the record, one per attribute and array item; an attribute the
        ``fuzzy`` operator may search also gets the phonetic key of each value, under its name with
        :data:`PHONETIC_SUFFIX` and the same position. A text attribute that leads a composite index
        (``composites``) carries the record's value of its companion in the companion's typed column."""
        companions: dict[str, tuple[Decimal | None, date | None]] = {}
        for text_name, companion in self.composites:
            for raw in values_at(document, self.attributes[companion].pointer):
                converted = self.attributes[companion].convert(raw)
                if converted is not None:
                    companions[text_name] = (converted[1], converted[2])
        values: list[AttributeValue] = []
        append = values.append
        for attribute, tokens, plain, casefold, phonetic in self._extraction:
            found = _reach(document, tokens, 0)
            if not found:
                continue
            number: Decimal | None
            day: date | None
            number, day = companions.get(attribute.name, (None, None))
            position = 0
            for raw in found:
                if plain:
                    # The common case, a text attribute of its own, without the general conversion.
                    if not isinstance(raw, str):
                        continue
                    text: str | None = (raw.casefold() if casefold else raw)[:_MAX_TEXT]
                    append(AttributeValue(attribute.name, position, text, number, day))
                else:
                    converted = attribute.convert(raw)
                    if converted is None:
                        continue
                    text = converted[0]
                    if text is not None:
                        append(AttributeValue(attribute.name, position, text, number, day))
                    else:
                        append(AttributeValue(attribute.name, position, None, converted[1], converted[2]))
                if phonetic is not None and text is not None:
                    append(AttributeValue(phonetic, position, phonetic_key(text)))
                position += 1
        return values

    def project(self, document: Mapping[str, Any], groups: frozenset[str] | None) -> dict[str, Any]:
        """``document`` reduced to the fields of ``groups`` (the whole document when None)."""
        if groups is None:
            return dict(document)
        projected: dict[str, Any] = {}
        for group in sorted(groups & self.field_groups.keys()):
            for pointer in self.field_groups[group]:
                _copy(document, projected, _tokens(pointer))
        return projected


def _copy(source: Any, target: dict[str, Any], tokens: Sequence[str]) -> None:
    head, rest = tokens[0], tokens[1:]
    if not isinstance(source, dict) or head not in source:
        return
    if not rest:
        target[head] = source[head]
        return
    child = target.setdefault(head, {})
    if isinstance(child, dict):
        _copy(source[head], child, rest)


@cache
def load_definitions(directory: Path = DEFINITIONS_DIRECTORY) -> Mapping[str, RegistryDefinition]:
    """Every definition file in ``directory`` (``<code>.json``), checked, by code."""
    definitions: dict[str, RegistryDefinition] = {}
    for path in sorted(directory.glob("*.json")):
        definition = RegistryDefinition.from_document(json.loads(path.read_text(encoding="utf-8")))
        if definition.code != path.stem:
            raise DefinitionError(f"{path.name} defines registry {definition.code!r}; name it after its code")
        definitions[definition.code] = definition
    return definitions
