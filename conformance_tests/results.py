"""Results of a run: a :class:`RequirementResult` per requirement, a baseline of accepted failures, a verdict.

The verdict follows `conformance-summary@1.0.0`: "pass" when every MUST requirement is pass or accepted.
A baseline file lists failures a deployment has knowingly accepted (the idea of schemathesis ``--baseline``
and the OpenID Foundation suite's expected-failures lists); they are reported as ``accepted`` and do not
fail the run::

    {"accepted": [{"requirement": "PLT-012", "reason": "limit enforced by the load balancer"}]}

A baseline may accept SHOULD and MAY requirements only. The exchange trusts the signed summary when a member
joins, so a MUST failure can never be turned into a passing verdict: a baseline naming a MUST requirement
(or one not in the catalogue) is refused when it is loaded, and no ``accepted`` MUST result is ever produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import standards
from conformance_tests.model import Finding, Status

__all__ = [
    "SUITE_NAME",
    "SUITE_VERSION",
    "Baseline",
    "BaselineError",
    "ProfileRef",
    "RequirementResult",
    "RunReport",
]

SUITE_NAME = "dpi-conformance"
SUITE_VERSION = "0.1.0"
# Failures of a requirement beyond this many are counted, not each quoted.
_EVIDENCE_QUOTED = 3
# The summary schema bounds evidence; the full text stays in the JSON report.
_EVIDENCE_LENGTH = 10000


class BaselineError(ValueError):
    """The baseline file cannot be read or does not have the documented shape."""


@dataclass(frozen=True)
class Baseline:
    """Requirement IDs whose failure is accepted, each with the reason given for accepting it."""

    accepted: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        levels = {requirement.id: requirement.level for requirement in standards.requirements()}
        unknown = sorted(rid for rid in self.accepted if rid not in levels)
        if unknown:
            raise BaselineError(f"the baseline names requirements not in the catalogue: {', '.join(unknown)}")
        must = sorted(rid for rid in self.accepted if levels[rid] == "MUST")
        if must:
            raise BaselineError(
                f"the baseline names MUST requirements ({', '.join(must)}); "
                "a baseline may accept SHOULD and MAY failures only"
            )

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise BaselineError(f"baseline file {path} cannot be read: {error}") from None
        except json.JSONDecodeError as error:
            raise BaselineError(f"baseline file {path} is not valid JSON: {error}") from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: object, source: str = "baseline") -> Baseline:
        entries = data.get("accepted") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise BaselineError(
                f'{source}: expected {{"accepted": [{{"requirement": "ID", "reason": "..."}}]}}'
            )
        accepted: dict[str, str] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("requirement"), str):
                raise BaselineError(f"{source}: every accepted entry needs a requirement ID, got {entry!r}")
            reason = entry.get("reason", "")
            accepted[entry["requirement"]] = reason if isinstance(reason, str) else str(reason)
        try:
            return cls(accepted)
        except BaselineError as error:
            raise BaselineError(f"{source}: {error}") from None


@dataclass(frozen=True)
class ProfileRef:
    name: str
    version: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class RequirementResult:
    """The folded outcome of one requirement over every finding about it."""

    profile: str
    requirement: standards.Requirement
    status: Status
    tests: tuple[str, ...]
    findings: tuple[Finding, ...]
    accepted_reason: str | None = None

    @classmethod
    def fold(
        cls,
        profile: str,
        requirement: standards.Requirement,
        tests: Iterable[str],
        findings: Iterable[Finding],
        baseline: Baseline,
    ) -> RequirementResult:
        """Fail when any finding fails, else skip when any skips or there is none, else pass."""
        collected = tuple(findings)
        statuses = {finding.status for finding in collected}
        if Status.FAIL in statuses:
            status = Status.FAIL
        elif Status.SKIP in statuses or not collected:
            status = Status.SKIP
        else:
            status = Status.PASS
        accepted_reason = None
        if status is Status.FAIL and requirement.level != "MUST" and requirement.id in baseline.accepted:
            status, accepted_reason = Status.ACCEPTED, baseline.accepted[requirement.id]
        return cls(profile, requirement, status, tuple(tests), collected, accepted_reason)

    @property
    def id(self) -> str:
        return self.requirement.id

    @property
    def level(self) -> str:
        return self.requirement.level

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.status is Status.FAIL)

    @property
    def evidence(self) -> str:
        """One paragraph saying why: the failures (first few quoted), the skip reason, or what passed."""
        if self.failures:
            lines = [
                finding.message + (f" [{finding.evidence.one_line()}]" if finding.evidence else "")
                for finding in self.failures[:_EVIDENCE_QUOTED]
            ]
            if len(self.failures) > _EVIDENCE_QUOTED:
                lines.append(f"... and {len(self.failures) - _EVIDENCE_QUOTED} more failures")
            if self.accepted_reason is not None:
                lines.insert(0, f"accepted by baseline: {self.accepted_reason or 'no reason given'}")
            return "\n".join(lines)
        relevant = [finding for finding in self.findings if finding.status is self.status] or list(
            self.findings
        )
        if not relevant:
            return "no test produced a finding for this requirement"
        return "\n".join(finding.message for finding in relevant[:_EVIDENCE_QUOTED])

    @property
    def headline(self) -> str:
        """The first reason in one or two lines, for a terminal: the first failure, or the skip reason."""
        if self.failures:
            first = self.failures[0]
            line = first.message + (f" [{first.evidence.one_line()}]" if first.evidence else "")
            more = len(self.failures) - 1
            return line + (f" (+{more} more in the report)" if more else "")
        if self.status is Status.SKIP:
            return self.evidence.splitlines()[0] if self.evidence else ""
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.id,
            "profile": self.profile,
            "level": self.level,
            "statement": self.requirement.statement,
            "status": self.status.value,
            "tests": list(self.tests),
            "evidence": self.evidence,
            "accepted_reason": self.accepted_reason,
            "findings": [finding.to_json() for finding in self.findings],
        }


@dataclass(frozen=True)
class RunReport:
    """Everything one run established about one target."""

    target: str
    started_at: datetime
    finished_at: datetime
    profiles: tuple[ProfileRef, ...]
    results: tuple[RequirementResult, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in (Status.PASS, Status.FAIL, Status.SKIP, Status.ACCEPTED)}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def verdict(self) -> str:
        """ "pass" when every MUST requirement passed, else "fail" (a MUST is never accepted)."""
        must = [result for result in self.results if result.level == "MUST"]
        return "pass" if all(result.status is Status.PASS for result in must) else "fail"

    def result(self, requirement_id: str) -> RequirementResult:
        for result in self.results:
            if result.id == requirement_id:
                return result
        raise KeyError(requirement_id)

    def summary(self) -> dict[str, Any]:
        """The payload of the signed summary, valid against `conformance-summary@1.0.0`."""
        return {
            "suite": {"name": SUITE_NAME, "version": SUITE_VERSION},
            "standards_version": _standards_version(),
            "target": self.target,
            "started_at": _timestamp(self.started_at),
            "finished_at": _timestamp(self.finished_at),
            "profiles": [profile.to_json() for profile in self.profiles],
            "results": [
                {
                    "requirement": result.id,
                    "level": result.level,
                    "status": result.status.value,
                    "tests": list(result.tests),
                    "evidence": result.evidence[:_EVIDENCE_LENGTH],
                }
                for result in self.results
            ],
            "counts": self.counts,
            "verdict": self.verdict,
        }

    def to_json(self) -> dict[str, Any]:
        """The full report: the summary plus statements, every finding, and the run options."""
        summary = self.summary()
        return {**summary, "options": dict(self.options), "results": [r.to_json() for r in self.results]}


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _standards_version() -> str:
    return standards.__version__
