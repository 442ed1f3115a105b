"""The consent profile: our consent block passes it; deliberately broken variants fail it with the
right requirement IDs; without the suite's token issuer the profile cannot pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from conformance_tests import RunOptions, RunReport
from conformance_tests.tokens import TokenMinter
from consent.auth import JwtTokenVerifier
from consent.block import consent_block
from dpi.blocks import Block
from dpi.keys import SigningKey
from dpi.settings import Settings
from tests.conformance_tests.broken_apps import Headers, Rewrite
from tests.conformance_tests.conftest import AppFactory, Runner

ISSUER = "urn:dpi:conformance"
MINTER = TokenMinter(SigningKey.generate(), ISSUER)
OPTIONS = RunOptions(max_examples=3, seed=7, timeout=10.0, tokens=MINTER, callback_timeout=15.0)
CONSENT_REQUIREMENTS = {f"CNS-{number:03d}" for number in range(1, 17)}


def _trusting_block() -> Block:
    def verifier(_settings: Settings) -> JwtTokenVerifier:
        return JwtTokenVerifier(ISSUER, jwks=MINTER.jwks())

    return consent_block(token_verifier=verifier, background_interval_seconds=0.2)


def _failed(report: RunReport) -> set[str]:
    return {result.requirement.id for result in report.results if result.status.value == "fail"}


async def test_our_consent_block_passes(
    make_app: AppFactory, conformance_of: Runner, database_url: str
) -> None:
    app = await make_app([_trusting_block()], database_url=database_url, allow_private_callbacks=True)
    report = await conformance_of(app, ["consent"], OPTIONS)
    problems = {r.requirement.id: r.headline for r in report.results if r.status.value != "pass"}
    assert problems == {}
    assert {result.requirement.id for result in report.results} == CONSENT_REQUIREMENTS
    assert report.verdict == "pass"


async def test_without_the_suites_issuer_the_profile_cannot_pass(
    make_app: AppFactory, conformance_of: Runner
) -> None:
    app = await make_app([_trusting_block()], allow_private_callbacks=True)
    report = await conformance_of(app, ["consent"], RunOptions(max_examples=3, seed=7))
    assert {result.status.value for result in report.results} == {"skip"}
    assert report.verdict == "fail"


def _rewrite_json(path_suffix: str, change: Callable[[Any], Any], statuses: tuple[int, ...] = (200,)) -> Any:
    def rewrite(scope: Any, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not scope["path"].endswith(path_suffix) or status not in statuses:
            return status, headers, body
        try:
            document = json.loads(body)
        except ValueError:
            return status, headers, body
        return status, headers, json.dumps(change(document)).encode()

    return rewrite


def _permit_everything(decision: Any) -> Any:
    return {
        "decision": "permit",
        "reason_code": "consent.permitted",
        "consent_id": decision.get("consent_id") or "00000000-0000-4000-8000-000000000000",
        "permitted_fields": ["/names"],
    }


def _conflicts_as_success(
    scope: Any, status: int, headers: Headers, body: bytes
) -> tuple[int, Headers, bytes]:
    return (200 if status == 409 else status), headers, body


def _break_receipt_signatures(document: Any) -> Any:
    document["receipts"] = [_break_token(token) for token in document.get("receipts", [])]
    return document


def _break_token(token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def _edit_history(document: Any) -> Any:
    if document.get("events"):
        document["events"][0]["to_state"] = (
            "ACTIVE" if document["events"][0]["to_state"] != "ACTIVE" else "PAUSED"
        )
    return document


def _drop_member(member: str) -> Callable[[Any], Any]:
    def change(document: Any) -> Any:
        if isinstance(document, dict):
            document.pop(member, None)
        return document

    return change


def _status_as(old: int, new: int, path_suffix: str) -> Any:
    def rewrite(scope: Any, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        return (new if status == old and scope["path"].endswith(path_suffix) else status), headers, body

    return rewrite


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        (
            _rewrite_json("/v1/checks", _permit_everything),
            {"CNS-002", "CNS-005", "CNS-006", "CNS-007", "CNS-008"},
        ),
        (_conflicts_as_success, {"CNS-003"}),
        (_rewrite_json("/receipts", _break_receipt_signatures), {"CNS-010"}),
        (_rewrite_json("/v1/me/chain", _edit_history), {"CNS-012"}),
        (_rewrite_json("/export/kantara", _drop_member("consentReceiptID")), {"CNS-011"}),
        (_status_as(422, 200, "/approve"), {"CNS-015"}),
        (_status_as(404, 500, "/withdraw"), {"CNS-014"}),
    ],
    ids=[
        "permits-everything",
        "allows-illegal-transitions",
        "unsigned-receipts",
        "edited-chain",
        "invalid-export",
        "ignores-the-notice",
        "crashes-on-unknown-ids",
    ],
)
async def test_broken_consent_services_fail_the_right_requirements(
    make_app: AppFactory, conformance_of: Runner, rewrite: Any, expected: set[str]
) -> None:
    app = await make_app([_trusting_block()], allow_private_callbacks=True)
    report = await conformance_of(Rewrite(app, rewrite), ["consent"], OPTIONS)
    assert expected <= _failed(report)
    assert report.verdict == "fail"


async def test_a_service_without_notifications_fails_only_the_should(
    make_app: AppFactory, conformance_of: Runner
) -> None:
    app = await make_app([_trusting_block()], allow_private_callbacks=True)
    report = await conformance_of(Rewrite(app, _status_as(201, 500, "/v1/webhooks")), ["consent"], OPTIONS)
    assert _failed(report) == {"CNS-016"}
    assert report.verdict == "pass"
