"""Profile ``platform``: what every dpi-blocks system serves (requirements PLT-001..PLT-014 in `standards`).

Health and readiness, the capabilities document, the JWKS, the OpenAPI document, uniform error bodies
with reason codes and request ids, refusal of malformed, oversized and schema-violating requests, no
stack traces, and requests generated from the OpenAPI schemas (positive and negative) with schemathesis.

Operations that speak a protocol of their own (OAuth 2.0 and OpenID Connect endpoints answer with
``oauth-error`` bodies, HTML error pages or error redirects) refuse the way their OpenAPI ``responses``
declare: such an answer counts as a correct refusal, and is not held to the ``error`` body.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import standards
from conformance_tests.generated import (
    DocumentedResponses,
    GeneratedRequest,
    UnusableDocument,
    generate_cases,
    operations,
)
from conformance_tests.model import Finding, Profile
from conformance_tests.registry import register_profile
from conformance_tests.target import CAPABILITIES_PATH, Exchange, TargetSession

__all__ = ["PLATFORM", "STACK_TRACE_PATTERNS"]

PLATFORM = register_profile(
    Profile(name="platform", version="1.0.0", description="What every dpi-blocks system serves.")
)

UNKNOWN_ROUTE = "/dpi-conformance/no-such-route"
# Above the 1 MiB kernel default and the 10 MB Litestar default: any sane limit refuses it.
OVERSIZED_BODY_BYTES = 11 * 1024 * 1024
# Keys that only ever appear in private or symmetric JWKs (RFC 7518 section 6).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "r", "t", "k"})
# Failures quoted per requirement and operation; the rest are counted.
_QUOTED_FAILURES = 3

STACK_TRACE_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "a Python traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a Python stack frame": re.compile(r'File \\?"[^"\\]+\\?", line \d+'),
    "a Java stack frame": re.compile(r"\bat [\w$.]+\([\w$]+\.(?:java|kt|scala):\d+\)"),
    "a .NET stack frame": re.compile(r"\bat [\w.`<>]+\([^)]*\) in [^\n]+:line \d+"),
    "a Node.js stack frame": re.compile(r"\bat [^\n]*\((?:/|[A-Za-z]:\\|node:)[^)\n]+:\d+:\d+\)"),
    "a Go panic": re.compile(r"goroutine \d+ \[running\]"),
    "a PHP stack trace": re.compile(r"Stack trace:\s*(?:\\n)?\s*#0"),
    "a Ruby stack frame": re.compile(r"\.rb:\d+:in `"),
    "a qualified exception class": re.compile(r"\b(?:[a-z_]\w*\.)+[A-Z]\w*(?:Error|Exception)\b"),
    "a Python built-in exception": re.compile(
        r"\b(?:KeyError|ValueError|TypeError|AttributeError|IndexError|ZeroDivisionError|RuntimeError|"
        r"AssertionError|RecursionError|UnicodeDecodeError|NameError|ImportError)\b"
    ),
    "Python internals": re.compile(r"'NoneType' object|object has no attribute '|<object object at 0x"),
}


@dataclass(frozen=True)
class _HostileInput:
    """A request shaped to trip careless servers; only its answer's hygiene is judged (PLT-013)."""

    description: str
    method: str
    target: str  # "json" for the first operation accepting JSON, else a literal path
    content: bytes | None = None
    content_type: str | None = None


_HOSTILE_INPUTS: tuple[_HostileInput, ...] = (
    _HostileInput(
        "invalid UTF-8 in a JSON body", "POST", "json", b'{"schema": "\xff\xfe"}', "application/json"
    ),
    _HostileInput("deeply nested JSON", "POST", "json", b"[" * 5000 + b"]" * 5000, "application/json"),
    _HostileInput("a number beyond any float", "POST", "json", b'{"schema": 1e999999}', "application/json"),
    _HostileInput("a body in an undeclared media type", "POST", "json", b"<schema/>", "application/xml"),
    _HostileInput("an empty JSON body", "POST", "json", b"", "application/json"),
    _HostileInput("a NUL byte in the path", "GET", "/healthz%00"),
    _HostileInput("path traversal", "GET", "/..%2f..%2fetc%2fpasswd"),
    _HostileInput("an overlong query string", "GET", "/healthz?q=" + "x" * 8000),
)


# --- shared checks ------------------------------------------------------------------------------------------


def _schema_problems(schema_name: str, instance: Any) -> list[str]:
    return [
        f"{issue.pointer or '(root)'}: {issue.message}"
        for issue in standards.validator(schema_name).issues(instance)
    ]


def _error_body_problem(exchange: Exchange, status: int, reason_code: str) -> str | None:
    """Why ``exchange`` is not ``status`` with an error body carrying ``reason_code`` (None if it is)."""
    if exchange.status != status:
        return f"answered {exchange.status if exchange.status is not None else 'nothing'}, not {status}"
    body = exchange.json_object()
    if body is None:
        return "the body is not a JSON object"
    if body.get("reason_code") != reason_code:
        return f"reason_code is {body.get('reason_code')!r}, not {reason_code!r}"
    return None


def _body_check(
    requirement: str, exchange: Exchange, schema_name: str, statuses: Sequence[int], what: str
) -> Finding:
    expected = f"{' or '.join(map(str, statuses))} with a body valid against {schema_name}"
    if exchange.status not in statuses:
        return Finding.failed(requirement, f"{what} answered {exchange.status}", exchange.evidence(expected))
    body = exchange.json_object()
    if body is None:
        return Finding.failed(requirement, f"{what} is not a JSON object", exchange.evidence(expected))
    problems = _schema_problems(schema_name, body)
    if problems:
        return Finding.failed(
            requirement,
            f"{what} is not valid against {schema_name}: {'; '.join(problems[:5])}",
            exchange.evidence(expected),
        )
    return Finding.passed(requirement, f"{what} answered {exchange.status} with a valid {schema_name} body")


def _json_operations(document: Mapping[str, Any] | None) -> list[str]:
    """Every ``"METHOD /path"`` (POST, PUT, PATCH; no path parameters) taking a JSON request body."""
    found = []
    for path, item in ((document or {}).get("paths") or {}).items():
        if not isinstance(item, dict) or "{" in path:
            continue
        for method in ("post", "put", "patch"):
            content = ((item.get(method) or {}).get("requestBody") or {}).get("content") or {}
            if any(str(media).endswith("json") for media in content):
                found.append(f"{method.upper()} {path}")
    return found


def _json_operation_path(document: Mapping[str, Any] | None) -> str | None:
    """The first operation taking a JSON request body, if any."""
    return next(iter(_json_operations(document)), None)


def _trace_found(exchange: Exchange) -> str | None:
    text = exchange.body.decode("utf-8", "replace")
    sent = exchange.request_body.decode("utf-8", "replace") + exchange.url
    for name, pattern in STACK_TRACE_PATTERNS.items():
        for match in pattern.finditer(text):
            # Echoing the client's own input back is not a leak.
            if match.group(0) not in sent:
                return f"{name} ({match.group(0)!r})"
    return None


def _capped(findings: list[Finding], requirement: str, total: int, what: str) -> list[Finding]:
    if total > _QUOTED_FAILURES:
        findings.append(Finding.failed(requirement, f"... {total - _QUOTED_FAILURES} more {what}"))
    return findings


# --- active tests -------------------------------------------------------------------------------------------


@PLATFORM.test("health-endpoint", ["PLT-001"])
async def _health(session: TargetSession) -> Sequence[Finding]:
    """GET /healthz answers 200 with a health body."""
    exchange = await session.request("GET", "/healthz")
    return [_body_check("PLT-001", exchange, "health", (200,), "GET /healthz")]


@PLATFORM.test("readiness-endpoint", ["PLT-002"])
async def _readiness(session: TargetSession) -> Sequence[Finding]:
    """GET /readyz answers 200 or 503 with a readiness body."""
    exchange = await session.request("GET", "/readyz")
    return [_body_check("PLT-002", exchange, "readiness", (200, 503), "GET /readyz")]


@PLATFORM.test("capabilities-document", ["PLT-003"])
async def _capabilities(session: TargetSession) -> Sequence[Finding]:
    """GET /.well-known/dpi-capabilities answers 200 with a capabilities document."""
    exchange = await session.capabilities()
    return [_body_check("PLT-003", exchange, "capabilities", (200,), f"GET {CAPABILITIES_PATH}")]


@PLATFORM.test("unknown-route", ["PLT-004"])
async def _unknown_route(session: TargetSession) -> Sequence[Finding]:
    """An unknown route answers 404 route.not_found."""
    exchange = await session.request("GET", UNKNOWN_ROUTE)
    problem = _error_body_problem(exchange, 404, "route.not_found")
    if problem:
        return [
            Finding.failed(
                "PLT-004", f"GET {UNKNOWN_ROUTE} {problem}", exchange.evidence("404 route.not_found")
            )
        ]
    return [Finding.passed("PLT-004", f"GET {UNKNOWN_ROUTE} answered 404 route.not_found")]


@PLATFORM.test("malformed-json", ["PLT-005"])
async def _malformed_json(session: TargetSession) -> Sequence[Finding]:
    """A JSON body that does not parse answers 400 request.malformed_json."""
    json_operations = _json_operations(await session.openapi())
    if not json_operations:
        return [Finding.skipped("PLT-005", "no operation in the OpenAPI document takes a JSON body")]
    findings = []
    for operation in json_operations:
        method, path = operation.split(" ", 1)
        problems = []
        for content in (b'{"schema": "error", "instance": ', b"{'single': 'quotes'}"):
            exchange = await session.request(
                method, path, content=content, headers={"content-type": "application/json"}
            )
            problem = _error_body_problem(exchange, 400, "request.malformed_json")
            if problem:
                problems.append(
                    Finding.failed(
                        "PLT-005",
                        f"{operation} with malformed JSON {problem}",
                        exchange.evidence("400 request.malformed_json"),
                    )
                )
        findings += problems or [
            Finding.passed("PLT-005", f"{operation} refused malformed JSON with 400 request.malformed_json")
        ]
    return findings


@PLATFORM.test("jwks", ["PLT-008"])
async def _jwks(session: TargetSession) -> Sequence[Finding]:
    """The JWKS named by signature.jwks_uri is a valid public JWK Set with at least one key."""
    document = await session.capabilities_document()
    signature = (document or {}).get("signature")
    jwks_uri = signature.get("jwks_uri") if isinstance(signature, dict) else None
    if not isinstance(jwks_uri, str):
        return [
            Finding.failed("PLT-008", "the capabilities document names no signature.jwks_uri (see PLT-003)")
        ]
    exchange = await session.request("GET", jwks_uri)
    finding = _body_check("PLT-008", exchange, "jwks", (200,), f"GET {jwks_uri}")
    if finding.status.value == "fail":
        return [finding]
    keys = (exchange.json_object() or {}).get("keys") or []
    if not keys:
        return [Finding.failed("PLT-008", "the JWKS holds no key", exchange.evidence("at least one key"))]
    leaks = sorted(
        f"{key.get('kid', '?')}: {', '.join(sorted(PRIVATE_JWK_MEMBERS & key.keys()))}"
        for key in keys
        if isinstance(key, dict) and PRIVATE_JWK_MEMBERS & key.keys()
    )
    if leaks:
        return [
            Finding.failed(
                "PLT-008",
                f"the JWKS publishes private key material ({'; '.join(leaks)})",
                exchange.evidence("public keys only, no d/p/q/dp/dq/qi/k members"),
            )
        ]
    return [
        Finding.passed("PLT-008", f"{jwks_uri} publishes {len(keys)} public key(s) and no private material")
    ]


def _openapi_problems(document: Mapping[str, Any]) -> Iterable[str]:
    version = document.get("openapi")
    if not (isinstance(version, str) and re.fullmatch(r"3\.1\.\d+", version)):
        yield f"openapi is {version!r}, not 3.1.x"
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        yield "the document has no paths"
        return

    def resolve(node: Any) -> Any:
        for _ in range(20):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return node
            reference: str = node["$ref"]
            if not reference.startswith("#/"):
                return node
            target: Any = document
            for part in reference[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            if target is None:
                return None
            node = target
        return node

    def content_problems(where: str, content: Any) -> Iterable[str]:
        if not isinstance(content, dict):
            return
        for media, entry in content.items():
            schema = entry.get("schema") if isinstance(entry, dict) else None
            if schema is None or schema == {}:
                yield f"{where} ({media}) has no schema"
            elif isinstance(schema, dict) and "$ref" in schema and resolve(schema) is None:
                yield f"{where} ({media}) refers to a missing schema {schema['$ref']}"

    for path, item in paths.items():
        for method, operation in (item or {}).items():
            if method not in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                continue
            label = f"{method.upper()} {path}"
            body = resolve(operation.get("requestBody"))
            if operation.get("requestBody") is not None and body is None:
                yield f"{label} request body refers to a missing component"
            elif isinstance(body, dict):
                if not body.get("content"):
                    yield f"{label} request body declares no content"
                yield from content_problems(f"{label} request body", body.get("content"))
            for status, response in (operation.get("responses") or {}).items():
                resolved = resolve(response)
                if resolved is None:
                    yield f"{label} response {status} refers to a missing component"
                    continue
                content = resolved.get("content") if isinstance(resolved, dict) else None
                if not content and str(status).startswith("2") and str(status) != "204":
                    yield f"{label} response {status} has a body with no schema (no content declared)"
                yield from content_problems(f"{label} response {status}", content)


@PLATFORM.test("openapi-document", ["PLT-009"])
async def _openapi_document(session: TargetSession) -> Sequence[Finding]:
    """The OpenAPI document is 3.1 and every request and response body has a schema."""
    path = await session.endpoint("openapi")
    document = await session.openapi()
    if document is None:
        exchange = next((e for e in reversed(session.exchanges) if e.url == session.url(path)), None)
        evidence = exchange.evidence("200 with an OpenAPI 3.1 JSON document") if exchange else None
        return [Finding.failed("PLT-009", f"GET {path} did not return a JSON OpenAPI document", evidence)]
    problems = list(_openapi_problems(document))
    if problems:
        return [Finding.failed("PLT-009", problem) for problem in problems]
    return [
        Finding.passed(
            "PLT-009",
            f"{path}: OpenAPI {document['openapi']}, {len(operations(document))} operations, "
            "every body has a schema",
        )
    ]


@PLATFORM.test("generated-requests", ["PLT-010", "PLT-011"])
async def _generated_requests(session: TargetSession) -> Sequence[Finding]:
    """Requests generated from the OpenAPI schemas: valid ones never 5xx, invalid ones are refused (4xx)."""
    document = await session.openapi()
    if document is None:
        reason = "no OpenAPI document to generate requests from (see PLT-009)"
        return [Finding.skipped("PLT-010", reason), Finding.skipped("PLT-011", reason)]
    options = session.options
    try:
        cases = generate_cases(
            document, session.base_url, max_examples=options.max_examples, seed=options.seed
        )
        findings: list[Finding] = []
        deadline = time.monotonic() + options.generated_phase_budget
        for operation in cases:
            if time.monotonic() > deadline:
                budget = options.generated_phase_budget
                reason = f"the generated phase ran out of its {budget:g} s budget at {operation.operation}"
                findings += [Finding.skipped("PLT-010", reason), Finding.skipped("PLT-011", reason)]
                break
            if operation.problem is not None and not operation.requests:
                reason = f"{operation.operation}: no requests could be generated ({operation.problem})"
                findings += [Finding.skipped("PLT-010", reason), Finding.skipped("PLT-011", reason)]
                continue
            findings += await _exercise(
                session, operation.operation, operation.requests, DocumentedResponses(document)
            )
    except UnusableDocument as error:
        reason = f"the OpenAPI document cannot drive generation: {error}"
        return [Finding.skipped("PLT-010", reason), Finding.skipped("PLT-011", reason)]
    return findings


async def _exercise(
    session: TargetSession,
    label: str,
    requests: Sequence[GeneratedRequest],
    documented: DocumentedResponses,
) -> list[Finding]:
    server_errors: list[Finding] = []
    accepted_invalid: list[Finding] = []
    refusals = 0
    for generated in requests:
        exchange = await session.request(
            generated.method, generated.url, headers=generated.headers, content=generated.content
        )
        kind = f"{generated.mode} generated request"
        if exchange.status is None or exchange.status >= 500:
            outcome = "no response" if exchange.status is None else f"{exchange.status}"
            server_errors.append(
                Finding.failed(
                    "PLT-010", f"{label}: a {kind} got {outcome}", exchange.evidence("any status below 500")
                )
            )
            continue
        if not generated.expects_refusal:
            continue
        refusals += 1
        body = exchange.json_object()
        if _documented(documented, exchange):
            continue
        if exchange.status < 400:
            accepted_invalid.append(
                Finding.failed(
                    "PLT-011",
                    f"{label}: an invalid request ({generated.invalid_because}) "
                    f"was accepted with {exchange.status}",
                    exchange.evidence("a 4xx refusal with an error body"),
                )
            )
        elif body is None or not isinstance(body.get("reason_code"), str):
            accepted_invalid.append(
                Finding.failed(
                    "PLT-011",
                    f"{label}: an invalid request was refused with {exchange.status} "
                    "but no error body with a reason_code",
                    exchange.evidence("an error body with a reason_code"),
                )
            )
    findings = _capped(server_errors[:_QUOTED_FAILURES], "PLT-010", len(server_errors), "5xx answers")
    if not server_errors:
        findings.append(Finding.passed("PLT-010", f"{label}: {len(requests)} generated requests, no 5xx"))
    findings += _capped(
        accepted_invalid[:_QUOTED_FAILURES], "PLT-011", len(accepted_invalid), "invalid requests not refused"
    )
    if refusals and not accepted_invalid:
        findings.append(
            Finding.passed(
                "PLT-011", f"{label}: {refusals} invalid requests, each refused with a 4xx error body"
            )
        )
    return findings


_OVERSIZED_ATTEMPTS: Final = 3


@PLATFORM.test("oversized-body", ["PLT-012"])
async def _oversized_body(session: TargetSession) -> Sequence[Finding]:
    """A body over the server's limit answers 413 request.too_large."""
    operation = _json_operation_path(await session.openapi())
    if operation is None:
        return [Finding.skipped("PLT-012", "no operation in the OpenAPI document takes a JSON body")]
    method, path = operation.split(" ", 1)
    padding = b"a" * OVERSIZED_BODY_BYTES
    content = b'{"schema": "error", "instance": "' + padding + b'"}'
    # A server that answers 413 and closes while the body is still arriving may reset the connection,
    # and a reset discards the answer still unread in the client's buffer: only an exchange that got
    # no answer at all is tried again, a few times; any answer is judged as it came.
    for _attempt in range(_OVERSIZED_ATTEMPTS):
        exchange = await session.send_large_body(
            method, path, content=content, headers={"content-type": "application/json"}
        )
        if exchange.status is not None:
            break
    problem = _error_body_problem(exchange, 413, "request.too_large")
    if problem:
        return [
            Finding.failed(
                "PLT-012",
                f"{operation} with a {len(content)} byte body {problem}",
                exchange.evidence("413 request.too_large"),
            )
        ]
    return [
        Finding.passed(
            "PLT-012", f"{operation} refused a {len(content)} byte body with 413 request.too_large"
        )
    ]


@PLATFORM.test("method-not-allowed", ["PLT-014"])
async def _method_not_allowed(session: TargetSession) -> Sequence[Finding]:
    """A known route called with a method it does not support answers 405 method.not_allowed."""
    paths = ((await session.openapi()) or {}).get("paths") or {}
    findings: list[Finding] = []
    for path in ("/healthz", CAPABILITIES_PATH):
        declared = {method.upper() for method in (paths.get(path) or {})}
        method = next((m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in declared), None)
        if method is None:
            continue
        exchange = await session.request(method, path)
        problem = _error_body_problem(exchange, 405, "method.not_allowed")
        if problem:
            findings.append(
                Finding.failed(
                    "PLT-014", f"{method} {path} {problem}", exchange.evidence("405 method.not_allowed")
                )
            )
        else:
            findings.append(Finding.passed("PLT-014", f"{method} {path} answered 405 method.not_allowed"))
    return findings or [Finding.skipped("PLT-014", "every probed route declares every method")]


@PLATFORM.test("hostile-inputs", ["PLT-013"])
async def _hostile_inputs(session: TargetSession) -> Sequence[Finding]:
    """Malformed and hostile requests are answered without revealing a stack trace."""
    operation = _json_operation_path(await session.openapi())
    findings: list[Finding] = []
    sent = 0
    for hostile in _HOSTILE_INPUTS:
        if hostile.target == "json":
            if operation is None:
                continue
            method, path = operation.split(" ", 1)
        else:
            method, path = hostile.method, hostile.target
        headers = {"content-type": hostile.content_type} if hostile.content_type else {}
        exchange = await session.request(method, path, headers=headers, content=hostile.content)
        sent += 1
        leak = _trace_found(exchange)
        if leak:
            findings.append(
                Finding.failed(
                    "PLT-013",
                    f"{hostile.description}: the response reveals {leak}",
                    exchange.evidence("no stack trace"),
                )
            )
    return findings or [Finding.passed("PLT-013", f"{sent} hostile requests answered without a stack trace")]


# --- observers of every response --------------------------------------------------------------------------


def _observe(
    session: TargetSession,
    requirement: str,
    select: Callable[[Exchange], bool],
    problem_of: Callable[[Exchange], str | None],
    expected: str,
    summary: str,
) -> list[Finding]:
    observed = [
        exchange for exchange in session.exchanges if exchange.status is not None and select(exchange)
    ]
    failures = []
    for exchange in observed:
        problem = problem_of(exchange)
        if problem is not None:
            failures.append((exchange, problem))
    findings = [
        Finding.failed(
            requirement, f"{exchange.method} {exchange.url}: {problem}", exchange.evidence(expected)
        )
        for exchange, problem in failures[:_QUOTED_FAILURES]
    ]
    if failures:
        return _capped(findings, requirement, len(failures), "responses with the same problem")
    if not observed:
        return [Finding.skipped(requirement, f"no response to observe ({summary})")]
    return [Finding.passed(requirement, f"{len(observed)} {summary}")]


def _documented(documented: DocumentedResponses, exchange: Exchange) -> bool:
    """A refusal the operation's OpenAPI responses declare (an ``oauth-error`` body, an error page)."""
    body = exchange.json_object()
    if exchange.status is None or exchange.status < 300:
        return False
    if body is not None and isinstance(body.get("reason_code"), str):
        return False
    return documented.declares(
        exchange.method, exchange.url, exchange.status, exchange.headers, exchange.body
    )


def _error_schema_problem(exchange: Exchange) -> str | None:
    body = exchange.json_object()
    if body is None:
        return "the error body is not a JSON object"
    problems = _schema_problems("error", body)
    if problems:
        return f"the error body is not valid against error: {'; '.join(problems[:3])}"
    code = body.get("reason_code")
    if code not in standards.reason_codes():
        return f"reason_code {code!r} is not in the reason-code vocabulary"
    return None


def _request_id_problem(exchange: Exchange, documented: DocumentedResponses) -> str | None:
    header = exchange.headers.get("x-request-id")
    if not header:
        return "no X-Request-Id header"
    if exchange.is_error and not _documented(documented, exchange):
        body = exchange.json_object()
        if body is not None and body.get("request_id") != header:
            return (
                f"the error body's request_id {body.get('request_id')!r} differs from X-Request-Id {header!r}"
            )
    return None


@PLATFORM.test("error-bodies", ["PLT-006"], observes_traffic=True)
async def _error_bodies(session: TargetSession) -> Sequence[Finding]:
    """Every error response of the run has an error body with a reason code from the vocabulary, or the
    refusal its operation's OpenAPI responses declare."""
    documented = DocumentedResponses(await session.openapi() or {})
    return _observe(
        session,
        "PLT-006",
        lambda e: e.is_error and not _documented(documented, e),
        _error_schema_problem,
        "an error body valid against error with a known reason_code",
        "error responses, each with a valid error body",
    )


@PLATFORM.test("request-ids", ["PLT-007"], observes_traffic=True)
async def _request_ids(session: TargetSession) -> Sequence[Finding]:
    """Every response of the run carries X-Request-Id, repeated as request_id in error bodies."""
    documented = DocumentedResponses(await session.openapi() or {})
    return _observe(
        session,
        "PLT-007",
        lambda e: True,
        lambda e: _request_id_problem(e, documented),
        "an X-Request-Id header, equal to the error body's request_id",
        "responses, each with an X-Request-Id",
    )


@PLATFORM.test("no-stack-traces", ["PLT-013"], observes_traffic=True)
async def _no_stack_traces(session: TargetSession) -> Sequence[Finding]:
    """No response of the run (beyond the hostile inputs, judged on their own) reveals a stack trace."""
    return _observe(
        session,
        "PLT-013",
        lambda e: e.test != "hostile-inputs",
        lambda e: f"the response reveals {leak}" if (leak := _trace_found(e)) else None,
        "no stack trace or internal exception text",
        "responses, none revealing a stack trace",
    )
