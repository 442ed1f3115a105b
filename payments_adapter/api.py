"""The payments block's HTTP API, mounted at ``/payments``: programmes, cycles, batches (upload,
pre-flight, disbursement), status by pull (per batch with counts and sums, per item with its history),
reconciliation, and the webhooks that receive status by push.

Callers present a bearer access token (RFC 6750) with one of the block's scopes:

=======================  =============================================================
``payments:admin``       create programmes and cycles; manage webhooks
``payments:disburse``    upload batches, run the pre-flight, start a disbursement
``payments:read``        batch and item status, reconciliation reports
=======================  =============================================================

Every body is a ``standards`` schema (``payments-*``); every refusal a reason code. A request is judged in
a fixed order: path parameters, the body (415, 400, 422), the token (401), its scope (403), the domain.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import httpx
from litestar import Request, delete, get, post
from litestar.handlers import HTTPRouteHandler

from dpi import egress
from dpi.contract import Contract, Parameter
from dpi.errors import DpiError, ErrorDetail, read_json
from dpi.tokens import Principal, bearer_token, require_scope
from payments_adapter.contract import MoneyError, ProviderError
from payments_adapter.reconciliation import reconcile
from payments_adapter.service import (
    BatchLine,
    DisbursementError,
    LineProblem,
    batch_line,
    money_from_minor,
)

if TYPE_CHECKING:
    from payments_adapter.block import PaymentsRuntime

__all__ = ["SCOPE_ADMIN", "SCOPE_DISBURSE", "SCOPE_READ", "build_routes"]

SCOPE_ADMIN: Final = "payments:admin"
SCOPE_DISBURSE: Final = "payments:disburse"
SCOPE_READ: Final = "payments:read"

_UUID: Final = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_CODE: Final = "^[a-z0-9][a-z0-9._-]{0,63}$"
_KEY: Final = "^[A-Za-z0-9-]{8,35}$"
_TAGS: Final = ("payments",)
_AUTHENTICATED: Final = (400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503)

_BATCH_ID = Parameter("batch_id", "path", {"type": "string", "maxLength": 36, "pattern": _UUID})
_PROGRAMME_ID = Parameter("programme_id", "path", {"type": "string", "maxLength": 64, "pattern": _CODE})
_ITEM_KEY = Parameter("idempotency_key", "path", {"type": "string", "maxLength": 35, "pattern": _KEY})
_WEBHOOK_ID = Parameter("webhook_id", "path", {"type": "string", "maxLength": 36, "pattern": _UUID})


def _path(request: Request[Any, Any, Any], parameter: Parameter) -> str:
    value = request.path_params.get(parameter.name)
    if not isinstance(value, str) or not re.fullmatch(str(parameter.schema["pattern"]), value):
        raise DpiError(
            "request.invalid_parameter",
            details=[ErrorDetail(f"/{parameter.name}", "request.invalid_parameter", "malformed")],
        )
    return value


def _refusal(error: DisbursementError | ProviderError | MoneyError) -> DpiError:
    return DpiError(error.reason_code, str(error))


def _problem(problem: LineProblem) -> dict[str, Any]:
    return problem.as_document()


def build_routes(runtime: PaymentsRuntime) -> list[HTTPRouteHandler]:
    """Every HTTP handler of the block, bound to ``runtime``."""
    service = runtime.service

    async def authenticate(request: Request[Any, Any, Any], scope: str) -> Principal:
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
        require_scope(principal, scope)
        return principal

    @post(
        "/v1/programmes",
        status_code=201,
        opt=Contract(
            "Create a programme",
            {201: "payments-programme@1.0.0"},
            request="payments-programme-input@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def create_programme(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "payments-programme-input@1.0.0")
        await authenticate(request, SCOPE_ADMIN)
        try:
            await service.create_programme(body["programme_id"], body["name"])
        except DisbursementError as error:
            raise _refusal(error) from None
        return {"programme_id": body["programme_id"], "name": body["name"]}

    @post(
        "/v1/programmes/{programme_id:str}/cycles",
        status_code=201,
        opt=Contract(
            "Open a payment cycle of a programme",
            {201: "payments-cycle@1.0.0"},
            request="payments-cycle-input@1.0.0",
            parameters=(_PROGRAMME_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def create_cycle(request: Request[Any, Any, Any]) -> dict[str, Any]:
        programme_id = _path(request, _PROGRAMME_ID)
        body = await read_json(request, "payments-cycle-input@1.0.0")
        await authenticate(request, SCOPE_ADMIN)
        try:
            cutoff = datetime.fromisoformat(body["cutoff_at"])
        except ValueError:
            raise DpiError(
                "request.invalid",
                details=[ErrorDetail("/cutoff_at", "request.invalid", "not an RFC 3339 date-time")],
            ) from None
        if cutoff.tzinfo is None:
            raise DpiError(
                "request.invalid", details=[ErrorDetail("/cutoff_at", "request.invalid", "needs a time zone")]
            )
        try:
            await service.create_cycle(programme_id, body["cycle_id"], cutoff)
        except DisbursementError as error:
            raise _refusal(error) from None
        return {"programme_id": programme_id, "cycle_id": body["cycle_id"], "cutoff_at": cutoff.isoformat()}

    @post(
        "/v1/batches",
        status_code=201,
        opt=Contract(
            "Upload a batch of entitlements; refused items are reported one by one",
            {201: "payments-batch-receipt@1.0.0"},
            request="payments-batch-input@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def upload_batch(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "payments-batch-input@1.0.0")
        principal = await authenticate(request, SCOPE_DISBURSE)
        runtime.provider(body["provider"])
        lines: list[BatchLine] = []
        problems: list[LineProblem] = []
        for number, fields in enumerate(body["items"], start=1):
            parsed = batch_line(number, fields)
            if isinstance(parsed, LineProblem):
                problems.append(parsed)
            else:
                lines.append(parsed)
        try:
            receipt = await service.create_batch(
                body["programme_id"],
                body["cycle_id"],
                body["provider"],
                lines,
                actor=principal.subject,
                source="api",
                problems=problems,
            )
        except DisbursementError as error:
            raise _refusal(error) from None
        return {
            "batch_id": receipt.batch_id,
            "accepted": receipt.accepted,
            "problems": [_problem(problem) for problem in receipt.problems],
        }

    @post(
        "/v1/batches/{batch_id:str}/preflight",
        status_code=200,
        opt=Contract(
            "Check every pending item before any money moves",
            {200: "payments-preflight-report@1.0.0"},
            parameters=(_BATCH_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def preflight(request: Request[Any, Any, Any]) -> dict[str, Any]:
        batch_id = _path(request, _BATCH_ID)
        principal = await authenticate(request, SCOPE_DISBURSE)
        try:
            batch = await service.batch(batch_id)
            report = await service.preflight(
                batch_id, runtime.provider(batch["provider"]), runtime.accounts, actor=principal.subject
            )
        except (DisbursementError, ProviderError) as error:
            raise _refusal(error) from None
        return {
            "batch_id": batch_id,
            "ready": report.ready,
            "invalid": report.invalid,
            "unchecked": report.unchecked,
            "problems": [_problem(problem) for problem in report.problems],
        }

    @post(
        "/v1/batches/{batch_id:str}/disbursement",
        status_code=202,
        opt=Contract(
            "Start paying a batch's ready items (follow it through the batch status)",
            {202: "payments-disbursement-started@1.0.0"},
            parameters=(_BATCH_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def start_disbursement(request: Request[Any, Any, Any]) -> dict[str, Any]:
        batch_id = _path(request, _BATCH_ID)
        principal = await authenticate(request, SCOPE_DISBURSE)
        try:
            batch = await service.batch(batch_id)
        except DisbursementError as error:
            raise _refusal(error) from None
        runtime.start(batch_id, batch["provider"], actor=principal.subject)
        return {"batch_id": batch_id, "running": True}

    @get(
        "/v1/batches/{batch_id:str}",
        opt=Contract(
            "A batch's items counted per state, with sums per currency",
            {200: "payments-batch-status@1.0.0"},
            parameters=(_BATCH_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def batch_status(request: Request[Any, Any, Any]) -> dict[str, Any]:
        batch_id = _path(request, _BATCH_ID)
        await authenticate(request, SCOPE_READ)
        try:
            status = await service.status(batch_id)
        except DisbursementError as error:
            raise _refusal(error) from None
        return {
            "batch_id": status.batch_id,
            "programme_id": status.programme_id,
            "cycle_id": status.cycle_id,
            "provider": status.provider,
            "total": status.total,
            "counts": dict(status.counts),
            "sums": {c: {s: m.wire() for s, m in by_state.items()} for c, by_state in status.sums.items()},
            "running": runtime.running(batch_id),
        }

    @get(
        "/v1/items/{idempotency_key:str}",
        opt=Contract(
            "One item, its state and its history",
            {200: "payments-item@1.0.0"},
            parameters=(_ITEM_KEY,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def item(request: Request[Any, Any, Any]) -> dict[str, Any]:
        key = _path(request, _ITEM_KEY)
        await authenticate(request, SCOPE_READ)
        try:
            found = await service.item(key)
        except DisbursementError as error:
            raise _refusal(error) from None
        return {
            "idempotency_key": found["idempotency_key"],
            "batch_id": found["batch_id"],
            "beneficiary_id": found["beneficiary_id"],
            "entitlement": found["entitlement"],
            "financial_address": found["financial_address"],
            "amount": money_from_minor(found["amount_minor"], found["currency"]).wire(),
            "currency": found["currency"],
            "state": found["state"],
            "reason_code": found["reason_code"],
            "attempts": found["attempts"],
            "provider_reference": found["provider_reference"],
            "history": [
                {
                    "from_state": entry["from_state"],
                    "to_state": entry["to_state"],
                    "reason_code": entry["reason_code"],
                    "actor": entry["actor"],
                    "at": _timestamp(entry["at"]),
                }
                for entry in found["history"]
            ],
        }

    @get(
        "/v1/batches/{batch_id:str}/reconciliation",
        opt=Contract(
            "Reconcile a batch against the provider's status and statement",
            {200: "payments-reconciliation@1.0.0"},
            parameters=(_BATCH_ID,),
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def reconciliation(request: Request[Any, Any, Any]) -> dict[str, Any]:
        batch_id = _path(request, _BATCH_ID)
        await authenticate(request, SCOPE_READ)
        try:
            batch = await service.batch(batch_id)
            provider = runtime.provider(batch["provider"])
            fetch = getattr(provider, "statement", None)
            formats = provider.capabilities.statement_formats
            if fetch is None or not formats:
                raise DisbursementError(
                    "payments.operation.not_supported", "this provider cannot send a statement on request"
                )
            entries = provider.parse_statement(await fetch(), formats[0])
            report = await reconcile(service.engine, batch_id, entries, provider)
        except (DisbursementError, ProviderError) as error:
            raise _refusal(error) from None
        return report.as_document()

    @post(
        "/v1/webhooks",
        status_code=201,
        opt=Contract(
            "Register where signed payment status events are sent",
            {201: "payments-webhook@1.0.0"},
            request="payments-webhook-input@1.0.0",
            tags=_TAGS,
            errors=_AUTHENTICATED,
        ).as_opt(),
    )
    async def register_webhook(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_json(request, "payments-webhook-input@1.0.0")
        principal = await authenticate(request, SCOPE_ADMIN)
        try:
            url = httpx.URL(body["url"])
        except httpx.InvalidURL:
            raise DpiError("payments.webhook.url_refused", "the URL cannot be parsed") from None
        allow_private = runtime.context.settings.allow_private_callbacks
        if url.scheme != "https" and not allow_private:
            raise DpiError("payments.webhook.url_refused", egress.NOT_HTTPS)
        refusal = await egress.refusal(url, allow_private_networks=allow_private)
        if refusal is not None:
            raise DpiError("payments.webhook.url_refused", refusal)
        return await runtime.webhooks.register(str(url), body.get("programme_id"), principal.subject)

    @delete(
        "/v1/webhooks/{webhook_id:str}",
        status_code=204,
        opt=Contract(
            "Remove a webhook", {204: None}, parameters=(_WEBHOOK_ID,), tags=_TAGS, errors=_AUTHENTICATED
        ).as_opt(),
    )
    async def delete_webhook(request: Request[Any, Any, Any]) -> None:
        webhook_id = _path(request, _WEBHOOK_ID)
        await authenticate(request, SCOPE_ADMIN)
        if not await runtime.webhooks.remove(webhook_id):
            raise DpiError("payments.webhook.not_found")

    return [
        create_programme,
        create_cycle,
        upload_batch,
        preflight,
        start_disbursement,
        batch_status,
        item,
        reconciliation,
        register_webhook,
        delete_webhook,
    ]


def _timestamp(moment: datetime) -> str:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).isoformat()
