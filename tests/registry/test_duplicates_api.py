"""The duplicate checks of the records API and the review queue over HTTP: a likely duplicate is refused
with its candidates, a possible one is created and queued, and reviewers decide (merge or not a
duplicate) with an audited reason."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

import standards
from registry.synthetic import uin
from tests.consent.conftest import TokenIssuer
from tests.registry.conftest import sample

OFFICER = "officer-17"
REVIEWER = "reviewer-3"
MERGE = ("registry:civil:merge",)
BAD = "request.invalid_parameter"


def _headers(issuer: TokenIssuer, subject: str, *scopes: str) -> dict[str, str]:
    return issuer.headers(subject, *scopes)


async def _post_record(
    client: httpx.AsyncClient, issuer: TokenIssuer, document: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/registry/civil/v1/records",
        json={"document": document, "reason": "registration"},
        headers=_headers(issuer, OFFICER, "registry:civil:write"),
    )


def _possible_duplicate(person: dict[str, Any]) -> dict[str, Any]:
    """Same names and sex, born within a month, place unknown: a possible duplicate (0.70 to 0.85)."""
    twin = copy.deepcopy(person)
    twin["uin"] = uin(987_654)
    # A twin: everything alike but the given name, for a person to review, never refused.
    twin["names"] = [{"given": "Salimata", "family": person["names"][0]["family"], "script": "Latn"}]
    return twin


async def _queued(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    person = sample("civil", 1)
    first = (await _post_record(client, issuer, person)).json()
    response = await _post_record(client, issuer, _possible_duplicate(person))
    assert response.status_code == 201, response.text
    second = response.json()
    queue = await client.get(
        "/registry/civil/v1/duplicates", headers=_headers(issuer, REVIEWER, "registry:civil:merge")
    )
    assert queue.status_code == 200
    body = queue.json()
    standards.validator("registry-duplicate-list@1.0.0").check(body)
    assert body["total"] == 1
    entry: dict[str, Any] = body["items"][0]
    return first, second, entry


async def test_a_likely_duplicate_is_refused_with_its_candidates(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    person = sample("civil", 1)
    first = await _post_record(client, issuer, person)
    assert first.status_code == 201
    typo = copy.deepcopy(person)
    typo["uin"] = uin(123_457)
    given = typo["names"][0]["given"]
    typo["names"][0]["given"] = given + given[-1]
    refused = await _post_record(client, issuer, typo)
    assert refused.status_code == 409
    assert refused.json()["reason_code"] == "registry.duplicate_suspected"
    assert first.json()["record_id"] in refused.text
    lookup = await client.get(
        "/registry/civil/v1/duplicates", headers=_headers(issuer, REVIEWER, "registry:civil:merge")
    )
    assert lookup.json()["total"] == 0


async def test_a_possible_duplicate_is_created_queued_and_merged(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    first, second, entry = await _queued(client, issuer)
    assert {entry["record_id"], entry["candidate_id"]} == {first["record_id"], second["record_id"]}
    assert 0.70 <= entry["score"] < 0.85
    assert {part["field"] for part in entry["explanation"]} >= {"names", "date_of_birth"}
    reviewer = _headers(issuer, REVIEWER, "registry:civil:merge")
    path = f"/registry/civil/v1/duplicates/{entry['duplicate_id']}"
    shown = await client.get(path, headers=reviewer)
    assert shown.status_code == 200
    assert shown.json() == entry
    decided = await client.post(
        f"{path}/decision",
        json={"decision": "merge", "survivor_id": first["record_id"], "reason": "same person, clerk error"},
        headers=reviewer,
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    standards.validator("registry-duplicate@1.0.0").check(body)
    assert (body["status"], body["decided_by"], body["survivor_id"]) == (
        "merged",
        REVIEWER,
        first["record_id"],
    )
    assert body["decision_reason"] == "same person, clerk error"
    read = await client.get(
        f"/registry/civil/v1/records/{second['record_id']}",
        params={"purpose": "civil-registration"},
        headers=_headers(issuer, "clerk", "registry:civil:read"),
    )
    assert read.json()["record_id"] == first["record_id"]
    assert read.json()["redirected_from"] == second["record_id"]
    again = await client.post(
        f"{path}/decision", json={"decision": "not_duplicate", "reason": "second thoughts"}, headers=reviewer
    )
    assert again.status_code == 409
    assert again.json()["reason_code"] == "registry.duplicate_decided"
    merged = await client.get("/registry/civil/v1/duplicates?status=merged", headers=reviewer)
    assert [item["duplicate_id"] for item in merged.json()["items"]] == [entry["duplicate_id"]]


async def test_not_a_duplicate_keeps_both_records(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    first, second, entry = await _queued(client, issuer)
    reviewer = _headers(issuer, REVIEWER, "registry:civil:merge")
    decided = await client.post(
        f"/registry/civil/v1/duplicates/{entry['duplicate_id']}/decision",
        json={"decision": "not_duplicate", "reason": "twins"},
        headers=reviewer,
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "not_duplicate"
    assert "survivor_id" not in decided.json()
    for record in (first, second):
        read = await client.get(
            f"/registry/civil/v1/records/{record['record_id']}",
            params={"purpose": "civil-registration"},
            headers=_headers(issuer, "clerk", "registry:civil:read"),
        )
        assert read.json()["status"] == "active"
        assert "redirected_from" not in read.json()
    assert (await client.get("/registry/civil/v1/duplicates", headers=reviewer)).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "scopes", "status", "reason_code"),
    [
        ({"decision": "merge", "reason": "no survivor named"}, ("registry:civil:merge",), 422, None),
        ({"decision": "not_duplicate", "survivor_id": "SURVIVOR", "reason": "x"}, MERGE, 422, None),
        ({"decision": "split", "reason": "x"}, ("registry:civil:merge",), 422, None),
        ({"decision": "not_duplicate"}, ("registry:civil:merge",), 422, None),
        ({"decision": "not_duplicate", "reason": ""}, ("registry:civil:merge",), 422, None),
        ({"decision": "merge", "survivor_id": "00000000-0000-4000-8000-000000000000", "reason": "x"},
         ("registry:civil:merge",), 409, "registry.merge_invalid"),
        ({"decision": "not_duplicate", "reason": "x"}, ("registry:civil:write",), 403, "auth.scope_missing"),
        ({"decision": "not_duplicate", "reason": "x"}, ("registry:social:merge",), 403, "auth.scope_missing"),
    ],
)  # fmt: skip
async def test_bad_decisions_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    body: dict[str, Any],
    scopes: tuple[str, ...],
    status: int,
    reason_code: str | None,
) -> None:
    first, _second, entry = await _queued(client, issuer)
    if body.get("survivor_id") == "SURVIVOR":
        body = {**body, "survivor_id": first["record_id"]}
    response = await client.post(
        f"/registry/civil/v1/duplicates/{entry['duplicate_id']}/decision",
        json=body,
        headers=_headers(issuer, REVIEWER, *scopes),
    )
    assert response.status_code == status, response.text
    if reason_code is not None:
        assert response.json()["reason_code"] == reason_code
    still = await client.get(
        f"/registry/civil/v1/duplicates/{entry['duplicate_id']}",
        headers=_headers(issuer, REVIEWER, "registry:civil:merge"),
    )
    assert still.json() == entry


@pytest.mark.parametrize(
    ("path", "scopes", "status", "reason_code"),
    [
        ("/registry/civil/v1/duplicates", ("registry:civil:read",), 403, "auth.scope_missing"),
        ("/registry/civil/v1/duplicates?status=maybe", MERGE, 400, BAD),
        ("/registry/civil/v1/duplicates/not-a-uuid", MERGE, 400, BAD),
        ("/registry/civil/v1/duplicates/00000000-0000-4000-8000-000000000000", ("registry:civil:merge",), 404,
         "registry.duplicate_not_found"),
        ("/registry/land/v1/duplicates", ("registry:land:merge",), 404, "registry.not_found"),
    ],
)  # fmt: skip
async def test_queue_reads_are_checked(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    path: str,
    scopes: tuple[str, ...],
    status: int,
    reason_code: str,
) -> None:
    response = await client.get(path, headers=_headers(issuer, REVIEWER, *scopes))
    assert response.status_code == status, response.text
    assert response.json()["reason_code"] == reason_code
