"""Profile ``platform`` against our kernel (it must pass) and against deliberately broken variants of it
(each must fail with the requirement IDs of what was broken, and nothing else)."""

from __future__ import annotations

import pytest

import standards
from conformance_tests import Baseline, RunReport, Status, find_profile
from tests.conformance_tests.broken_apps import BLOCK_BREAKS, MIDDLEWARE_BREAKS, Rewrite
from tests.conformance_tests.conftest import AppFactory, Runner


def failed(report: RunReport) -> set[str]:
    return {result.id for result in report.results if result.status is Status.FAIL}


def test_platform_profile_covers_the_catalogue_exactly() -> None:
    catalogue = [r.id for r in standards.requirements() if r.profile == "platform"]
    assert sorted(find_profile("platform").requirement_ids) == sorted(catalogue)


async def test_our_kernel_passes_every_requirement(kernel_report_on_each_database: RunReport) -> None:
    report = kernel_report_on_each_database
    assert [r.id for r in report.results] == [f"PLT-{n:03d}" for n in range(1, 15)]
    not_passing = {r.id: r.evidence for r in report.results if r.status is not Status.PASS}
    assert not_passing == {}
    assert report.verdict == "pass"
    assert report.counts == {"pass": 14, "fail": 0, "skip": 0, "accepted": 0}
    # Ready, not merely "answered": the database behind the app was reached and is migrated.
    assert report.result("PLT-002").evidence == "GET /readyz answered 200 with a valid readiness body"


async def test_generated_phase_sends_valid_and_invalid_requests(kernel_report: RunReport) -> None:
    messages = [f.message for f in kernel_report.result("PLT-011").findings]
    assert any("POST /standards/validate" in m and "invalid requests, each refused" in m for m in messages)
    assert any(
        "POST /standards/validate" in m for m in (f.message for f in kernel_report.result("PLT-010").findings)
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "error bodies without reason_code",
            {"PLT-004", "PLT-005", "PLT-006", "PLT-011", "PLT-012", "PLT-014"},
        ),
        ("capabilities without profiles", {"PLT-003"}),
        ("no X-Request-Id", {"PLT-007"}),
        ("JWKS leaking d", {"PLT-008"}),
        ("OpenAPI body without schema", {"PLT-009"}),
        ("413 answered as 422", {"PLT-012"}),
    ],
)
async def test_broken_middleware_fails_exactly_its_requirements(
    make_app: AppFactory, conformance_of: Runner, name: str, expected: set[str]
) -> None:
    report = await conformance_of(Rewrite(await make_app(), MIDDLEWARE_BREAKS[name]))
    assert failed(report) == expected, {r.id: r.evidence for r in report.results if r.id in failed(report)}
    for result in report.results:
        if result.status is Status.FAIL:
            assert result.failures, result.id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("crashes on valid input", {"PLT-010"}),
        ("accepts invalid bodies", {"PLT-011"}),
        ("stack trace in a 500 body", {"PLT-010", "PLT-013"}),
    ],
)
async def test_broken_block_fails_exactly_its_requirements(
    make_app: AppFactory, conformance_of: Runner, name: str, expected: set[str]
) -> None:
    report = await conformance_of(await make_app([BLOCK_BREAKS[name]]))
    assert failed(report) == expected, {r.id: r.evidence for r in report.results}
    assert report.verdict == "fail"


async def test_failure_evidence_names_request_status_and_expectation(
    make_app: AppFactory, conformance_of: Runner
) -> None:
    report = await conformance_of(await make_app([BLOCK_BREAKS["accepts invalid bodies"]]))
    evidence = next(f.evidence for f in report.result("PLT-011").failures if f.evidence is not None)
    assert evidence.request.startswith("POST http://testserver/credulous/check")
    assert evidence.status == 200
    assert "4xx" in evidence.expected
    assert '"valid":true' in evidence.body


async def test_a_failing_should_does_not_fail_the_verdict(
    make_app: AppFactory, conformance_of: Runner
) -> None:
    report = await conformance_of(Rewrite(await make_app(), MIDDLEWARE_BREAKS["413 answered as 422"]))
    assert report.result("PLT-012").status is Status.FAIL
    assert report.verdict == "pass"


async def test_baseline_turns_a_should_failure_into_accepted(
    make_app: AppFactory, conformance_of: Runner
) -> None:
    baseline = Baseline.from_json(
        {"accepted": [{"requirement": "PLT-012", "reason": "limit enforced by the load balancer"}]}
    )
    report = await conformance_of(
        Rewrite(await make_app(), MIDDLEWARE_BREAKS["413 answered as 422"]), baseline=baseline
    )
    result = report.result("PLT-012")
    assert result.status is Status.ACCEPTED
    assert result.accepted_reason == "limit enforced by the load balancer"
    assert "accepted by baseline: limit enforced by the load balancer" in result.evidence
    assert report.verdict == "pass"
    assert report.counts["accepted"] == 1


@pytest.mark.parametrize("requirement", ["PLT-001", "PLT-007", "PLT-013"])
def test_a_baseline_naming_a_must_requirement_is_refused(requirement: str) -> None:
    from conformance_tests import BaselineError

    document = {"accepted": [{"requirement": "PLT-012"}, {"requirement": requirement, "reason": "later"}]}
    with pytest.raises(BaselineError, match=f"MUST requirements \\({requirement}\\).*SHOULD and MAY"):
        Baseline.from_json(document, "baseline.json")
    with pytest.raises(BaselineError, match="SHOULD and MAY failures only"):
        Baseline({requirement: "built directly"})


def test_a_baseline_naming_an_unknown_requirement_is_refused() -> None:
    from conformance_tests import BaselineError

    with pytest.raises(BaselineError, match="not in the catalogue: PLT-999"):
        Baseline.from_json({"accepted": [{"requirement": "PLT-999"}]})


async def test_a_must_failure_is_never_accepted_whatever_the_baseline(
    make_app: AppFactory, conformance_of: Runner
) -> None:
    # A Baseline object cannot name a MUST, but folding must hold the line on its own too.
    class Lenient(Baseline):
        def __post_init__(self) -> None:
            pass

    report = await conformance_of(
        Rewrite(await make_app(), MIDDLEWARE_BREAKS["no X-Request-Id"]),
        baseline=Lenient({"PLT-007": "proxy strips the header"}),
    )
    assert report.result("PLT-007").status is Status.FAIL
    assert report.verdict == "fail"


def test_baseline_keeps_a_passing_requirement_listed() -> None:
    baseline = Baseline.from_json({"accepted": [{"requirement": "PLT-012"}]})
    assert baseline.accepted == {"PLT-012": ""}


@pytest.mark.parametrize(
    "document",
    [[], {"accepted": "PLT-001"}, {"accepted": [{"reason": "no id"}]}, {"accepted": ["PLT-001"]}, {}],
)
def test_malformed_baselines_are_refused(document: object) -> None:
    from conformance_tests import BaselineError

    with pytest.raises(BaselineError):
        Baseline.from_json(document)
