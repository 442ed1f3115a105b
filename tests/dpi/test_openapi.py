"""The OpenAPI document: every request and response body refers to a published standards schema."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

import standards
from dpi.app import create_app
from dpi.openapi import undocumented_bodies
from dpi.settings import Settings
from tests.dpi.kernel_fixtures import failing_block, undocumented_block


async def _document(settings: Settings, blocks: list[Any]) -> dict[str, Any]:
    async with AsyncTestClient(app=create_app(settings, blocks=blocks)) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_every_body_has_a_standards_schema(sqlite_settings: Settings) -> None:
    document = await _document(sqlite_settings, [failing_block])
    assert document["openapi"].startswith("3.1")
    assert undocumented_bodies(document) == []
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) >= 7
    validate = document["paths"]["/standards/validate"]["post"]
    assert validate["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/validation-request-1.0.0"
    }


async def test_components_are_the_published_schemas(sqlite_settings: Settings) -> None:
    document = await _document(sqlite_settings, [])
    components = document["components"]["schemas"]
    for key in ("error-1.0.0", "health-1.0.0", "capabilities-1.0.0", "validation-request-1.0.0"):
        assert key in components
    assert "urn:dpi" not in str(components), "every cross-schema reference is resolved inside the document"


async def test_a_route_without_contract_is_caught(sqlite_settings: Settings) -> None:
    document = await _document(sqlite_settings, [undocumented_block])
    assert undocumented_bodies(document) == ["GET /undocumented/undocumented"]


@pytest.mark.parametrize(
    ("operation", "problem"),
    [
        ({"responses": {"200": {"description": "x"}}}, "GET /x"),
        ({"responses": {"200": {"description": "x", "content": {"application/json": {}}}}}, "GET /x"),
        ({"responses": {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}}}, "GET /x"),
    ],
)
def test_checker_refuses_bodies_without_a_schema_ref(operation: dict[str, Any], problem: str) -> None:
    assert undocumented_bodies({"paths": {"/x": {"get": operation}}}) == [problem]


def test_every_ref_target_is_a_published_schema() -> None:
    components = standards.openapi_components(["error@1.0.0"])
    assert "error-1.0.0" in components


def test_bodies_in_other_media_types_keep_their_schema(sqlite_settings: Settings) -> None:
    from litestar import Litestar, post

    from dpi.contract import Body, Contract
    from dpi.openapi import build_openapi

    @post(
        "/form",
        opt=Contract(
            "a form in, a page out",
            {200: Body("health@1.0.0", "text/html")},
            request=Body("validation-request@1.0.0", "application/x-www-form-urlencoded"),
            errors=(),
        ).as_opt(),
    )
    async def form() -> str:
        return ""

    document = build_openapi(Litestar([form], openapi_config=None), title="t", version="1", server_url="/")
    operation = document["paths"]["/form"]["post"]
    assert operation["requestBody"]["content"] == {
        "application/x-www-form-urlencoded": {
            "schema": {"$ref": "#/components/schemas/validation-request-1.0.0"}
        }
    }
    assert operation["responses"]["200"]["content"] == {
        "text/html": {"schema": {"$ref": "#/components/schemas/health-1.0.0"}}
    }
    assert undocumented_bodies(document) == []


def test_several_media_types_and_redirects() -> None:
    from litestar import Litestar, get

    from dpi.contract import Body, Contract
    from dpi.openapi import build_openapi

    @get(
        "/either",
        opt=Contract(
            "JSON or a signed JWT; or elsewhere",
            {200: ("health@1.0.0", Body("health@1.0.0", "application/jwt")), 302: None},
            errors=(),
        ).as_opt(),
    )
    async def either() -> str:
        return ""

    document = build_openapi(Litestar([either], openapi_config=None), title="t", version="1", server_url="/")
    responses = document["paths"]["/either"]["get"]["responses"]
    assert set(responses["200"]["content"]) == {"application/json", "application/jwt"}
    assert responses["302"] == {"description": "redirect"}
    assert undocumented_bodies(document) == []
    assert undocumented_bodies(
        {"paths": {"/x": {"get": {"responses": {"200": {"description": "no body?"}}}}}}
    ) == ["GET /x"]
