"""The registry-dci profile: our registry block passes it (the suite a registered DCI sender hearing its
callbacks on a local port); deliberately broken variants fail exactly the requirements they break;
without a sender registration the profile cannot pass."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import standards
from conformance_tests import RunOptions, RunReport, Status, find_profile, run_conformance
from consent.block import consent_block
from tests.conformance_tests import broken_registry
from tests.conformance_tests.identity_target import TARGET as IDENTITY_TARGET
from tests.conformance_tests.identity_target import free_port, gateway_block
from tests.conformance_tests.registry_target import RegistryTarget, dci_block, registry_target
from tests.consent.conftest import TokenIssuer
from tests.serving import serving

TARGET = "http://testserver"
REQUIREMENTS = [f"RDC-{number:03d}" for number in range(1, 15)]


def _options(target: RegistryTarget) -> RunOptions:
    return RunOptions(max_examples=3, seed=7, timeout=10.0, callback_timeout=15.0, dci=target.options)


async def _run(app: Any, options: RunOptions, profiles: tuple[str, ...] = ("registry-dci",)) -> RunReport:
    async with serving(app):
        return await run_conformance(
            TARGET, profiles, options=options, transport=httpx.ASGITransport(app=app)
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


@pytest.fixture
async def sqlite_target(tmp_path: Path) -> RegistryTarget:
    return await registry_target(tmp_path / "var", callback_port=free_port())


@pytest.mark.parametrize(
    ("breakage", "broken"),
    [
        (broken_registry.duplicates_accepted, {"RDC-005"}),
        (broken_registry.page_cap_ignored, {"RDC-009"}),
        (broken_registry.unsigned_on_search, {"RDC-012"}),
        (broken_registry.batch_fails_together, {"RDC-010"}),
    ],
    ids=["duplicate-message-id-accepted", "page-cap-ignored", "unsigned-on-search", "batch-fails-together"],
)
async def test_a_broken_registry_fails_exactly_what_it_breaks(
    sqlite_target: RegistryTarget,
    monkeypatch: pytest.MonkeyPatch,
    breakage: Callable[[pytest.MonkeyPatch], None],
    broken: set[str],
) -> None:
    breakage(monkeypatch)
    report = await _run(sqlite_target.app, _options(sqlite_target))
    assert _failed(report) == broken
    assert report.verdict == "fail"


async def test_a_registry_accepting_unsigned_envelopes_fails_signature_enforcement(
    sqlite_target: RegistryTarget,
) -> None:
    app = broken_registry.SignsForTheSender(sqlite_target.app, sqlite_target.options.key)
    report = await _run(app, _options(sqlite_target))
    assert _failed(report) == {"RDC-003"}


async def test_without_a_sender_registration_the_profile_cannot_pass(sqlite_target: RegistryTarget) -> None:
    report = await _run(sqlite_target.app, RunOptions(max_examples=3, seed=7))
    assert {result.status for result in report.results} == {Status.SKIP}
    assert report.verdict == "fail"


async def test_without_an_event_request_only_the_notification_is_skipped(
    sqlite_target: RegistryTarget,
) -> None:
    options = dataclasses.replace(sqlite_target.options, event=None)
    report = await _run(sqlite_target.app, dataclasses.replace(_options(sqlite_target), dci=options))
    skipped = {result.id for result in report.results if result.status is Status.SKIP}
    assert skipped == {"RDC-014"}
    assert _failed(report) == set()


async def test_platform_and_registry_profiles_pass_beside_the_consent_and_identity_blocks(
    tmp_path: Path,
) -> None:
    issuer = TokenIssuer()
    sms_port = free_port()
    blocks = [consent_block(), gateway_block(sms_port), dci_block(issuer)]
    target = await registry_target(
        tmp_path / "var", callback_port=free_port(), blocks=blocks, issuer=issuer, base_url=IDENTITY_TARGET
    )
    report = await _run(target.app, _options(target), ("platform", "registry-dci"))
    assert _why(report) == []
    assert report.verdict == "pass"
