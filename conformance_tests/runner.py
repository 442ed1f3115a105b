"""Run conformance profiles against a target URL and fold the findings into a :class:`RunReport`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

import standards
from conformance_tests.model import ConformanceTest, Finding, Profile
from conformance_tests.registry import find_profile
from conformance_tests.results import Baseline, ProfileRef, RequirementResult, RunReport
from conformance_tests.target import RunOptions, TargetSession, TargetUnreachable

__all__ = ["check_target_url", "run_conformance"]


def check_target_url(target: str) -> str:
    """``target`` without a trailing slash; raises ``ValueError`` unless it is an absolute http(s) URL."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the target must be an absolute http:// or https:// URL, got {target!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the target URL must not carry a query or fragment, got {target!r}")
    return target.rstrip("/")


async def run_conformance(
    target: str,
    profiles: Sequence[str] = ("platform",),
    *,
    options: RunOptions | None = None,
    baseline: Baseline | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunReport:
    """Run the tests of ``profiles`` against ``target`` over HTTP and return the report.

    ``transport`` replaces the network (``httpx.ASGITransport(app)`` runs against an app in-process).
    Raises ``ValueError`` for a malformed URL, :class:`~conformance_tests.registry.UnknownProfile` for an
    unknown profile name, and :class:`TargetUnreachable` when the target does not answer at all.
    """
    base_url = check_target_url(target)
    chosen = [find_profile(name) for name in dict.fromkeys(profiles)]
    options = options or RunOptions()
    baseline = baseline or Baseline()
    catalogue = {requirement.id: requirement for requirement in standards.requirements()}
    for chosen_profile in chosen:
        missing = [rid for rid in chosen_profile.requirement_ids if rid not in catalogue]
        if missing:
            raise ValueError(
                f"profile {chosen_profile.name} cites requirements not in the catalogue: {missing}"
            )

    started_at = clock()
    async with httpx.AsyncClient(
        transport=transport, timeout=options.timeout, follow_redirects=False
    ) as client:
        session = TargetSession(base_url, client, options, over_network=transport is None)
        session.current_test = "reachability"
        first = await session.capabilities()
        if first.status is None:
            raise TargetUnreachable(f"cannot reach {base_url}: {first.error}")
        tests = [test for chosen_profile in chosen for test in chosen_profile.tests]
        ordered = [t for t in tests if not t.observes_traffic] + [t for t in tests if t.observes_traffic]
        findings_by_test = {test.name: await _run_test(session, test) for test in ordered}

    order = {requirement_id: index for index, requirement_id in enumerate(catalogue)}
    results = [
        _fold(chosen_profile, requirement_id, catalogue[requirement_id], findings_by_test, baseline)
        for chosen_profile in chosen
        for requirement_id in sorted(chosen_profile.requirement_ids, key=order.__getitem__)
    ]
    return RunReport(
        target=base_url,
        started_at=started_at,
        finished_at=clock(),
        profiles=tuple(ProfileRef(p.name, p.version) for p in chosen),
        results=tuple(results),
        options={"max_examples": options.max_examples, "seed": options.seed, "timeout": options.timeout},
    )


async def _run_test(session: TargetSession, test: ConformanceTest) -> list[Finding]:
    session.current_test = test.name
    try:
        findings = list(await test.check(session))
        stray = sorted({f.requirement for f in findings} - set(test.requirements))
        if stray:
            raise RuntimeError(f"test {test.name} reported on requirements it does not cite: {stray}")
    except Exception as error:  # a broken test must show as a failure of what it checks, not abort the run
        message = f"test {test.name} could not complete: {type(error).__name__}: {error}"
        return [Finding.failed(requirement, message) for requirement in test.requirements]
    return findings


def _fold(
    chosen_profile: Profile,
    requirement_id: str,
    requirement: standards.Requirement,
    findings_by_test: dict[str, list[Finding]],
    baseline: Baseline,
) -> RequirementResult:
    tests = [test.name for test in chosen_profile.tests if requirement_id in test.requirements]
    findings = [
        f for name in tests for f in findings_by_test.get(name, []) if f.requirement == requirement_id
    ]
    return RequirementResult.fold(chosen_profile.name, requirement, tests, findings, baseline)
