"""Reports written from one run: JSON, JUnit XML, HTML, and the signed summary that verifies (and fails
when tampered with)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import standards
from conformance_tests import Evidence, Finding, RunReport, Status, verify_summary, write_reports
from conformance_tests.cli import conformance_group
from conformance_tests.results import RequirementResult
from dpi.keys import SigningKey
from tests.conformance_tests.broken_apps import MIDDLEWARE_BREAKS, Rewrite
from tests.conformance_tests.conftest import AppFactory, Runner


@pytest.fixture
async def failing_report(make_app: AppFactory, conformance_of: Runner) -> RunReport:
    return await conformance_of(Rewrite(await make_app(), MIDDLEWARE_BREAKS["no X-Request-Id"]))


@pytest.fixture
async def failing_should_report(make_app: AppFactory, conformance_of: Runner) -> RunReport:
    return await conformance_of(Rewrite(await make_app(), MIDDLEWARE_BREAKS["413 answered as 422"]))


def test_every_report_is_written_and_names_every_requirement(
    kernel_report: RunReport, tmp_path: Path
) -> None:
    files = write_reports(kernel_report, tmp_path / "out", SigningKey.generate())
    html = files.html.read_text()
    document = json.loads(files.json.read_text())
    junit = ET.fromstring(files.junit.read_bytes())  # noqa: S314 (our own report)
    for result in kernel_report.results:
        assert f'id="{result.id}"' in html
        assert any(r["requirement"] == result.id and r["status"] == "pass" for r in document["results"])
    assert [case.get("name", "")[:7] for case in junit.iter("testcase")] == [
        r.id for r in kernel_report.results
    ]
    assert "Verdict: pass" in html
    assert document["verdict"] == "pass"
    assert document["options"]["seed"] == 7


def test_html_is_self_contained(kernel_report: RunReport, tmp_path: Path) -> None:
    html = write_reports(kernel_report, tmp_path, SigningKey.generate()).html.read_text()
    assert "<style>" in html
    for external in ("<script", "<link", "src=", "@import", "url("):
        assert external not in html


def test_failures_carry_their_evidence_into_junit_and_html(failing_report: RunReport, tmp_path: Path) -> None:
    files = write_reports(failing_report, tmp_path, SigningKey.generate())
    junit = ET.fromstring(files.junit.read_bytes())  # noqa: S314 (our own report)
    failures = {case.get("name", "")[:7]: case.find("failure") for case in junit.iter("testcase")}
    assert {rid for rid, failure in failures.items() if failure is not None} == {"PLT-007"}
    text = failures["PLT-007"].text or ""  # type: ignore[union-attr]
    assert "no X-Request-Id header" in text
    assert "request:  GET http://testserver/" in text
    assert junit.get("failures") == "1"
    assert "no X-Request-Id header" in files.html.read_text()


def test_html_escapes_what_the_target_sent(kernel_report: RunReport, tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    first = kernel_report.results[0]
    evidence = Evidence(request="GET http://testserver/healthz", status=500, body=hostile, expected="200")
    broken = replace(first, status=Status.FAIL, findings=(Finding.failed(first.id, hostile, evidence),))
    report = replace(kernel_report, results=(broken, *kernel_report.results[1:]))
    html = write_reports(report, tmp_path, SigningKey.generate()).html.read_text()
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_summary_is_valid_and_signed(kernel_report: RunReport, tmp_path: Path) -> None:
    key = SigningKey.generate("ES256")
    files = write_reports(kernel_report, tmp_path, key)
    outcome = verify_summary(files.summary.read_text(), json.loads(files.jwks.read_text()))
    assert outcome.valid, outcome.problems
    assert outcome.header["typ"] == "dpi-conformance+jws"
    assert outcome.header["kid"] == key.kid
    assert standards.validator("conformance-summary@1.0.0").issues(dict(outcome.payload)) == []
    assert outcome.payload["counts"] == {"pass": 14, "fail": 0, "skip": 0, "accepted": 0}


def _tamper(token: str, change: dict[str, object]) -> str:
    header, payload, signature = token.strip().split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document.update(change)
    encoded = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_cli_verify_accepts_the_summary_and_refuses_a_tampered_one(
    failing_report: RunReport, tmp_path: Path
) -> None:
    files = write_reports(failing_report, tmp_path / "report", SigningKey.generate())
    runner = CliRunner()
    valid = runner.invoke(conformance_group, ["verify", str(files.summary), "--jwks", str(files.jwks)])
    assert valid.exit_code == 0, valid.output
    assert valid.output.startswith("VALID")
    assert "verdict fail" in valid.output

    by_directory = runner.invoke(
        conformance_group, ["verify", str(tmp_path / "report"), "--jwks", str(files.jwks)]
    )
    assert by_directory.exit_code == 0

    tampered = tmp_path / "tampered.jws"
    tampered.write_text(_tamper(files.summary.read_text(), {"verdict": "pass"}))
    refused = runner.invoke(conformance_group, ["verify", str(tampered), "--jwks", str(files.jwks)])
    assert refused.exit_code == 1
    assert refused.output.startswith("INVALID")
    assert "signature does not verify" in refused.output


def test_verify_refuses_a_summary_signed_by_another_key(kernel_report: RunReport, tmp_path: Path) -> None:
    files = write_reports(kernel_report, tmp_path, SigningKey.generate())
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps({"keys": [SigningKey.generate().public_jwk()]}))
    result = CliRunner().invoke(conformance_group, ["verify", str(files.summary), "--jwks", str(stranger)])
    assert result.exit_code == 1
    assert "INVALID" in result.output


def test_a_signed_summary_whose_verdict_contradicts_its_results_is_invalid(kernel_report: RunReport) -> None:
    from dpi.signing import sign_compact

    key = SigningKey.generate()
    summary = kernel_report.summary()
    summary["counts"] = {"pass": 13, "fail": 1, "skip": 0, "accepted": 0}
    token = sign_compact(summary, key, typ="dpi-conformance+jws")
    outcome = verify_summary(token, {"keys": [key.public_jwk()]})
    assert not outcome.valid
    assert any("counts" in problem for problem in outcome.problems)


def test_a_signed_summary_accepting_a_must_failure_is_invalid(failing_report: RunReport) -> None:
    from dpi.signing import sign_compact

    key = SigningKey.generate()
    summary = failing_report.summary()
    for result in summary["results"]:
        if result["requirement"] == "PLT-007":
            result["status"] = "accepted"
    summary["counts"] = {**summary["counts"], "fail": 0, "accepted": 1}
    summary["verdict"] = "pass"
    token = sign_compact(summary, key, typ="dpi-conformance+jws")
    outcome = verify_summary(token, {"keys": [key.public_jwk()]})
    assert not outcome.valid
    assert "PLT-007 is a MUST requirement marked accepted; only SHOULD and MAY failures may be accepted" in (
        outcome.problems
    )
    assert "the verdict 'pass' does not follow from the results" in outcome.problems


def test_accepted_results_are_visible_in_every_report(
    failing_should_report: RunReport, tmp_path: Path
) -> None:
    from conformance_tests import Baseline

    accepted = tuple(
        RequirementResult.fold(r.profile, r.requirement, r.tests, r.findings, Baseline({"PLT-012": "known"}))
        for r in failing_should_report.results
    )
    report = replace(failing_should_report, results=accepted)
    files = write_reports(report, tmp_path, SigningKey.generate())
    assert 'class="status accepted"' in files.html.read_text()
    assert json.loads(files.json.read_text())["counts"]["accepted"] == 1
    junit = ET.fromstring(files.junit.read_bytes())  # noqa: S314 (our own report)
    assert junit.get("failures") == "0"
    outcome = verify_summary(files.summary.read_text(), json.loads(files.jwks.read_text()))
    assert outcome.valid
    assert outcome.payload["verdict"] == "pass"
