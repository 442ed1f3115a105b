"""Requests generated from OpenAPI schemas: deterministic per seed, and a negative request that turns out
valid is never held against a server that accepts it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import pytest

from conformance_tests import RunOptions, Status
from conformance_tests.generated import DocumentedResponses, generate_cases
from tests.conformance_tests.conftest import Runner

ITEM = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 1}}}
LIMIT = {"type": "integer", "maximum": 10}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "reference", "version": "1"},
    "paths": {
        "/items": {
            "post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": ITEM}}},
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {"schema": ITEM}}}
                },
            }
        },
        "/search": {
            "get": {
                "parameters": [{"name": "limit", "in": "query", "required": False, "schema": LIMIT}],
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {"schema": ITEM}}}
                },
            }
        },
    },
}


def requests_of(seed: int) -> list[tuple[str, str, str, bytes | None, str | None]]:
    return [
        (r.mode, r.method, r.url, r.content, r.invalid_because)
        for operation in generate_cases(DOCUMENT, "http://testserver", max_examples=8, seed=seed)
        for r in operation.requests
    ]


def test_same_seed_same_requests() -> None:
    assert requests_of(11) == requests_of(11)


def test_other_seed_other_requests() -> None:
    assert requests_of(11) != requests_of(12)


def test_both_modes_are_generated_and_invalid_ones_say_why() -> None:
    generated = requests_of(3)
    assert {mode for mode, *_ in generated} == {"positive", "negative"}
    assert all(reason is None for mode, *_, reason in generated if mode == "positive")
    assert any(reason for mode, *_, reason in generated if mode == "negative")


async def _strict_reference_server(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts exactly what DOCUMENT allows, refuses the rest with 4xx error bodies; no platform endpoints."""
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]
            await send({"type": event + ".complete"})
            if event == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, answer = 404, {"reason_code": "route.not_found"}
    if scope["path"] == "/openapi.json":
        status, answer = 200, DOCUMENT
    elif scope["path"] == "/items" and scope["method"] == "POST":
        try:
            jsonschema.validate(json.loads(body), ITEM)
            status, answer = 200, {"n": 1}
        except (ValueError, jsonschema.ValidationError):
            status, answer = 422, {"reason_code": "request.invalid"}
    elif scope["path"] == "/search" and scope["method"] == "GET":
        query = dict(parse_qsl(scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True))
        try:
            if "limit" in query:
                jsonschema.validate(int(query["limit"]), LIMIT)
            status, answer = 200, {"n": 1}
        except (ValueError, jsonschema.ValidationError):
            status, answer = 400, {"reason_code": "request.invalid_parameter"}
    payload = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def test_a_server_accepting_exactly_the_valid_requests_passes_the_generated_phase(
    conformance_of: Runner,
) -> None:
    report = await conformance_of(_strict_reference_server, options=RunOptions(max_examples=15, seed=5))
    for requirement in ("PLT-010", "PLT-011"):
        result = report.result(requirement)
        assert result.status is Status.PASS, result.evidence
    refused = [f.message for f in report.result("PLT-011").findings]
    assert any("POST /items" in m for m in refused)
    assert any("GET /search" in m for m in refused)


_OAUTH_DOCUMENT: dict[str, Any] = {
    "paths": {
        "/idp/token": {
            "post": {
                "responses": {
                    "400": {
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["error"]},
                            }
                        }
                    }
                }
            }
        },
        "/idp/authorize/{step}": {
            "get": {
                "responses": {
                    "302": {"description": "to the client"},
                    "400": {"content": {"text/html": {"schema": {"type": "string"}}}},
                }
            }
        },
    }
}


@pytest.mark.parametrize(
    ("method", "url", "status", "headers", "body", "declared"),
    [
        ("POST", "https://t/idp/token", 400, {"content-type": "application/json"}, b'{"error": "x"}', True),
        ("POST", "https://t/idp/token", 400, {"content-type": "application/json"}, b'{"other": 1}', False),
        ("POST", "https://t/idp/token", 401, {"content-type": "application/json"}, b'{"error": "x"}', False),
        ("POST", "https://t/idp/token", 400, {"content-type": "text/html"}, b"<p>no</p>", False),
        ("GET", "https://t/idp/token", 400, {"content-type": "application/json"}, b'{"error": "x"}', False),
        (
            "GET",
            "https://t/idp/authorize/one",
            400,
            {"content-type": "text/html; charset=utf-8"},
            b"<p/>",
            True,
        ),
        ("GET", "https://t/idp/authorize/one", 400, {"content-type": "text/html"}, b"", False),
        (
            "GET",
            "https://t/idp/authorize/one",
            302,
            {"location": "https://c/cb?error=access_denied"},
            b"",
            True,
        ),
        ("GET", "https://t/idp/authorize/one", 302, {"location": "https://c/cb?code=abc"}, b"", False),
        ("GET", "https://t/idp/authorize/a/b", 400, {"content-type": "text/html"}, b"<p/>", False),
    ],
)
def test_documented_responses_follow_the_operations_declarations(
    method: str, url: str, status: int, headers: dict[str, str], body: bytes, declared: bool
) -> None:
    assert DocumentedResponses(_OAUTH_DOCUMENT).declares(method, url, status, headers, body) is declared
