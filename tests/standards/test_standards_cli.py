"""``dpi standards``: list, show, validate and check-compat as a user runs them."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from standards import load_schema
from standards.cli import standards_group


def _run(*args: str) -> Any:
    return CliRunner().invoke(standards_group, list(args))


def _write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_list_names_every_schema_with_its_versions() -> None:
    result = _run("list")
    assert result.exit_code == 0
    assert "common  1.0.0 1.1.0" in result.output.splitlines()


@pytest.mark.parametrize(
    ("ref", "version"), [("error", "1.0.0"), ("common", "1.1.0"), ("common@1.0.0", "1.0.0")]
)
def test_show_prints_the_schema(ref: str, version: str) -> None:
    result = _run("show", ref)
    assert result.exit_code == 0
    assert json.loads(result.output)["$id"].endswith(f":{version}")


def test_show_unknown_schema_is_a_usage_error() -> None:
    result = _run("show", "nope@1.0.0")
    assert result.exit_code == 2
    assert "no published schema named 'nope'" in result.output


def test_validate_accepts_a_valid_document(tmp_path: Path) -> None:
    document = {"status": "pass"}
    result = _run("validate", "health", _write(tmp_path / "health.json", document))
    assert result.exit_code == 0
    assert "is valid against health@1.0.0" in result.output


def test_validate_lists_every_issue_with_pointer_and_reason_code(tmp_path: Path) -> None:
    document = {"names": [{"script": "Latn", "given_name": "", "family_name": "B"}], "sex": "F", "x": 1}
    result = _run("validate", "person@1.0.0", _write(tmp_path / "person.json", document))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "(root): schema.required: 'date_of_birth' is a required property",
        "/names/0/given_name: schema.min_length: must be at least 1 characters long",
        '/sex: schema.enum: must be one of "female", "male", "other", "not_known"',
        "/x: schema.additional_property: is not an allowed member",
    ]
    assert "Traceback" not in result.output


def test_validate_names_the_empty_member_apart_from_the_root(tmp_path: Path) -> None:
    # RFC 6901: "" is the whole document, "/" the member named "".
    result = _run("validate", "health", _write(tmp_path / "health.json", {"": 1}))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "(root): schema.required: 'status' is a required property",
        "/: schema.additional_property: is not an allowed member",
    ]


def test_validate_does_not_echo_member_names_in_messages(tmp_path: Path) -> None:
    secret = "amina.benali@example.com 1980-01-01"
    result = _run("validate", "health", _write(tmp_path / "health.json", {"status": "pass", secret: 1}))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"/{secret}: schema.additional_property: is not an allowed member"]


@pytest.mark.parametrize(
    ("content", "message"), [(b"{not json", "is not valid JSON"), (b"\xff\xfe", "cannot read")]
)
def test_validate_unreadable_file_exits_2_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = _run("validate", "health", str(path))
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


NESTED_TOO_DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("command", ["validate", "check-compat-old", "check-compat-new"])
def test_deeply_nested_files_exit_2_with_one_line(tmp_path: Path, command: str) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(NESTED_TOO_DEEP, encoding="utf-8")
    fine = _write(tmp_path / "schema.json", {"type": "object"})
    arguments = {
        "validate": ["validate", "person", str(deep)],
        "check-compat-old": ["check-compat", str(deep), fine],
        "check-compat-new": ["check-compat", fine, str(deep)],
    }[command]
    result = _run(*arguments)
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"Error: {deep} is nested too deeply to process"]


def test_validate_missing_file_exits_2(tmp_path: Path) -> None:
    result = _run("validate", "health", str(tmp_path / "absent.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_check_compat_reports_breaking_changes_and_exits_1(tmp_path: Path) -> None:
    old = load_schema("error@1.0.0")
    new = json.loads(json.dumps(old))
    new["required"].append("details")
    new["properties"]["message"]["maxLength"] = 100
    result = _run("check-compat", _write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new))
    assert result.exit_code == 1
    assert "/required: required_added: now required: details" in result.stdout
    assert "(root)" not in result.stdout
    assert "/properties/message/maxLength: bound_tightened: maxLength is now 100 (was 1000)" in result.stdout


def test_check_compat_says_compatible_and_exits_0(tmp_path: Path) -> None:
    old, new = load_schema("common@1.0.0"), load_schema("common@1.1.0")
    result = _run("check-compat", _write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new))
    assert result.exit_code == 0
    assert "backward compatible" in result.output


def test_check_compat_non_json_exits_2(tmp_path: Path) -> None:
    good = _write(tmp_path / "old.json", {})
    bad = tmp_path / "new.json"
    bad.write_text("[1,", encoding="utf-8")
    result = _run("check-compat", good, str(bad))
    assert result.exit_code == 2
    assert "is not valid JSON" in result.output
