"""Validation of instances against published JSON Schemas (https://json-schema.org/draft/2020-12).

Two paths that must agree: ``issues()`` (the ``jsonschema`` library, every error, with a JSON pointer and a
reason code) and ``is_valid()`` (``jsonschema-rs``, compiled, first error only). Both check formats.

Issue messages are built from the schema alone, never from the instance: what a caller sent (often personal
data, in values and in member names alike) is not echoed into error bodies and logs. A member that is not
allowed is reported once per member, its pointer naming it.
"""

from __future__ import annotations

import calendar
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import jsonschema_rs
from jsonschema import (  # type: ignore[import-untyped,unused-ignore]
    Draft202012Validator,
    FormatChecker,
    ValidationError,
    validators,
)
from jsonschema._utils import (  # type: ignore[import-untyped,unused-ignore]
    find_evaluated_property_keys_by_schema,
)
from jsonschema.protocols import Validator  # type: ignore[import-untyped,unused-ignore]

from standards._schemas import parse_ref, published, reference_registry, schema_id

__all__ = [
    "REASON_CODES_BY_KEYWORD",
    "ROOT_POINTER_LABEL",
    "SchemaValidationError",
    "SchemaValidator",
    "ValidationIssue",
    "json_pointer",
    "validator",
]

#: Which reason code a failed JSON Schema keyword maps to; ``schema.invalid`` for any other keyword.
REASON_CODES_BY_KEYWORD: Mapping[str, str] = {
    "required": "schema.required",
    "type": "schema.type",
    "pattern": "schema.pattern",
    "enum": "schema.enum",
    "const": "schema.const",
    "format": "schema.format",
    "additionalProperties": "schema.additional_property",
    "unevaluatedProperties": "schema.additional_property",
    "false": "schema.forbidden",
    "minLength": "schema.min_length",
    "maxLength": "schema.max_length",
    "minimum": "schema.minimum",
    "exclusiveMinimum": "schema.minimum",
    "maximum": "schema.maximum",
    "exclusiveMaximum": "schema.maximum",
    "multipleOf": "schema.multiple_of",
    "minItems": "schema.min_items",
    "maxItems": "schema.max_items",
    "uniqueItems": "schema.unique_items",
    "minProperties": "schema.min_properties",
    "maxProperties": "schema.max_properties",
    "propertyNames": "schema.property_name",
    "dependentRequired": "schema.dependent_required",
    "anyOf": "schema.any_of",
    "oneOf": "schema.one_of",
    "not": "schema.not",
    "contains": "schema.contains",
}
_FALLBACK_REASON_CODE = "schema.invalid"
#: How people are shown the empty JSON pointer (the whole document); in RFC 6901 ``/`` names the member "".
ROOT_POINTER_LABEL = "(root)"

# Messages are built from the schema, never from the instance, so personal data sent in a request is not
# echoed into error bodies and logs. ``required`` and ``dependentRequired`` name members the schema declares.
_MESSAGES: Mapping[str, Callable[[Any], str]] = {
    "type": lambda expected: f"must be of type {_listing(expected)}",
    "pattern": lambda pattern: f"must match the pattern {pattern}",
    "enum": lambda values: f"must be one of {_listing(values)}",
    "const": lambda value: f"must be {json.dumps(value, ensure_ascii=False)}",
    "format": lambda name: f"must be a valid {name}",
    "minLength": lambda limit: f"must be at least {limit} characters long",
    "maxLength": lambda limit: f"must be at most {limit} characters long",
    "minimum": lambda limit: f"must be greater than or equal to {limit}",
    "exclusiveMinimum": lambda limit: f"must be greater than {limit}",
    "maximum": lambda limit: f"must be less than or equal to {limit}",
    "exclusiveMaximum": lambda limit: f"must be less than {limit}",
    "multipleOf": lambda step: f"must be a multiple of {step}",
    "minItems": lambda limit: f"must have at least {limit} items",
    "maxItems": lambda limit: f"must have at most {limit} items",
    "uniqueItems": lambda _: "must not contain duplicate items",
    "minProperties": lambda limit: f"must have at least {limit} members",
    "maxProperties": lambda limit: f"must have at most {limit} members",
    "false": lambda _: "is not allowed here",
    "anyOf": lambda _: "must match at least one of the allowed forms",
    "oneOf": lambda _: "must match exactly one of the allowed forms",
    "not": lambda _: "has a form that is not allowed",
    "contains": lambda _: "must contain an item of the required kind",
    "additionalProperties": lambda _: "is not an allowed member",
    "unevaluatedProperties": lambda _: "is not an allowed member",
}
# The library's own messages for these name only members the schema declares, never the instance's.
_SCHEMA_NAMED_MESSAGES = frozenset({"required", "dependentRequired"})


def _listing(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(json.dumps(item, ensure_ascii=False) for item in value)
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One reason an instance is invalid.

    ``pointer`` is the RFC 6901 JSON pointer (https://www.rfc-editor.org/rfc/rfc6901) to the offending
    value in the instance ("" for the root), ``reason_code`` a ``schema.*`` code from the reason-codes
    vocabulary, ``keyword`` the JSON Schema keyword that failed.
    """

    pointer: str
    reason_code: str
    message: str
    keyword: str


class SchemaValidationError(ValueError):
    """An instance is not valid against a schema; ``issues`` lists every problem.

    Carries reason code ``request.invalid`` for when the instance was a request body.
    """

    reason_code = "request.invalid"

    def __init__(self, schema_ref: str, issues: Iterable[ValidationIssue]) -> None:
        self.schema_ref = schema_ref
        self.issues = list(issues)
        first = self.issues[0] if self.issues else None
        summary = f"; first: {first.pointer or ROOT_POINTER_LABEL}: {first.message}" if first else ""
        super().__init__(f"instance is not valid against {schema_ref} ({len(self.issues)} issue(s){summary})")


def json_pointer(path: Iterable[str | int]) -> str:
    """An RFC 6901 JSON pointer from path segments: ``~`` becomes ``~0`` and ``/`` becomes ``~1``."""
    return "".join("/" + str(segment).replace("~", "~0").replace("/", "~1") for segment in path)


# RFC 3339 section 5.6 (https://www.rfc-editor.org/rfc/rfc3339#section-5.6), checked the way the compiled
# validator checks it, so both paths agree: a leap second is accepted only at 23:59:60 UTC.
_FULL_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATE_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_full_date(text: str) -> bool:
    match = _FULL_DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        return False
    days = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month - 1]
    return 1 <= day <= days


def _is_date_time(text: str) -> bool:
    match = _DATE_TIME.fullmatch(text)
    if match is None or not _is_full_date(match[1]):
        return False
    hour, minute, second = int(match[2]), int(match[3]), int(match[4])
    if hour > 23 or minute > 59 or second > 60:
        return False
    offset = 0
    if match[5] is None:
        offset_hours, offset_minutes = int(match[7]), int(match[8])
        if offset_hours > 23 or offset_minutes > 59:
            return False
        offset = (offset_hours * 60 + offset_minutes) * (1 if match[6] == "+" else -1)
    if second == 60:
        return (hour * 60 + minute - offset) % (24 * 60) == 23 * 60 + 59
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("date")(lambda instance: not isinstance(instance, str) or _is_full_date(instance))
    checker.checks("date-time")(lambda instance: not isinstance(instance, str) or _is_date_time(instance))
    return checker


@cache
def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA-262 pattern for Python: there ``$`` only matches at the very end of the text.

    Python's ``$`` also matches before a trailing newline, which would let ``"DPI/GOV/MOI\\n"`` through.
    """
    translated: list[str] = []
    in_class = False
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            translated.append(pattern[position : position + 2])
            position += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        translated.append(char)
        position += 1
    return re.compile("".join(translated))


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _ecma_pattern(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


_LIBRARY_KEYWORDS = Draft202012Validator.VALIDATORS


def _additional_properties(
    validator: Validator, allowed: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``additionalProperties: false``: one error per extra member, at that member (the library lists them
    all, by name, in one message on the object)."""
    if allowed is not False:
        yield from _LIBRARY_KEYWORDS["additionalProperties"](validator, allowed, instance, schema)
        return
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = [_ecma_pattern(pattern) for pattern in schema.get("patternProperties", {})]
    for member in instance:
        if member not in declared and not any(pattern.search(member) for pattern in patterns):
            yield ValidationError("is not an allowed member", path=[member])


def _unevaluated_properties(
    validator: Validator, allowed: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``unevaluatedProperties``: one error per refused member, at that member."""
    if not validator.is_type(instance, "object"):
        return
    evaluated = find_evaluated_property_keys_by_schema(validator, instance, schema)
    for member in instance:
        if member in evaluated:
            continue
        if any(True for _ in validator.descend(instance[member], allowed, path=member, schema_path=member)):
            yield ValidationError("is not an allowed member", path=[member])


_FullValidator = validators.extend(
    Draft202012Validator,
    validators={
        "pattern": _pattern,
        "additionalProperties": _additional_properties,
        "unevaluatedProperties": _unevaluated_properties,
    },
)
_FORMAT_CHECKER = _format_checker()


def _issue(error: ValidationError) -> ValidationIssue:
    keyword = "false" if error.validator is None else str(error.validator)
    template = _MESSAGES.get(keyword)
    if template is not None:
        message = template(error.validator_value)
    elif keyword in _SCHEMA_NAMED_MESSAGES:
        message = error.message
    else:
        message = f"is not valid against the schema ({keyword})"
    return ValidationIssue(
        pointer=json_pointer(error.absolute_path),
        reason_code=REASON_CODES_BY_KEYWORD.get(keyword, _FALLBACK_REASON_CODE),
        message=message,
        keyword=keyword,
    )


@cache
def _compiled_registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry(
        [
            (schema_id(name, version), cast(dict[str, Any], schema))
            for name, versions in published().items()
            for version, schema in versions.items()
        ]
    )


class SchemaValidator:
    """Validates instances against one published schema version.

    ``issues()`` lists every error (each with a JSON pointer and a reason code); ``is_valid()`` is the
    compiled fast path; ``check()`` raises SchemaValidationError. Both paths resolve ``urn:dpi:schema:``
    references against the published schemas and check formats.
    """

    __slots__ = ("_compiled", "_full", "name", "schema_id", "version")

    def __init__(self, name: str, version: str) -> None:
        schema = published()[name][version]
        self.name = name
        self.version = version
        self.schema_id = schema_id(name, version)
        self._full = _FullValidator(schema, registry=reference_registry(), format_checker=_FORMAT_CHECKER)
        self._compiled = jsonschema_rs.validator_for(
            dict(schema), validate_formats=True, registry=_compiled_registry(), base_uri=self.schema_id
        )

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        return f"SchemaValidator({self.ref!r})"

    def issues(self, instance: Any, limit: int | None = None) -> list[ValidationIssue]:
        """Every reason the instance is invalid, in document order; empty when it is valid.

        With ``limit``, validation stops after that many errors (a caller that shows only the first few
        need not pay for every error of a hostile document); the ones returned are still in document
        order, but need not be the first ``limit`` of the full list.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        errors = sorted(
            itertools.islice(self._full.iter_errors(instance), limit),
            key=lambda error: list(map(str, error.absolute_path)),
        )
        return [_issue(error) for error in errors]

    def is_valid(self, instance: Any) -> bool:
        """Whether the instance is valid (compiled validator; stops at the first error)."""
        return self._compiled.is_valid(instance)

    def check(self, instance: Any) -> None:
        """Return if the instance is valid, else raise SchemaValidationError listing every issue."""
        if self._compiled.is_valid(instance):
            return
        raise SchemaValidationError(self.ref, self.issues(instance))


@cache
def _validator(name: str, version: str) -> SchemaValidator:
    return SchemaValidator(name, version)


def validator(ref: str, version: str | None = None) -> SchemaValidator:
    """The (cached) validator of a published schema: ``validator("person")``, ``validator("error@1.0.0")``.

    The latest version when none is given. Raises SchemaNotFound.
    """
    return _validator(*parse_ref(ref, version))
