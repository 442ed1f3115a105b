"""The registry management API, mounted at ``/registry``: each hosted registry under
``/registry/{code}/v1/...`` (records, history, change requests, merges, read audit), and the reads about
a person across registries at ``/registry/v1/reads``. Every body is a ``standards`` schema; every
refusal a ``registry.*`` (or kernel) reason code.

The DCI-compatible API of each registry (``/registry/{code}/registry/sync/search`` and the rest) is
separate from this one and built on the same service.

A request is judged in a fixed order, so a refusal never depends on what came later: path and query
parameters (an unknown registry is ``registry.not_found``), then the body (415, 400, 422), then the
bearer token (401), then its scope (403), then the domain rules (404, 409).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, get, post, put
from litestar.handlers import HTTPRouteHandler

import standards
from dpi.contract import Contract, Parameter
from dpi.errors import DpiError, read_json
from registry.auth import (
    SCOPE_AUDIT_ALL,
    SCOPE_SELF,
    Principal,
    bearer_token,
    granted_groups,
    registry_scope,
    require_scope,
)
from registry.dedup import LIKELY, Deduplicator
from registry.definition import RegistryDefinition
from registry.service import Reader

if TYPE_CHECKING:
    from registry.block import RegistryRuntime

__all__ = ["build_routes"]

_UUID: Final = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_CODE: Final = "^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
_CONSENT_REF: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
_IDENTIFIER_VALUE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_-]{0,99}$")
_STATUSES: Final = ("pending", "applied", "rejected")
_AUTHENTICATED: Final = (400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503)
_TAGS: Final = ("registry",)

_CODE_PARAMETER = Parameter(
    "code", "path", {"type": "string", "maxLength": 32, "pattern": _CODE}, description="The registry's code."
)
_RECORD_ID = Parameter("record_id", "path", {"type": "string", "maxLength": 36, "pattern": _UUID})
_CHANGE_REQUEST_ID = Parameter(
    "change_request_id", "path", {"type": "string", "maxLength": 36, "pattern": _UUID}
)
_PURPOSE = Parameter(
    "purpose",
    "query",
    {"type": "string", "maxLength": 64},
    required=False,
    description="Why the record is read (a purpose code); required for records about persons.",
)
_CONSENT = Parameter(
    "consent_ref",
    "query",
    {"type": "string", "maxLength": 200},
    required=False,
    description="The consent the read relies on, recorded in the read log.",
)
_STATUS = Parameter("status", "query", {"enum": list(_STATUSES)}, required=False)
_DUPLICATE_STATUSES: Final = ("pending", "merged", "not_duplicate")
_DUPLICATE_STATUS = Parameter(
    "status", "query", {"enum": list(_DUPLICATE_STATUSES)}, required=False, description="Default: pending."
)
_DUPLICATE_ID = Parameter("duplicate_id", "path", {"type": "string", "maxLength": 36, "pattern": _UUID})
_IDENTIFIER_TYPE = Parameter("identifier_type", "query", {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"})
_IDENTIFIER = Parameter("identifier_value", "query", {"type": "string", "maxLength": 100})


def _invalid_parameter(name: str, expected: str) -> DpiError:
    return DpiError("request.invalid_parameter", f"{name} must be {expected}")


def _query(request: Request[Any, Any, Any], name: str) -> str | None:
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise _invalid_parameter(name, "given once")
    return values[0] if values else None


def _uuid(request: Request[Any, Any, Any], name: str) -> str:
    value = str(request.path_params[name])
    if not re.fullmatch(_UUID, value):
        raise _invalid_parameter(name, "a lower-case UUID")
    return value


def build_routes(runtime: RegistryRuntime) -> list[HTTPRouteHandler]:
    """Every HTTP handler of the block, bound to ``runtime``."""
    service = runtime.service
    deduplicator = Deduplicator(service)

    def registry_of(request: Request[Any, Any, Any]) -> RegistryDefinition:
        return service.definition(str(request.path_params["code"]))

    async def authenticate(request: Request[Any, Any, Any], *scopes: str) -> Principal:
        """The caller, who must hold one of ``scopes``."""
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
        if not any(scope in principal.scopes for scope in scopes):
            require_scope(principal, scopes[0])
        return principal

    def reader_of(principal: Principal) -> str:
        return principal.member or principal.subject

    @get(
        "/{code:str}/v1/definition",
        opt=Contract(
            "What the registry is: record schema, identifiers, searchable attributes, field groups",
            {200: "registry-definition@1.0.0"},
            parameters=(_CODE_PARAMETER,),
            tags=_TAGS,
            errors=(400, 404, 405, 500),
        ).as_opt(),
    )
    async def definition(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return dict(registry_of(request).document)

    @post(
        "/{code:str}/v1/records",
        status_code=201,
        opt=Contract(
            "Create a record (validated against the registry's schema; identifiers unique in the registry). "
            "A likely duplicate of an active record is refused with registry.duplicate_suspected and the "
            "candidates; a possible one is created and queued for review.",
            {201: "registry-record@1.0.0"},
            request="registry-record-input@1.0.0",
            parameters=(_CODE_PARAMETER,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def create_record(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        body = await read_json(request, "registry-record-input@1.0.0")
        principal = await authenticate(request, registry_scope(code, "write"))
        return await deduplicator.create(
            code, body["document"], actor=principal.subject, reason=body.get("reason"), refuse_at=LIKELY
        )

    @get(
        "/{code:str}/v1/records/{record_id:str}",
        opt=Contract(
            "A record, reduced to the field groups the token grants; a merged record answers with its "
            "survivor and redirected_from. Reads of records about persons are logged.",
            {200: "registry-record@1.0.0"},
            parameters=(_CODE_PARAMETER, _RECORD_ID, _PURPOSE, _CONSENT),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def read_record(request: Request[Any, Any, Any]) -> dict[str, Any]:
        registry = registry_of(request)
        record_id = _uuid(request, "record_id")
        purpose = _query(request, "purpose")
        if purpose is not None and purpose not in standards.purpose_codes():
            raise _invalid_parameter("purpose", "a purpose code of the purpose-codes vocabulary")
        consent_ref = _query(request, "consent_ref")
        if consent_ref is not None and not _CONSENT_REF.fullmatch(consent_ref):
            raise _invalid_parameter("consent_ref", "a consent reference of up to 200 characters")
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
        groups = granted_groups(principal, registry.code, frozenset(registry.field_groups))
        if groups is not None and not groups:
            require_scope(principal, registry_scope(registry.code, "read"))
        reader = Reader(reader_of(principal), purpose=purpose, consent_ref=consent_ref)
        return await service.read(registry.code, record_id, reader=reader, groups=groups)

    @put(
        "/{code:str}/v1/records/{record_id:str}",
        opt=Contract(
            "Replace a record's document if still at the given version (else registry.version_conflict)",
            {200: "registry-record@1.0.0"},
            request="registry-record-update@1.0.0",
            parameters=(_CODE_PARAMETER, _RECORD_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def update_record(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        record_id = _uuid(request, "record_id")
        body = await read_json(request, "registry-record-update@1.0.0")
        principal = await authenticate(request, registry_scope(code, "write"))
        return await service.update(
            code,
            record_id,
            version=body["version"],
            document=body["document"],
            actor=principal.subject,
            reason=body["reason"],
        )

    @post(
        "/{code:str}/v1/records/{record_id:str}/deletion",
        status_code=200,
        opt=Contract(
            "Soft-delete a record at the version given: it leaves searches, its history stays",
            {200: "registry-record@1.0.0"},
            request="registry-record-deletion@1.0.0",
            parameters=(_CODE_PARAMETER, _RECORD_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def delete_record(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        record_id = _uuid(request, "record_id")
        body = await read_json(request, "registry-record-deletion@1.0.0")
        principal = await authenticate(request, registry_scope(code, "write"))
        return await service.delete(
            code, record_id, version=body["version"], actor=principal.subject, reason=body["reason"]
        )

    @get(
        "/{code:str}/v1/records/{record_id:str}/history",
        opt=Contract(
            "Every version of a record: who, when, why, and the JSON Patch from the version before",
            {200: "registry-history@1.0.0"},
            parameters=(_CODE_PARAMETER, _RECORD_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def record_history(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        record_id = _uuid(request, "record_id")
        await authenticate(request, registry_scope(code, "read"))
        return await service.history(code, record_id)

    @get(
        "/{code:str}/v1/records/{record_id:str}/reads",
        opt=Contract(
            "Who read a record, for which purpose, under which consent, when (newest first)",
            {200: "registry-read-list@1.0.0"},
            parameters=(_CODE_PARAMETER, _RECORD_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def record_reads(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        record_id = _uuid(request, "record_id")
        await authenticate(request, registry_scope(code, "audit"))
        return await service.reads_of_record(code, record_id)

    @post(
        "/{code:str}/v1/merges",
        status_code=201,
        opt=Contract(
            "Merge a duplicate (the loser) into the record that survives; reads of the loser redirect",
            {201: "registry-merge@1.0.0"},
            request="registry-merge-input@1.0.0",
            parameters=(_CODE_PARAMETER,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def merge(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        body = await read_json(request, "registry-merge-input@1.0.0")
        principal = await authenticate(request, registry_scope(code, "merge"))
        return await service.merge(
            code,
            survivor_id=body["survivor_id"],
            loser_id=body["loser_id"],
            actor=principal.subject,
            reason=body["reason"],
        )

    @post(
        "/{code:str}/v1/records/{record_id:str}/unmerge",
        status_code=200,
        opt=Contract(
            "Undo the merge of a record: it is active and searchable again",
            {200: "registry-record@1.0.0"},
            request="registry-decision@1.0.0",
            parameters=(_CODE_PARAMETER, _RECORD_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def unmerge(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        record_id = _uuid(request, "record_id")
        body = await read_json(request, "registry-decision@1.0.0")
        principal = await authenticate(request, registry_scope(code, "merge"))
        return await service.unmerge(code, record_id, actor=principal.subject, reason=body["reason"])

    @post(
        "/{code:str}/v1/change-requests",
        status_code=201,
        opt=Contract(
            "Propose a correction of a record at a version; it waits for a decision",
            {201: "registry-change-request@1.0.0"},
            request="registry-change-request-input@1.0.0",
            parameters=(_CODE_PARAMETER,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def propose_change(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        body = await read_json(request, "registry-change-request-input@1.0.0")
        principal = await authenticate(request, registry_scope(code, "correct"))
        return await service.propose_change(
            code,
            body["record_id"],
            version=body["version"],
            document=body["document"],
            actor=principal.subject,
            reason=body["reason"],
        )

    @get(
        "/{code:str}/v1/change-requests",
        opt=Contract(
            "Change requests of the registry, newest first",
            {200: "registry-change-request-list@1.0.0"},
            parameters=(_CODE_PARAMETER, _STATUS),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def list_changes(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        status = _query(request, "status")
        if status is not None and status not in _STATUSES:
            raise _invalid_parameter("status", "pending, applied or rejected")
        await authenticate(request, registry_scope(code, "approve"), registry_scope(code, "correct"))
        return await service.change_requests(code, status)

    @get(
        "/{code:str}/v1/change-requests/{change_request_id:str}",
        opt=Contract(
            "One change request and its decision",
            {200: "registry-change-request@1.0.0"},
            parameters=(_CODE_PARAMETER, _CHANGE_REQUEST_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def one_change(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        change_request_id = _uuid(request, "change_request_id")
        await authenticate(request, registry_scope(code, "approve"), registry_scope(code, "correct"))
        return await service.change_request(code, change_request_id)

    async def decide(request: Request[Any, Any, Any], approve: bool) -> dict[str, Any]:
        code = registry_of(request).code
        change_request_id = _uuid(request, "change_request_id")
        body = await read_json(request, "registry-decision@1.0.0")
        principal = await authenticate(request, registry_scope(code, "approve"))
        return await service.decide_change(
            code, change_request_id, approve=approve, actor=principal.subject, reason=body["reason"]
        )

    @post(
        "/{code:str}/v1/change-requests/{change_request_id:str}/approval",
        status_code=200,
        opt=Contract(
            "Approve a correction and apply it in the same transaction (by a second person where required)",
            {200: "registry-change-request@1.0.0"},
            request="registry-decision@1.0.0",
            parameters=(_CODE_PARAMETER, _CHANGE_REQUEST_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def approve_change(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await decide(request, approve=True)

    @post(
        "/{code:str}/v1/change-requests/{change_request_id:str}/rejection",
        status_code=200,
        opt=Contract(
            "Reject a correction (by a second person where required)",
            {200: "registry-change-request@1.0.0"},
            request="registry-decision@1.0.0",
            parameters=(_CODE_PARAMETER, _CHANGE_REQUEST_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def reject_change(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await decide(request, approve=False)

    @get(
        "/v1/reads",
        opt=Contract(
            "Reads, in every hosted registry, of records about the person holding an identifier; a person "
            "may list their own (token subject = the identifier)",
            {200: "registry-read-list@1.0.0"},
            parameters=(_IDENTIFIER_TYPE, _IDENTIFIER),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def reads_about_person(request: Request[Any, Any, Any]) -> dict[str, Any]:
        identifier_type = _query(request, "identifier_type")
        if identifier_type is None or identifier_type not in standards.identifier_types():
            raise _invalid_parameter(
                "identifier_type", "an identifier type of the identifier-types vocabulary"
            )
        value = _query(request, "identifier_value")
        if value is None or not _IDENTIFIER_VALUE.fullmatch(value):
            raise _invalid_parameter("identifier_value", "an identifier of up to 100 letters and digits")
        principal = await authenticate(request, SCOPE_AUDIT_ALL, SCOPE_SELF)
        if SCOPE_AUDIT_ALL not in principal.scopes and principal.subject != value:
            raise DpiError("auth.scope_missing", "a person may list only the reads about themself")
        return await service.reads_of_subject(identifier_type, value)

    @get(
        "/{code:str}/v1/duplicates",
        opt=Contract(
            "The duplicate review queue (pending entries unless a status is given), highest score first",
            {200: "registry-duplicate-list@1.0.0"},
            parameters=(_CODE_PARAMETER, _DUPLICATE_STATUS),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def list_duplicates(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        status = _query(request, "status") or "pending"
        if status not in _DUPLICATE_STATUSES:
            raise _invalid_parameter("status", "pending, merged or not_duplicate")
        await authenticate(request, registry_scope(code, "merge"))
        return await deduplicator.queue(code, status)

    @get(
        "/{code:str}/v1/duplicates/{duplicate_id:str}",
        opt=Contract(
            "One suspected duplicate: the two records, the score and its explanation, and the decision",
            {200: "registry-duplicate@1.0.0"},
            parameters=(_CODE_PARAMETER, _DUPLICATE_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def one_duplicate(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        duplicate_id = _uuid(request, "duplicate_id")
        await authenticate(request, registry_scope(code, "merge"))
        return await deduplicator.entry(code, duplicate_id)

    @post(
        "/{code:str}/v1/duplicates/{duplicate_id:str}/decision",
        status_code=200,
        opt=Contract(
            "Decide a suspected duplicate: merge (the survivor chosen keeps, the other redirects to it) "
            "or not a duplicate; who, when and why stay with the entry",
            {200: "registry-duplicate@1.0.0"},
            request="registry-duplicate-decision@1.0.0",
            parameters=(_CODE_PARAMETER, _DUPLICATE_ID),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def decide_duplicate(request: Request[Any, Any, Any]) -> dict[str, Any]:
        code = registry_of(request).code
        duplicate_id = _uuid(request, "duplicate_id")
        body = await read_json(request, "registry-duplicate-decision@1.0.0")
        principal = await authenticate(request, registry_scope(code, "merge"))
        return await deduplicator.decide(
            code,
            duplicate_id,
            merge=body["decision"] == "merge",
            actor=principal.subject,
            reason=body["reason"],
            survivor_id=body.get("survivor_id"),
        )

    return [
        definition,
        create_record,
        read_record,
        update_record,
        delete_record,
        record_history,
        record_reads,
        merge,
        unmerge,
        propose_change,
        list_changes,
        one_change,
        approve_change,
        reject_change,
        reads_about_person,
        list_duplicates,
        one_duplicate,
        decide_duplicate,
    ]
