"""The DCI-compatible API of each hosted registry (SPDCI registry API 1.0,
https://github.com/spdci/standards), with the registry's base URL ``/registry/{code}``:

- ``POST /registry/{code}/registry/sync/search``: answers at once (``dci-search-response``);
- ``POST /registry/{code}/registry/search``: acknowledges (``dci-ack``), then delivers ``on-search`` to
  the sender's registered callback URL (:mod:`registry.dci.callbacks`);
- ``POST /registry/{code}/registry/txn/status``: the status, and once ready the answers, of an
  asynchronous search of the same sender;
- ``POST /registry/{code}/registry/subscribe`` and ``.../unsubscribe``: subscriptions to the registry's
  events, answered at once; notifications go to ``<callback>/notify``
  (:mod:`registry.dci.subscriptions`);
- ``GET /registry/{code}/registry/capabilities``: what this registry accepts (``dci-capabilities``).

Refused envelopes are HTTP 4xx with the ``dci-error`` body and the DCI code, in the order
:mod:`registry.dci.envelope` gives; business outcomes are reported per item in a 200.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler

from dpi.contract import Contract, Parameter
from dpi.errors import DpiError, preferred_language
from dpi.keys import KeyStore
from dpi.signing import ALLOWED_JWS_ALGORITHMS
from registry.dci.callbacks import accept_search, transaction_status
from registry.dci.envelope import (
    DCI_VERSION,
    MESSAGE_WINDOW,
    Received,
    error_document,
    new_header,
    parse,
    record_message_id,
    signed,
    verify,
    wire_time,
)
from registry.dci.query import EXTENSION_OPERATORS, OPERATORS, QUERY_TYPES
from registry.dci.search import DEFAULT_PAGE_SIZE, MAX_BATCH, MAX_PAGE_SIZE, Searcher, reg_type
from registry.dci.senders import Sender
from registry.dci.subscriptions import event_names, subscribe, unsubscribe
from registry.definition import RegistryDefinition
from registry.service import RegistryService

__all__ = ["DciRuntime", "build_routes", "capabilities_document", "endpoints"]

_CODE: Final = "^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
_TAGS: Final = ("registry-dci",)
_REFUSALS: Final = (400, 401, 403, 404, 409)
_KERNEL_ERRORS: Final = (405, 413, 500)
_CODE_PARAMETER = Parameter(
    "code", "path", {"type": "string", "maxLength": 32, "pattern": _CODE}, description="The registry's code."
)


def endpoints(code: str) -> list[str]:
    """The DCI endpoints of registry ``code``."""
    base = f"/registry/{code}/registry"
    return [
        f"{base}/sync/search",
        f"{base}/search",
        f"{base}/txn/status",
        f"{base}/subscribe",
        f"{base}/unsubscribe",
        f"{base}/capabilities",
    ]


def capabilities_document(definition: RegistryDefinition) -> dict[str, Any]:
    """The ``dci-capabilities`` document of one registry: exactly what its DCI API accepts."""
    sortable = [attribute.name for attribute in definition.attributes.values() if attribute.type != "boolean"]
    return {
        "registry": definition.code,
        "dci_version": DCI_VERSION,
        "base_url": f"/registry/{definition.code}",
        "reg_type": reg_type(definition),
        "endpoints": endpoints(definition.code),
        "query_types": list(QUERY_TYPES),
        "refused_query_types": ["expression"],
        "attributes": [
            {
                **({"fuzzy_threshold": attribute.fuzzy} if attribute.fuzzy is not None else {}),
                "name": attribute.name,
                "type": attribute.type,
                "operators": [
                    operator
                    for operator in OPERATORS
                    if operator in attribute.operators
                    and not (operator in {"gt", "ge", "lt", "le", "between"} and attribute.type == "string")
                ],
            }
            for attribute in definition.attributes.values()
        ],
        "extension_operators": list(EXTENSION_OPERATORS),
        "conditions": ["and", "or", "not"],
        "identifier_types": sorted({field.type for field in definition.identifiers}),
        "sortable": sortable,
        "pagination": {
            "max_page_size": MAX_PAGE_SIZE,
            "default_page_size": DEFAULT_PAGE_SIZE,
            "cursor": True,
        },
        "batch": {"max_items": MAX_BATCH},
        "signature": {
            "format": "detached JWS (RFC 7515 Appendix F) over RFC 8785 JSON of {header, message}",
            "algorithms": list(ALLOWED_JWS_ALGORITHMS),
            "jwks_uri": "/.well-known/jwks.json",
        },
        "message_window_seconds": int(MESSAGE_WINDOW.total_seconds()),
        "event_types": event_names(definition),
        "purpose": "search_criteria.consent.purpose (purpose-codes), required for registries about persons",
    }


@dataclass
class DciRuntime:
    """What the DCI routes share: the service, the searcher, our keys and identifier, the clock."""

    service: RegistryService
    searcher: Searcher
    keys: KeyStore
    system_id: Callable[[str], str]
    clock: Callable[[], datetime]


def _definition(service: RegistryService, code: str) -> RegistryDefinition:
    try:
        return service.definition(code)
    except DpiError:
        raise DpiError("err.request.not_found", "no registry with this code is hosted here") from None


def _contract(summary: str, response: str, request: str) -> dict[str, Any]:
    return Contract(
        summary,
        {200: response, **dict.fromkeys(_REFUSALS, "dci-error@1.0.0")},
        request=request,
        parameters=(_CODE_PARAMETER,),
        tags=_TAGS,
        errors=_KERNEL_ERRORS,
    ).as_opt()


def build_routes(runtime: DciRuntime) -> list[HTTPRouteHandler]:
    """The DCI handlers of every hosted registry, bound to ``runtime``."""
    service = runtime.service

    async def refused_as_dci(
        request: Request[Any, Any, Any], work: Callable[[RegistryDefinition, bytes, datetime], Awaitable[Any]]
    ) -> Response[Any]:
        now = runtime.clock()
        try:
            definition = _definition(service, str(request.path_params["code"]))
            content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                raise DpiError("err.request.bad", "the body is application/json")
            body = await work(definition, await request.body(), now)
        except DpiError as error:
            if not (error.reason_code.startswith("err.") or error.reason_code.startswith("rjct.")):
                raise
            language = preferred_language(request.headers.get("accept-language"))
            return Response(
                error_document(error, now=now, language=language),
                status_code=error.status_code,
                media_type="application/json",
            )
        return Response(body, status_code=200, media_type="application/json")

    def answer_header(
        definition: RegistryDefinition, action: str, receiver: str, now: datetime, **extra: Any
    ) -> dict[str, Any]:
        return new_header(
            action, now=now, sender_id=runtime.system_id(definition.code), receiver_id=receiver, **extra
        )

    def batch_answer(
        definition: RegistryDefinition,
        action: str,
        received: Received,
        sender: Sender,
        now: datetime,
        member: str,
        answers: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Our signed answer to a batch: ``answers`` under ``member``, with how many succeeded."""
        header = answer_header(
            definition,
            action,
            sender.sender_id,
            now,
            status="succ",
            total_count=len(answers),
            completed_count=sum(1 for answer in answers if answer["status"] == "succ"),
        )
        message = {
            "transaction_id": str(received.message["transaction_id"]),
            "correlation_id": header["message_id"],
            member: answers,
        }
        return signed(header, message, runtime.keys.active())

    async def authenticated(definition: RegistryDefinition, received: Received, now: datetime) -> Sender:
        """The sender of an envelope that passed every check, its message id now remembered."""
        async with service.sessions.begin() as session:
            sender = await verify(session, received, registry=definition.code, now=now, window=MESSAGE_WINDOW)
            await record_message_id(
                session, sender.sender_id, str(received.header["message_id"]), now=now, window=MESSAGE_WINDOW
            )
        return sender

    async def sync_search_work(definition: RegistryDefinition, raw: bytes, now: datetime) -> dict[str, Any]:
        received = parse(raw, "dci-search-request@1.0.0", action="search", items="search_request")
        sender = await authenticated(definition, received, now)
        items = received.message["search_request"]
        answers = await runtime.searcher.answer(
            definition, sender, items, now=now, problems=received.item_problems
        )
        return batch_answer(definition, "on-search", received, sender, now, "search_response", answers)

    @post(
        "/{code:str}/registry/sync/search",
        status_code=200,
        opt=_contract(
            "DCI synchronous search: each search_request item answered on its own (succ or rjct)",
            "dci-search-response@1.0.0",
            "dci-search-request@1.0.0",
        ),
    )
    async def sync_search(request: Request[Any, Any, Any]) -> Response[Any]:
        return await refused_as_dci(request, sync_search_work)

    async def search_work(definition: RegistryDefinition, raw: bytes, now: datetime) -> dict[str, Any]:
        received = parse(raw, "dci-search-request@1.0.0", action="search", items="search_request")
        correlation_id = await accept_search(service, received, registry=definition.code, now=now)
        return {
            "message": {"ack_status": "ACK", "timestamp": wire_time(now), "correlation_id": correlation_id}
        }

    @post(
        "/{code:str}/registry/search",
        status_code=200,
        opt=_contract(
            "DCI asynchronous search: acknowledged, then answered by a signed on-search callback",
            "dci-ack@1.0.0",
            "dci-search-request@1.0.0",
        ),
    )
    async def search(request: Request[Any, Any, Any]) -> Response[Any]:
        return await refused_as_dci(request, search_work)

    async def status_work(definition: RegistryDefinition, raw: bytes, now: datetime) -> dict[str, Any]:
        received = parse(raw, "dci-txn-status-request@1.0.0", action="txn-status")
        sender = await authenticated(definition, received, now)
        asked = received.message["txnstatus_request"]
        row = await transaction_status(
            service, sender.sender_id, definition.code, asked["attribute_type"], asked["attribute_value"]
        )
        status: dict[str, Any] = {
            "reference_id": asked["reference_id"],
            "txn_type": "search",
            "txn_status": row.status,
        }
        if row.response is not None:
            status["search_response"] = row.response["search_response"]
        header = answer_header(definition, "txn-on-status", sender.sender_id, now, status="succ")
        message = {
            "transaction_id": row.transaction_id,
            "correlation_id": row.correlation_id,
            "txnstatus_response": status,
        }
        return signed(header, message, runtime.keys.active())

    @post(
        "/{code:str}/registry/txn/status",
        status_code=200,
        opt=_contract(
            "DCI transaction status: where an asynchronous search of the same sender stands, and its answers",
            "dci-txn-status-response@1.0.0",
            "dci-txn-status-request@1.0.0",
        ),
    )
    async def txn_status(request: Request[Any, Any, Any]) -> Response[Any]:
        return await refused_as_dci(request, status_work)

    async def subscribe_work(definition: RegistryDefinition, raw: bytes, now: datetime) -> dict[str, Any]:
        received = parse(raw, "dci-subscribe-request@1.0.0", action="subscribe", items="subscribe_request")
        sender = await authenticated(definition, received, now)
        answers = await subscribe(
            service,
            definition,
            sender,
            received.message["subscribe_request"],
            now=now,
            problems=received.item_problems,
        )
        return batch_answer(definition, "on-subscribe", received, sender, now, "subscribe_response", answers)

    @post(
        "/{code:str}/registry/subscribe",
        status_code=200,
        opt=_contract(
            "DCI subscribe: each item a subscription to events of the registry, notified to the callback",
            "dci-subscribe-response@1.0.0",
            "dci-subscribe-request@1.0.0",
        ),
    )
    async def subscribe_route(request: Request[Any, Any, Any]) -> Response[Any]:
        return await refused_as_dci(request, subscribe_work)

    async def unsubscribe_work(definition: RegistryDefinition, raw: bytes, now: datetime) -> dict[str, Any]:
        received = parse(raw, "dci-unsubscribe-request@1.0.0", action="unsubscribe")
        sender = await authenticated(definition, received, now)
        answers = await unsubscribe(
            service, definition.code, sender, received.message["subscription_codes"], now=now
        )
        return batch_answer(
            definition, "on-unsubscribe", received, sender, now, "unsubscribe_response", answers
        )

    @post(
        "/{code:str}/registry/unsubscribe",
        status_code=200,
        opt=_contract(
            "DCI unsubscribe: end subscriptions of the same sender",
            "dci-unsubscribe-response@1.0.0",
            "dci-unsubscribe-request@1.0.0",
        ),
    )
    async def unsubscribe_route(request: Request[Any, Any, Any]) -> Response[Any]:
        return await refused_as_dci(request, unsubscribe_work)

    @get(
        "/{code:str}/registry/capabilities",
        opt=Contract(
            "What this registry's DCI API accepts: query types, attributes, operators, limits, signatures",
            {200: "dci-capabilities@1.1.0"},
            parameters=(_CODE_PARAMETER,),
            tags=_TAGS,
            errors=(400, 404, 405, 500),
        ).as_opt(),
    )
    async def capabilities(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return capabilities_document(service.definition(str(request.path_params["code"])))

    return [sync_search, search, txn_status, subscribe_route, unsubscribe_route, capabilities]
