"""The registry management API over HTTP: contracts, scopes, field groups, locking, corrections, merges,
read audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import standards
from dpi.openapi import undocumented_bodies
from tests.consent.conftest import TokenIssuer
from tests.registry.conftest import sample

OFFICER = "officer-17"


def _auth(issuer: TokenIssuer, subject: str, *scopes: str, member: str | None = None) -> dict[str, str]:
    return issuer.headers(subject, *scopes, member=member)


async def _create(client: httpx.AsyncClient, issuer: TokenIssuer, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        "/registry/civil/v1/records",
        json={"document": document, "reason": "registration"},
        headers=_auth(issuer, OFFICER, "registry:civil:write"),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    standards.validator("registry-record@1.0.0").check(body)
    return body


async def test_every_route_documents_its_bodies(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    assert "/registry/{code}/v1/records/{record_id}" in document["paths"]


async def test_definition_is_public_and_unknown_registries_are_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/registry/jobseekers/v1/definition")
    assert response.status_code == 200
    assert response.json()["code"] == "jobseekers"
    missing = await client.get("/registry/land/v1/definition")
    assert missing.status_code == 404
    assert missing.json()["reason_code"] == "registry.not_found"


async def test_record_lifecycle_over_http(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    person = sample("civil", 1)
    created = await _create(client, issuer, person)
    path = f"/registry/civil/v1/records/{created['record_id']}"
    reader = _auth(issuer, "clerk", "registry:civil:read", member="DPI/GOV/MOI/civil-registry")
    no_purpose = await client.get(path, headers=reader)
    assert no_purpose.status_code == 400
    assert no_purpose.json()["reason_code"] == "registry.purpose_required"
    read = await client.get(path, params={"purpose": "civil-registration"}, headers=reader)
    assert read.status_code == 200
    assert read.json()["document"] == person

    writer = _auth(issuer, OFFICER, "registry:civil:write")
    changed = {**person, "marital_status": "widowed"}
    updated = await client.put(
        path, json={"version": 1, "document": changed, "reason": "death of spouse"}, headers=writer
    )
    assert updated.status_code == 200, updated.text
    stale = await client.put(path, json={"version": 1, "document": person, "reason": "again"}, headers=writer)
    assert stale.status_code == 409
    assert stale.json()["reason_code"] == "registry.version_conflict"

    history = await client.get(f"{path}/history", headers=reader)
    assert history.status_code == 200
    standards.validator("registry-history@1.0.0").check(history.json())
    assert [v["action"] for v in history.json()["versions"]] == ["created", "updated"]

    deleted = await client.post(
        f"{path}/deletion", json={"version": 2, "reason": "duplicate entry"}, headers=writer
    )
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "deleted"
    gone = await client.get(path, params={"purpose": "civil-registration"}, headers=reader)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("scopes", "status", "reason_code"),
    [
        ((), 401, "auth.token_missing"),
        (("registry:social:write",), 403, "auth.scope_missing"),
        (("registry:civil:read",), 403, "auth.scope_missing"),
    ],
)
async def test_writes_need_the_registry_write_scope(
    client: httpx.AsyncClient, issuer: TokenIssuer, scopes: tuple[str, ...], status: int, reason_code: str
) -> None:
    headers = _auth(issuer, OFFICER, *scopes) if scopes else {}
    response = await client.post(
        "/registry/civil/v1/records", json={"document": sample("civil", 1)}, headers=headers
    )
    assert response.status_code == status
    assert response.json()["reason_code"] == reason_code


@pytest.mark.parametrize(
    ("body", "status", "reason_code"),
    [
        ({"document": {"record_type": "person"}}, 422, "registry.record_invalid"),
        ({"document": "not an object"}, 422, "request.invalid"),
        ({"record": {}}, 422, "request.invalid"),
    ],
)
async def test_invalid_bodies_are_refused_with_pointers(
    client: httpx.AsyncClient, issuer: TokenIssuer, body: Any, status: int, reason_code: str
) -> None:
    response = await client.post(
        "/registry/civil/v1/records", json=body, headers=_auth(issuer, OFFICER, "registry:civil:write")
    )
    assert response.status_code == status
    assert response.json()["reason_code"] == reason_code
    assert response.json()["details"]


async def test_a_field_group_scope_receives_only_those_fields(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    person = sample("civil", 1)
    created = await _create(client, issuer, person)
    path = f"/registry/civil/v1/records/{created['record_id']}"
    ministry = _auth(
        issuer, "mol", "registry:civil:read:names-and-birth-date", member="DPI/GOV/MOL/jobseekers"
    )
    read = await client.get(
        path, params={"purpose": "jobseeker-registration", "consent_ref": "consent-42"}, headers=ministry
    )
    assert read.status_code == 200
    assert read.json()["document"] == {
        "record_type": "person",
        "names": person["names"],
        "date_of_birth": person["date_of_birth"],
    }
    no_history = await client.get(f"{path}/history", headers=ministry)
    assert no_history.status_code == 403
    # The person lists the reads about themself; nobody else may with a self token.
    own = await client.get(
        "/registry/v1/reads",
        params={"identifier_type": "UIN", "identifier_value": person["uin"]},
        headers=_auth(issuer, person["uin"], "registry:self"),
    )
    assert own.status_code == 200
    assert own.json()["items"][0]["reader"] == "DPI/GOV/MOL/jobseekers"
    assert own.json()["items"][0]["consent_ref"] == "consent-42"
    other = await client.get(
        "/registry/v1/reads",
        params={"identifier_type": "UIN", "identifier_value": person["uin"]},
        headers=_auth(issuer, "someone-else", "registry:self"),
    )
    assert other.status_code == 403


async def test_corrections_and_merges_over_http(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    person = sample("civil", 1)
    first = await _create(client, issuer, person)
    second = await _create(client, issuer, sample("civil", 2))
    proposer = _auth(issuer, OFFICER, "registry:civil:correct")
    proposed = await client.post(
        "/registry/civil/v1/change-requests",
        json={
            "record_id": first["record_id"],
            "version": 1,
            "document": {**person, "sex": "not_known"},
            "reason": "act",
        },
        headers=proposer,
    )
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()["change_request_id"]
    own_approval = await client.post(
        f"/registry/civil/v1/change-requests/{change}/approval",
        json={"reason": "mine"},
        headers=_auth(issuer, OFFICER, "registry:civil:approve"),
    )
    assert own_approval.status_code == 403
    assert own_approval.json()["reason_code"] == "registry.second_approver_required"
    approved = await client.post(
        f"/registry/civil/v1/change-requests/{change}/approval",
        json={"reason": "checked"},
        headers=_auth(issuer, "officer-42", "registry:civil:approve"),
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "applied"
    listed = await client.get(
        "/registry/civil/v1/change-requests", params={"status": "applied"}, headers=proposer
    )
    assert listed.json()["total"] == 1

    merger = _auth(issuer, OFFICER, "registry:civil:merge")
    merged = await client.post(
        "/registry/civil/v1/merges",
        json={"survivor_id": first["record_id"], "loser_id": second["record_id"], "reason": "same person"},
        headers=merger,
    )
    assert merged.status_code == 201, merged.text
    redirected = await client.get(
        f"/registry/civil/v1/records/{second['record_id']}",
        params={"purpose": "civil-registration"},
        headers=_auth(issuer, "clerk", "registry:civil:read"),
    )
    assert redirected.json()["record_id"] == first["record_id"]
    assert redirected.json()["redirected_from"] == second["record_id"]
    unmerged = await client.post(
        f"/registry/civil/v1/records/{second['record_id']}/unmerge",
        json={"reason": "not the same"},
        headers=merger,
    )
    assert unmerged.status_code == 200
    assert unmerged.json()["status"] == "active"
    audit = await client.get(
        f"/registry/civil/v1/records/{first['record_id']}/reads",
        headers=_auth(issuer, "dpo", "registry:civil:audit"),
    )
    assert audit.status_code == 200
    assert audit.json()["total"] == 1


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/registry/civil/v1/records/not-a-uuid", {"purpose": "civil-registration"}),
        ("/registry/civil/v1/records/00000000-0000-4000-8000-000000000000", {"purpose": "no-such-purpose"}),
        ("/registry/v1/reads", {"identifier_type": "NOPE", "identifier_value": "1"}),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, issuer: TokenIssuer, path: str, params: dict[str, str]
) -> None:
    response = await client.get(
        path, params=params, headers=_auth(issuer, "x", "registry:civil:read", "registry:audit")
    )
    assert response.status_code == 400
    assert response.json()["reason_code"] == "request.invalid_parameter"
