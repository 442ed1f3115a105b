"""Published schemas: naming, metadata, the 2020-12 meta-schema, loading, and the immutability manifest."""

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from standards import SchemaNotFound, load_schema, schema_names, schema_versions, validator
from standards._schemas import SCHEMA_DIRECTORY
from standards.manifest import check_manifest, publish_new_schemas

EXPECTED = {
    "capabilities",
    "common",
    "conformance-summary",
    "error",
    "health",
    "identifier-types",
    "jwks",
    "legal-bases",
    "person",
    "purpose-codes",
    "readiness",
    "reason-codes",
    "requirement-catalogue",
    "validation-report",
    "validation-request",
}
ALL = [(name, version) for name in schema_names() for version in schema_versions(name)]


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [
            p for key, value in node.items() if key not in ("enum", "const") for p in _patterns(value)
        ]
    if isinstance(node, list):
        return [p for item in node for p in _patterns(item)]
    return []


def test_every_named_schema_is_published() -> None:
    assert set(schema_names()) >= EXPECTED
    assert schema_versions("common") == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize(("name", "version"), ALL)
def test_schema_is_valid_2020_12_with_id_title_description(name: str, version: str) -> None:
    schema = load_schema(name, version)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:dpi:schema:{name}:{version}"
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize(("name", "version"), ALL)
def test_patterns_avoid_classes_whose_meaning_differs_between_regex_engines(name: str, version: str) -> None:
    # ECMA-262 \d and \w are ASCII, Python's are Unicode; an unescaped dot differs on line terminators.
    for pattern in _patterns(load_schema(name, version)):
        assert not re.search(r"\\[dwsDWS]", pattern), pattern
        assert not re.search(r"(?<!\\)\.(?![^\[]*\])", pattern), pattern


def test_load_schema_takes_a_name_a_pinned_ref_or_a_version() -> None:
    assert load_schema("common")["$id"].endswith(":1.1.0")
    assert load_schema("common@1.0.0")["$id"].endswith(":1.0.0")
    assert load_schema("common", "1.0.0")["$id"].endswith(":1.0.0")


def test_loaded_schema_is_a_copy() -> None:
    load_schema("error")["title"] = "changed"
    assert load_schema("error")["title"] == "Error"


@pytest.mark.parametrize(
    ("ref", "version"),
    [("nope", None), ("error@9.9.9", None), ("error", "2.0.0"), ("error@1.0.0", "1.0.1"), ("", None)],
)
def test_unknown_schema_raises_schema_not_found(ref: str, version: str | None) -> None:
    with pytest.raises(SchemaNotFound) as raised:
        load_schema(ref, version)
    assert raised.value.reason_code == "schema.not_found"
    with pytest.raises(SchemaNotFound):
        validator(ref, version)


def test_validator_is_cached_and_names_its_schema() -> None:
    person = validator("person")
    assert person is validator("person@1.0.0")
    assert (person.name, person.version, person.schema_id) == (
        "person",
        "1.0.0",
        "urn:dpi:schema:person:1.0.0",
    )


def test_manifest_records_every_published_schema_unchanged() -> None:
    problems = check_manifest()
    assert problems == [], "\n".join(problem.message for problem in problems)


@pytest.fixture
def published_copy(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIRECTORY, directory)
    manifest = tmp_path / "manifest.json"
    publish_new_schemas(directory, manifest)
    return directory, manifest


def test_changing_a_published_schema_is_refused_with_how_to_publish(
    published_copy: tuple[Path, Path],
) -> None:
    directory, manifest = published_copy
    path = directory / "error" / "1.0.0.json"
    schema = json.loads(path.read_text())
    schema["description"] = "edited in place"
    path.write_text(json.dumps(schema))
    [problem] = check_manifest(directory, manifest)
    assert (problem.path, problem.kind) == ("error/1.0.0.json", "changed")
    assert "new version" in problem.message
    assert publish_new_schemas(directory, manifest) == []
    assert [p.kind for p in check_manifest(directory, manifest)] == ["changed"]


def test_new_schema_file_must_be_recorded_and_publishing_records_only_it(
    published_copy: tuple[Path, Path],
) -> None:
    directory, manifest = published_copy
    before = json.loads(manifest.read_text())["schemas"]
    (directory / "error" / "1.1.0.json").write_text(json.dumps(load_schema("error")))
    assert [(p.path, p.kind) for p in check_manifest(directory, manifest)] == [
        ("error/1.1.0.json", "unrecorded")
    ]
    assert publish_new_schemas(directory, manifest) == ["error/1.1.0.json"]
    after = json.loads(manifest.read_text())["schemas"]
    assert {key: after[key] for key in before} == before
    assert check_manifest(directory, manifest) == []


def test_removing_a_published_schema_is_refused(published_copy: tuple[Path, Path]) -> None:
    directory, manifest = published_copy
    (directory / "health" / "1.0.0.json").unlink()
    assert [(p.path, p.kind) for p in check_manifest(directory, manifest)] == [
        ("health/1.0.0.json", "missing")
    ]
