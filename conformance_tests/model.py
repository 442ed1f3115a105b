"""The conformance model: profiles made of tests, each citing requirement IDs from the `standards` catalogue.

A :class:`Profile` is a named, versioned set of :class:`ConformanceTest` objects. A test is an async function
that talks to the target over HTTP through a :class:`~conformance_tests.target.TargetSession` and returns
:class:`Finding` objects, one or more per requirement it cites. The runner folds the findings of every test
into one :class:`~conformance_tests.results.RequirementResult` per requirement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance_tests.target import TargetSession

__all__ = [
    "ConformanceTest",
    "Evidence",
    "Finding",
    "Profile",
    "Status",
    "TestFunction",
]


class Status(StrEnum):
    """Outcome of a requirement or a finding: the values of `conformance-summary` ``results[].status``."""

    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    SKIP = "skip"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class Evidence:
    """What the suite saw when a check failed: request, status, an excerpt of the body, the expectation."""

    request: str
    status: int | None
    body: str
    expected: str

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "status": self.status, "body": self.body, "expected": self.expected}

    def one_line(self) -> str:
        status = "no response" if self.status is None else f"HTTP {self.status}"
        body = " ".join(self.body.split())
        if len(body) > 160:
            body = body[:157] + "..."
        return f"{self.request} -> {status}: expected {self.expected}" + (f"; got {body}" if body else "")


@dataclass(frozen=True)
class Finding:
    """One observation about one requirement: passed, failed (with evidence) or skipped (with a reason)."""

    requirement: str
    status: Status
    message: str
    evidence: Evidence | None = None

    @classmethod
    def passed(cls, requirement: str, message: str) -> Finding:
        return cls(requirement, Status.PASS, message)

    @classmethod
    def failed(cls, requirement: str, message: str, evidence: Evidence | None = None) -> Finding:
        return cls(requirement, Status.FAIL, message, evidence)

    @classmethod
    def skipped(cls, requirement: str, reason: str) -> Finding:
        return cls(requirement, Status.SKIP, reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "status": self.status.value,
            "message": self.message,
            "evidence": None if self.evidence is None else self.evidence.to_json(),
        }


TestFunction = Callable[["TargetSession"], Awaitable[Sequence[Finding]]]


@dataclass(frozen=True)
class ConformanceTest:
    """One test of a profile: a name, the requirement IDs it checks, and the async function that checks them.

    ``observes_traffic`` tests look at every exchange the other tests made (for requirements about *every*
    response), so the runner runs them after all the others.
    """

    name: str
    requirements: tuple[str, ...]
    check: TestFunction = field(repr=False, compare=False)
    description: str = ""
    observes_traffic: bool = False


@dataclass
class Profile:
    """A named, versioned set of conformance tests; its requirements are those its tests cite."""

    name: str
    version: str
    description: str = ""
    tests: list[ConformanceTest] = field(default_factory=list)

    def test(
        self, name: str, requirements: Sequence[str], *, observes_traffic: bool = False
    ) -> Callable[[TestFunction], TestFunction]:
        """Register the decorated async function as a test of this profile citing ``requirements``."""

        def register(function: TestFunction) -> TestFunction:
            if any(existing.name == name for existing in self.tests):
                raise ValueError(f"profile {self.name!r} already has a test named {name!r}")
            self.tests.append(
                ConformanceTest(
                    name=name,
                    requirements=tuple(requirements),
                    check=function,
                    description=(function.__doc__ or "").strip(),
                    observes_traffic=observes_traffic,
                )
            )
            return function

        return register

    @property
    def requirement_ids(self) -> tuple[str, ...]:
        """Every requirement ID cited by the tests, in order of first citation."""
        seen: dict[str, None] = {}
        for conformance_test in self.tests:
            for requirement in conformance_test.requirements:
                seen.setdefault(requirement, None)
        return tuple(seen)
