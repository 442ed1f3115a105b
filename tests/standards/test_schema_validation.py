"""Validation: every issue with its pointer and reason code, and the fast path agreeing with it."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from standards import SchemaValidationError, ValidationIssue, reason_codes, validator
from standards._validation import REASON_CODES_BY_KEYWORD, json_pointer

# The record the benchmark (bench/validation.py) measures: it must stay valid.
PERSON: dict[str, Any] = json.loads((Path(__file__).parent / "person.json").read_text(encoding="utf-8"))
EXAMPLES: dict[str, Any] = {
    "person": PERSON,
    "error": {
        "reason_code": "request.invalid",
        "message": "The request body does not match its schema.",
        "details": [
            {"pointer": "/names/0/given_name", "reason_code": "schema.min_length", "message": "too short"}
        ],
        "request_id": "01JD5Z3M7Q",
    },
    "capabilities": {
        "capabilities_version": "1.0.0",
        "system": {"name": "dpi-blocks", "version": "0.1.0", "member_id": "DPI/GOV/MOI/civil-registry"},
        "profiles": [{"name": "platform", "version": "1.0.0"}],
        "blocks": [{"name": "identity", "prefix": "/identity", "version": "0.1.0", "extra": {"any": 1}}],
        "schemas": ["error@1.0.0", "capabilities@1.0.0"],
        "signature": {
            "jws_algorithms": ["EdDSA", "ES256"],
            "http_signature_algorithms": ["ed25519", "ecdsa-p256-sha256"],
            "jwks_uri": "http://127.0.0.1:8000/.well-known/jwks.json",
        },
        "endpoints": {"openapi": "/openapi.json", "health": "/healthz", "readiness": "/readyz"},
    },
    "jwks": {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "k1",
                "use": "sig",
                "alg": "EdDSA",
            }
        ]
    },
    "conformance-summary": {
        "suite": {"name": "dpi-conformance", "version": "0.1.0"},
        "standards_version": "0.1.0",
        "target": "http://127.0.0.1:8000",
        "started_at": "2026-11-23T10:00:00Z",
        "finished_at": "2026-11-23T10:00:09Z",
        "profiles": [{"name": "platform", "version": "1.0.0"}],
        "results": [
            {
                "requirement": "PLT-001",
                "level": "MUST",
                "status": "pass",
                "tests": ["health-endpoint"],
                "evidence": "200",
            },
            {"requirement": "PLT-012", "level": "SHOULD", "status": "fail"},
        ],
        "counts": {"pass": 1, "fail": 1, "skip": 0, "accepted": 0},
        "verdict": "pass",
    },
    "validation-report": {"schema": "person@1.0.0", "valid": True, "issues": []},
    "validation-request": {"schema": "person", "instance": {"anything": [1, 2]}},
    "health": {"status": "pass", "version": "0.1.0", "time": "2026-11-23T10:00:00Z"},
    "readiness": {
        "status": "not_ready",
        "checks": {"database": {"status": "pass"}, "migrations": {"status": "fail"}},
    },
}


def _with(document: Any, pointer: str, value: Any) -> Any:
    changed = copy.deepcopy(document)
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    node = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return changed


class _Delete:
    """The value of a case that removes the member (named, so test ids are the same in every process)."""

    def __repr__(self) -> str:
        return "DELETE"


_DELETE = _Delete()

# (schema, pointer to change, new value, expected (pointer, reason code) of the issues)
INVALID = [
    ("person", "/date_of_birth", _DELETE, [("", "schema.required")]),
    ("person", "/date_of_birth", "2001-02-30", [("/date_of_birth", "schema.format")]),
    (
        "person",
        "/date_of_birth",
        "14/03/2001",
        [("/date_of_birth", "schema.format"), ("/date_of_birth", "schema.pattern")],
    ),
    (
        "person",
        "/date_of_birth",
        "2001-03-14\n",
        [("/date_of_birth", "schema.format"), ("/date_of_birth", "schema.pattern")],
    ),
    ("person", "/date_of_birth", 20010314, [("/date_of_birth", "schema.type")]),
    ("person", "/sex", "F", [("/sex", "schema.enum")]),
    ("person", "/phone", "0555123456", [("/phone", "schema.pattern")]),
    ("person", "/phone", "+213555123456\n", [("/phone", "schema.pattern")]),
    ("person", "/names", [], [("/names", "schema.min_items")]),
    ("person", "/names/0/given_name", "", [("/names/0/given_name", "schema.min_length")]),
    ("person", "/names/1/family_name", "x" * 101, [("/names/1/family_name", "schema.max_length")]),
    ("person", "/address/country", "dz", [("/address/country", "schema.pattern")]),
    ("person", "/nickname", "Mina", [("/nickname", "schema.additional_property")]),
    ("person", "/a~1b", 1, [("/a~1b", "schema.additional_property")]),
    ("person", "/place_of_birth/m~0n", 1, [("/place_of_birth/m~0n", "schema.additional_property")]),
    ("person", "/preferred_language", "arabic language", [("/preferred_language", "schema.pattern")]),
    ("error", "/reason_code", "Not.A.Code", [("/reason_code", "schema.pattern")]),
    ("error", "/details/0/pointer", "names/0", [("/details/0/pointer", "schema.pattern")]),
    ("error", "/request_id", _DELETE, [("", "schema.required")]),
    ("capabilities", "/system/member_id", "DPI/GOV", [("/system/member_id", "schema.any_of")]),
    ("capabilities", "/signature/jws_algorithms", [], [("/signature/jws_algorithms", "schema.min_items")]),
    ("capabilities", "/signature/jws_algorithms/0", "none", [("/signature/jws_algorithms/0", "schema.enum")]),
    ("capabilities", "/signature/jwks_uri", "ftp://x", [("/signature/jwks_uri", "schema.pattern")]),
    ("capabilities", "/schemas/1", "error@1.0.0", [("/schemas", "schema.unique_items")]),
    ("jwks", "/keys/0/d", "secret", [("/keys/0/d", "schema.not")]),
    ("jwks", "/keys/0/kty", "oct", [("/keys/0/kty", "schema.enum")]),
    ("jwks", "/keys", [], [("/keys", "schema.min_items")]),
    ("conformance-summary", "/started_at", "2026-11-23T10:00:00+01:00", [("/started_at", "schema.pattern")]),
    ("conformance-summary", "/started_at", "2026-11-23T10:00:60Z", [("/started_at", "schema.format")]),
    ("conformance-summary", "/started_at", "2026-13-23T10:00:00Z", [("/started_at", "schema.format")]),
    ("conformance-summary", "/counts/pass", -1, [("/counts/pass", "schema.minimum")]),
    ("conformance-summary", "/results/0/status", "skip", [("/results/0", "schema.not")]),
    ("conformance-summary", "/verdict", "maybe", [("/verdict", "schema.enum")]),
    ("validation-report", "/valid", False, [("/issues", "schema.min_items")]),
    ("validation-request", "/schema", "person@1", [("/schema", "schema.any_of")]),
    ("readiness", "/checks/Database", {"status": "pass"}, [("/checks", "schema.pattern")]),
    ("health", "/status", "ok", [("/status", "schema.enum")]),
]


@pytest.mark.parametrize(("name", "example"), EXAMPLES.items())
def test_examples_are_valid_on_both_paths(name: str, example: Any) -> None:
    schema_validator = validator(name)
    assert schema_validator.issues(example) == []
    assert schema_validator.is_valid(example)
    schema_validator.check(example)


@pytest.mark.parametrize(("name", "pointer", "value", "expected"), INVALID)
def test_every_issue_has_its_pointer_and_reason_code(
    name: str, pointer: str, value: Any, expected: Any
) -> None:
    schema_validator = validator(name)
    instance = _with(EXAMPLES[name], pointer, value)
    issues = schema_validator.issues(instance)
    assert [(issue.pointer, issue.reason_code) for issue in issues] == expected
    assert not schema_validator.is_valid(instance)
    with pytest.raises(SchemaValidationError) as raised:
        schema_validator.check(instance)
    assert raised.value.issues == issues
    assert raised.value.reason_code == "request.invalid"


def test_every_error_is_reported_not_only_the_first() -> None:
    instance = {
        "names": [{"script": "Cyrl", "given_name": "", "family_name": "B"}],
        "date_of_birth": "x",
        "sex": 1,
    }
    issues = validator("person").issues(instance)
    assert [(issue.pointer, issue.keyword) for issue in issues] == [
        ("/date_of_birth", "format"),
        ("/date_of_birth", "pattern"),
        ("/names/0/given_name", "minLength"),
        ("/names/0/script", "enum"),
        ("/sex", "enum"),
    ]


def test_messages_do_not_echo_the_submitted_value() -> None:
    instance = _with(PERSON, "/phone", "+0 secret-number")
    [issue] = validator("person").issues(instance)
    assert issue == ValidationIssue(
        "/phone", "schema.pattern", "must match the pattern ^\\+[1-9][0-9]{6,14}$", "pattern"
    )
    assert "secret" not in issue.message


# Personal data a caller might send, as a value or as a member name: no message may repeat any of it.
SECRET = "amina.benali@example.com 1980-01-01"
ECHO_CASES = [
    ("person", "", {SECRET: 1}),
    ("person", "/place_of_birth", {"country": "DZ", SECRET: SECRET}),
    ("person", "/sex", SECRET),
    ("person", "/phone", SECRET),
    ("person", "/date_of_birth", SECRET),
    ("person", "/names", SECRET),
    ("person", "/names/0/given_name", SECRET * 10),
    ("person", "/names/0/script", SECRET),
    ("person", "/address/lines", {SECRET: SECRET}),
    ("capabilities", "/schemas", [SECRET, SECRET]),
    ("capabilities", "/system/member_id", SECRET),
    ("capabilities", "/signature/jws_algorithms/0", SECRET),
    ("jwks", "/keys/0/d", SECRET),
    ("jwks", "/keys/0/use", SECRET),
    ("error", "/reason_code", SECRET),
    ("conformance-summary", "/suite/name", SECRET),
    ("conformance-summary", "/finished_at", SECRET),
    ("validation-request", "/schema", SECRET),
]


@pytest.mark.parametrize(("name", "pointer", "value"), ECHO_CASES)
def test_no_message_echoes_what_the_caller_sent(name: str, pointer: str, value: Any) -> None:
    instance = value if not pointer else _with(EXAMPLES[name], pointer, value)
    issues = validator(name).issues(instance)
    assert issues
    for issue in issues:
        for fragment in (SECRET, "amina", "1980", repr(value)[:20]):
            assert fragment not in issue.message, issue
    with pytest.raises(SchemaValidationError) as raised:
        validator(name).check(instance)
    assert "amina" not in str(raised.value).replace(json_pointer([SECRET]), "")


def test_every_unexpected_member_is_its_own_issue_at_its_own_pointer() -> None:
    instance = {**PERSON, SECRET: 1, "a/b~c": 2, "": 3}
    issues = validator("person").issues(instance)
    assert issues == [
        ValidationIssue(
            "/", "schema.additional_property", "is not an allowed member", "additionalProperties"
        ),
        ValidationIssue(
            "/a~1b~0c", "schema.additional_property", "is not an allowed member", "additionalProperties"
        ),
        ValidationIssue(
            json_pointer([SECRET]),
            "schema.additional_property",
            "is not an allowed member",
            "additionalProperties",
        ),
    ]


def test_unevaluated_members_are_reported_one_by_one() -> None:
    from standards._validation import _FORMAT_CHECKER, _FullValidator, _issue

    schema = {
        "allOf": [{"properties": {"kept": {"type": "string"}}}],
        "unevaluatedProperties": False,
    }
    full = _FullValidator(schema, format_checker=_FORMAT_CHECKER)
    issues = [_issue(error) for error in full.iter_errors({"kept": "x", SECRET: 1, "other": 2})]
    assert sorted((i.pointer, i.reason_code, i.message) for i in issues) == [
        (json_pointer([SECRET]), "schema.additional_property", "is not an allowed member"),
        ("/other", "schema.additional_property", "is not an allowed member"),
    ]


def test_limit_stops_early_and_keeps_document_order() -> None:
    instance = {"names": [{"script": "x", "given_name": "", "family_name": ""}] * 50, "sex": 1}
    every = validator("person").issues(instance)
    assert len(every) > 100
    first = validator("person").issues(instance, limit=10)
    assert len(first) == 10
    assert set(first) <= set(every)
    assert first == sorted(first, key=every.index)
    assert validator("person").issues(instance, limit=len(every) + 5) == every
    assert validator("person").issues(PERSON, limit=1) == []


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        validator("person").issues({}, limit=limit)


@pytest.mark.parametrize(
    ("path", "pointer"),
    [([], ""), (["a"], "/a"), (["a/b", 0], "/a~1b/0"), (["m~n"], "/m~0n"), (["~/"], "/~0~1"), ([""], "/")],
)
def test_json_pointer_escapes_per_rfc_6901(path: list[str | int], pointer: str) -> None:
    assert json_pointer(path) == pointer


def test_every_mapped_reason_code_is_in_the_vocabulary() -> None:
    assert set(REASON_CODES_BY_KEYWORD.values()) | {"schema.invalid"} <= set(reason_codes())


# Values where regex and format semantics of the two engines could part ways.
TRICKY_STRINGS = [
    "2024-02-29",
    "2023-02-29",
    "0000-01-01",
    "2024-1-01",
    "٢٠٢٤-٠١-٠١",
    "2024-01-01\n",
    "2024-01-01T00:00:00Z",
    "2024-12-31T23:59:60Z",
    "2024-12-31T12:00:60Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01t00:00:00z",
    "2024-01-01T00:00:00.123456789Z",
    "2024-01-01T00:00:00.Z",
    "DPI/GOV/MOI",
    "DPI/GOV/MOI\n",
    "DPI/GOV/MOI/x",
    "+213555123456",
    "+213555123456\n",
    "+٢١٣٥٥٥١٢٣٤٥٦",
    "",
    "a\u2028b",
    "http://x",
    "http://x y",
    "1.0.0",
    "01.0.0",
    "person@1.0.0",
    "request.invalid",
    "EdDSA",
    "DZ",
    "ar",
    "fr-SN",
    "/a~1b",
    "/a~2",
    "~",
    "r\n",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(TRICKY_STRINGS),
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _pointers(document: Any, prefix: str = "") -> list[str]:
    pointers = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            pointers += _pointers(value, prefix + json_pointer([key]))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            pointers += _pointers(value, prefix + json_pointer([index]))
    return pointers


@st.composite
def _mutants(draw: st.DrawFn, name: str) -> Any:
    document = EXAMPLES[name]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        pointers = _pointers(document)
        if not pointers:
            break
        pointer = draw(st.sampled_from(pointers))
        value = draw(st.one_of(JSON, st.sampled_from(TRICKY_STRINGS), st.just(_DELETE)))
        document = _with(document, pointer, value)
    return document


AGREEMENT_SCHEMAS = ["person", "error", "capabilities", "jwks", "conformance-summary", "validation-report"]


@pytest.mark.parametrize("name", AGREEMENT_SCHEMAS)
@pytest.mark.parametrize("case", [*INVALID, *((n, "", None, None) for n in EXAMPLES)], ids=str)
def test_fast_path_agrees_on_the_adversarial_table(name: str, case: Any) -> None:
    source, pointer, value, _ = case
    instance = EXAMPLES[source] if not pointer else _with(EXAMPLES[source], pointer, value)
    schema_validator = validator(name)
    assert schema_validator.is_valid(instance) == (schema_validator.issues(instance) == [])


@pytest.mark.parametrize("name", AGREEMENT_SCHEMAS)
@pytest.mark.parametrize("text", TRICKY_STRINGS)
def test_fast_path_agrees_on_tricky_strings_in_every_position(name: str, text: str) -> None:
    schema_validator = validator(name)
    for pointer in _pointers(EXAMPLES[name]):
        instance = _with(EXAMPLES[name], pointer, text)
        assert schema_validator.is_valid(instance) == (schema_validator.issues(instance) == []), pointer


@pytest.mark.parametrize("name", AGREEMENT_SCHEMAS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_agrees_on_generated_documents(name: str, data: st.DataObject) -> None:
    instance = data.draw(st.one_of(_mutants(name), JSON))
    schema_validator = validator(name)
    assert schema_validator.is_valid(instance) == (schema_validator.issues(instance) == [])


@settings(max_examples=200, deadline=None)
@given(text=st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?Z\Z"))
def test_fast_path_agrees_on_generated_timestamps(text: str) -> None:
    summary = _with(EXAMPLES["conformance-summary"], "/finished_at", text)
    schema_validator = validator("conformance-summary")
    assert schema_validator.is_valid(summary) == (schema_validator.issues(summary) == [])


@settings(max_examples=200, deadline=None)
@given(text=st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"))
def test_fast_path_agrees_on_generated_dates(text: str) -> None:
    person = _with(PERSON, "/date_of_birth", text)
    schema_validator = validator("person")
    assert schema_validator.is_valid(person) == (schema_validator.issues(person) == [])


def test_a_reference_to_a_whole_schema_keeps_the_strict_rules() -> None:
    """Inside a "$ref" to a whole published schema the same ECMA-262 pattern rules apply."""
    from standards._schemas import reference_registry
    from standards._validation import _FORMAT_CHECKER, _FullValidator

    wrapper = _FullValidator(
        {"$ref": "urn:dpi:schema:capabilities:1.0.0"},
        registry=reference_registry(),
        format_checker=_FORMAT_CHECKER,
    )
    document = {
        "capabilities_version": "1.0.0",
        "system": {"name": "x", "version": "1", "member_id": "DPI/GOV/MOI\n"},
        "profiles": [],
        "blocks": [],
        "signature": {"jws_algorithms": ["EdDSA"], "jwks_uri": "http://127.0.0.1/.well-known/jwks.json"},
        "endpoints": {"openapi": "/openapi.json", "health": "/healthz", "readiness": "/readyz"},
    }
    assert not wrapper.is_valid(document)
    assert not validator("capabilities").is_valid(document)
