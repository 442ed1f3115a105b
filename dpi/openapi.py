"""The OpenAPI 3.1 document of a running app (https://spec.openapis.org/oas/v3.1.0).

Built from each route's :class:`~dpi.contract.Contract`; every request and response body is a
``$ref`` into ``components/schemas``, whose entries are the published ``standards`` schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

import standards
from dpi.contract import CONTRACT_KEY, Body, Contract

__all__ = ["ERROR_SCHEMA", "build_openapi", "undocumented_bodies"]

ERROR_SCHEMA: Final = "error@1.0.0"
_PATH_PARAMETER: Final = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?}")
_JSON: Final = "application/json"


def _component_ref(ref: str) -> dict[str, str]:
    name, _, version = ref.partition("@")
    return {"$ref": f"#/components/schemas/{standards.component_key(name, version)}"}


def _resolve(ref: str) -> str:
    """``name`` or ``name@version`` to an exact ``name@version`` (the latest when none is given)."""
    name, _, version = ref.partition("@")
    return f"{name}@{version or standards.schema_versions(name)[-1]}"


def _operation(
    contract: Contract, path_parameters: list[str], operation_id: str
) -> tuple[dict[str, Any], set[str]]:
    refs: set[str] = set()
    declared = {parameter.name for parameter in contract.parameters}
    parameters = [parameter.as_document() for parameter in contract.parameters]
    parameters += [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_parameters
        if name not in declared
    ]
    responses: dict[str, Any] = {}
    for status, offered in sorted(contract.responses.items()):
        description = "success" if status < 400 else "refusal"
        if offered is None:
            responses[str(status)] = {"description": "redirect" if 300 <= status < 400 else description}
            continue
        content: dict[str, Any] = {}
        for response in offered if isinstance(offered, tuple) else (offered,):
            body = response if isinstance(response, Body) else Body(response)
            exact = _resolve(body.schema)
            refs.add(exact)
            content[body.media_type] = {"schema": _component_ref(exact)}
        responses[str(status)] = {"description": description, "content": content}
    error = _resolve(ERROR_SCHEMA)
    refs.add(error)
    for status in contract.errors:
        responses.setdefault(
            str(status),
            {
                "description": "refusal with a reason code",
                "content": {_JSON: {"schema": _component_ref(error)}},
            },
        )
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": contract.summary,
        "responses": responses,
    }
    if contract.tags:
        operation["tags"] = list(contract.tags)
    if parameters:
        operation["parameters"] = parameters
    if contract.request is not None:
        body = contract.request if isinstance(contract.request, Body) else Body(contract.request)
        exact = _resolve(body.schema)
        refs.add(exact)
        operation["requestBody"] = {
            "required": True,
            "content": {body.media_type: {"schema": _component_ref(exact)}},
        }
    return operation, refs


def _handlers(app: Litestar) -> Iterable[tuple[str, str, HTTPRouteHandler]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method in {"HEAD", "OPTIONS"}:
                    continue
                yield route.path_format, method.lower(), handler


def build_openapi(app: Litestar, *, title: str, version: str, server_url: str) -> dict[str, Any]:
    """The document for every handler of ``app`` that declares a contract.

    A handler without a contract is listed with an empty ``responses`` so the omission is visible
    to the test and to the conformance suite rather than silently left out.
    """
    paths: dict[str, dict[str, Any]] = {}
    refs: set[str] = set()
    for path, method, handler in _handlers(app):
        contract = handler.opt.get(CONTRACT_KEY)
        operation_id = (
            f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", "").replace(".", "_")
        )
        operation_id = re.sub(r"[^A-Za-z0-9_]+", "_", operation_id).strip("_")
        if not isinstance(contract, Contract):
            paths.setdefault(path, {})[method] = {
                "operationId": operation_id,
                "summary": "undocumented",
                "responses": {"default": {"description": "undocumented", "content": {_JSON: {}}}},
            }
            continue
        operation, used = _operation(contract, _PATH_PARAMETER.findall(path), operation_id)
        refs |= used
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": standards.openapi_components(sorted(refs))},
    }


_BODILESS_STATUSES: Final = frozenset({"204", "301", "302", "303", "304", "307", "308"})
_BODY_METHODS: Final = frozenset({"post", "put", "patch"})
_HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def _has_schema_ref(content: Any, components: dict[str, Any] | None) -> bool:
    if not isinstance(content, dict) or not content:
        return False
    for media in content.values():
        schema = media.get("schema") if isinstance(media, dict) else None
        reference = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(reference, str) or not reference.startswith("#/components/schemas/"):
            return False
        if components is not None and reference.removeprefix("#/components/schemas/") not in components:
            return False
    return True


def undocumented_bodies(document: dict[str, Any]) -> list[str]:
    """``METHOD /path`` of every operation with a request or response body that has no schema reference.

    A body counts as documented only when it is a ``$ref`` to ``components/schemas`` (and, when the
    document has components, to one that exists there).
    """
    components = document.get("components", {}).get("schemas")
    problems: list[str] = []
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS or not isinstance(operation, dict):
                continue
            ok = True
            request_body = operation.get("requestBody")
            if method in _BODY_METHODS or request_body is not None:
                ok = isinstance(request_body, dict) and _has_schema_ref(
                    request_body.get("content"), components
                )
            responses = operation.get("responses") or {}
            if not responses:
                ok = False
            for status, response in responses.items():
                if str(status) in _BODILESS_STATUSES:
                    continue
                if not isinstance(response, dict) or not _has_schema_ref(response.get("content"), components):
                    ok = False
            if not ok:
                problems.append(f"{method.upper()} {path}")
    return problems
