"""Bulk import (``registry.importer`` and ``dpi registry import``): JSON Lines and CSV with a declared
mapping, per-line errors, both modes, idempotent re-runs, and every rule of the service kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dpi.errors import DpiError
from registry.cli import registry_group
from registry.importer import ImportMapping, LineError, import_lines, read_file
from registry.models import AttributeRow, IdentifierRow, RecordRow, VersionRow
from registry.service import Reader, RegistryService
from registry.synthetic import generate, uin

CIVIL_CSV = Path(__file__).resolve().parents[2] / "registry" / "mappings" / "civil-person.json"
HEADER = (
    "uin;given_name;family_name;given_name_ar;family_name_ar;sex;date_of_birth;locality;region;"
    "mother_uin;marital_status"
)


def persons(count: int, start: int = 0) -> list[dict[str, Any]]:
    documents = (document for document in generate("civil", count * 2, seed=11, start=start))
    return [document for document in documents if document["record_type"] == "person"][:count]


def write_jsonl(path: Path, documents: list[Any]) -> Path:
    path.write_text("".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8")
    return path


async def counts(service: RegistryService) -> dict[str, int]:
    async with service.sessions() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model)) or 0
            for model in (RecordRow, IdentifierRow, VersionRow, AttributeRow)
        }


async def run(
    service: RegistryService, path: Path, mapping: ImportMapping | None = None, **options: Any
) -> tuple[Any, list[LineError]]:
    errors: list[LineError] = []
    report = await import_lines(
        service,
        "civil",
        read_file(path, mapping),
        actor="importer",
        reason="test",
        on_error=errors.append,
        **options,
    )
    return report, errors


async def test_a_jsonl_file_is_imported_once(service: RegistryService, tmp_path: Path) -> None:
    documents = persons(25)
    path = write_jsonl(tmp_path / "persons.jsonl", documents)
    report, errors = await run(service, path, batch_size=7)
    assert (report.lines, report.created, report.unchanged, report.failed) == (25, 25, 0, 0)
    assert errors == []
    after_first = await counts(service)
    assert after_first["registry_record"] == 25
    assert after_first["registry_attribute"] > 25
    again, _ = await run(service, path, batch_size=4)
    assert (again.created, again.unchanged, again.failed) == (0, 25, 0)
    assert await counts(service) == after_first
    found = await service.find_by_identifier("civil", "UIN", documents[3]["uin"])
    assert found is not None
    history = await service.history("civil", found)
    assert history["versions"][0]["actor"] == "importer"
    assert history["versions"][0]["patch"] == [{"op": "add", "path": "", "value": documents[3]}]
    record = await service.read("civil", found, reader=Reader("clerk", purpose="civil-registration"))
    assert record["document"] == documents[3]
    assert record["identifiers"] == [{"type": "UIN", "value": documents[3]["uin"]}]


async def test_a_line_repeated_in_the_file_is_imported_once(service: RegistryService, tmp_path: Path) -> None:
    documents = persons(3)
    path = write_jsonl(tmp_path / "persons.jsonl", [*documents, documents[0], documents[1]])
    report, _ = await run(service, path, batch_size=100)
    assert (report.created, report.unchanged, report.failed) == (3, 2, 0)


def _bad_lines(documents: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Lines of a JSON Lines file that must be refused, with the field and reason code expected."""
    wrong_digit = dict(
        documents[0], uin=documents[0]["uin"][:-1] + str((int(documents[0]["uin"][-1]) + 1) % 10)
    )
    other_document = dict(
        documents[1], marital_status="widowed" if documents[1]["marital_status"] != "widowed" else "single"
    )
    unknown_country = json.loads(json.dumps(documents[2]))
    unknown_country["place_of_birth"]["country"] = "XX"
    missing_name = {key: value for key, value in documents[3].items() if key != "names"}
    return [
        ("{not json", "", "registry.import_line_malformed"),
        ("[1, 2]", "", "registry.import_line_malformed"),
        (json.dumps(wrong_digit), "/uin", "registry.identifier_invalid"),
        (json.dumps(other_document), "", "registry.identifier_taken"),
        (json.dumps(unknown_country), "/place_of_birth/country", "registry.record_invalid"),
        (json.dumps(missing_name), "", "schema.one_of"),
        (json.dumps(dict(documents[4], record_type="land")), "", "schema.one_of"),
    ]


@pytest.mark.parametrize("case", range(7))
async def test_bad_lines_are_reported_and_the_good_ones_imported(
    service: RegistryService, tmp_path: Path, case: int
) -> None:
    documents = persons(8)
    await service.create_many("civil", [documents[1]], actor="clerk", reason="earlier")
    text, pointer, reason_code = _bad_lines(documents)[case]
    lines = [json.dumps(documents[5]), text, json.dumps(documents[6])]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report, errors = await run(service, path)
    assert (report.created, report.failed) == (2, 1)
    assert {error.line for error in errors} == {2}
    assert reason_code in {error.reason_code for error in errors}
    if pointer:
        assert pointer in {error.pointer for error in errors}
    assert (await counts(service))["registry_record"] == 3


@pytest.mark.parametrize("case", range(7))
async def test_all_or_nothing_stops_at_the_first_refused_line_and_writes_nothing(
    service: RegistryService, tmp_path: Path, case: int
) -> None:
    documents = persons(8)
    await service.create_many("civil", [documents[1]], actor="clerk", reason="earlier")
    before = await counts(service)
    text, _, reason_code = _bad_lines(documents)[case]
    lines = [json.dumps(document) for document in documents[5:8]] + [text, json.dumps(documents[4])]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report, errors = await run(service, path, all_or_nothing=True, batch_size=2)
    assert report.stopped_at == 4
    assert report.created == 0
    assert reason_code in {error.reason_code for error in errors}
    assert await counts(service) == before


async def test_a_line_without_identifier_is_refused(service: RegistryService, tmp_path: Path) -> None:
    birth = next(document for document in generate("civil", 40, seed=1) if document["record_type"] == "birth")
    del birth["registration_number"]
    path = write_jsonl(tmp_path / "births.jsonl", [birth])
    report, errors = await run(service, path)
    assert report.failed == 1
    assert errors[0].reason_code in {"registry.import_identifier_missing", "schema.required", "schema.one_of"}


def _csv_row(document: dict[str, Any], born: str) -> str:
    latin = document["names"][0]
    arabic = document["names"][1] if len(document["names"]) > 1 else {"given": "", "family": ""}
    place = document["place_of_birth"]
    return ";".join(
        [
            document["uin"],
            latin["given"],
            latin["family"],
            arabic["given"],
            arabic["family"],
            document["sex"],
            born,
            place["locality"],
            place["region"],
            document.get("mother_uin", ""),
            document["marital_status"],
        ]
    )


async def test_a_csv_file_with_local_dates_is_mapped(service: RegistryService, tmp_path: Path) -> None:
    documents = persons(4)
    rows = [
        _csv_row(document, "/".join(reversed(document["date_of_birth"].split("-")))) for document in documents
    ]
    rows.append(_csv_row(persons(5)[4], "1990-05-12"))
    rows.append(_csv_row(dict(persons(6)[5], uin=uin(999_999)), "31/02/1990"))
    path = tmp_path / "persons.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    mapping = ImportMapping.load(CIVIL_CSV)
    report, errors = await run(service, path, mapping)
    assert (report.created, report.failed) == (4, 2)
    assert {(error.line, error.pointer, error.reason_code) for error in errors} == {
        (6, "/date_of_birth", "registry.import_value_invalid"),
        (7, "/date_of_birth", "registry.import_value_invalid"),
    }
    found = await service.find_by_identifier("civil", "UIN", documents[0]["uin"])
    assert found is not None
    async with service.sessions() as session:
        row = await session.get(RecordRow, found)
    assert row is not None
    expected = dict(documents[0])
    # The mapping declares the script of the Latin name only (a constant cannot depend on a column).
    expected["names"] = [
        {key: value for key, value in name.items() if key != "script" or position == 0}
        for position, name in enumerate(documents[0]["names"])
    ]
    assert row.document == expected


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"schema": "registry-import-mapping@1.0.0"}, "schema"),
        (
            {
                "schema": "registry-import-mapping@1.0.0",
                "registry": "civil",
                "dates": [{"pointer": "/x", "format": "d/m/y"}],
            },
            "schema",
        ),
        (
            {
                "schema": "registry-import-mapping@1.0.0",
                "registry": "civil",
                "columns": [{"column": "absent", "pointer": "/uin"}],
            },
            "column",
        ),
    ],
)
def test_a_mapping_that_does_not_fit_is_refused(
    tmp_path: Path, mapping: dict[str, Any], problem: str
) -> None:
    path = tmp_path / "persons.csv"
    path.write_text(HEADER + "\n", encoding="utf-8")
    with pytest.raises(DpiError) as refused:
        list(read_file(path, ImportMapping.from_document(mapping)))
    assert refused.value.reason_code == "registry.import_mapping_invalid"


def test_a_csv_file_needs_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "persons.csv"
    path.write_text(HEADER + "\n", encoding="utf-8")
    with pytest.raises(DpiError):
        read_file(path, None)


def test_the_command_reports_errors_per_line_and_can_be_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPI_VAR_DIR", str(tmp_path / "var"))
    documents = persons(30)
    path = tmp_path / "persons.jsonl"
    path.write_text(
        "".join(json.dumps(document) + "\n" for document in documents[:20])
        + "oops\n"
        + "".join(json.dumps(document) + "\n" for document in documents[20:]),
        encoding="utf-8",
    )
    strict = CliRunner().invoke(registry_group, ["import", "civil", str(path), "--all-or-nothing"])
    assert strict.exit_code == 1, strict.output
    assert "stopped at line 21: nothing was written" in strict.output
    first = CliRunner().invoke(registry_group, ["import", "civil", str(path), "--batch", "8"])
    assert first.exit_code == 1, first.output
    assert "31 lines: 30 records created, 0 already imported, 1 refused" in first.output
    assert "registry.import_line_malformed" in first.output
    errors = [json.loads(line) for line in (tmp_path / "persons.jsonl.errors.jsonl").read_text().splitlines()]
    assert errors == [
        {
            "line": 21,
            "pointer": "",
            "reason_code": "registry.import_line_malformed",
            "message": errors[0]["message"],
        }
    ]
    again = CliRunner().invoke(registry_group, ["import", "civil", str(path)])
    assert "30 already imported" in again.output
    wrong = CliRunner().invoke(registry_group, ["import", "land", str(path)])
    assert wrong.exit_code == 2
