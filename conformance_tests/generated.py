"""Requests generated from a target's OpenAPI document by schemathesis and hypothesis (property-based).

https://schemathesis.readthedocs.io/ generates, for every operation, requests whose parameters and bodies
follow the schemas (positive mode) and requests that deliberately violate them (negative mode). The suite
does not let schemathesis send them: each case is turned into a plain :class:`GeneratedRequest` and sent
through the run's own ``httpx`` client, so in-process and network targets are exercised the same way.

Negative mode sometimes yields data that is valid after all (a mutation that happens to satisfy the schema,
a typed value that is fine once written on the wire as text). Each negative request is therefore checked
against the schemas here; only a request shown to be invalid is expected to be refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import hypothesis
import jsonschema  # type: ignore[import-untyped,unused-ignore]
import schemathesis
from hypothesis import HealthCheck, Phase
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

__all__ = [
    "DocumentedResponses",
    "GeneratedRequest",
    "OperationCases",
    "UnusableDocument",
    "generate_cases",
    "operations",
]

Mode = Literal["positive", "negative"]
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Headers schemathesis adds for its own transport; the suite sends its own user agent.
_DROPPED_HEADERS = frozenset({"user-agent", "x-schemathesis-testcaseid", "connection", "accept-encoding"})


class UnusableDocument(ValueError):
    """The OpenAPI document cannot be used to generate requests at all."""


@dataclass(frozen=True)
class GeneratedRequest:
    """One generated request, ready to send; ``invalid_because`` says why a negative request is invalid
    (None for positive requests and for negative ones that turned out to be valid)."""

    operation: str
    mode: Mode
    method: str
    url: str
    headers: Mapping[str, str]
    content: bytes | None
    invalid_because: str | None

    @property
    def expects_refusal(self) -> bool:
        return self.invalid_because is not None


@dataclass(frozen=True)
class OperationCases:
    """The generated requests of one operation, or why none could be generated."""

    operation: str
    requests: tuple[GeneratedRequest, ...]
    problem: str | None = None


def operations(document: Mapping[str, Any]) -> list[str]:
    """The labels (``"POST /standards/validate"``) of every operation of the document, in document order."""
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return []
    return [
        f"{method.upper()} {path}"
        for path, item in paths.items()
        if isinstance(item, dict)
        for method in item
        if method in _HTTP_METHODS
    ]


def generate_cases(
    document: dict[str, Any], base_url: str, *, max_examples: int, seed: int
) -> Iterator[OperationCases]:
    """Yield, operation by operation, up to ``max_examples`` positive and negative requests each.

    Deterministic for a given ``seed``; lazy, so the caller can stop when its time budget runs out.
    Raises :class:`UnusableDocument` when schemathesis cannot load the document.
    """
    try:
        schema = schemathesis.openapi.from_dict(
            json.loads(json.dumps(document)), config=schemathesis.Config()
        )
    except Exception as error:  # schemathesis reports unusable documents with several exception types
        raise UnusableDocument(f"{type(error).__name__}: {error}") from None
    checker = _ValidityChecker(document)
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):  # an operation schemathesis cannot parse (e.g. a broken $ref)
            invalid = result.err()
            yield OperationCases(operation=_label_of_error(invalid), requests=(), problem=str(invalid))
            continue
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        generated: list[GeneratedRequest] = []
        problems: list[str] = []
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                cases = _draw(operation.as_strategy(generation_mode=mode), max_examples, seed)
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing to vary (e.g. no parameters and no body: no invalid request exists)
            except Exception as error:
                problems.append(f"{mode.value} generation failed: {type(error).__name__}: {error}")
                continue
            for case in cases:
                request = _to_request(case, label, mode, base_url, checker)
                if request is not None:
                    generated.append(request)
        yield OperationCases(label, tuple(generated), "; ".join(problems) or None)


def _label_of_error(error: Exception) -> str:
    path = getattr(error, "path", None)
    method = getattr(error, "method", None)
    if isinstance(path, str) and isinstance(method, str):
        return f"{method.upper()} {path}"
    return "unparsable operation"


def _draw(strategy: Any, max_examples: int, seed: int) -> list[Any]:
    """Up to ``max_examples`` distinct values of ``strategy``, reproducibly for ``seed``."""
    drawn: list[Any] = []

    @hypothesis.settings(
        max_examples=max_examples,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.seed(seed)
    @hypothesis.given(strategy)
    def collect(case: Any) -> None:
        drawn.append(case)

    collect()
    return drawn


def _to_request(
    case: Any, label: str, mode: GenerationMode, base_url: str, checker: _ValidityChecker
) -> GeneratedRequest | None:
    kwargs = case.as_transport_kwargs(base_url=base_url)
    headers = {
        str(name): str(value)
        for name, value in dict(kwargs.get("headers") or {}).items()
        if str(name).lower() not in _DROPPED_HEADERS
    }
    cookies = kwargs.get("cookies") or {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    content: bytes | None
    if "json" in kwargs:
        try:
            content = json.dumps(kwargs["json"], allow_nan=False).encode()
        except ValueError:
            return None
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        content = data if isinstance(data, bytes) else str(data).encode()
    else:
        content = None
    if not all(_sendable_header(name, value) for name, value in headers.items()):
        return None  # cannot be written on an HTTP/1.1 wire at all, so it tests nothing about the target
    url = str(kwargs["url"])
    params = kwargs.get("params") or {}
    if params:
        url = str(httpx.URL(url, params=params))
    invalid_because = checker.invalid_because(case, content) if mode is GenerationMode.NEGATIVE else None
    return GeneratedRequest(
        operation=label,
        mode="positive" if mode is GenerationMode.POSITIVE else "negative",
        method=str(kwargs["method"]).upper(),
        url=url,
        headers=headers,
        content=content,
        invalid_because=invalid_because,
    )


def _sendable_header(name: str, value: str) -> bool:
    try:
        name.encode("ascii")
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return bool(name) and "\n" not in value and "\r" not in value and "\x00" not in value


class _ValidityChecker:
    """Decides whether a negative case really violates the operation's schemas, as the server would see it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        resources: list[tuple[str, Resource[Any]]] = []
        for component in (document.get("components") or {}).get("schemas", {}).values():
            if isinstance(component, dict) and isinstance(component.get("$id"), str):
                resources.append((component["$id"], DRAFT202012.create_resource(component)))
        self._registry: Registry[Any] = Registry().with_resources(resources)

    def invalid_because(self, case: Any, content: bytes | None) -> str | None:
        meta = getattr(case, "meta", None)
        components = getattr(meta, "components", {}) or {}
        negative = {
            getattr(location, "value", str(location))
            for location, info in components.items()
            if info.mode is GenerationMode.NEGATIVE
        }
        operation = self._operation(case)
        reasons: list[str] = []
        if "body" in negative:
            reason = self._body_invalid(operation, case.media_type, content)
            if reason:
                reasons.append(reason)
        for location in sorted(negative - {"body"}):
            reason = self._parameters_invalid(case, operation, location)
            if reason:
                reasons.append(reason)
        return "; ".join(reasons) or None

    def _operation(self, case: Any) -> dict[str, Any]:
        item = self._document.get("paths", {}).get(case.path, {})
        operation = dict(self._resolve(item.get(case.method.lower(), {})))
        parameters = [self._resolve(p) for p in item.get("parameters", [])]
        names = {
            (p.get("name"), p.get("in")) for p in (self._resolve(p) for p in operation.get("parameters", []))
        }
        inherited = [p for p in parameters if (p.get("name"), p.get("in")) not in names]
        operation["parameters"] = [self._resolve(p) for p in operation.get("parameters", [])] + inherited
        return operation

    def _resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = self._document
            for part in node["$ref"][2:].split("/"):
                target = (
                    target.get(part.replace("~1", "/").replace("~0", "~"), {})
                    if isinstance(target, dict)
                    else {}
                )
            node, seen = target, seen + 1
            if seen > 20:
                break
        return node

    def _validate(self, schema: Any, instance: Any) -> str | None:
        if not isinstance(schema, dict | bool):
            return None
        root: dict[str, Any] | bool = schema
        if isinstance(schema, dict):
            root = {**schema, "components": self._document.get("components", {})}
        validator = jsonschema.Draft202012Validator(root, registry=self._registry)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        return None if error is None else error.message

    def _body_invalid(
        self, operation: Mapping[str, Any], media_type: str | None, content: bytes | None
    ) -> str | None:
        body = self._resolve(operation.get("requestBody", {}))
        if content is None:
            return "the required body is missing" if body.get("required") else None
        media = (body.get("content") or {}).get(media_type or "", {})
        if not (media_type or "").endswith("json"):
            return None
        try:
            instance = json.loads(content)
        except ValueError:
            return "the body is not JSON"
        reason = self._validate(media.get("schema"), instance)
        return None if reason is None else f"body: {reason}"

    def _parameters_invalid(self, case: Any, operation: Mapping[str, Any], location: str) -> str | None:
        container: Mapping[str, Any] = {
            "path": case.path_parameters,
            "query": case.query,
            "header": case.headers,
            "cookie": case.cookies,
        }.get(location) or {}
        lookup = (
            {str(k).lower(): v for k, v in container.items()} if location == "header" else dict(container)
        )
        for parameter in operation.get("parameters", []):
            if parameter.get("in") != location:
                continue
            name = parameter.get("name", "")
            key = name.lower() if location == "header" else name
            if key not in lookup:
                if parameter.get("required"):
                    return f"{location} parameter {name!r} is missing"
                continue
            schema = parameter.get("schema")
            reason = self._validate(schema, _as_on_the_wire(lookup[key], schema))
            if reason is not None:
                return f"{location} parameter {name!r}: {reason}"
        return None


def _as_on_the_wire(value: Any, schema: Any) -> Any:
    """The value the server parses: text, read back as the schema's scalar type where it declares one."""
    if isinstance(value, list | dict):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    declared = schema.get("type") if isinstance(schema, dict) else None
    if declared in ("integer", "number"):
        try:
            return int(text) if declared == "integer" else float(text)
        except ValueError:
            return text
    if declared == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


class DocumentedResponses:
    """Answers an OpenAPI document declares: a protocol refusal (an OAuth ``oauth-error`` body, an HTML
    error page, an error redirect) is as correct as the standard ``error`` body when the operation's
    ``responses`` declare that status with that media type, and the body fits the declared schema."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._checker = _ValidityChecker(document)
        self._operations: list[tuple[re.Pattern[str], str, Mapping[str, Any]]] = []
        for path, item in (document.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            pattern = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$")
            for method, operation in item.items():
                if method in _HTTP_METHODS and isinstance(operation, dict):
                    self._operations.append((pattern, method.upper(), operation))

    def _response(self, method: str, url: str, status: int) -> Mapping[str, Any] | None:
        path = urlsplit(url).path
        for pattern, declared_method, operation in self._operations:
            if declared_method == method.upper() and pattern.match(path):
                responses = operation.get("responses") or {}
                declared = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
                resolved = self._checker._resolve(declared) if declared is not None else None
                return resolved if isinstance(resolved, dict) else None
        return None

    def declares(self, method: str, url: str, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the operation ``method url`` documents this answer (status, media type, body)."""
        response = self._response(method, url, status)
        if response is None:
            return False
        if 300 <= status < 400:
            location = headers.get("location", "")
            return "error" in dict(parse_qsl(urlsplit(location).query))
        media = str(headers.get("content-type", "")).split(";")[0].strip().lower()
        content = response.get("content") or {}
        entry = content.get(media)
        if not isinstance(entry, dict) or not body:
            return False
        if not media.endswith("json"):
            return True
        try:
            instance = json.loads(body)
        except ValueError:
            return False
        return self._checker._validate(entry.get("schema"), instance) is None
