"""The system under test, seen over HTTP only: every request of a test goes through a :class:`TargetSession`.

The session records each request and response as an :class:`Exchange`, so tests about *every* response
(error bodies, request ids, stack traces) can inspect all the traffic of a run. The HTTP client is an
``httpx.AsyncClient``; tests inject ``httpx.ASGITransport(app)`` to target an app in-process, the CLI
uses the network.

Over the network, :meth:`TargetSession.send_large_body` speaks HTTP/1.1 (RFC 9112,
https://www.rfc-editor.org/rfc/rfc9112) on its own connection with h11, reading while it uploads: a server
may answer 413 as soon as it sees the ``Content-Length`` and close the connection (RFC 9110 section 15.5.14),
and a client that only listens once the whole body is sent never hears that answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import h11
import httpx

from conformance_tests.dci_sender import DciOptions
from conformance_tests.model import Evidence
from conformance_tests.payments_provider.sender import PaymentsOptions
from conformance_tests.relying_party import OidcOptions
from conformance_tests.tokens import TokenMinter

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
# Upload step of send_large_body: small enough to notice an early answer soon after it arrives.
_UPLOAD_CHUNK = 64 * 1024
_READ_SIZE = 64 * 1024


class TargetUnreachable(Exception):
    """The target did not answer at all (connection refused, DNS failure, timeout on the first request)."""


@dataclass(frozen=True)
class RunOptions:
    """Options of one run: generated cases per operation and mode, hypothesis seed, per-request timeout,
    and the wall-clock budget of the generated phase (operations left when it runs out count as skipped);
    ``tokens`` issues the access tokens profiles with authorised APIs need (the target trusts its JWKS);
    ``callback_timeout`` bounds the wait for asynchronous messages (notifications, callbacks);
    ``oidc`` holds the client registrations and the test person an OpenID provider is tested with;
    ``dci`` the suite's DCI sender registration and the registry it tests; ``payments`` the suite's G2P
    Connect sender registration and the accounts it pays between.
    """

    max_examples: int = 25
    seed: int = 0
    timeout: float = 10.0
    generated_phase_budget: float = 300.0
    tokens: TokenMinter | None = None
    callback_timeout: float = 20.0
    oidc: OidcOptions | None = None
    dci: DciOptions | None = None
    payments: PaymentsOptions | None = None

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
    ``over_network`` says that ``client`` reaches the target over real connections (no injected transport),
    so :meth:`send_large_body` may open its own connection.
    """

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        options: RunOptions | None = None,
        *,
        over_network: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.options = options or RunOptions()
        self.over_network = over_network
        self.exchanges: list[Exchange] = []
        self.current_test = ""
        self._capabilities: Exchange | None = None
        self._openapi: dict[str, Any] | None = None
        self._openapi_loaded = False
        # Setup a profile shares between its tests (agreements created, subjects used, ...).
        self.state: dict[str, Any] = {}

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
        return self._record(
            method,
            str(request.url),
            dict(request.headers),
            body,
            status,
            response_headers,
            received,
            error_text,
        )

    async def send_large_body(
        self, method: str, path_or_url: str, *, content: bytes, headers: Mapping[str, str] | None = None
    ) -> Exchange:
        """Send ``content`` and record the answer, even one the server gives before reading all of it.

        Over the network the request goes on a connection of its own that listens while it uploads, stops
        uploading as soon as the answer starts, reads it, and closes. In-process (an injected transport)
        it is an ordinary :meth:`request`.
        """
        if not self.over_network:
            return await self.request(method, path_or_url, headers=headers, content=content)
        url = self.url(path_or_url)
        sent_headers = {
            "host": urlsplit(url).netloc,
            "user-agent": USER_AGENT,
            **{k.lower(): v for k, v in (headers or {}).items()},
            "content-length": str(len(content)),
            "connection": "close",
        }
        status: int | None = None
        response_headers = httpx.Headers()
        received = b""
        error_text: str | None = None
        try:
            status, response_headers, received = await _upload_listening(
                method.upper(), url, sent_headers, content, self.options.timeout
            )
        except (OSError, TimeoutError, h11.ProtocolError, ValueError) as error:
            error_text = f"{type(error).__name__}: {error}"
        return self._record(
            method, url, sent_headers, content, status, response_headers, received, error_text
        )

    def _record(
        self,
        method: str,
        url: str,
        request_headers: Mapping[str, str],
        body: bytes,
        status: int | None,
        response_headers: httpx.Headers,
        received: bytes,
        error_text: str | None,
    ) -> Exchange:
        exchange = Exchange(
            test=self.current_test,
            method=method.upper(),
            url=url,
            request_headers=dict(request_headers),
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


async def _upload_listening(
    method: str, url: str, headers: Mapping[str, str], content: bytes, wait_seconds: float
) -> tuple[int, httpx.Headers, bytes]:
    """One HTTP/1.1 exchange on a fresh connection, reading the answer while the body is still going out."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if parts.hostname is None:
        raise ValueError(f"no host in {url}")
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, port, ssl=ssl.create_default_context() if secure else None),
        wait_seconds,
    )
    connection = h11.Connection(our_role=h11.CLIENT)
    answer: asyncio.Task[tuple[int, httpx.Headers, bytes]] | None = None
    try:
        writer.write(
            connection.send(h11.Request(method=method, target=target, headers=list(headers.items())))
        )
        answer = asyncio.create_task(_read_answer(connection, reader))
        try:
            for start in range(0, len(content), _UPLOAD_CHUNK):
                if answer.done():
                    break
                data = connection.send(h11.Data(data=content[start : start + _UPLOAD_CHUNK]))
                writer.write(data or b"")
                await asyncio.wait_for(writer.drain(), wait_seconds)
            else:
                writer.write(connection.send(h11.EndOfMessage()) or b"")
                await asyncio.wait_for(writer.drain(), wait_seconds)
        except (ConnectionError, h11.LocalProtocolError):
            pass  # the server stopped reading: what it answered before closing is the outcome
        return await asyncio.wait_for(answer, wait_seconds)
    finally:
        if answer is not None and not answer.done():
            answer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await answer
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _read_answer(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> tuple[int, httpx.Headers, bytes]:
    status: int | None = None
    headers = httpx.Headers()
    body = bytearray()
    while True:
        try:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(_READ_SIZE))
                continue
        except (ConnectionError, h11.RemoteProtocolError):
            if status is None:
                raise
            break  # the connection ended inside the body: keep what arrived
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = httpx.Headers([(name, value) for name, value in event.headers])
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) >= _RESPONSE_BODY_KEPT:
                break
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.PAUSED:
            break
    if status is None:
        raise ConnectionError("the connection closed before any answer")
    return status, headers, bytes(body[:_RESPONSE_BODY_KEPT])
