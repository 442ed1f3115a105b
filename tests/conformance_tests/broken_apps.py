"""Deliberately non-conformant systems: our kernel app with exactly one thing broken.

Either an ASGI middleware rewrites what the app answers (``Rewrite``), or a block adds a route that
misbehaves (the kernel's own error handling and OpenAPI document stay intact).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from litestar import Request, Response, get, post
from litestar.types import ControllerRouterHandler

from dpi.blocks import Block, BlockContext
from dpi.contract import Contract
from dpi.errors import DpiError, read_json, request_id_of
from dpi.types import Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]
Rewriter = Callable[[Scope, int, Headers, bytes], tuple[int, Headers, bytes]]


class Rewrite:
    """ASGI middleware handing every complete HTTP response to ``rewrite(scope, status, headers, body)``."""

    def __init__(self, app: Any, rewrite: Rewriter) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            status, headers, body = self.rewrite(
                scope, start["status"], list(start["headers"]), b"".join(chunks)
            )
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _json_rewrite(condition: Callable[[Scope, int], bool], change: Callable[[Any], Any]) -> Rewriter:
    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not condition(scope, status):
            return status, headers, body
        try:
            document = json.loads(body)
        except ValueError:
            return status, headers, body
        return status, headers, json.dumps(change(document)).encode()

    return rewrite


def _without(key: str) -> Callable[[Any], Any]:
    def change(document: Any) -> Any:
        if isinstance(document, dict):
            document.pop(key, None)
        return document

    return change


def _path_is(path: str) -> Callable[[Scope, int], bool]:
    return lambda scope, _status: scope["path"] == path


def _leak_private_key(jwks: Any) -> Any:
    for key in jwks["keys"]:
        key["d"] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
    return jwks


def _drop_health_response_schema(document: Any) -> Any:
    response = document["paths"]["/healthz"]["get"]["responses"]["200"]
    for media in response["content"].values():
        media.pop("schema", None)
    return document


def _drop_request_id(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    return status, [(k, v) for k, v in headers if k.lower() != b"x-request-id"], body


def _too_large_as_bad_request(
    scope: Scope, status: int, headers: Headers, body: bytes
) -> tuple[int, Headers, bytes]:
    if status != 413:
        return status, headers, body
    document = json.loads(body)
    document["reason_code"] = "request.invalid"
    return 422, headers, json.dumps(document).encode()


MIDDLEWARE_BREAKS: dict[str, Rewriter] = {
    "error bodies without reason_code": _json_rewrite(
        lambda _scope, status: status >= 400, _without("reason_code")
    ),
    "capabilities without profiles": _json_rewrite(
        _path_is("/.well-known/dpi-capabilities"), _without("profiles")
    ),
    "no X-Request-Id": _drop_request_id,
    "JWKS leaking d": _json_rewrite(_path_is("/.well-known/jwks.json"), _leak_private_key),
    "OpenAPI body without schema": _json_rewrite(_path_is("/openapi.json"), _drop_health_response_schema),
    "413 answered as 422": _too_large_as_bad_request,
}


# --- blocks with a misbehaving route ---------------------------------------------------------------------


class _Unexpected(RuntimeError):
    pass


@post(
    "/check",
    status_code=200,
    opt=Contract(
        "validates, then crashes", {200: "validation-report"}, request="validation-request"
    ).as_opt(),
)
async def crashing_check(request: Request[Any, Any, Any]) -> dict[str, Any]:
    await read_json(request, "validation-request")
    raise _Unexpected("the generated input reached a bug")


@post(
    "/check",
    status_code=200,
    opt=Contract("accepts anything", {200: "validation-report"}, request="validation-request").as_opt(),
)
async def credulous_check(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        json.loads(await request.body())
    except (ValueError, RecursionError):
        raise DpiError("request.malformed_json") from None
    return {"schema": "error@1.0.0", "valid": True, "issues": []}


@get("/lookup", opt=Contract("leaks its traceback", {200: "health"}).as_opt())
async def leaky_lookup(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    try:
        raise _Unexpected("lookup failed")
    except _Unexpected:
        trace = traceback.format_exc()
    body = {
        "reason_code": "internal.error",
        "message": trace,
        "request_id": request_id_of(request),
    }
    return Response(body, status_code=500)


def _block(name: str, handler: ControllerRouterHandler) -> Block:
    def routes(_context: BlockContext) -> Sequence[ControllerRouterHandler]:
        return [handler]

    return Block(name=name, prefix=f"/{name}", version="0.0.1", routes=routes)


BLOCK_BREAKS: dict[str, Block] = {
    "crashes on valid input": _block("crashing", crashing_check),
    "accepts invalid bodies": _block("credulous", credulous_check),
    "stack trace in a 500 body": _block("leaky", leaky_lookup),
}
