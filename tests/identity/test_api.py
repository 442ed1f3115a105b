"""The identity block over HTTP: operator routes, the exchange's translation, refusals and the contract."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

import standards
from dpi.openapi import undocumented_bodies
from dpi.settings import Settings
from identity.block import key_paths
from identity.pseudonyms import load_or_create_key, sector_pseudonym
from identity.service import is_uin, is_vid, new_uin
from tests.identity.conftest import AUTHORITY, EXCHANGE, HEALTH, LABOUR, OPERATOR, TokenIssuer, amina

ENROL = ("identity:enrol",)
ADMIN = ("identity:admin",)
PRESENT = {"channel": "assisted", "holder_present": True}


async def enrol(
    client: httpx.AsyncClient, issuer: TokenIssuer, demographics: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/identity/v1/persons",
        json={
            "demographics": demographics or amina(),
            "channel": "assisted",
            "operator_note": "reads Arabic only",
        },
        headers=issuer.headers(OPERATOR, *ENROL),
    )
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_an_operator_enrols_reads_updates_and_sees_the_history(
    identity_client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    person = await enrol(identity_client, token_issuer)
    assert standards.validator("identity-person").is_valid(person)
    assert person["enrolled_by"] == {"channel": "assisted", "operator_id": OPERATOR}
    uin = person["uin"]
    operator = token_issuer.headers(OPERATOR, *ENROL)
    assert (await identity_client.get(f"/identity/v1/persons/{uin}", headers=operator)).json() == person

    response = await identity_client.patch(
        f"/identity/v1/persons/{uin}",
        json={"changes": {"phone": "+212698765432"}, "reason": "new phone"},
        headers=operator,
    )
    assert response.status_code == 200, response.text
    assert response.json()["demographics"]["phone"] == "+212698765432"

    history = (await identity_client.get(f"/identity/v1/persons/{uin}/history", headers=operator)).json()
    assert standards.validator("identity-history").is_valid(history)
    assert [(event["action"], event["actor"]["id"]) for event in history["events"]] == [
        ("enrolled", OPERATOR),
        ("updated", OPERATOR),
    ]
    assert history["events"][0]["note"] == "reads Arabic only"
    assert history["events"][1]["changed"] == ["/phone"]


async def test_status_changes_need_the_admin_scope(
    identity_client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    uin = (await enrol(identity_client, token_issuer))["uin"]
    body = {"reason": "fraud investigation 42"}
    refused = await identity_client.post(
        f"/identity/v1/persons/{uin}/deactivate", json=body, headers=token_issuer.headers(OPERATOR, *ENROL)
    )
    assert (refused.status_code, refused.json()["reason_code"]) == (403, "auth.scope_missing")
    admin = token_issuer.headers(AUTHORITY, *ADMIN)
    for action, status in (("deactivate", "deactivated"), ("reactivate", "active"), ("deceased", "deceased")):
        response = await identity_client.post(
            f"/identity/v1/persons/{uin}/{action}", json=body, headers=admin
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    again = await identity_client.post(f"/identity/v1/persons/{uin}/deceased", json=body, headers=admin)
    assert (again.status_code, again.json()["reason_code"]) == (409, "identity.deceased")
    vid = await identity_client.post(
        f"/identity/v1/persons/{uin}/vid", json=PRESENT, headers=token_issuer.headers(OPERATOR, *ENROL)
    )
    assert (vid.status_code, vid.json()["reason_code"]) == (409, "identity.vid_not_allowed")


async def test_assisted_vid_lifecycle(identity_client: httpx.AsyncClient, token_issuer: TokenIssuer) -> None:
    uin = (await enrol(identity_client, token_issuer))["uin"]
    operator = token_issuer.headers(OPERATOR, *ENROL)
    issued = await identity_client.post(f"/identity/v1/persons/{uin}/vid", json=PRESENT, headers=operator)
    assert issued.status_code == 201
    assert standards.validator("identity-vid").is_valid(issued.json())
    assert is_vid(issued.json()["vid"])
    second = await identity_client.post(f"/identity/v1/persons/{uin}/vid", json=PRESENT, headers=operator)
    assert (second.status_code, second.json()["reason_code"]) == (409, "identity.vid_exists")
    renewed = await identity_client.post(
        f"/identity/v1/persons/{uin}/vid/regenerate", json=PRESENT, headers=operator
    )
    assert renewed.status_code == 200
    assert renewed.json()["vid"] != issued.json()["vid"]
    by_authority = await identity_client.post(
        f"/identity/v1/persons/{uin}/vid/regenerate",
        json=PRESENT,
        headers=token_issuer.headers(AUTHORITY, *ADMIN),
    )
    assert by_authority.status_code == 403
    assert (
        await identity_client.delete(f"/identity/v1/persons/{uin}/vid", headers=operator)
    ).status_code == 204
    gone = await identity_client.delete(f"/identity/v1/persons/{uin}/vid", headers=operator)
    assert (gone.status_code, gone.json()["reason_code"]) == (404, "identity.vid_not_found")
    person = (await identity_client.get(f"/identity/v1/persons/{uin}", headers=operator)).json()
    assert person["vid_active"] is False


async def test_translation_needs_the_translate_scope_and_never_returns_a_uin(
    identity_client: httpx.AsyncClient, token_issuer: TokenIssuer, migrated: Settings
) -> None:
    person = await enrol(identity_client, token_issuer)
    # The block keeps its key under var_dir; the test derives the pseudonym a sector was given.
    key = load_or_create_key(key_paths(migrated)[0])
    labour = sector_pseudonym(key, person["uin"], LABOUR)
    body = {"pseudonym": labour, "from_sector": LABOUR, "to_sector": HEALTH, "purpose": "benefit-payment"}
    for headers in (token_issuer.headers(OPERATOR, *ENROL), token_issuer.headers(AUTHORITY, *ADMIN), {}):
        refused = await identity_client.post("/identity/v1/pseudonyms/translate", json=body, headers=headers)
        assert refused.status_code in (401, 403)
    exchange = token_issuer.headers("gateway", "identity:translate", member=EXCHANGE)
    response = await identity_client.post("/identity/v1/pseudonyms/translate", json=body, headers=exchange)
    assert response.status_code == 200, response.text
    assert response.json() == {"pseudonym": sector_pseudonym(key, person["uin"], HEALTH), "sector": HEALTH}
    assert person["uin"] not in response.text
    unknown = await identity_client.post(
        "/identity/v1/pseudonyms/translate", json={**body, "pseudonym": "B" * 43}, headers=exchange
    )
    assert (unknown.status_code, unknown.json()["reason_code"]) == (404, "identity.not_found")
    bad_purpose = await identity_client.post(
        "/identity/v1/pseudonyms/translate", json={**body, "purpose": "curiosity"}, headers=exchange
    )
    assert (bad_purpose.status_code, bad_purpose.json()["details"][0]["pointer"]) == (422, "/purpose")


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/identity/v1/persons", {"demographics": {}, "channel": "assisted"}, 422, "request.invalid"),
    ("POST", "/identity/v1/persons", {"demographics": amina(), "channel": "sms"}, 422, "request.invalid"),
    (
        "POST",
        "/identity/v1/persons",
        {"demographics": {**amina(), "phone": "+212000"}, "channel": "assisted"},
        422,
        "request.invalid",
    ),
    (
        "POST",
        "/identity/v1/persons",
        {"demographics": {**amina(), "date_of_birth": "2999-01-01"}, "channel": "assisted"},
        422,
        "request.invalid",
    ),
    (
        "POST",
        "/identity/v1/persons",
        {"demographics": amina(), "channel": "web", "operator_note": "x"},
        422,
        "request.invalid",
    ),
    (
        "POST",
        "/identity/v1/persons",
        {"demographics": amina(), "channel": "assisted", "uin": "2345678902"},
        422,
        "request.invalid",
    ),
    ("POST", "/identity/v1/persons", "not json", 400, "request.malformed_json"),
    ("POST", "/identity/v1/persons", [1] * 3, 422, "request.invalid"),
    ("GET", "/identity/v1/persons/2345678901", None, 400, "request.invalid_parameter"),
    ("GET", "/identity/v1/persons/0123456789", None, 400, "request.invalid_parameter"),
    ("GET", "/identity/v1/persons/12345", None, 400, "request.invalid_parameter"),
    ("GET", "/identity/v1/persons/%D9%A1%D9%A2", None, 400, "request.invalid_parameter"),
    ("GET", "/identity/v1/persons/{unknown}", None, 404, "identity.not_found"),
    (
        "PATCH",
        "/identity/v1/persons/{unknown}",
        {"changes": {"sex": "male"}, "reason": "x"},
        404,
        "identity.not_found",
    ),
    ("PATCH", "/identity/v1/persons/{uin}", {"changes": {}, "reason": "x"}, 422, "request.invalid"),
    ("PATCH", "/identity/v1/persons/{uin}", {"changes": {"sex": "male"}}, 422, "request.invalid"),
    (
        "PATCH",
        "/identity/v1/persons/{uin}",
        {"changes": {"phone": "+1555"}, "reason": "x"},
        422,
        "request.invalid",
    ),
    (
        "PATCH",
        "/identity/v1/persons/{uin}",
        {"changes": {"names": {"latin": None, "arabic": None}}, "reason": "x"},
        422,
        "request.invalid",
    ),
    ("POST", "/identity/v1/persons/{uin}/deactivate", {}, 422, "request.invalid"),
    ("POST", "/identity/v1/persons/{uin}/reactivate", {"reason": "x"}, 409, "identity.already_active"),
    ("POST", "/identity/v1/persons/{uin}/explode", {"reason": "x"}, 404, "route.not_found"),
    ("DELETE", "/identity/v1/persons/{uin}/vid", None, 404, "identity.vid_not_found"),
    (
        "POST",
        "/identity/v1/persons/{uin}/vid",
        {"channel": "assisted", "holder_present": False},
        422,
        "request.invalid",
    ),
    (
        "POST",
        "/identity/v1/persons/{uin}/vid/regenerate",
        {"channel": "web", "holder_present": True},
        422,
        "request.invalid",
    ),
    ("POST", "/identity/v1/persons/{uin}/vid/regenerate", PRESENT, 404, "identity.vid_not_found"),
    (
        "POST",
        "/identity/v1/pseudonyms/translate",
        {"pseudonym": "short", "from_sector": LABOUR, "to_sector": HEALTH, "purpose": "benefit-payment"},
        422,
        "request.invalid",
    ),
    (
        "POST",
        "/identity/v1/pseudonyms/translate",
        {"pseudonym": "A" * 43, "from_sector": "-x", "to_sector": HEALTH, "purpose": "benefit-payment"},
        422,
        "request.invalid",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_REQUESTS)
async def test_bad_requests_get_a_reason_code_never_a_500_and_change_nothing(
    identity_client: httpx.AsyncClient,
    token_issuer: TokenIssuer,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    person = await enrol(identity_client, token_issuer)
    uin = person["uin"]
    unknown = new_uin()
    while unknown == uin:
        unknown = new_uin()
    url = path.replace("{uin}", uin).replace("{unknown}", unknown)
    scopes = ("identity:enrol", "identity:admin", "identity:translate")
    headers = token_issuer.headers(AUTHORITY if "activate" in path else OPERATOR, *scopes, member=EXCHANGE)
    if "/vid" in path:
        headers = token_issuer.headers(OPERATOR, "identity:enrol")
    caplog.set_level(logging.INFO)
    if isinstance(body, str):
        response = await identity_client.request(
            method, url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        response = await identity_client.request(method, url, json=body, headers=headers)
    assert (response.status_code, response.json()["reason_code"]) == (status, code), response.text
    assert standards.validator("error").is_valid(response.json())
    for secret in (uin, unknown, "+212612345678", "Amina", "أمينة", "Idrissi"):
        assert secret not in response.text
    # The test client's own request log (httpx) is the caller's side, not the server's.
    logged = [
        json.dumps({**line.__dict__, "msg": line.getMessage()}, default=str)
        for line in caplog.records
        if line.name != "httpx"
    ]
    assert logged
    assert not [
        line for line in logged for secret in (uin, unknown, "+212612345678", "Amina") if secret in line
    ]
    after = (
        await identity_client.get(
            f"/identity/v1/persons/{uin}", headers=token_issuer.headers(OPERATOR, *ENROL)
        )
    ).json()
    assert after == person
    history = await identity_client.get(
        f"/identity/v1/persons/{uin}/history", headers=token_issuer.headers(OPERATOR, *ENROL)
    )
    assert len(history.json()["events"]) == 1


async def test_tokens_are_checked_after_the_path_and_body(
    identity_client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    uin = (await enrol(identity_client, token_issuer))["uin"]
    missing = await identity_client.get(f"/identity/v1/persons/{uin}")
    assert (missing.status_code, missing.json()["reason_code"]) == (401, "auth.token_missing")
    wrong_scope = await identity_client.get(
        f"/identity/v1/persons/{uin}", headers=token_issuer.headers(OPERATOR, "identity:translate")
    )
    assert wrong_scope.status_code == 403
    no_enrol = await identity_client.post(
        "/identity/v1/persons",
        json={"demographics": amina(), "channel": "assisted"},
        headers=token_issuer.headers(AUTHORITY, *ADMIN),
    )
    assert no_enrol.status_code == 403


async def test_every_body_of_the_identity_api_is_documented(identity_client: httpx.AsyncClient) -> None:
    document = (await identity_client.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    paths = [path for path in document["paths"] if path.startswith("/identity/")]
    assert len(paths) >= 8
    enrolment = document["paths"]["/identity/v1/persons"]["post"]
    assert enrolment["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/identity-enrolment-1.0.0"
    }
    assert is_uin(new_uin())
