"""The identity block's HTTP API for operators and the exchange, mounted at ``/identity``.

Operators at service centres (``identity:enrol``; the operator id is the token's ``sub``) enrol people,
read and correct their records and, with the holder present, issue, revoke and regenerate virtual IDs
(channel ``assisted``). Authorities (``identity:admin``) deactivate, reactivate and record deaths, and
may do whatever an operator may. The exchange (``identity:translate``) translates a sector pseudonym
into another sector's, never into a UIN. Holder self-service comes with the OpenID provider.

Requests are judged in a fixed order: path parameters (a UIN must carry a valid Verhoeff check digit,
else 400 ``request.invalid_parameter``), then the body (415, 400, 422), then the token (401), then its
scope (403), then the register's rules. Error bodies never echo a UIN, a VID, a phone or a name, and
nothing here logs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, delete, get, patch, post
from litestar.handlers import HTTPRouteHandler

import standards
from dpi.contract import Contract, Parameter
from dpi.errors import DpiError, ErrorDetail, read_json
from dpi.tokens import Principal, bearer_token, require_scope
from identity.service import Actor, is_uin, timestamp

if TYPE_CHECKING:
    from identity.block import IdentityRuntime

__all__ = ["SCOPE_ADMIN", "SCOPE_ENROL", "SCOPE_SELF", "SCOPE_TRANSLATE", "build_routes"]

SCOPE_ENROL: Final = "identity:enrol"
SCOPE_ADMIN: Final = "identity:admin"
SCOPE_SELF: Final = "identity:self"
SCOPE_TRANSLATE: Final = "identity:translate"

_ACTOR_ID: Final = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._:@/-]{0,254}$")
_UIN = Parameter(
    "uin",
    "path",
    {"type": "string", "pattern": "^[1-9][0-9]{9}$"},
    description="The person's UIN: 10 digits, the last a Verhoeff check digit.",
)
# Refusals every authenticated operation may answer, besides its own.
_AUTHENTICATED: Final = (400, 401, 403, 404, 405, 413, 415, 422, 500, 503)
_TAGS: Final = ("identity",)


def _uin(request: Request[Any, Any, Any]) -> str:
    value = str(request.path_params["uin"])
    if not is_uin(value):
        raise DpiError("request.invalid_parameter", "uin must be 10 digits ending in a valid check digit")
    return value


def build_routes(runtime: IdentityRuntime) -> list[HTTPRouteHandler]:
    """Every HTTP handler of the block, bound to ``runtime``."""
    register = runtime.register

    async def principal_of(request: Request[Any, Any, Any]) -> Principal:
        return await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))

    async def staff(request: Request[Any, Any, Any], *, admin_only: bool = False) -> Actor:
        """The operator (``identity:enrol``) or authority (``identity:admin``) the token names."""
        principal = await principal_of(request)
        if admin_only or SCOPE_ADMIN in principal.scopes:
            require_scope(principal, SCOPE_ADMIN)
            actor = Actor("authority", principal.subject)
        else:
            require_scope(principal, SCOPE_ENROL)
            actor = Actor("operator", principal.subject)
        if not _ACTOR_ID.fullmatch(principal.subject):
            raise DpiError("identity.actor_not_allowed", "the token's subject is not a usable operator id")
        return actor

    async def operator(request: Request[Any, Any, Any]) -> Actor:
        """An operator with the holder present: assisted virtual-ID operations are not for authorities."""
        principal = await principal_of(request)
        require_scope(principal, SCOPE_ENROL)
        if not _ACTOR_ID.fullmatch(principal.subject):
            raise DpiError("identity.actor_not_allowed", "the token's subject is not a usable operator id")
        return Actor("operator", principal.subject)

    @post(
        "/v1/persons",
        status_code=201,
        opt=Contract(
            "Enrol a person (assisted: by the operator the token names, with the person present)",
            {201: "identity-person@1.0.0"},
            request="identity-enrolment@1.0.0",
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def enrol(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "identity-enrolment@1.0.0")
        principal = await principal_of(request)
        require_scope(principal, SCOPE_ENROL)
        channel = body["channel"]
        if channel == "web" and "operator_note" in body:
            raise DpiError(
                "request.invalid",
                details=[ErrorDetail("/operator_note", "request.invalid", "only with the assisted channel")],
            )
        if channel == "assisted" and not _ACTOR_ID.fullmatch(principal.subject):
            raise DpiError("identity.actor_not_allowed", "the token's subject is not a usable operator id")
        return await register.enrol(
            body["demographics"],
            operator_id=principal.subject if channel == "assisted" else None,
            channel=channel,
            note=body.get("operator_note"),
        )

    @get(
        "/v1/persons/{uin:str}",
        opt=Contract(
            "A person's record",
            {200: "identity-person@1.0.0"},
            parameters=(_UIN,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def read_person(request: Request[Any, Any, Any]) -> dict[str, Any]:
        uin = _uin(request)
        await staff(request)
        return await register.person(uin)

    @patch(
        "/v1/persons/{uin:str}",
        opt=Contract(
            "Change a person's demographics (a merge patch), with the reason",
            {200: "identity-person@1.0.0"},
            request="identity-person-update@1.0.0",
            parameters=(_UIN,),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def update_person(request: Request[Any, Any, Any]) -> dict[str, Any]:
        uin = _uin(request)
        body = await read_json(request, "identity-person-update@1.0.0")
        actor = await staff(request)
        return await register.update(uin, body["changes"], actor=actor, reason=body["reason"])

    @get(
        "/v1/persons/{uin:str}/history",
        opt=Contract(
            "Every change to a person's record: who, when, why, which fields",
            {200: "identity-history@1.0.0"},
            parameters=(_UIN,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def person_history(request: Request[Any, Any, Any]) -> dict[str, Any]:
        uin = _uin(request)
        await staff(request)
        return {"events": await register.history(uin)}

    def status_route(action: str, summary: str) -> HTTPRouteHandler:
        change = {
            "deactivate": register.deactivate,
            "reactivate": register.reactivate,
            "deceased": register.mark_deceased,
        }[action]

        @post(
            f"/v1/persons/{{uin:str}}/{action}",
            status_code=200,
            name=f"identity-{action}",
            opt=Contract(
                summary,
                {200: "identity-person@1.0.0"},
                request="identity-status-change@1.0.0",
                parameters=(_UIN,),
                tags=_TAGS,
                errors=(*_AUTHENTICATED, 409),
            ).as_opt(),
        )
        async def change_status(request: Request[Any, Any, Any]) -> dict[str, Any]:
            uin = _uin(request)
            body = await read_json(request, "identity-status-change@1.0.0")
            actor = await staff(request, admin_only=True)
            return await change(uin, actor=actor, reason=body["reason"])

        return change_status

    @post(
        "/v1/persons/{uin:str}/vid",
        status_code=201,
        opt=Contract(
            "Issue a virtual ID to the holder present at the counter (shown once, never stored in clear)",
            {201: "identity-vid@1.0.0"},
            request="identity-vid-request@1.0.0",
            parameters=(_UIN,),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def issue_vid(request: Request[Any, Any, Any]) -> dict[str, Any]:
        uin = _uin(request)
        await read_json(request, "identity-vid-request@1.0.0")
        actor = await operator(request)
        vid = await register.issue_vid(uin, actor=actor)
        return {"vid": vid, "issued_at": _now(runtime)}

    @delete(
        "/v1/persons/{uin:str}/vid",
        status_code=204,
        opt=Contract(
            "Revoke the active virtual ID of the holder present at the counter",
            {},
            parameters=(_UIN,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def revoke_vid(request: Request[Any, Any, Any]) -> None:
        uin = _uin(request)
        actor = await operator(request)
        await register.revoke_vid(uin, actor=actor)

    @post(
        "/v1/persons/{uin:str}/vid/regenerate",
        status_code=200,
        opt=Contract(
            "Replace the active virtual ID of the holder present at the counter with a new one",
            {200: "identity-vid@1.0.0"},
            request="identity-vid-request@1.0.0",
            parameters=(_UIN,),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def regenerate_vid(request: Request[Any, Any, Any]) -> dict[str, Any]:
        uin = _uin(request)
        await read_json(request, "identity-vid-request@1.0.0")
        actor = await operator(request)
        vid = await register.regenerate_vid(uin, actor=actor)
        return {"vid": vid, "issued_at": _now(runtime)}

    @post(
        "/v1/pseudonyms/translate",
        status_code=200,
        opt=Contract(
            "The exchange: a person's pseudonym in another sector, for a purpose (recorded)",
            {200: "identity-translation@1.0.0"},
            request="identity-translation-request@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def translate(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "identity-translation-request@1.0.0")
        if body["purpose"] not in standards.purpose_codes():
            raise DpiError(
                "request.invalid",
                details=[ErrorDetail("/purpose", "request.invalid", "not in the purpose-codes vocabulary")],
            )
        principal = await principal_of(request)
        require_scope(principal, SCOPE_TRANSLATE)
        requester = principal.member or principal.subject
        if not _ACTOR_ID.fullmatch(requester):
            raise DpiError("identity.actor_not_allowed", "the token names no usable requester")
        pseudonym = await register.translate(
            pseudonym=body["pseudonym"],
            from_sector=body["from_sector"],
            to_sector=body["to_sector"],
            purpose=body["purpose"],
            requester=requester,
        )
        return {"pseudonym": pseudonym, "sector": body["to_sector"]}

    return [
        enrol,
        read_person,
        update_person,
        person_history,
        status_route("deactivate", "Deactivate a person: no authentication, no virtual ID (an authority)"),
        status_route("reactivate", "Reactivate a person, or correct a wrongly recorded death (an authority)"),
        status_route("deceased", "Record a person's death (an authority)"),
        issue_vid,
        revoke_vid,
        regenerate_vid,
        translate,
    ]


def _now(runtime: IdentityRuntime) -> str:
    return timestamp(runtime.register.clock())
