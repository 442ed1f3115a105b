"""Reports of one run: terminal summary (rich), JUnit XML, JSON, a self-contained HTML page, signed summary.

JUnit XML follows the schema CI servers read (https://github.com/testmoapp/junitxml): one ``testsuite`` per
profile, one ``testcase`` per requirement, ``failure`` with the evidence, ``skipped`` with the reason.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jinja2
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conformance_tests.model import Status
from conformance_tests.results import RunReport
from conformance_tests.signed_summary import sign_summary
from dpi.keys import SigningKey

__all__ = [
    "ReportFiles",
    "html_report",
    "json_report",
    "junit_xml",
    "print_summary",
    "write_reports",
]

_STYLES = {Status.PASS: "green", Status.FAIL: "bold red", Status.SKIP: "yellow", Status.ACCEPTED: "magenta"}


@dataclass(frozen=True)
class ReportFiles:
    """Where :func:`write_reports` put each report; ``jwks`` holds the public key of the summary's signer."""

    json: Path
    junit: Path
    html: Path
    summary: Path
    jwks: Path


def print_summary(report: RunReport, console: Console) -> None:
    """A table of requirements with their status and the first reason for each failure, then the verdict."""
    table = Table(title=f"Conformance of {report.target}", show_lines=False, expand=False)
    table.add_column("Requirement", no_wrap=True)
    table.add_column("Level", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Evidence")
    for result in report.results:
        evidence = result.headline
        if result.status is Status.ACCEPTED:
            evidence = f"accepted by baseline: {result.accepted_reason or 'no reason given'}; {evidence}"
        table.add_row(
            result.id,
            result.level,
            Text(result.status.value, style=_STYLES[result.status]),
            Text(evidence),
        )
    console.print(table)
    counts = ", ".join(f"{count} {name}" for name, count in report.counts.items())
    style = "bold green" if report.verdict == "pass" else "bold red"
    console.print(Text.assemble("Verdict: ", (report.verdict.upper(), style), f"  ({counts})"))


def json_report(report: RunReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


def junit_xml(report: RunReport) -> bytes:
    root = ET.Element("testsuites", name="dpi-conformance", tests=str(len(report.results)))
    failures = 0
    for profile in report.profiles:
        suite = ET.SubElement(root, "testsuite", name=profile.name, timestamp=report.summary()["started_at"])
        counted = {"tests": 0, "failures": 0, "skipped": 0}
        for result in report.results:
            if result.profile != profile.name:
                continue
            counted["tests"] += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{profile.name}.{result.level}",
                name=f"{result.id}: {result.requirement.statement}",
            )
            if result.status is Status.FAIL:
                counted["failures"] += 1
                first = result.failures[0].message if result.failures else "failed"
                failure = ET.SubElement(case, "failure", message=first, type=result.level)
                failure.text = _failure_text(report, result.id)
            elif result.status is Status.SKIP:
                counted["skipped"] += 1
                ET.SubElement(case, "skipped", message=result.evidence)
            out = ET.SubElement(case, "system-out")
            out.text = f"status: {result.status.value}\ntests: {', '.join(result.tests)}\n{result.evidence}"
        suite.attrib.update({name: str(value) for name, value in counted.items()})
        failures += counted["failures"]
    root.set("failures", str(failures))
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _failure_text(report: RunReport, requirement_id: str) -> str:
    lines = []
    for finding in report.result(requirement_id).failures:
        lines.append(finding.message)
        if finding.evidence is not None:
            evidence = finding.evidence
            lines += [
                f"  request:  {evidence.request}",
                f"  status:   {evidence.status}",
                f"  expected: {evidence.expected}",
                f"  body:     {evidence.body}",
            ]
    return "\n".join(lines)


def html_report(report: RunReport) -> str:
    """One static page: inline CSS, no script, no external asset; every value is HTML-escaped."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(files("conformance_tests").joinpath("report.html").read_text("utf-8"))
    full = report.to_json()
    return template.render(summary=report.summary(), results=full["results"], options=full["options"])


def write_reports(report: RunReport, directory: Path, key: SigningKey) -> ReportFiles:
    """Write every report into ``directory`` (created if needed), the summary signed by ``key``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = ReportFiles(
        json=directory / "report.json",
        junit=directory / "junit.xml",
        html=directory / "report.html",
        summary=directory / "summary.jws",
        jwks=directory / "jwks.json",
    )
    _write(written.json, json_report(report).encode())
    _write(written.junit, junit_xml(report))
    _write(written.html, html_report(report).encode())
    _write(written.summary, (sign_summary(report.summary(), key) + "\n").encode())
    _write(written.jwks, (json.dumps({"keys": [key.public_jwk()]}, indent=2) + "\n").encode())
    return written


def _write(path: Path, content: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    os.replace(partial, path)
