"""The identity-oidc profile: our identity block passes it (signing Amina in through the suite's SMS
gateway); deliberately broken variants fail exactly the requirements they break; without client
registrations the profile cannot pass."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import standards
from conformance_tests import RunOptions, RunReport, Status, find_profile, run_conformance
from consent.block import consent_block
from identity import pseudonyms
from tests.conformance_tests.broken_apps import Headers, Rewrite
from tests.conformance_tests.broken_identity import (
    ReplayingTokens,
    VerifierBlind,
    error_pages_as_redirects,
    state_dropped,
    uin_in_userinfo,
    userinfo_without_challenge,
)
from tests.conformance_tests.identity_target import (
    LABOUR,
    TARGET,
    IdentityTarget,
    free_port,
    identity_target,
)
from tests.serving import serving

IDENTITY_REQUIREMENTS = [f"IDN-{number:03d}" for number in range(1, 17)]


def _options(target: IdentityTarget) -> RunOptions:
    return RunOptions(max_examples=3, seed=7, timeout=10.0, callback_timeout=10.0, oidc=target.options)


async def _run(app: Any, options: RunOptions, profiles: tuple[str, ...] = ("identity-oidc",)) -> RunReport:
    async with serving(app):
        return await run_conformance(
            TARGET, profiles, options=options, transport=httpx.ASGITransport(app=app)
        )


def _failed(report: RunReport) -> set[str]:
    return {result.id for result in report.results if result.status is Status.FAIL}


@pytest.fixture
async def target(tmp_path: Path) -> IdentityTarget:
    return await identity_target(tmp_path / "var", sms_port=free_port())


def test_the_profile_covers_its_catalogue_exactly() -> None:
    catalogue = [r.id for r in standards.requirements() if r.profile == "identity-oidc"]
    assert catalogue == IDENTITY_REQUIREMENTS
    assert sorted(find_profile("identity-oidc").requirement_ids) == catalogue


async def test_our_identity_block_passes(tmp_path: Path, database_url: str) -> None:
    target = await identity_target(tmp_path / "var", sms_port=free_port(), database_url=database_url)
    report = await _run(target.app, _options(target))
    problems = {r.id: r.evidence for r in report.results if r.status is not Status.PASS}
    assert problems == {}
    assert [r.id for r in report.results] == IDENTITY_REQUIREMENTS
    assert report.verdict == "pass"
    messages = [f.message for f in report.result("IDN-015").findings]
    assert messages == [
        "the same client again: sub unchanged",
        "a client of another sector: sub different",
        "a client of the same sector: sub unchanged",
    ]


async def test_without_client_registrations_the_profile_cannot_pass(target: IdentityTarget) -> None:
    report = await _run(target.app, RunOptions(max_examples=3, seed=7))
    assert {result.status for result in report.results} == {Status.SKIP}
    assert "--oidc-client" in report.result("IDN-004").evidence
    assert report.verdict == "fail"


async def test_a_provider_whose_codes_never_reach_the_gateway_fails_at_sign_in(tmp_path: Path) -> None:
    target = await identity_target(tmp_path / "var", sms_port=free_port())
    elsewhere = RunOptions(
        max_examples=3,
        callback_timeout=1.0,
        oidc=type(target.options)(
            clients=target.options.clients, person=target.options.person, sms_port=free_port()
        ),
    )
    report = await _run(target.app, elsewhere)
    assert _failed(report) >= {"IDN-004", "IDN-014"}
    assert "could not be signed in" in report.result("IDN-004").evidence
    assert report.verdict == "fail"


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (VerifierBlind, {"IDN-008"}),
        (ReplayingTokens, {"IDN-009"}),
        (lambda app: Rewrite(app, error_pages_as_redirects), {"IDN-010"}),
        (lambda app: Rewrite(app, state_dropped), {"IDN-005"}),
        (lambda app: Rewrite(app, userinfo_without_challenge), {"IDN-009", "IDN-013"}),
    ],
    ids=[
        "ignores-pkce",
        "accepts-a-reused-code",
        "redirects-to-unregistered-uris",
        "omits-state",
        "userinfo-errors-without-challenge",
    ],
)
async def test_broken_providers_fail_exactly_what_they_break(
    target: IdentityTarget, break_it: Any, expected: set[str]
) -> None:
    report = await _run(break_it(target.app), _options(target))
    assert _failed(report) == expected, {r.id: r.evidence for r in report.results if r.id in _failed(report)}
    assert report.verdict == "fail"


async def test_a_provider_showing_the_uin_fails_the_privacy_requirement(target: IdentityTarget) -> None:
    report = await _run(Rewrite(target.app, uin_in_userinfo(target.uin)), _options(target))
    assert _failed(report) == {"IDN-016"}
    assert "/identity/userinfo shows the UIN" in report.result("IDN-016").evidence


async def test_a_provider_with_one_subject_for_every_sector_fails_pairwise(
    target: IdentityTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every way the register names a person to a sector ends in ``record_pseudonym``: pin its sector.
    genuine = pseudonyms.record_pseudonym

    async def one_sector(session: Any, key: bytes, person: Any, sector: str, now: datetime) -> str:
        return await genuine(session, key, person, LABOUR, now)

    monkeypatch.setattr(pseudonyms, "record_pseudonym", one_sector)
    report = await _run(target.app, _options(target))
    assert _failed(report) == {"IDN-015"}
    assert "a client of another sector: sub equals the first client's" in report.result("IDN-015").evidence


async def test_platform_and_identity_profiles_pass_together_beside_the_consent_block(tmp_path: Path) -> None:
    # OAuth routes refuse with oauth-error bodies, error pages and error redirects, as their OpenAPI
    # responses declare: the platform profile takes those as correct refusals.
    target = await identity_target(tmp_path / "var", sms_port=free_port(), extra_blocks=[consent_block()])
    report = await _run(target.app, _options(target), ("platform", "identity-oidc"))
    assert {r.id: r.evidence for r in report.results if r.status is not Status.PASS} == {}
    assert any("POST /identity/token" in f.message for f in report.result("PLT-010").findings)
    assert any("GET /identity/authorize" in f.message for f in report.result("PLT-011").findings)


def _undocumented_token_errors(
    scope: Any, status: int, headers: Headers, body: bytes
) -> tuple[int, Headers, bytes]:
    if not scope["path"].endswith("/token") or status < 400:
        return status, headers, body
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    return status, [*kept, (b"content-type", b"text/plain")], b"no"


async def test_a_refusal_its_operation_does_not_declare_still_fails_the_platform(
    target: IdentityTarget,
) -> None:
    report = await _run(Rewrite(target.app, _undocumented_token_errors), _options(target), ("platform",))
    assert "PLT-006" in _failed(report)
    assert "/identity/token" in report.result("PLT-006").evidence
