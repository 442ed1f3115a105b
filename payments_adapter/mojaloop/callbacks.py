"""The routes a Mojaloop hub sends FSPIOP 1.1 callbacks to: ``PUT /parties/{Type}/{ID}``,
``PUT /quotes/{ID}``, ``PUT /transfers/{ID}`` and their ``/error`` forms.

Mojaloop FSPIOP API 1.1
(https://github.com/mojaloop/mojaloop-specification/blob/master/fspiop-api/documents/v1.1-document-set/API-Definition_v1.1.md),
sections 6.3.4, 6.5.4 and 6.7.4. A callback is accepted (``200 OK``) only when it is as authentic as
FSPIOP allows: its ``Content-Type`` is a version 1 FSPIOP media type of its resource, its
``FSPIOP-Destination`` (when sent) is this DFSP, its ``FSPIOP-Source`` is the hub or the FSP the request
went to, its ``FSPIOP-Signature`` verifies when keys are configured, it answers a request this adapter
sent, and its body is valid. Anything else is refused with an FSPIOP error body and never reaches the
payment; a refused callback leaves the payment waiting, to be settled by a status query.

The payments block mounts :func:`routes` (``/payments/fspiop/<provider name>/...``); the hub is
configured with that base URL as this participant's callback endpoint.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from litestar import Request, Response, Router, put

import standards
from dpi.contract import Body, Contract
from dpi.errors import MAX_JSON_DEPTH, deeper_than
from payments_adapter.mojaloop import signature, wire
from payments_adapter.mojaloop.adapter import Callback, MojaloopProvider

__all__ = ["MAX_CALLBACK_BYTES", "routes"]

#: No FSPIOP 1.1 callback body of these resources comes near this size (an ILP packet is at most 32 KiB).
MAX_CALLBACK_BYTES: Final = 64 * 1024
_PROVIDER_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NOT_FOUND_CODES: Final = {"parties": "3204", "quotes": "3205", "transfers": "3208"}


def _answer(
    resource: str, status: int, code: str | None = None, description: str = "", **extra: bool
) -> Response[bytes]:
    content = b"" if code is None else json.dumps(wire.error_body(code, description, **extra)).encode()
    return Response(content, status_code=status, media_type=wire.content_type(resource))


async def _receive(
    provider: MojaloopProvider, request: Request[Any, Any, Any], resource: str, path: str, *, error: bool
) -> Response[bytes]:
    kind = resource.split("/", 1)[0]
    media = wire.parse_media_type(request.headers.get("content-type", ""))
    if media is None or media.resource != kind:
        return _answer(kind, 400, "3101", f"Content-Type must be an FSPIOP {kind} media type")
    if media.major not in (None, 1):
        return _answer(kind, 406, "3001", "unsupported version, see the extension list", versions=True)
    source = request.headers.get("fspiop-source", "")
    destination = request.headers.get("fspiop-destination")
    if not request.headers.get("date") or not source:
        return _answer(kind, 400, "3102", "the Date and FSPIOP-Source headers are required")
    if destination is not None and destination != provider.settings.fsp_id:
        return _answer(kind, 400, "3100", "FSPIOP-Destination is not this participant")
    if not provider.expects(resource):
        return _answer(
            kind, 404, _NOT_FOUND_CODES[kind], f"no {kind} request of this participant has this ID"
        )
    if source not in provider.expected_sources(resource):
        return _answer(kind, 403, "3000", "FSPIOP-Source is neither the hub nor the FSP that was asked")
    body = await request.body()
    keys = provider.settings.verify_keys
    if keys:
        key = keys.get(source)
        try:
            if key is None:
                raise signature.SignatureError("no key is configured for this source")
            signature.verify(
                request.headers.get("fspiop-signature"),
                body,
                key=key,
                uri=path,
                method="PUT",
                headers={
                    "FSPIOP-Source": source,
                    "FSPIOP-Destination": destination or "",
                    "Date": request.headers.get("date", ""),
                },
            )
        except signature.SignatureError as refused:
            return _answer(kind, 400, "3105", str(refused))
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return _answer(kind, 400, "3101", "the body is not JSON")
    if deeper_than(document, MAX_JSON_DEPTH):
        return _answer(kind, 400, "3101", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    schema = "fspiop-error" if error else f"fspiop-{kind}-put"
    validator = standards.validator(schema)
    if not validator.is_valid(document):
        issues = validator.issues(document, limit=1)
        missing = bool(issues) and issues[0].reason_code == "schema.required"
        where = issues[0].pointer if issues else ""
        return _answer(kind, 400, "3102" if missing else "3101", f"the body is not valid at {where or '/'}")
    provider.deliver(resource, Callback(document, source, error))
    return _answer(kind, 200)


def _options(resource: str, summary: str, *, error: bool) -> dict[str, Any]:
    media_type = wire.content_type(resource)
    refusal = Body("fspiop-error@1.1.0", media_type)
    contract = Contract(
        f"FSPIOP 1.1 {summary}, sent by the hub",
        # FSPIOP answers an accepted callback with 200 OK and no body (API Definition, section 10).
        {200: None, 400: refusal, 403: refusal, 404: refusal, 406: refusal},
        request=Body("fspiop-error@1.1.0" if error else f"fspiop-{resource}-put@1.1.0", media_type),
        tags=("payments",),
        errors=(413, 500),
    )
    return {"request_max_body_size": MAX_CALLBACK_BYTES, "status_code": 200, "opt": contract.as_opt()}


def routes(provider: MojaloopProvider) -> Router:
    """The callback routes of ``provider``, under ``/fspiop/<provider name>``."""
    if not _PROVIDER_NAME.fullmatch(provider.name):
        raise ValueError(f"provider name {provider.name!r} cannot be a path segment")

    def party_resource(request: Request[Any, Any, Any]) -> str | None:
        try:
            identifier = wire.path_segment(request.path_params["identifier"])
        except ValueError:
            return None
        return f"parties/{request.path_params['id_type']}/{identifier}"

    async def party(request: Request[Any, Any, Any], *, error: bool) -> Response[bytes]:
        resource = party_resource(request)
        if resource is None:
            return _answer("parties", 404, "3204", "no parties request of this participant has this ID")
        return await _receive(
            provider, request, resource, f"/{resource}{'/error' if error else ''}", error=error
        )

    async def by_id(request: Request[Any, Any, Any], kind: str, *, error: bool) -> Response[bytes]:
        resource = f"{kind}/{request.path_params['id']}"
        return await _receive(
            provider, request, resource, f"/{resource}{'/error' if error else ''}", error=error
        )

    @put(
        "/parties/{id_type:str}/{identifier:str}", **_options("parties", "party lookup callback", error=False)
    )
    async def put_party(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await party(request, error=False)

    @put(
        "/parties/{id_type:str}/{identifier:str}/error",
        **_options("parties", "party lookup error callback", error=True),
    )
    async def put_party_error(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await party(request, error=True)

    @put("/quotes/{id:str}", **_options("quotes", "quote callback", error=False))
    async def put_quote(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await by_id(request, "quotes", error=False)

    @put("/quotes/{id:str}/error", **_options("quotes", "quote error callback", error=True))
    async def put_quote_error(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await by_id(request, "quotes", error=True)

    @put("/transfers/{id:str}", **_options("transfers", "transfer callback", error=False))
    async def put_transfer(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await by_id(request, "transfers", error=False)

    @put("/transfers/{id:str}/error", **_options("transfers", "transfer error callback", error=True))
    async def put_transfer_error(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await by_id(request, "transfers", error=True)

    return Router(
        path=f"/fspiop/{provider.name}",
        route_handlers=[
            put_party,
            put_party_error,
            put_quote,
            put_quote_error,
            put_transfer,
            put_transfer_error,
        ],
    )
