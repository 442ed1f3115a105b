"""The system under test, seen over HTTP only: every request of a test goes through a :class:`TargetSession`.

The session records each request and response as an :class:`Exchange`, so tests about *every* response
(error bodies, request ids, stack traces) can inspect all the traffic of a run. The HTTP client is an
``httpx.AsyncClient``; tests inject ``httpx.ASGITransport(app)`` to target an app in-process, the CLI
uses the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from conformance_tests.model import Evidence

__all__ = [
    "DEFAULT_ENDPOINTS",
    "Exchange",
    "RunOptions",
    "TargetSession",
    "TargetUnreachable",
]

CAPABILITIES_PATH = "/.well-known/dpi-capabilities"
DEFAULT_ENDPOINTS: Mapping[str, str] = {
    "openapi": "/openapi.json",
    "health": "/healthz",
    "readiness": "/readyz",
}
USER_AGENT = "dpi-conformance/0.1.0"
# Bounds on what one exchange keeps: enough to quote as evidence and to scan for leaks.
_REQUEST_BODY_KEPT = 2048
_RESPONSE_BODY_KEPT = 1024 * 1024
_EXCERPT = 600


class TargetUnreachable(Exception):
    """The target did not answer at all (connection refused, DNS failure, timeout on the first request)."""


@dataclass(frozen=True)
class RunOptions:
    """Options of one run: generated cases per operation and mode, hypothesis seed, per-request timeout,
    and the wall-clock budget of the generated phase (operations left when it runs out count as skipped).
    """

    max_examples: int = 25
    seed: int = 0
    timeout: float = 10.0
    generated_phase_budget: float = 300.0

    def __post_init__(self) -> None:
        if self.max_examples < 1:
            raise ValueError("max_examples must be at least 1")
        if self.timeout <= 0 or self.generated_phase_budget <= 0:
            raise ValueError("timeout and generated_phase_budget must be positive")


@dataclass(frozen=True)
class Exchange:
    """One request the suite sent and what came back (``status`` is None when no response arrived)."""

    test: str
    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    request_body_length: int
    status: int | None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    error: str | None = None

    @property
    def request_line(self) -> str:
        line = f"{self.method} {self.url}"
        if self.request_body_length:
            shown = self.request_body[:200].decode("utf-8", "replace")
            more = "..." if self.request_body_length > 200 else ""
            line += f" body ({self.request_body_length} bytes): {shown}{more}"
        return line

    @property
    def is_error(self) -> bool:
        return self.status is not None and self.status >= 400

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", "")).split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body)

    def json_object(self) -> dict[str, Any] | None:
        """The body when it is a JSON object, else None."""
        try:
            value = self.json()
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def excerpt(self, limit: int = _EXCERPT) -> str:
        if self.error is not None:
            return self.error
        text = self.body.decode("utf-8", "replace")
        return text if len(text) <= limit else text[:limit] + f"... ({len(self.body)} bytes)"

    def evidence(self, expected: str) -> Evidence:
        return Evidence(request=self.request_line, status=self.status, body=self.excerpt(), expected=expected)


class TargetSession:
    """The HTTP conversation with one target during one run, shared by every test.

    ``client`` must be an ``httpx.AsyncClient``; relative paths are resolved against ``base_url``.
    """

    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RunOptions | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.options = options or RunOptions()
        self.exchanges: list[Exchange] = []
        self.current_test = ""
        self._capabilities: Exchange | None = None
        self._openapi: dict[str, Any] | None = None
        self._openapi_loaded = False

    def url(self, path_or_url: str) -> str:
        """``path_or_url`` resolved against the target's base URL (absolute URLs are kept)."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url.lstrip("/"))

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Exchange:
        """Send one request and record the exchange; a transport failure gives an exchange with no status."""
        sent_headers = {"user-agent": USER_AGENT, **{k.lower(): v for k, v in (headers or {}).items()}}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            sent_headers.setdefault("content-type", "application/json")
        body = content or b""
        url = self.url(path_or_url)
        request = self.client.build_request(
            method, url, headers=sent_headers, content=content, params=params, timeout=self.options.timeout
        )
        status: int | None = None
        response_headers = httpx.Headers()
        received = b""
        error_text: str | None = None
        try:
            response = await self.client.send(request)
            try:
                received = await _read_bounded(response)
            finally:
                await response.aclose()
            status, response_headers = response.status_code, response.headers
        except httpx.HTTPError as error:
            error_text = f"{type(error).__name__}: {error}"
        exchange = Exchange(
            test=self.current_test,
            method=method.upper(),
            url=str(request.url),
            request_headers=dict(request.headers),
            request_body=body[:_REQUEST_BODY_KEPT],
            request_body_length=len(body),
            status=status,
            headers=response_headers,
            body=received,
            error=error_text,
        )
        self.exchanges.append(exchange)
        return exchange

    async def capabilities(self) -> Exchange:
        """The response to ``GET /.well-known/dpi-capabilities`` (fetched once per run)."""
        if self._capabilities is None:
            self._capabilities = await self.request("GET", CAPABILITIES_PATH)
        return self._capabilities

    async def capabilities_document(self) -> dict[str, Any] | None:
        exchange = await self.capabilities()
        return exchange.json_object() if exchange.status == 200 else None

    async def endpoint(self, name: str) -> str:
        """The path the capabilities document names under ``endpoints`` (the conventional one otherwise)."""
        document = await self.capabilities_document()
        endpoints = document.get("endpoints") if document else None
        if isinstance(endpoints, dict) and isinstance(endpoints.get(name), str):
            return str(endpoints[name])
        return DEFAULT_ENDPOINTS[name]

    async def openapi(self) -> dict[str, Any] | None:
        """The target's OpenAPI document (path from capabilities ``endpoints.openapi``), or None."""
        if not self._openapi_loaded:
            self._openapi_loaded = True
            exchange = await self.request("GET", await self.endpoint("openapi"))
            self._openapi = exchange.json_object() if exchange.status == 200 else None
        return self._openapi


async def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _RESPONSE_BODY_KEPT:
            break
    return b"".join(chunks)[:_RESPONSE_BODY_KEPT]
