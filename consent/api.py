"""The consent block's HTTP API, mounted at ``/consent``: agreements, consent requests, the citizen's
own consents (list, decide, pause, resume, withdraw, history, receipts, exports, event chain), assisted
actions at a service centre, revocation, invalidation, the check API the exchange calls, webhooks and
the delivery view. Every body is a ``standards`` schema (ISO/IEC TS 27560-shaped records, Kantara
Consent Receipt 1.1 exports); every refusal a reason code.

Callers present a bearer access token (RFC 6750, verified by :mod:`consent.auth`). A request is judged
in a fixed order, so a refusal never depends on what came later: path parameters, then the body
(415, 400, 422), then the token (401), then its scope (403), then the domain rules. A citizen only ever
sees consents whose subject or guardian they are; any other consent id answers ``consent.not_found``
exactly as one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler

from consent import notifications
from consent.auth import (
    SCOPE_ADMIN,
    SCOPE_CHECK,
    SCOPE_GUARDIANSHIP,
    SCOPE_INVALIDATE,
    SCOPE_OPERATOR,
    SCOPE_REQUEST,
    SCOPE_REVOKE,
    SCOPE_SELF,
    SCOPE_WEBHOOKS,
    Principal,
    bearer_token,
    operator_id,
    require_scope,
)
from consent.chain import chain_document
from consent.exports import iso27560_record, kantara_receipt
from consent.lifecycle import Action, ActorRole, Channel, State
from consent.service import Actor, ActResult
from dpi.contract import Contract, Parameter
from dpi.errors import DpiError, ErrorDetail, read_json

if TYPE_CHECKING:
    from consent.block import ConsentRuntime

__all__ = ["PERSON_ACTIONS", "build_routes"]

PERSON_ACTIONS: Final = (
    Action.APPROVE,
    Action.REFUSE,
    Action.DEFER,
    Action.PAUSE,
    Action.RESUME,
    Action.WITHDRAW,
)
"""What a subject, guardian or operator may do on a consent through the API."""

_UUID: Final = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_AGREEMENT_ID: Final = "^[a-z0-9][a-z0-9-]{2,63}$"
_ACTOR_ID: Final = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._:@/-]{0,254}$")
_MAX_VERSION: Final = 1_000_000
_MAX_LISTED: Final = 1000
_SELF_CHANNELS: Final = frozenset({Channel.WEB, Channel.SMS, Channel.API})
_PARTY_CHANNELS: Final = frozenset({Channel.WEB, Channel.API})
_DELIVERY_STATUSES: Final = ("pending", "delivered", "dead", "unroutable")
_NO_SUCH_CONSENT: Final = "no such consent"

_CONSENT_ID = Parameter(
    "consent_id",
    "path",
    {"type": "string", "maxLength": 36, "pattern": _UUID},
    description="The consent's id (a lower-case UUID).",
)
_AGREEMENT_ID_PARAMETER = Parameter(
    "agreement_id", "path", {"type": "string", "maxLength": 64, "pattern": _AGREEMENT_ID}
)
_VERSION = Parameter("version", "path", {"type": "integer", "minimum": 1, "maximum": _MAX_VERSION})
_ACTION = Parameter("action", "path", {"enum": [action.value for action in PERSON_ACTIONS]})
_STATE = Parameter(
    "state",
    "query",
    {"enum": [state.value for state in State]},
    required=False,
    description="Only consents in this state (the true state, expiry included).",
)
_WEBHOOK_ID = Parameter("webhook_id", "path", {"type": "string", "maxLength": 36, "pattern": _UUID})
_DELIVERY_STATUS = Parameter(
    "status", "query", {"enum": list(_DELIVERY_STATUSES)}, required=False, description="Only these."
)

# Refusals every authenticated operation may answer, besides its own.
_AUTHENTICATED: Final = (400, 401, 403, 404, 405, 413, 415, 422, 500, 503)
_TAGS: Final = ("consent",)


def _invalid_parameter(name: str, expected: str) -> DpiError:
    return DpiError("request.invalid_parameter", f"{name} must be {expected}")


def _path(request: Request[Any, Any, Any], name: str) -> str:
    return str(request.path_params[name])


def _query(request: Request[Any, Any, Any], name: str) -> str | None:
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise _invalid_parameter(name, "given once")
    return values[0] if values else None


def _consent_id(value: str) -> str:
    if not re.fullmatch(_UUID, value):
        raise _invalid_parameter("consent_id", "a lower-case UUID")
    return value


def _agreement_id(value: str) -> str:
    if not re.fullmatch(_AGREEMENT_ID, value):
        raise _invalid_parameter("agreement_id", "a lower-case slug of 3 to 64 characters")
    return value


def _version(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= _MAX_VERSION:
        raise _invalid_parameter("version", f"an integer from 1 to {_MAX_VERSION}")
    return int(value)


def _person_action(value: str) -> Action:
    if value not in {action.value for action in PERSON_ACTIONS}:
        raise DpiError("route.not_found")
    return Action(value)


def _state_filter(value: str | None) -> State | None:
    if value is None:
        return None
    if value not in {state.value for state in State}:
        raise _invalid_parameter(
            "state", "a consent state (" + ", ".join(state.value for state in State) + ")"
        )
    return State(value)


def _body_refusal(pointer: str, message: str) -> DpiError:
    return DpiError("request.invalid", details=[ErrorDetail(pointer, "request.invalid", message)])


def _actor_not_allowed(message: str) -> DpiError:
    return DpiError("consent.actor_not_allowed", message)


def _in_force(guardianship: Mapping[str, Any], now: datetime) -> bool:
    """A guardianship with no end date, or before it: a former guardian no longer sees the record."""
    until = guardianship.get("until")
    return until is None or now.date() < date.fromisoformat(until)


def _listing(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"items": list(records[:_MAX_LISTED]), "total": len(records)}


def build_routes(runtime: ConsentRuntime) -> list[HTTPRouteHandler]:
    """Every HTTP handler of the block, bound to ``runtime``."""
    service = runtime.service
    sessions = runtime.context.sessions

    async def authenticate(request: Request[Any, Any, Any], scope: str) -> Principal:
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
        require_scope(principal, scope)
        return principal

    def member_of(principal: Principal) -> str:
        if principal.member is None:
            raise _actor_not_allowed("the token names no member subsystem")
        return principal.member

    async def records_of(subject: str, state: State | None) -> dict[str, Any]:
        own = await service.records_for_subject(subject)
        seen = {record["consent_id"] for record in own}
        guarded = [
            record
            for record in await service.records_for_subject(subject, guardian=True)
            if record["consent_id"] not in seen
        ]
        records = sorted(own + guarded, key=lambda record: record["created_at"], reverse=True)
        if state is not None:
            records = [record for record in records if record["state"] == state.value]
        return _listing(records)

    async def own_record(principal: Principal, consent_id: str) -> tuple[dict[str, Any], Actor]:
        """The record if the caller is its subject or its guardian, else ``consent.not_found``."""
        record = await service.record(consent_id)
        if record["subject"] == principal.subject:
            return record, Actor(ActorRole.SUBJECT, principal.subject)
        guardianship = record.get("guardianship", {})
        if guardianship.get("guardian") == principal.subject and _in_force(guardianship, service.clock()):
            return record, Actor(ActorRole.GUARDIAN, principal.subject)
        raise DpiError("consent.not_found", _NO_SUCH_CONSENT)

    def act_result(result: ActResult) -> dict[str, Any]:
        document: dict[str, Any] = {"record": result.record, "event": result.event}
        if result.receipt is not None:
            document["receipt"] = result.receipt
        return document

    # --- agreements -------------------------------------------------------------------------------

    @post(
        "/v1/agreements",
        status_code=201,
        opt=Contract(
            "Publish an agreement, or the next version of one (notice hashes computed here)",
            {201: "consent-agreement@1.0.0"},
            request="consent-agreement-input@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def publish_agreement(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "consent-agreement-input@1.0.0")
        await authenticate(request, SCOPE_ADMIN)
        return await service.publish_agreement(body)

    @get(
        "/v1/agreements/{agreement_id:str}",
        opt=Contract(
            "The latest version of an agreement: what may be read, by whom, why, and the notices",
            {200: "consent-agreement@1.0.0"},
            parameters=(_AGREEMENT_ID_PARAMETER,),
            tags=_TAGS,
            errors=(400, 404, 405, 500),
        ).as_opt(),
    )
    async def latest_agreement(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await service.agreement(_agreement_id(_path(request, "agreement_id")))

    @get(
        "/v1/agreements/{agreement_id:str}/versions/{version:str}",
        opt=Contract(
            "One version of an agreement",
            {200: "consent-agreement@1.0.0"},
            parameters=(_AGREEMENT_ID_PARAMETER, _VERSION),
            tags=_TAGS,
            errors=(400, 404, 405, 500),
        ).as_opt(),
    )
    async def agreement_version(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await service.agreement(
            _agreement_id(_path(request, "agreement_id")), _version(_path(request, "version"))
        )

    # --- requests by a data consumer ----------------------------------------------------------------

    @post(
        "/v1/consents",
        opt=Contract(
            "Ask a subject for consent (201), or get the request or consent already open (200)",
            {200: "consent-record@1.0.0", 201: "consent-record@1.0.0"},
            request="consent-request@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def request_consent(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        body = await read_json(request, "consent-request@1.0.0")
        principal = await authenticate(request, SCOPE_REQUEST)
        member = member_of(principal)
        record, created = await service.request_consent(
            body,
            Actor(ActorRole.CONTROLLER, member),
            guardianship_attested=SCOPE_GUARDIANSHIP in principal.scopes,
        )
        return Response(record, status_code=201 if created else 200)

    # --- the citizen's own consents -----------------------------------------------------------------

    @get(
        "/v1/me/consents",
        opt=Contract(
            "My consents and pending requests, and those I hold as guardian, newest first",
            {200: "consent-list@1.0.0"},
            parameters=(_STATE,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def my_consents(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _state_filter(_query(request, "state"))
        principal = await authenticate(request, SCOPE_SELF)
        return await records_of(principal.subject, wanted)

    @get(
        "/v1/me/consents/{consent_id:str}",
        opt=Contract(
            "One of my consents",
            {200: "consent-record@1.0.0"},
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def my_consent(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        principal = await authenticate(request, SCOPE_SELF)
        record, _ = await own_record(principal, wanted)
        return record

    @get(
        "/v1/me/consents/{consent_id:str}/history",
        opt=Contract(
            "Every event of one of my consents: who acted, when, through which channel, which notice",
            {200: "consent-history@1.0.0"},
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def my_consent_history(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        principal = await authenticate(request, SCOPE_SELF)
        await own_record(principal, wanted)
        return {"consent_id": wanted, "events": await service.history(wanted)}

    @get(
        "/v1/me/consents/{consent_id:str}/receipts",
        opt=Contract(
            "The signed receipts of one of my consents (compact JWS, verify with this block's JWKS)",
            {200: "consent-receipt-list@1.0.0"},
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def my_consent_receipts(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        principal = await authenticate(request, SCOPE_SELF)
        await own_record(principal, wanted)
        return {"consent_id": wanted, "receipts": await service.receipts(wanted)}

    @post(
        "/v1/me/consents/{consent_id:str}/{action:str}",
        status_code=200,
        opt=Contract(
            "Approve (naming the notice seen), refuse, defer, pause, resume or withdraw one of my consents",
            {200: "consent-action-result@1.0.0"},
            request="consent-action@1.0.0",
            parameters=(_CONSENT_ID, _ACTION),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def act_on_my_consent(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        chosen = _person_action(_path(request, "action"))
        body = await read_json(request, "consent-action@1.0.0")
        channel = Channel(body["channel"])
        if channel not in _SELF_CHANNELS:
            raise _body_refusal("/channel", "a citizen acts through web, sms or api")
        if "operator_id" in body:
            raise _body_refusal("/operator_id", "operators act through /v1/assisted/consents")
        principal = await authenticate(request, SCOPE_SELF)
        _, actor = await own_record(principal, wanted)
        result = await service.act(
            wanted, chosen, actor, channel=channel, notice=body.get("notice"), reason=body.get("reason")
        )
        return act_result(result)

    @get(
        "/v1/me/consents/{consent_id:str}/export/iso27560",
        opt=Contract(
            "One of my consents as an ISO/IEC TS 27560 consent record (DPV terms)",
            {200: "iso27560-consent-record@1.0.0"},
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def export_iso27560(request: Request[Any, Any, Any]) -> dict[str, Any]:
        record, agreement, events = await exportable(request)
        return iso27560_record(record, agreement, events)

    @get(
        "/v1/me/consents/{consent_id:str}/export/kantara",
        opt=Contract(
            "One of my consents as a Kantara Consent Receipt 1.1",
            {200: "kantara-consent-receipt@1.0.0"},
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def export_kantara(request: Request[Any, Any, Any]) -> dict[str, Any]:
        record, agreement, events = await exportable(request)
        return kantara_receipt(record, agreement, events)

    async def exportable(
        request: Request[Any, Any, Any],
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        wanted = _consent_id(_path(request, "consent_id"))
        principal = await authenticate(request, SCOPE_SELF)
        record, _ = await own_record(principal, wanted)
        agreement = await service.agreement(record["agreement_id"], record["agreement_version"])
        return record, agreement, await service.history(wanted)

    @get(
        "/v1/me/chain",
        opt=Contract(
            "My whole event chain with its signed heads, to verify that nothing was edited or dropped",
            {200: "consent-chain@1.0.0"},
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def my_chain(request: Request[Any, Any, Any]) -> dict[str, Any]:
        principal = await authenticate(request, SCOPE_SELF)
        return await chain_document(sessions, principal.subject)

    # --- a service-centre operator, with the subject present ---------------------------------------

    @post(
        "/v1/assisted/consents/search",
        status_code=200,
        opt=Contract(
            "The consents of the subject at the counter (the pseudonym travels in the body)",
            {200: "consent-list@1.0.0"},
            request="consent-subject-query@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def assisted_search(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "consent-subject-query@1.0.0")
        await authenticate(request, SCOPE_OPERATOR)
        state = State(body["state"]) if "state" in body else None
        return await records_of(body["subject"], state)

    @post(
        "/v1/assisted/consents/{consent_id:str}/{action:str}",
        status_code=200,
        opt=Contract(
            "Record the present subject's decision at a service centre (channel assisted)",
            {200: "consent-action-result@1.0.0"},
            request="consent-action@1.0.0",
            parameters=(_CONSENT_ID, _ACTION),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def assisted_act(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        chosen = _person_action(_path(request, "action"))
        body = await read_json(request, "consent-action@1.0.0")
        if body["channel"] != Channel.ASSISTED.value:
            raise _body_refusal("/channel", "an operator acts through the assisted channel")
        principal = await authenticate(request, SCOPE_OPERATOR)
        operator = operator_id(principal)
        if operator is None or not _ACTOR_ID.match(operator):
            raise _actor_not_allowed("the token's subject is not a usable operator id")
        if body.get("operator_id", operator) != operator:
            raise _actor_not_allowed("operator_id must be the operator the token names")
        result = await service.act(
            wanted,
            chosen,
            Actor(ActorRole.OPERATOR, operator),
            channel=Channel.ASSISTED,
            notice=body.get("notice"),
            reason=body.get("reason"),
        )
        return act_result(result)

    # --- controller, provider, authority ------------------------------------------------------------

    @post(
        "/v1/consents/{consent_id:str}/revoke",
        status_code=200,
        opt=Contract(
            "Revoke a consent: the agreement's consumer (controller) or one of its providers",
            {200: "consent-action-result@1.0.0"},
            request="consent-action@1.0.0",
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def revoke(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        body = await read_json(request, "consent-action@1.0.0")
        channel = party_channel(body)
        principal = await authenticate(request, SCOPE_REVOKE)
        member = member_of(principal)
        record = await service.record(wanted)
        agreement = await service.agreement(record["agreement_id"], record["agreement_version"])
        if member == agreement["consumer"]:
            role = ActorRole.CONTROLLER
        elif member in {provider["provider"] for provider in agreement["providers"]}:
            role = ActorRole.PROVIDER
        else:
            # A member that is no party to the agreement learns nothing about the consent.
            raise DpiError("consent.not_found", _NO_SUCH_CONSENT)
        result = await service.act(
            wanted, Action.REVOKE, Actor(role, member), channel=channel, reason=body.get("reason")
        )
        return act_result(result)

    @post(
        "/v1/consents/{consent_id:str}/invalidate",
        status_code=200,
        opt=Contract(
            "Invalidate a consent (a supervisory authority); it never permits again",
            {200: "consent-action-result@1.0.0"},
            request="consent-action@1.0.0",
            parameters=(_CONSENT_ID,),
            tags=_TAGS,
            errors=(*_AUTHENTICATED, 409),
        ).as_opt(),
    )
    async def invalidate(request: Request[Any, Any, Any]) -> dict[str, Any]:
        wanted = _consent_id(_path(request, "consent_id"))
        body = await read_json(request, "consent-action@1.0.0")
        channel = party_channel(body)
        principal = await authenticate(request, SCOPE_INVALIDATE)
        authority = principal.member or (principal.subject if _ACTOR_ID.match(principal.subject) else None)
        if authority is None:
            # Every event names who acted; an authority the token cannot name may not invalidate.
            raise _actor_not_allowed("the token names no usable authority id")
        result = await service.act(
            wanted,
            Action.INVALIDATE,
            Actor(ActorRole.AUTHORITY, authority),
            channel=channel,
            reason=body.get("reason"),
        )
        return act_result(result)

    def party_channel(body: Mapping[str, Any]) -> Channel:
        channel = Channel(body["channel"])
        if channel not in _PARTY_CHANNELS:
            raise _body_refusal("/channel", "an organisation acts through web or api")
        if "notice" in body or "operator_id" in body:
            raise _body_refusal("/notice" if "notice" in body else "/operator_id", "not for this action")
        return channel

    # --- the check API ------------------------------------------------------------------------------

    @post(
        "/v1/checks",
        status_code=200,
        opt=Contract(
            "May this consumer obtain these fields of this subject from this provider service, now?",
            {200: "consent-check-decision@1.0.0"},
            request="consent-check-request@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def check(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        body = await read_json(request, "consent-check-request@1.0.0")
        await authenticate(request, SCOPE_CHECK)
        # Straight to the checker; the answer tells a client's cache whether it may keep it: never a
        # decision that counted an access against a frequency limit, which a cached answer would skip.
        decision = await runtime.checker.decide(body)
        cache_control = "private" if decision.cacheable else "no-store"
        return Response(decision.document, headers={"Cache-Control": cache_control})

    # --- webhooks and deliveries --------------------------------------------------------------------

    @post(
        "/v1/webhooks",
        status_code=201,
        opt=Contract(
            "Register where this member receives signed consent notices",
            {201: "consent-webhook@1.0.0"},
            request="consent-webhook-input@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def register_webhook(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "consent-webhook-input@1.0.0")
        principal = await authenticate(request, SCOPE_WEBHOOKS)
        return await notifications.register_webhook(
            sessions,
            member_of(principal),
            body,
            allow_private_networks=runtime.context.settings.allow_private_callbacks,
        )

    @get(
        "/v1/webhooks",
        opt=Contract(
            "This member's webhooks",
            {200: "consent-webhook-list@1.0.0"},
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def list_webhooks(request: Request[Any, Any, Any]) -> dict[str, Any]:
        principal = await authenticate(request, SCOPE_WEBHOOKS)
        return {"items": (await notifications.list_webhooks(sessions, member_of(principal)))[:_MAX_LISTED]}

    @delete(
        "/v1/webhooks/{webhook_id:str}",
        status_code=204,
        opt=Contract(
            "Remove one of this member's webhooks",
            {},
            parameters=(_WEBHOOK_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def delete_webhook(request: Request[Any, Any, Any]) -> None:
        webhook_id = _path(request, "webhook_id")
        if not re.fullmatch(_UUID, webhook_id):
            raise _invalid_parameter("webhook_id", "a lower-case UUID")
        principal = await authenticate(request, SCOPE_WEBHOOKS)
        await notifications.delete_webhook(sessions, member_of(principal), webhook_id)

    @get(
        "/v1/deliveries",
        opt=Contract(
            "Notification deliveries: every one (consent:admin) or this member's (consent:webhooks)",
            {200: "consent-delivery-list@1.1.0"},
            parameters=(_DELIVERY_STATUS,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def list_deliveries(request: Request[Any, Any, Any]) -> dict[str, Any]:
        status = _query(request, "status")
        if status is not None and status not in _DELIVERY_STATUSES:
            raise _invalid_parameter("status", "one of " + ", ".join(_DELIVERY_STATUSES))
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
        if SCOPE_ADMIN in principal.scopes:
            found = await notifications.deliveries(sessions, status=status)
        else:
            require_scope(principal, SCOPE_WEBHOOKS)
            found = await notifications.deliveries(sessions, status=status, member=member_of(principal))
        return _listing(found)

    # --- keys ---------------------------------------------------------------------------------------

    @get(
        "/.well-known/jwks.json",
        opt=Contract(
            "The keys that sign this block's receipts, chain heads and notices (RFC 7517)",
            {200: "jwks@1.0.0"},
            tags=_TAGS,
            errors=(405, 500),
        ).as_opt(),
    )
    async def jwks() -> dict[str, Any]:
        return runtime.published_keys()

    return [
        publish_agreement,
        latest_agreement,
        agreement_version,
        request_consent,
        my_consents,
        my_consent,
        my_consent_history,
        my_consent_receipts,
        act_on_my_consent,
        export_iso27560,
        export_kantara,
        my_chain,
        assisted_search,
        assisted_act,
        revoke,
        invalidate,
        check,
        register_webhook,
        list_webhooks,
        delete_webhook,
        list_deliveries,
        jwks,
    ]
