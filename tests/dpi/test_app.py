"""The kernel app as a client sees it: platform endpoints, error bodies, request ids."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

import standards
from dpi.app import DpiApp, create_app, migrate
from dpi.settings import Settings
from tests.dpi.kernel_fixtures import LIFESPAN_LOG, failing_block, ledger_block

Client = AsyncTestClient[Any]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    await migrate(settings, [ledger_block])
    app = create_app(settings, blocks=[ledger_block, failing_block])
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def plain_client(sqlite_settings: Settings) -> AsyncIterator[Client]:
    await migrate(sqlite_settings, [])
    app = create_app(sqlite_settings, blocks=[failing_block])
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def assert_error(response: Any, status: int, reason_code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert standards.validator("error").issues(body) == []
    assert body["reason_code"] == reason_code
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return dict(body)


async def test_health_answers_pass(plain_client: Client) -> None:
    response = await plain_client.get("/healthz")
    assert response.status_code == 200
    assert standards.validator("health").issues(response.json()) == []
    assert response.json()["status"] == "pass"


async def test_ready_when_migrated(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert standards.validator("readiness").issues(body) == []
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "signing_keys"}


async def test_not_ready_before_migrations(settings: Settings) -> None:
    app = create_app(settings, blocks=[ledger_block])
    async with AsyncTestClient(app=app) as test_client:
        response = await test_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert standards.validator("readiness").issues(body) == []
    assert body["checks"]["migrations"]["status"] == "fail"
    assert "dpi_0001" in body["checks"]["migrations"]["message"]


async def test_not_ready_when_a_block_adds_a_migration(settings: Settings) -> None:
    await migrate(settings, [])
    app = create_app(settings, blocks=[ledger_block])
    async with AsyncTestClient(app=app) as test_client:
        response = await test_client.get("/readyz")
    assert response.status_code == 503
    assert "ledger_0001" in response.json()["checks"]["migrations"]["message"]


async def test_not_ready_when_database_unreachable(tmp_path: Any) -> None:
    unreachable = Settings(
        var_dir=tmp_path / "var", database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none"
    )
    async with AsyncTestClient(app=create_app(unreachable, blocks=[])) as test_client:
        response = await test_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["status"] == "fail"
    assert "migrations" not in body["checks"]


async def test_capabilities_valid_and_lists_blocks(client: Client) -> None:
    response = await client.get("/.well-known/dpi-capabilities")
    assert response.status_code == 200
    document = response.json()
    assert standards.validator("capabilities").issues(document) == []
    assert [block["name"] for block in document["blocks"]] == ["ledger", "failing"]
    assert {"name": "platform", "version": "1.0.0"} in document["profiles"]
    assert "error@1.0.0" in document["schemas"]


async def test_jwks_publishes_only_public_keys(plain_client: Client) -> None:
    response = await plain_client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert standards.validator("jwks").issues(response.json()) == []
    assert len(keys) == 1
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])


async def test_every_response_has_a_request_id(plain_client: Client) -> None:
    for path in ("/healthz", "/readyz", "/nowhere", "/openapi.json"):
        response = await plain_client.get(path)
        assert len(response.headers["x-request-id"]) >= 8


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("0b6f4c1e-3f1a-4a47-9a55-6d1c2b7e9f10", True),
        ("0B6F4C1E-3F1A-4A47-9A55-6D1C2B7E9F10", True),
        ("198001011234567", False),
        ("client-chosen-id-0001", False),
        ("has spaces in it ok", False),
        ("<script>alert(1)</script>", False),
        ("x" * 200, False),
    ],
)
async def test_offered_request_id_kept_only_when_a_uuid(
    plain_client: Client, offered: str, kept: bool
) -> None:
    response = await plain_client.get("/nowhere", headers={"X-Request-Id": offered})
    assert (response.headers["x-request-id"] == offered.lower()) is kept
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_head_is_get_without_a_body(plain_client: Client) -> None:
    response = await plain_client.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-request-id"]


async def test_unknown_route_is_404_with_reason(plain_client: Client) -> None:
    assert_error(await plain_client.get("/no/such/route"), 404, "route.not_found")


async def test_wrong_method_is_405_with_reason(plain_client: Client) -> None:
    assert_error(await plain_client.delete("/healthz"), 405, "method.not_allowed")


VALID_REQUEST = {"schema": "health@1.0.0", "instance": {"status": "pass"}}


@pytest.mark.parametrize(
    ("content", "headers", "status", "reason_code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "request.malformed_json"),
        (b"", {"content-type": "application/json"}, 400, "request.malformed_json"),
        (b'{"schema": NaN}', {"content-type": "application/json"}, 400, "request.malformed_json"),
        (b"\xff\xfe", {"content-type": "application/json"}, 400, "request.malformed_json"),
        (b"[" * 100000, {"content-type": "application/json"}, 400, "request.malformed_json"),
        (
            json.dumps(VALID_REQUEST).encode(),
            {"content-type": "text/plain"},
            415,
            "request.unsupported_media_type",
        ),
        (json.dumps(VALID_REQUEST).encode(), {}, 415, "request.unsupported_media_type"),
        (b"[]", {"content-type": "application/json"}, 422, "request.invalid"),
        (
            b'{"schema": "health", "instance": ' + b"[" * 500 + b"]" * 500 + b"}",
            {"content-type": "application/json"},
            422,
            "request.invalid",
        ),
        (b'{"schema": "health"}', {"content-type": "application/json"}, 422, "request.invalid"),
        (b'{"schema": 7, "instance": {}}', {"content-type": "application/json"}, 422, "request.invalid"),
        (
            b'{"schema": "nope@1.0.0", "instance": {}}',
            {"content-type": "application/json"},
            404,
            "schema.not_found",
        ),
    ],
)
async def test_bad_bodies_are_refused_with_reason(
    plain_client: Client, content: bytes, headers: dict[str, str], status: int, reason_code: str
) -> None:
    response = await plain_client.post("/standards/validate", content=content, headers=headers)
    assert_error(response, status, reason_code)


async def test_invalid_body_details_point_at_fields(plain_client: Client) -> None:
    response = await plain_client.post("/standards/validate", json={"schema": 7, "extra": True})
    body = assert_error(response, 422, "request.invalid")
    pointers = {detail["pointer"] for detail in body["details"]}
    assert "/schema" in pointers
    assert all(detail["reason_code"].startswith("schema.") for detail in body["details"])


async def test_body_over_limit_is_413(tmp_path: Any) -> None:
    small = Settings(var_dir=tmp_path / "var", max_body_bytes=1024)
    async with AsyncTestClient(app=create_app(small, blocks=[])) as test_client:
        response = await test_client.post(
            "/standards/validate", json={"schema": "health", "instance": {"status": "x" * 5000}}
        )
    assert_error(response, 413, "request.too_large")


async def test_validate_reports_every_issue(plain_client: Client) -> None:
    response = await plain_client.post(
        "/standards/validate", json={"schema": "health", "instance": {"status": "up", "extra": 1}}
    )
    assert response.status_code == 200
    report = response.json()
    assert standards.validator("validation-report").issues(report) == []
    assert report["valid"] is False
    assert report["schema"].startswith("health@")
    assert {issue["pointer"] for issue in report["issues"]} >= {"/status"}


async def test_validate_accepts_a_valid_document(plain_client: Client) -> None:
    response = await plain_client.post("/standards/validate", json=VALID_REQUEST)
    assert response.status_code == 200
    assert response.json() == {"schema": "health@1.0.0", "valid": True, "issues": []}


async def test_unexpected_exception_is_a_bare_500(
    plain_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = await plain_client.get("/failing/boom")
    body = assert_error(response, 500, "internal.error")
    assert "Amina" not in response.text
    assert "_Unexpected" not in response.text
    assert set(body) <= {"reason_code", "message", "details", "request_id"}


@pytest.mark.parametrize(("language", "expected"), [("fr-FR,fr;q=0.9", "fr"), ("ar", "ar"), ("de", "en")])
async def test_error_message_in_callers_language(plain_client: Client, language: str, expected: str) -> None:
    response = await plain_client.get("/nowhere", headers={"Accept-Language": language})
    assert response.headers["content-language"] == expected
    assert response.json()["message"] == standards.reason_code("route.not_found").message(expected)


def test_app_is_an_asgi_callable(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings, blocks=[])
    assert isinstance(app, DpiApp)
    assert app.runtime.blocks == []


async def test_block_lifespan_runs_around_the_app(settings: Settings) -> None:
    LIFESPAN_LOG.clear()
    async with AsyncTestClient(app=create_app(settings, blocks=[ledger_block])) as test_client:
        await test_client.get("/healthz")
        assert LIFESPAN_LOG == ["start dpi-blocks"]
    assert LIFESPAN_LOG == ["start dpi-blocks", "stop"]
