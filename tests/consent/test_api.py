"""The consent block over HTTP: the citizen's, the operator's, the guardian's and the organisations' flows,
every refusal with its reason code, hostile bodies, privacy of the subject, the contract and conformance."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

import standards
from conformance_tests import RunOptions, run_conformance
from consent.background import run_once
from consent.block import consent_block
from consent.demo import AGREEMENTS
from consent.demo import load as load_demo
from consent.models import AgreementRow, ConsentRow, EventRow, ReceiptRow
from consent.receipts import verify_receipt
from dpi import db
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block, BlockContext
from dpi.openapi import undocumented_bodies
from dpi.settings import Settings
from tests.consent.conftest import (
    AMINA,
    CONSUMER,
    EXCHANGE,
    GUARDIAN,
    MINOR,
    OPERATOR,
    PROVIDER,
    YOUSSEF,
    TokenIssuer,
)
from tests.serving import serving

Json = dict[str, Any]
UNKNOWN_ID = "0b7e4c1a-3f5d-4e2b-9a8c-1d2e3f4a5b6c"


def _self(issuer: TokenIssuer, subject: str = AMINA) -> dict[str, str]:
    return issuer.headers(subject, "consent:self")


def _consumer(issuer: TokenIssuer, member: str = CONSUMER) -> dict[str, str]:
    return issuer.headers("jobseekers-client", "consent:request", member=member)


def _exchange(issuer: TokenIssuer) -> dict[str, str]:
    return issuer.headers("exchange-gateway", "consent:check", member=EXCHANGE)


def _check_body(subject: str = AMINA, fields: tuple[str, ...] = ("/names", "/date_of_birth")) -> Json:
    return {
        "consumer": CONSUMER,
        "provider": PROVIDER,
        "service": "person",
        "purpose": "jobseeker-registration",
        "subject": subject,
        "fields": list(fields),
    }


def _valid(name: str, document: Any) -> None:
    assert standards.validator(name).issues(document) == []


async def _ask(client: httpx.AsyncClient, issuer: TokenIssuer, subject: str = AMINA, **extra: Any) -> Json:
    # Only an attested source (a registry or an authority) may state a guardianship.
    headers = (
        issuer.headers("civil-registry-client", "consent:request", "consent:guardianship", member=CONSUMER)
        if "guardianship" in extra
        else _consumer(issuer)
    )
    response = await client.post(
        "/consent/v1/consents",
        json={"agreement_id": "mol-jobseeker-registration", "subject": subject, **extra},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    record: Json = response.json()
    return record


def _approval(agreement: Mapping[str, Any], language: str = "fr", channel: str = "web") -> Json:
    return {
        "channel": channel,
        "notice": {"language": language, "hash": agreement["notices"][language]["hash"]},
    }


async def _count(app: DpiApp, model: Any) -> int:
    engine = db.create_engine(app.runtime.settings.database)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())
    finally:
        await engine.dispose()


# --- the citizen's flow ---------------------------------------------------------------------------------


async def test_citizen_approves_with_the_notice_seen_gets_a_verifiable_receipt_and_withdraws(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    _valid("consent-agreement", published_agreement)
    assert published_agreement["version"] == 1
    record = await _ask(consent_client, token_issuer)
    _valid("consent-record", record)
    assert record["state"] == "REQUESTED"

    listed = await consent_client.get("/consent/v1/me/consents", headers=_self(token_issuer))
    assert listed.status_code == 200
    _valid("consent-list", listed.json())
    assert [item["consent_id"] for item in listed.json()["items"]] == [record["consent_id"]]

    path = f"/consent/v1/me/consents/{record['consent_id']}"
    approved = await consent_client.post(
        f"{path}/approve", json=_approval(published_agreement, "ar"), headers=_self(token_issuer)
    )
    assert approved.status_code == 200, approved.text
    _valid("consent-action-result", approved.json())
    assert approved.json()["record"]["state"] == "ACTIVE"
    assert approved.json()["event"]["notice"] == {
        "language": "ar",
        "hash": published_agreement["notices"]["ar"]["hash"],
    }

    permitted = await consent_client.post(
        "/consent/v1/checks", json=_check_body(), headers=_exchange(token_issuer)
    )
    assert permitted.status_code == 200
    assert permitted.json()["decision"] == "permit"
    assert permitted.json()["consent_id"] == record["consent_id"]

    jwks = (await consent_client.get("/consent/.well-known/jwks.json")).json()
    _valid("jwks", jwks)
    receipt = verify_receipt(approved.json()["receipt"], jwks)
    assert receipt["action"] == "approve"
    assert receipt["state"] == "ACTIVE"
    assert receipt["event_hash"] == approved.json()["event"]["hash"]

    withdrawn = await consent_client.post(
        f"{path}/withdraw", json={"channel": "sms", "reason": "found work"}, headers=_self(token_issuer)
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["record"]["state"] == "WITHDRAWN"
    assert verify_receipt(withdrawn.json()["receipt"], jwks)["action"] == "withdraw"

    denied = await consent_client.post(
        "/consent/v1/checks", json=_check_body(), headers=_exchange(token_issuer)
    )
    assert denied.json()["decision"] == "deny"
    assert denied.json()["reason_code"] == "consent.withdrawn"

    receipts = await consent_client.get(f"{path}/receipts", headers=_self(token_issuer))
    _valid("consent-receipt-list", receipts.json())
    assert [verify_receipt(jws, jwks)["action"] for jws in receipts.json()["receipts"]] == [
        "approve",
        "withdraw",
    ]

    history = await consent_client.get(f"{path}/history", headers=_self(token_issuer))
    _valid("consent-history", history.json())
    assert [(e["action"], e["channel"]) for e in history.json()["events"]] == [
        ("request", "api"),
        ("approve", "web"),
        ("withdraw", "sms"),
    ]

    only_withdrawn = await consent_client.get(
        "/consent/v1/me/consents", params={"state": "WITHDRAWN"}, headers=_self(token_issuer)
    )
    assert only_withdrawn.json()["total"] == 1
    only_active = await consent_client.get(
        "/consent/v1/me/consents", params={"state": "ACTIVE"}, headers=_self(token_issuer)
    )
    assert only_active.json() == {"items": [], "total": 0}


async def test_asking_again_while_a_request_is_open_returns_it_with_200(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    first = await _ask(consent_client, token_issuer)
    again = await consent_client.post(
        "/consent/v1/consents",
        json={"agreement_id": "mol-jobseeker-registration", "subject": AMINA},
        headers=_consumer(token_issuer),
    )
    assert again.status_code == 200
    assert again.json()["consent_id"] == first["consent_id"]


async def test_agreements_are_public_by_version_and_a_change_publishes_the_next(
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    published_agreement: Json,
    agreement_input: Json,
) -> None:
    agreement_input["retention_days"] = 365
    second = await consent_client.post(
        "/consent/v1/agreements",
        json=agreement_input,
        headers=token_issuer.headers("registrar", "consent:admin"),
    )
    assert second.status_code == 201
    assert second.json()["version"] == 2
    latest = await consent_client.get("/consent/v1/agreements/mol-jobseeker-registration")
    assert latest.json()["version"] == 2
    first = await consent_client.get("/consent/v1/agreements/mol-jobseeker-registration/versions/1")
    assert first.json() == published_agreement


async def test_an_operator_records_the_present_subjects_decision_as_assisted(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(consent_client, token_issuer, YOUSSEF)
    operator = token_issuer.headers(OPERATOR, "consent:operator")
    found = await consent_client.post(
        "/consent/v1/assisted/consents/search",
        json={"subject": YOUSSEF, "state": "REQUESTED"},
        headers=operator,
    )
    assert found.status_code == 200
    assert [item["consent_id"] for item in found.json()["items"]] == [record["consent_id"]]

    approved = await consent_client.post(
        f"/consent/v1/assisted/consents/{record['consent_id']}/approve",
        json=_approval(published_agreement, "ar", channel="assisted"),
        headers=operator,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["event"]["actor"] == {"role": "operator", "id": OPERATOR}
    assert approved.json()["event"]["channel"] == "assisted"
    assert (
        verify_receipt(
            approved.json()["receipt"], (await consent_client.get("/consent/.well-known/jwks.json")).json()
        )["channel"]
        == "assisted"
    )

    # What Youssef sees in his own history: the decision was recorded for him at a service centre.
    history = await consent_client.get(
        f"/consent/v1/me/consents/{record['consent_id']}/history", headers=_self(token_issuer, YOUSSEF)
    )
    assert [(e["action"], e["channel"], e["actor"]["role"]) for e in history.json()["events"]][-1] == (
        "approve",
        "assisted",
        "operator",
    )


@pytest.mark.parametrize(
    ("body", "status", "reason_code"),
    [
        ({"channel": "web"}, 422, "request.invalid"),
        ({"channel": "assisted", "operator_id": "someone-else"}, 403, "consent.actor_not_allowed"),
    ],
)
async def test_assisted_actions_need_the_assisted_channel_and_the_tokens_operator(
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    published_agreement: Json,
    body: Json,
    status: int,
    reason_code: str,
) -> None:
    record = await _ask(consent_client, token_issuer, YOUSSEF)
    response = await consent_client.post(
        f"/consent/v1/assisted/consents/{record['consent_id']}/refuse",
        json=body,
        headers=token_issuer.headers(OPERATOR, "consent:operator"),
    )
    assert (response.status_code, response.json()["reason_code"]) == (status, reason_code)


async def test_a_guardian_decides_for_a_minor_who_may_still_withdraw(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(
        consent_client,
        token_issuer,
        MINOR,
        guardianship={"guardian": GUARDIAN, "basis": "minor", "until": "2099-01-01"},
    )
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    by_minor = await consent_client.post(
        f"{path}/approve", json=_approval(published_agreement), headers=_self(token_issuer, MINOR)
    )
    assert (by_minor.status_code, by_minor.json()["reason_code"]) == (403, "consent.actor_not_allowed")

    guardians_list = await consent_client.get(
        "/consent/v1/me/consents", headers=_self(token_issuer, GUARDIAN)
    )
    assert [item["consent_id"] for item in guardians_list.json()["items"]] == [record["consent_id"]]
    by_guardian = await consent_client.post(
        f"{path}/approve", json=_approval(published_agreement), headers=_self(token_issuer, GUARDIAN)
    )
    assert by_guardian.status_code == 200
    assert by_guardian.json()["record"]["granted_by"] == {"role": "guardian", "actor": GUARDIAN}

    withdrawn = await consent_client.post(
        f"{path}/withdraw", json={"channel": "web"}, headers=_self(token_issuer, MINOR)
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["event"]["actor"] == {"role": "subject", "id": MINOR}


async def test_the_controller_and_a_provider_may_revoke_others_learn_nothing(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    first = await _ask(consent_client, token_issuer)
    second = await _ask(consent_client, token_issuer, YOUSSEF)
    stranger = await consent_client.post(
        f"/consent/v1/consents/{first['consent_id']}/revoke",
        json={"channel": "api"},
        headers=token_issuer.headers("benefits", "consent:revoke", member="DPI/GOV/SPA/benefits"),
    )
    missing = await consent_client.post(
        f"/consent/v1/consents/{UNKNOWN_ID}/revoke",
        json={"channel": "api"},
        headers=token_issuer.headers("benefits", "consent:revoke", member="DPI/GOV/SPA/benefits"),
    )
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json()["reason_code"] == missing.json()["reason_code"] == "consent.not_found"
    assert stranger.json()["message"] == missing.json()["message"]

    by_controller = await consent_client.post(
        f"/consent/v1/consents/{first['consent_id']}/revoke",
        json={"channel": "api", "reason": "registration closed"},
        headers=token_issuer.headers("mol", "consent:revoke", member=CONSUMER),
    )
    assert by_controller.status_code == 200
    assert by_controller.json()["event"]["actor"] == {"role": "controller", "id": CONSUMER}
    assert by_controller.json()["receipt"]
    by_provider = await consent_client.post(
        f"/consent/v1/consents/{second['consent_id']}/revoke",
        json={"channel": "api"},
        headers=token_issuer.headers("moi", "consent:revoke", member=PROVIDER),
    )
    assert by_provider.json()["event"]["actor"] == {"role": "provider", "id": PROVIDER}
    again = await consent_client.post(
        f"/consent/v1/consents/{second['consent_id']}/revoke",
        json={"channel": "api"},
        headers=token_issuer.headers("moi", "consent:revoke", member=PROVIDER),
    )
    assert (again.status_code, again.json()["reason_code"]) == (409, "consent.transition_not_allowed")


async def test_an_authority_invalidates_and_the_consent_never_permits_again(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(consent_client, token_issuer)
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    await consent_client.post(
        f"{path}/approve", json=_approval(published_agreement), headers=_self(token_issuer)
    )
    invalidated = await consent_client.post(
        f"/consent/v1/consents/{record['consent_id']}/invalidate",
        json={"channel": "api", "reason": "decision 2026-14 of the data protection authority"},
        headers=token_issuer.headers("dpa-officer", "consent:invalidate", member="DPI/GOV/DPA/supervision"),
    )
    assert invalidated.status_code == 200
    assert invalidated.json()["record"]["state"] == "INVALIDATED"
    check = await consent_client.post(
        "/consent/v1/checks", json=_check_body(), headers=_exchange(token_issuer)
    )
    assert check.json()["reason_code"] == "consent.invalidated"
    resumed = await consent_client.post(
        f"{path}/resume", json={"channel": "web"}, headers=_self(token_issuer)
    )
    assert (resumed.status_code, resumed.json()["reason_code"]) == (409, "consent.transition_not_allowed")


async def test_pause_resume_defer_and_refuse_move_the_record_as_the_table_says(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(consent_client, token_issuer)
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    states = []
    for action, body in [
        ("defer", {"channel": "web"}),
        ("approve", _approval(published_agreement, "en")),
        ("pause", {"channel": "web"}),
        ("resume", {"channel": "sms"}),
    ]:
        response = await consent_client.post(f"{path}/{action}", json=body, headers=_self(token_issuer))
        assert response.status_code == 200, (action, response.text)
        states.append(response.json()["record"]["state"])
    assert states == ["DEFERRED", "ACTIVE", "PAUSED", "ACTIVE"]
    other = await _ask(consent_client, token_issuer, YOUSSEF)
    refused = await consent_client.post(
        f"/consent/v1/me/consents/{other['consent_id']}/refuse",
        json={"channel": "web"},
        headers=_self(token_issuer, YOUSSEF),
    )
    assert refused.json()["record"]["state"] == "REFUSED"
    assert "receipt" not in refused.json()


async def test_exports_and_chain_are_valid_documents_of_the_callers_own_records(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(consent_client, token_issuer)
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    await consent_client.post(
        f"{path}/approve", json=_approval(published_agreement), headers=_self(token_issuer)
    )
    iso = await consent_client.get(f"{path}/export/iso27560", headers=_self(token_issuer))
    assert iso.status_code == 200
    _valid("iso27560-consent-record", iso.json())
    kantara = await consent_client.get(f"{path}/export/kantara", headers=_self(token_issuer))
    assert kantara.status_code == 200
    _valid("kantara-consent-receipt", kantara.json())
    chain = await consent_client.get("/consent/v1/me/chain", headers=_self(token_issuer))
    assert chain.status_code == 200
    _valid("consent-chain", chain.json())
    assert chain.json()["subject"] == AMINA
    assert [event["action"] for event in chain.json()["events"]] == ["request", "approve"]
    for export in ("iso27560", "kantara"):
        other = await consent_client.get(f"{path}/export/{export}", headers=_self(token_issuer, YOUSSEF))
        assert (other.status_code, other.json()["reason_code"]) == (404, "consent.not_found")


async def test_members_manage_their_own_webhooks_and_see_their_deliveries(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    member = token_issuer.headers("mol", "consent:webhooks", member=CONSUMER)
    registered = await consent_client.post(
        "/consent/v1/webhooks",
        json={
            "member": CONSUMER,
            "url": "https://jobseekers.gov.example/consent-notices",
            "events": ["withdrawn"],
        },
        headers=member,
    )
    assert registered.status_code == 201, registered.text
    _valid("consent-webhook", registered.json())
    for_other = await consent_client.post(
        "/consent/v1/webhooks",
        json={"member": PROVIDER, "url": "https://registry.gov.example/hook", "events": ["revoked"]},
        headers=member,
    )
    assert for_other.status_code == 403
    listed = await consent_client.get("/consent/v1/webhooks", headers=member)
    _valid("consent-webhook-list", listed.json())
    assert [hook["webhook_id"] for hook in listed.json()["items"]] == [registered.json()["webhook_id"]]
    others = await consent_client.get(
        "/consent/v1/webhooks", headers=token_issuer.headers("moi", "consent:webhooks", member=PROVIDER)
    )
    assert others.json() == {"items": []}
    deliveries = await consent_client.get("/consent/v1/deliveries", params={"status": "dead"}, headers=member)
    assert deliveries.status_code == 200
    _valid("consent-delivery-list", deliveries.json())
    every = await consent_client.get(
        "/consent/v1/deliveries", headers=token_issuer.headers("platform-operator", "consent:admin")
    )
    assert every.status_code == 200
    removed = await consent_client.delete(
        f"/consent/v1/webhooks/{registered.json()['webhook_id']}", headers=member
    )
    assert removed.status_code == 204
    gone = await consent_client.delete(
        f"/consent/v1/webhooks/{registered.json()['webhook_id']}", headers=member
    )
    assert (gone.status_code, gone.json()["reason_code"]) == (404, "webhook.not_found")


# --- refusals -------------------------------------------------------------------------------------------

ADMIN = ("registrar", ("consent:admin",), None)
SELF = (AMINA, ("consent:self",), None)
CONSUMER_TOKEN = ("mol", ("consent:request",), CONSUMER)
NO_SCOPE = (AMINA, ("openid",), None)
NO_MEMBER = ("mol", ("consent:request", "consent:revoke", "consent:webhooks"), None)
ACTION = {"channel": "web"}
CONSENT = f"/consent/v1/me/consents/{UNKNOWN_ID}"

# (method, path, body, token (None: no Authorization header), expected status, expected reason code)
REFUSALS: list[tuple[str, str, Any, Any, int, str]] = [
    ("POST", "/consent/v1/agreements", AGREEMENTS[0], None, 401, "auth.token_missing"),
    ("POST", "/consent/v1/agreements", AGREEMENTS[0], SELF, 403, "auth.scope_missing"),
    (
        "POST",
        "/consent/v1/agreements",
        {**AGREEMENTS[0], "purpose": "marketing"},
        ADMIN,
        422,
        "agreement.invalid",
    ),
    ("POST", "/consent/v1/agreements", {**AGREEMENTS[0], "version": 3}, ADMIN, 422, "request.invalid"),
    ("GET", "/consent/v1/agreements/no-such-agreement", None, None, 404, "agreement.not_found"),
    ("GET", "/consent/v1/agreements/Not_A_Slug", None, None, 400, "request.invalid_parameter"),
    (
        "GET",
        "/consent/v1/agreements/mol-jobseeker-registration/versions/0",
        None,
        None,
        400,
        "request.invalid_parameter",
    ),
    (
        "GET",
        "/consent/v1/agreements/mol-jobseeker-registration/versions/x1",
        None,
        None,
        400,
        "request.invalid_parameter",
    ),
    (
        "GET",
        "/consent/v1/agreements/mol-jobseeker-registration/versions/99",
        None,
        None,
        404,
        "agreement.not_found",
    ),
    (
        "POST",
        "/consent/v1/consents",
        {"agreement_id": "no-such-agreement", "subject": AMINA},
        CONSUMER_TOKEN,
        404,
        "agreement.not_found",
    ),
    (
        "POST",
        "/consent/v1/consents",
        {"agreement_id": "mol-jobseeker-registration", "subject": AMINA},
        NO_MEMBER,
        403,
        "consent.actor_not_allowed",
    ),
    (
        "POST",
        "/consent/v1/consents",
        {"agreement_id": "mol-jobseeker-registration", "subject": AMINA},
        ("spa", ("consent:request",), "DPI/GOV/SPA/benefits"),
        403,
        "consent.actor_not_allowed",
    ),
    (
        "POST",
        "/consent/v1/consents",
        {"agreement_id": "mol-jobseeker-registration", "subject": "short"},
        CONSUMER_TOKEN,
        422,
        "request.invalid",
    ),
    (
        "POST",
        "/consent/v1/consents",
        {"agreement_id": "mol-jobseeker-registration", "subject": AMINA},
        SELF,
        403,
        "auth.scope_missing",
    ),
    ("GET", "/consent/v1/me/consents", None, None, 401, "auth.token_missing"),
    ("GET", "/consent/v1/me/consents", None, NO_SCOPE, 403, "auth.scope_missing"),
    ("GET", "/consent/v1/me/consents?state=active", None, SELF, 400, "request.invalid_parameter"),
    (
        "GET",
        "/consent/v1/me/consents?state=ACTIVE&state=PAUSED",
        None,
        SELF,
        400,
        "request.invalid_parameter",
    ),
    ("GET", CONSENT, None, SELF, 404, "consent.not_found"),
    ("GET", "/consent/v1/me/consents/not-a-uuid", None, SELF, 400, "request.invalid_parameter"),
    ("GET", f"/consent/v1/me/consents/{UNKNOWN_ID.upper()}", None, SELF, 400, "request.invalid_parameter"),
    ("GET", f"{CONSENT}/history", None, SELF, 404, "consent.not_found"),
    ("GET", f"{CONSENT}/receipts", None, SELF, 404, "consent.not_found"),
    ("GET", f"{CONSENT}/export/iso27560", None, SELF, 404, "consent.not_found"),
    ("POST", f"{CONSENT}/approve", ACTION, SELF, 404, "consent.not_found"),
    ("POST", f"{CONSENT}/revoke", ACTION, SELF, 404, "route.not_found"),
    ("POST", f"{CONSENT}/approve", {"channel": "assisted"}, SELF, 422, "request.invalid"),
    ("POST", f"{CONSENT}/approve", {"channel": "web", "operator_id": "op-1"}, SELF, 422, "request.invalid"),
    ("POST", f"{CONSENT}/approve", {"channel": "carrier-pigeon"}, SELF, 422, "request.invalid"),
    ("POST", f"{CONSENT}/approve", ACTION, None, 401, "auth.token_missing"),
    ("GET", "/consent/v1/me/chain", None, NO_SCOPE, 403, "auth.scope_missing"),
    ("POST", "/consent/v1/assisted/consents/search", {"subject": AMINA}, SELF, 403, "auth.scope_missing"),
    (
        "POST",
        f"/consent/v1/assisted/consents/{UNKNOWN_ID}/approve",
        {"channel": "assisted"},
        (OPERATOR, ("consent:operator",), None),
        404,
        "consent.not_found",
    ),
    (
        "POST",
        f"/consent/v1/consents/{UNKNOWN_ID}/revoke",
        ACTION,
        NO_MEMBER,
        403,
        "consent.actor_not_allowed",
    ),
    (
        "POST",
        f"/consent/v1/consents/{UNKNOWN_ID}/revoke",
        {"channel": "sms"},
        NO_MEMBER,
        422,
        "request.invalid",
    ),
    ("POST", f"/consent/v1/consents/{UNKNOWN_ID}/invalidate", ACTION, SELF, 403, "auth.scope_missing"),
    (
        "POST",
        f"/consent/v1/consents/{UNKNOWN_ID}/invalidate",
        ACTION,
        ("dpa", ("consent:invalidate",), None),
        404,
        "consent.not_found",
    ),
    (
        "POST",
        "/consent/v1/checks",
        {"subject": AMINA},
        ("gw", ("consent:check",), None),
        422,
        "request.invalid",
    ),
    ("POST", "/consent/v1/checks", _check_body(), SELF, 403, "auth.scope_missing"),
    ("POST", "/consent/v1/checks", _check_body(), None, 401, "auth.token_missing"),
    ("GET", "/consent/v1/webhooks", None, NO_MEMBER, 403, "consent.actor_not_allowed"),
    (
        "DELETE",
        f"/consent/v1/webhooks/{UNKNOWN_ID}",
        None,
        ("mol", ("consent:webhooks",), CONSUMER),
        404,
        "webhook.not_found",
    ),
    (
        "DELETE",
        "/consent/v1/webhooks/nope",
        None,
        ("mol", ("consent:webhooks",), CONSUMER),
        400,
        "request.invalid_parameter",
    ),
    ("GET", "/consent/v1/deliveries", None, SELF, 403, "auth.scope_missing"),
    ("GET", "/consent/v1/deliveries?status=failed", None, ADMIN, 400, "request.invalid_parameter"),
    ("PUT", "/consent/v1/checks", None, None, 405, "method.not_allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "token", "status", "reason_code"),
    REFUSALS,
    ids=[f"{r[0]} {r[1]} {r[5]}" for r in REFUSALS],
)
async def test_every_refusal_has_its_status_and_reason_code(
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    published_agreement: Json,
    method: str,
    path: str,
    body: Any,
    token: Any,
    status: int,
    reason_code: str,
) -> None:
    headers = {} if token is None else token_issuer.headers(token[0], *token[1], member=token[2])
    response = await consent_client.request(method, path, json=body, headers=headers)
    assert (response.status_code, response.json()["reason_code"]) == (status, reason_code), response.text
    _valid("error", response.json())
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_stranger_cannot_tell_someone_elses_consent_from_a_missing_one(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(consent_client, token_issuer)
    for suffix, method, body in [
        ("", "GET", None),
        ("/history", "GET", None),
        ("/receipts", "GET", None),
        ("/pause", "POST", ACTION),
    ]:
        theirs = await consent_client.request(
            method,
            f"/consent/v1/me/consents/{record['consent_id']}{suffix}",
            json=body,
            headers=_self(token_issuer, YOUSSEF),
        )
        missing = await consent_client.request(
            method,
            f"/consent/v1/me/consents/{UNKNOWN_ID}{suffix}",
            json=body,
            headers=_self(token_issuer, YOUSSEF),
        )
        assert theirs.status_code == missing.status_code == 404
        assert {k: v for k, v in theirs.json().items() if k != "request_id"} == {
            k: v for k, v in missing.json().items() if k != "request_id"
        }
    listed = await consent_client.get("/consent/v1/me/consents", headers=_self(token_issuer, YOUSSEF))
    assert listed.json() == {"items": [], "total": 0}


async def test_approving_with_a_notice_not_shown_is_refused_and_changes_nothing(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(consent_client, token_issuer)
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    for body in [
        {"channel": "web"},
        {
            "channel": "web",
            "notice": {"language": "en", "hash": published_agreement["notices"]["fr"]["hash"]},
        },
        {"channel": "web", "notice": {"language": "fr", "hash": "sha256:" + "0" * 64}},
    ]:
        response = await consent_client.post(f"{path}/approve", json=body, headers=_self(token_issuer))
        assert (response.status_code, response.json()["reason_code"]) == (422, "consent.notice_mismatch")
    assert (await consent_client.get(path, headers=_self(token_issuer))).json()["state"] == "REQUESTED"
    withdrawn_too_early = await consent_client.post(
        f"{path}/withdraw", json=ACTION, headers=_self(token_issuer)
    )
    assert (withdrawn_too_early.status_code, withdrawn_too_early.json()["reason_code"]) == (
        409,
        "consent.transition_not_allowed",
    )


# --- hostile bodies -------------------------------------------------------------------------------------

HOSTILE: list[tuple[str, bytes, str, int, str]] = [
    ("/consent/v1/agreements", b'{"agreement_id": ', "application/json", 400, "request.malformed_json"),
    ("/consent/v1/agreements", b"[]", "application/json", 422, "request.invalid"),
    ("/consent/v1/agreements", b'{"revocable": NaN}', "application/json", 400, "request.malformed_json"),
    (
        "/consent/v1/agreements",
        b"agreement_id=x",
        "application/x-www-form-urlencoded",
        415,
        "request.unsupported_media_type",
    ),
    (
        "/consent/v1/agreements",
        b"[" * 100_000 + b"]" * 100_000,
        "application/json",
        400,
        "request.malformed_json",
    ),
    (
        "/consent/v1/agreements",
        b'{"a": "' + b"x" * 2_000_000 + b'"}',
        "application/json",
        413,
        "request.too_large",
    ),
    ("/consent/v1/agreements", b"\xff\xfe{}", "application/json", 400, "request.malformed_json"),
    (
        "/consent/v1/consents",
        b'{"agreement_id": 7, "subject": ["a"]}',
        "application/json",
        422,
        "request.invalid",
    ),
    (
        "/consent/v1/consents",
        b'{"agreement_id": "mol-jobseeker-registration", "subject": "' + b"A" * 129 + b'"}',
        "application/json",
        422,
        "request.invalid",
    ),
    ("/consent/v1/checks", b'{"consumer": null}', "application/json", 422, "request.invalid"),
    ("/consent/v1/checks", b"null", "application/json", 422, "request.invalid"),
    (
        "/consent/v1/webhooks",
        b'{"member": "DPI/GOV/MOL/jobseekers", "url": "ftp://x", "events": []}',
        "application/json",
        422,
        "request.invalid",
    ),
    (
        f"/consent/v1/me/consents/{UNKNOWN_ID}/approve",
        b'{"channel": "web", "notice": {"language": "de", "hash": 1}}',
        "application/json",
        422,
        "request.invalid",
    ),
    (
        f"/consent/v1/me/consents/{UNKNOWN_ID}/approve",
        b'{"channel": "web", "reason": "' + b"r" * 501 + b'"}',
        "application/json",
        422,
        "request.invalid",
    ),
]


@pytest.mark.parametrize(
    ("path", "content", "content_type", "status", "reason_code"), HOSTILE, ids=range(len(HOSTILE))
)
async def test_hostile_bodies_are_refused_with_a_reason_never_a_500_never_a_write(
    consent_app: DpiApp,
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    path: str,
    content: bytes,
    content_type: str,
    status: int,
    reason_code: str,
) -> None:
    headers = {
        "content-type": content_type,
        **token_issuer.headers(
            AMINA,
            "consent:admin",
            "consent:request",
            "consent:check",
            "consent:webhooks",
            "consent:self",
            member=CONSUMER,
        ),
    }
    before = [await _count(consent_app, model) for model in (AgreementRow, ConsentRow, EventRow, ReceiptRow)]
    response = await consent_client.post(path, content=content, headers=headers)
    assert (response.status_code, response.json()["reason_code"]) == (status, reason_code)
    _valid("error", response.json())
    assert [
        await _count(consent_app, model) for model in (AgreementRow, ConsentRow, EventRow, ReceiptRow)
    ] == before


async def test_a_refused_agreement_version_leaves_no_partial_write(
    consent_app: DpiApp,
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    published_agreement: Json,
    agreement_input: Json,
) -> None:
    agreement_input["data_items"].append({"schema": "no-such-schema@1.0.0", "fields": ["/x"]})
    response = await consent_client.post(
        "/consent/v1/agreements",
        json=agreement_input,
        headers=token_issuer.headers("registrar", "consent:admin"),
    )
    assert (response.status_code, response.json()["reason_code"]) == (422, "agreement.invalid")
    assert response.json()["details"][0]["pointer"] == "/data_items/1/schema"
    assert await _count(consent_app, AgreementRow) == 1


# --- privacy --------------------------------------------------------------------------------------------


async def test_the_subject_never_appears_in_logs_or_error_bodies(
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    published_agreement: Json,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The level the service runs at; the test client's own request lines (logger httpx) are not the server's.
    caplog.set_level(logging.INFO)
    record = await _ask(consent_client, token_issuer)
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    bodies = []
    for method, url, body, headers in [
        ("POST", f"{path}/approve", _approval(published_agreement), _self(token_issuer)),
        ("POST", f"{path}/approve", _approval(published_agreement), _self(token_issuer)),
        ("POST", f"{path}/withdraw", {"channel": "web"}, _self(token_issuer)),
        ("POST", "/consent/v1/checks", _check_body(), _exchange(token_issuer)),
        ("POST", "/consent/v1/checks", {**_check_body(), "fields": [AMINA]}, _exchange(token_issuer)),
        (
            "POST",
            "/consent/v1/consents",
            {"agreement_id": "mol-jobseeker-registration", "subject": AMINA, "x": AMINA},
            _consumer(token_issuer),
        ),
        ("GET", f"/consent/v1/me/consents?state={AMINA}", None, _self(token_issuer)),
        ("GET", f"/consent/v1/me/consents/{AMINA}", None, _self(token_issuer)),
        (
            "POST",
            "/consent/v1/assisted/consents/search",
            {"subject": AMINA, "state": AMINA},
            token_issuer.headers(OPERATOR, "consent:operator"),
        ),
    ]:
        response = await consent_client.request(method, url, json=body, headers=headers)
        if response.status_code >= 400:
            bodies.append(response.text)
    assert len(bodies) >= 5
    assert not [text for text in bodies if AMINA in text]
    logged = [
        json.dumps({**line.__dict__, "msg": line.getMessage()}, default=str)
        for line in caplog.records
        if line.name != "httpx"
    ]
    assert logged
    assert not [line for line in logged if AMINA in line]


# --- contract and conformance ---------------------------------------------------------------------------


async def test_every_body_of_the_consent_api_is_documented(consent_client: httpx.AsyncClient) -> None:
    document = (await consent_client.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    consent_paths = [path for path in document["paths"] if path.startswith("/consent/")]
    assert len(consent_paths) >= 18
    action = document["paths"]["/consent/v1/me/consents/{consent_id}/{action}"]["post"]
    assert action["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/consent-action-1.0.0"
    }


async def test_capabilities_name_the_consent_block_and_profile(consent_client: httpx.AsyncClient) -> None:
    document = (await consent_client.get("/.well-known/dpi-capabilities")).json()
    _valid("capabilities", document)
    assert {"name": "consent", "version": "1.0.0"} in document["profiles"]
    entry = next(block for block in document["blocks"] if block["name"] == "consent")
    assert entry["prefix"] == "/consent"


async def test_the_platform_profile_still_passes_with_the_consent_block(
    sqlite_settings: Settings, consent_block_under_test: Block
) -> None:
    await migrate(sqlite_settings, [consent_block_under_test])
    app = create_app(sqlite_settings, blocks=[consent_block_under_test])
    async with serving(app):
        report = await run_conformance(
            "http://testserver",
            ["platform"],
            options=RunOptions(max_examples=2, seed=7, timeout=10.0),
            transport=httpx.ASGITransport(app=app),
        )
    not_passing = {result.id: result.evidence for result in report.results if result.status.value != "pass"}
    assert not_passing == {}
    assert report.verdict == "pass"


# --- demo and background --------------------------------------------------------------------------------


async def test_the_demo_agreements_load_once_and_validate(consent_app: DpiApp, settings: Settings) -> None:
    engine = db.create_engine(settings.database)
    context = BlockContext(
        settings=settings, engine=engine, sessions=db.session_factory(engine), keys=consent_app.runtime.keys
    )
    try:
        first = await load_demo(context)
        second = await load_demo(context)
    finally:
        await engine.dispose()
    assert len(first) == len(second) == len(AGREEMENTS) == 3
    assert all("published" in line and "already" not in line for line in first)
    assert all("already published" in line for line in second)
    assert "/names, /date_of_birth from DPI/GOV/MOI/civil-registry person" in first[0]
    assert await _count(consent_app, AgreementRow) == 3


async def test_a_background_round_sweeps_signs_and_dispatches_without_failing(
    consent_app: DpiApp,
    consent_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    published_agreement: Json,
    settings: Settings,
) -> None:
    from consent.block import ConsentRuntime
    from consent.checks import ConsentChecker
    from consent.service import ConsentService

    record = await _ask(consent_client, token_issuer)
    engine = db.create_engine(settings.database)
    sessions = db.session_factory(engine)
    context = BlockContext(settings=settings, engine=engine, sessions=sessions, keys=consent_app.runtime.keys)
    runtime = ConsentRuntime(
        context=context,
        service=ConsentService(sessions=sessions, keys=context.keys, issuer="DPI/GOV/MOI/consent"),
        checker=ConsentChecker(sessions),
        verifier=token_issuer.verifier(),
        webhook_client=httpx.AsyncClient,
        interval_seconds=3600.0,
    )
    try:
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _r: httpx.Response(500))) as client:
            assert await run_once(runtime, client) == {"sweep": True, "sign_heads": True, "dispatch": True}
    finally:
        await engine.dispose()
    chain = await consent_client.get("/consent/v1/me/chain", headers=_self(token_issuer))
    assert [signature["seq"] for signature in chain.json()["signatures"]] == [1]
    assert record["state"] == "REQUESTED"


async def test_a_failing_background_step_is_logged_without_detail_and_the_others_run(
    caplog: pytest.LogCaptureFixture, token_issuer: TokenIssuer, sqlite_settings: Settings
) -> None:
    from consent.block import ConsentRuntime
    from consent.checks import ConsentChecker
    from consent.service import ConsentService
    from dpi.keys import KeyStore

    # No migrations ran: every step meets a database without its tables.
    engine = db.create_engine(sqlite_settings.database)
    sessions = db.session_factory(engine)
    keys = KeyStore(sqlite_settings.key_directory)
    keys.generate()
    runtime = ConsentRuntime(
        context=BlockContext(settings=sqlite_settings, engine=engine, sessions=sessions, keys=keys),
        service=ConsentService(sessions=sessions, keys=keys, issuer="DPI/GOV/MOI/consent"),
        checker=ConsentChecker(sessions),
        verifier=token_issuer.verifier(),
        webhook_client=httpx.AsyncClient,
        interval_seconds=3600.0,
    )
    caplog.set_level(logging.WARNING, logger="consent.background")
    try:
        async with httpx.AsyncClient() as client:
            outcome = await run_once(runtime, client)
    finally:
        await engine.dispose()
    assert outcome == {"sweep": False, "sign_heads": False, "dispatch": False}
    failures = [record for record in caplog.records if record.name == "consent.background"]
    assert [record.__dict__["step"] for record in failures] == ["sweep", "sign_heads", "dispatch"]
    assert all(record.__dict__["exception_type"] == "OperationalError" for record in failures)


async def test_the_block_runs_its_background_rounds_and_stops_with_the_app(
    sqlite_settings: Settings, token_issuer: TokenIssuer
) -> None:
    block = consent_block(
        token_verifier=lambda _settings: token_issuer.verifier(), background_interval_seconds=0.01
    )
    await migrate(sqlite_settings, [block])
    app = create_app(sqlite_settings, blocks=[block])
    async with AsyncTestClient(app=app) as client:
        published = await client.post(
            "/consent/v1/agreements",
            json=dict(AGREEMENTS[0]),
            headers=token_issuer.headers("r", "consent:admin"),
        )
        await client.post(
            "/consent/v1/consents",
            json={"agreement_id": "mol-jobseeker-registration", "subject": AMINA},
            headers=_consumer(token_issuer),
        )
        assert published.status_code == 201
        signatures: list[Any] = []
        for _ in range(500):
            chain = await client.get("/consent/v1/me/chain", headers=_self(token_issuer))
            signatures = chain.json()["signatures"]
            if signatures:
                break
            await asyncio.sleep(0.01)
        assert [signature["seq"] for signature in signatures] == [1]


async def test_a_consumer_cannot_choose_the_guardian(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    response = await consent_client.post(
        "/consent/v1/consents",
        json={
            "agreement_id": "mol-jobseeker-registration",
            "subject": MINOR,
            "guardianship": {"guardian": GUARDIAN, "basis": "minor"},
        },
        headers=_consumer(token_issuer),
    )
    assert (response.status_code, response.json()["reason_code"]) == (403, "consent.actor_not_allowed")
    mine = await consent_client.get("/consent/v1/me/consents", headers=_self(token_issuer, MINOR))
    assert mine.json()["total"] == 0


async def test_a_former_guardian_sees_nothing(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, published_agreement: Json
) -> None:
    record = await _ask(
        consent_client,
        token_issuer,
        MINOR,
        guardianship={"guardian": GUARDIAN, "basis": "minor", "until": "2001-01-01"},
    )
    path = f"/consent/v1/me/consents/{record['consent_id']}"
    for suffix in ("", "/history", "/receipts", "/export/kantara"):
        response = await consent_client.get(path + suffix, headers=_self(token_issuer, GUARDIAN))
        assert (response.status_code, response.json()["reason_code"]) == (404, "consent.not_found")
    listing = await consent_client.get("/consent/v1/me/consents", headers=_self(token_issuer, GUARDIAN))
    assert listing.json()["total"] == 0
    withdrawal = await consent_client.post(
        f"{path}/withdraw", json={"channel": "web"}, headers=_self(token_issuer, GUARDIAN)
    )
    assert withdrawal.status_code == 404
