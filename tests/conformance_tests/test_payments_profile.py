"""The payments-provider profile: our G2P Connect disburse server in front of the payments tests' provider
passes it (the suite a registered sender hearing its callbacks on a local port); deliberately broken
variants fail the requirements they break; without a sender registration the profile cannot pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import standards
from conformance_tests import RunOptions, RunReport, Status, find_profile, run_conformance
from conformance_tests.cli import conformance_group
from dpi.keys import SigningKey
from payments_adapter.sandbox import create_provider
from tests.conformance_tests import broken_payments
from tests.conformance_tests.identity_target import free_port
from tests.conformance_tests.payments_target import PaymentsTarget, payments_target
from tests.serving import serving

TARGET = "http://testserver"
REQUIREMENTS = [f"PAY-{number:03d}" for number in range(1, 8)]


def _options(target: PaymentsTarget, callback_timeout: float = 5.0) -> RunOptions:
    return RunOptions(
        max_examples=2, seed=7, timeout=10.0, callback_timeout=callback_timeout, payments=target.options
    )


async def _run(
    app: Any, options: RunOptions, profiles: tuple[str, ...] = ("payments-provider",)
) -> RunReport:
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


def test_the_profile_covers_its_catalogue_exactly() -> None:
    catalogue = [r.id for r in standards.requirements() if r.profile == "payments-provider"]
    assert catalogue == REQUIREMENTS
    assert sorted(find_profile("payments-provider").requirement_ids) == REQUIREMENTS


async def test_our_provider_passes_beside_the_platform_profile(tmp_path: Path, database_url: str) -> None:
    # The sandbox provider behind our G2P Connect server, its ledger in its own database.
    sandbox = create_provider(
        "sandbox", {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"}
    )
    target = await payments_target(
        tmp_path / "var", callback_port=free_port(), provider=sandbox, database_url=database_url
    )
    # The platform profile's generated requests test HTTP handling, not storage: once, on SQLite, is enough.
    profiles = (
        ("platform", "payments-provider") if database_url.startswith("sqlite") else ("payments-provider",)
    )
    report = await _run(target.app, _options(target), profiles)
    assert _why(report) == []
    payments = {r.id: r.status for r in report.results if r.profile == "payments-provider"}
    assert payments == dict.fromkeys(REQUIREMENTS, Status.PASS)
    assert report.verdict == "pass"
    await sandbox.aclose()


@pytest.mark.parametrize(
    ("breakage", "broken"),
    [
        (broken_payments.signed_with_another_key, {"PAY-002", "PAY-003", "PAY-004"}),
        (broken_payments.duplicates_accepted, {"PAY-003"}),
        (broken_payments.callback_never_sent, {"PAY-002", "PAY-003", "PAY-004", "PAY-005", "PAY-006"}),
        (broken_payments.status_reports_unknown_as_paid, {"PAY-004"}),
    ],
    ids=["wrong-signature", "duplicate-accepted-twice", "callback-never-sent", "status-query-wrong"],
)
async def test_a_broken_provider_fails_what_it_breaks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    breakage: Callable[[pytest.MonkeyPatch], None],
    broken: set[str],
) -> None:
    breakage(monkeypatch)
    target = await payments_target(tmp_path / "var", callback_port=free_port())
    # Callbacks that never come are waited for briefly; those that come are waited for as long as usual, so
    # a loaded machine cannot turn a slow callback into a failure of another requirement.
    waiting = 0.5 if breakage is broken_payments.callback_never_sent else 5.0
    report = await _run(target.app, _options(target, callback_timeout=waiting))
    assert _failed(report) == broken
    assert report.verdict == "fail"


async def test_a_provider_that_never_acknowledges_fails(tmp_path: Path) -> None:
    target = await payments_target(tmp_path / "var", callback_port=free_port())
    report = await _run(broken_payments.NoAcknowledgement(target.app), _options(target))
    assert {"PAY-001", "PAY-002", "PAY-003", "PAY-005", "PAY-006", "PAY-007"} <= _failed(report)
    assert report.verdict == "fail"


async def test_without_a_sender_registration_the_profile_cannot_pass(tmp_path: Path) -> None:
    target = await payments_target(tmp_path / "var", callback_port=free_port())
    report = await _run(target.app, RunOptions(max_examples=3, seed=7))
    assert {result.status for result in report.results} == {Status.SKIP}
    assert report.verdict == "fail"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--pay-sender-id", "S"], "--pay-sender-id needs --pay-sender-key"),
        (
            [
                "--pay-sender-id",
                "S",
                "--pay-sender-key",
                "KEY",
                "--pay-receiver-id",
                "R",
                "--pay-payer-fa",
                "a@b",
                "--pay-payee-fa",
                "c@d",
                "--pay-callback-listen",
                "nowhere",
            ],
            "--pay-callback-listen must be HOST:PORT",
        ),
        (
            [
                "--pay-sender-id",
                "S",
                "--pay-sender-key",
                "KEY",
                "--pay-receiver-id",
                "R",
                "--pay-payer-fa",
                "not-an-address",
                "--pay-payee-fa",
                "c@d",
            ],
            "payer_fa must be a financial address",
        ),
    ],
)
def test_unusable_payments_options_are_usage_errors(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    key = tmp_path / "suite.pem"
    key.write_bytes(SigningKey.generate("EdDSA").private_pem())
    filled = [str(key) if argument == "KEY" else argument for argument in arguments]
    result = CliRunner().invoke(
        conformance_group,
        [
            "run",
            "--target",
            TARGET,
            "--profile",
            "payments-provider",
            *filled,
            "--report-dir",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
