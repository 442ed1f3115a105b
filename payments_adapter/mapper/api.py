"""The G2P Connect mapper API (``api/g2p-mapper.yaml``, https://github.com/G2P-Connect/specs) of the
payments block, under its prefix:

- ``POST /mapper/link``, ``/mapper/update``, ``/mapper/unlink``: a beneficiary (scope
  ``payments:mapper:self``, their own id only) or an operator with the person present (scope
  ``payments:mapper:operator``, recorded as assisted) changes where the person is paid;
- ``POST /mapper/resolve``: a paying system (scope ``payments:mapper:resolve``) resolves an address to
  its beneficiary or provider, or a beneficiary to their address, in the six G2P Connect resolve types;
- ``/mapper/v1/freezes``, ``/mapper/v1/shared-addresses``, ``/mapper/v1/conflicts``,
  ``/mapper/v1/beneficiaries/{beneficiary_id}/history``: administration (scope ``payments:mapper:admin``).

Every request is the envelope ``{signature, header, message}``. The answer is synchronous: the request
is processed before the response is sent, and the response body is what G2P Connect sends later to the
``on-*`` callback (``header.status`` and the per-item answers), signed with a detached JWS (RFC 7515
Appendix F) over the RFC 8785 JSON of ``{header, message}`` with the block's key
(``/.well-known/jwks.json``). No callback follows. Callers are authenticated by their bearer token (the
spec's ``x-access-token``); a request's ``signature`` member is accepted but not verified.

A body that is not an envelope is refused as a whole (the ``error`` body); a bad item is answered
``rjct`` with its reason code among the others, which are processed normally.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler

import standards
from dpi.blocks import BlockContext
from dpi.contract import Contract, Parameter
from dpi.errors import MAX_JSON_DEPTH, DpiError, ErrorDetail, deeper_than, read_json
from dpi.signing import sign_detached
from dpi.tokens import JwtTokenVerifier, Principal, TokenVerifier, bearer_token, require_scope
from payments_adapter.mapper.receipts import PAYMENT_PURPOSE, KeyStoreReceiptKeys, ReceiptKeys
from payments_adapter.mapper.service import RESOLVE_TYPES, Actor, Channel, MapperService, wire_time

__all__ = [
    "G2P_MAPPER_VERSION",
    "SCOPE_ADMIN",
    "SCOPE_OPERATOR",
    "SCOPE_RESOLVE",
    "SCOPE_SELF",
    "capabilities",
    "routes",
]

SCOPE_SELF: Final = "payments:mapper:self"
SCOPE_OPERATOR: Final = "payments:mapper:operator"
SCOPE_RESOLVE: Final = "payments:mapper:resolve"
SCOPE_ADMIN: Final = "payments:mapper:admin"
G2P_MAPPER_VERSION: Final = "0.1.0"
_TAGS: Final = ("payments-mapper",)
_AUTHENTICATED: Final = (400, 401, 403, 405, 413, 415, 422, 500)
_MAX_DETAILS: Final = 20
# The envelope schemas' maxItems.
_MAX_ITEMS: Final = 1000
_BENEFICIARY_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
_BENEFICIARY = Parameter(
    "beneficiary_id",
    "path",
    {"type": "string", "maxLength": 128, "pattern": _BENEFICIARY_PATTERN.pattern},
    description="The beneficiary.",
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _envelope(request: Request[Any, Any, Any], action: str) -> tuple[dict[str, Any], dict[int, str]]:
    """The body as the envelope of ``action``: the document and the schema problems of each item."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise DpiError("request.unsupported_media_type")
    try:
        document = json.loads(await request.body(), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DpiError("request.malformed_json") from None
    if not isinstance(document, dict) or deeper_than(document, MAX_JSON_DEPTH):
        raise DpiError("request.invalid", details=[ErrorDetail("", "request.invalid", "not an envelope")])
    validator = standards.validator(f"g2p-mapper-{action}-request@1.0.0")
    problems: dict[int, list[str]] = defaultdict(list)
    if not validator.is_valid(document):
        prefix = f"/message/{action}_request/"
        envelope: list[ErrorDetail] = []
        for issue in validator.issues(document, limit=500):
            head = issue.pointer.removeprefix(prefix).partition("/")[0]
            if issue.pointer.startswith(prefix) and head.isdigit():
                problems[int(head)].append(f"{issue.pointer}: {issue.message}")
            else:
                envelope.append(ErrorDetail(issue.pointer, issue.reason_code, issue.message))
        if envelope:
            raise DpiError("request.invalid", details=envelope[:_MAX_DETAILS])
    if document["header"]["action"] != action:
        raise DpiError("payments.mapper.action.invalid", f"this endpoint takes action {action!r}")
    return document, {index: "; ".join(found[:3]) for index, found in problems.items()}


def capabilities() -> dict[str, Any]:
    """The mapper's part of the payments block's ``/.well-known/dpi-capabilities`` entry."""
    return {
        "mapper": {
            "g2p_connect_version": G2P_MAPPER_VERSION,
            "endpoints": [f"/payments/mapper/{action}" for action in ("link", "update", "unlink", "resolve")],
            "resolve_types": list(RESOLVE_TYPES),
            "answers": "synchronous, in the on-* callback shape, signed with the block key",
            "consent_purpose": PAYMENT_PURPOSE,
            "max_items": _MAX_ITEMS,
        }
    }


def routes(
    context: BlockContext,
    *,
    verifier: TokenVerifier | None = None,
    receipt_keys: ReceiptKeys | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> list[HTTPRouteHandler]:
    """The mapper's handlers. ``verifier`` checks bearer tokens (by default the kernel's issuer),
    ``receipt_keys`` is the consent block's key set (by default the kernel key store the consent block
    signs with when they run together)."""
    settings = context.settings
    token_verifier = verifier or JwtTokenVerifier(
        settings.access_token_issuer, jwks_url=settings.access_token_jwks_url
    )
    service = MapperService(context.sessions, receipt_keys or KeyStoreReceiptKeys(context.keys), clock=clock)
    system_id = settings.member_id or settings.public_url

    async def authenticate(request: Request[Any, Any, Any], *scopes: str) -> Principal:
        principal = await token_verifier.verify(bearer_token(request.headers.get("authorization")))
        if not any(scope in principal.scopes for scope in scopes):
            require_scope(principal, scopes[0])
        return principal

    def answer(
        document: Mapping[str, Any], action: str, member: str, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        request_header = document["header"]
        header: dict[str, Any] = {
            "version": G2P_MAPPER_VERSION,
            "message_id": request_header["message_id"],
            "message_ts": wire_time(clock()),
            "action": f"on-{action}",
            "status": "succ",
            "total_count": len(items),
            "completed_count": len(items),
            "sender_id": system_id,
        }
        if "sender_id" in request_header:
            header["receiver_id"] = request_header["sender_id"]
        message = {"transaction_id": document["message"]["transaction_id"], member: items}
        body = {"header": header, "message": message}
        return {"signature": sign_detached(body, context.keys.active()), **body}

    async def changes(
        request: Request[Any, Any, Any],
        action: str,
        work: Callable[[Mapping[str, Any], Actor], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        document, problems = await _envelope(request, action)
        principal = await authenticate(request, SCOPE_OPERATOR, SCOPE_SELF)
        channel = Channel.ASSISTED if SCOPE_OPERATOR in principal.scopes else Channel.SELF
        actor = Actor(principal.subject, channel, caller=principal.member or principal.subject)
        items: list[dict[str, Any]] = []
        for index, item in enumerate(document["message"][f"{action}_request"]):
            if index in problems:
                items.append(service.refused(item, "payments.mapper.item.invalid", problems[index]))
            else:
                items.append(await work(item, actor))
        return answer(document, action, f"{action}_response", items)

    def contract(action: str) -> dict[str, Any]:
        return Contract(
            f"G2P Connect mapper {action}; answered synchronously in the on-{action} shape",
            {200: f"g2p-mapper-on-{action}@1.0.0"},
            request=f"g2p-mapper-{action}-request@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt()

    @post("/mapper/link", status_code=200, opt=contract("link"))
    async def link(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await changes(request, "link", service.link)

    @post("/mapper/update", status_code=200, opt=contract("update"))
    async def update(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await changes(request, "update", service.update)

    @post("/mapper/unlink", status_code=200, opt=contract("unlink"))
    async def unlink(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await changes(request, "unlink", service.unlink)

    @post("/mapper/resolve", status_code=200, opt=contract("resolve"))
    async def resolve(request: Request[Any, Any, Any]) -> dict[str, Any]:
        document, problems = await _envelope(request, "resolve")
        await authenticate(request, SCOPE_RESOLVE)
        items: list[dict[str, Any]] = []
        for index, item in enumerate(document["message"]["resolve_request"]):
            if index in problems:
                items.append(service.refused(item, "payments.mapper.item.invalid", problems[index]))
            else:
                items.append(await service.resolve(item))
        return answer(document, "resolve", "resolve_response", items)

    async def admin_body(request: Request[Any, Any, Any], schema: str) -> tuple[dict[str, Any], Principal]:
        body = await read_json(request, schema)
        principal = await authenticate(request, SCOPE_ADMIN)
        return body, principal

    @post(
        "/mapper/v1/freezes",
        opt=Contract(
            "Register a payment cycle's freeze window (201), or find the same one registered (200)",
            {200: "payments-mapper-freeze@1.0.0", 201: "payments-mapper-freeze@1.0.0"},
            request="payments-mapper-freeze-input@1.0.0",
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def register_freeze(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        body, principal = await admin_body(request, "payments-mapper-freeze-input@1.0.0")
        freeze, created = await service.register_freeze(body, principal.subject)
        return Response(freeze, status_code=201 if created else 200)

    @get(
        "/mapper/v1/freezes",
        opt=Contract(
            "The registered freeze windows",
            {200: "payments-mapper-freeze-list@1.0.0"},
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def list_freezes(request: Request[Any, Any, Any]) -> dict[str, Any]:
        await authenticate(request, SCOPE_ADMIN)
        return {"items": await service.freezes()}

    @post(
        "/mapper/v1/shared-addresses",
        status_code=200,
        opt=Contract(
            "Allow a financial address to be shared by several beneficiaries (a household wallet)",
            {200: "payments-mapper-shared-address@1.0.0"},
            request="payments-mapper-shared-address-input@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def allow_shared(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body, principal = await admin_body(request, "payments-mapper-shared-address-input@1.0.0")
        return await service.allow_shared(body, principal.subject)

    @get(
        "/mapper/v1/conflicts",
        opt=Contract(
            "Refused attempts to link an address already linked to someone else",
            {200: "payments-mapper-conflict-list@1.0.0"},
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def conflicts(request: Request[Any, Any, Any]) -> dict[str, Any]:
        await authenticate(request, SCOPE_ADMIN)
        return {"items": await service.conflicts()}

    @get(
        "/mapper/v1/beneficiaries/{beneficiary_id:str}/history",
        opt=Contract(
            "Every change of a beneficiary's links",
            {200: "payments-mapper-history@1.0.0"},
            parameters=(_BENEFICIARY,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def history(request: Request[Any, Any, Any]) -> dict[str, Any]:
        beneficiary_id = str(request.path_params["beneficiary_id"])
        if not _BENEFICIARY_PATTERN.match(beneficiary_id):
            raise DpiError(
                "request.invalid_parameter",
                details=[
                    ErrorDetail("/beneficiary_id", "request.invalid_parameter", "letters, digits, _.@-")
                ],
            )
        principal = await authenticate(request, SCOPE_ADMIN, SCOPE_SELF)
        if SCOPE_ADMIN not in principal.scopes and principal.subject != beneficiary_id:
            raise DpiError(
                "payments.mapper.beneficiary.forbidden", "a beneficiary sees only their own history"
            )
        return {"beneficiary_id": beneficiary_id, "items": await service.history(beneficiary_id)}

    return [
        link,
        update,
        unlink,
        resolve,
        register_freeze,
        list_freezes,
        allow_shared,
        conflicts,
        history,
    ]
