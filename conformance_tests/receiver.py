"""A callback receiver the suite hosts for asynchronous flows (DCI on-search callbacks, notifications).

The system under test is told to deliver to :attr:`CallbackReceiver.url`; a test then awaits the message
it expects with :meth:`CallbackReceiver.wait_for` (by correlation id or predicate, with a timeout), the
pattern of Inferno's ``wait``/resume routes. Messages signed with HTTP Message Signatures (RFC 9421,
https://www.rfc-editor.org/rfc/rfc9421) are checked with :func:`verify_callback_signature`.

The server is the standard library's threading HTTP server on a local port; each delivery is handed to
the asyncio loop that started the receiver.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from dpi.signing import verify_request

__all__ = [
    "CallbackReceiver",
    "CallbackTimeout",
    "ReceivedCallback",
    "verify_callback_signature",
]

Predicate = Callable[["ReceivedCallback"], bool]
# A delivery larger than this is refused with 413; callbacks are small JSON documents.
_MAX_BODY = 16 * 1024 * 1024
_CORRELATION_HEADER = "x-correlation-id"


class CallbackTimeout(TimeoutError):
    """No callback matching what a test waited for arrived in time; the message says what and how long."""


@dataclass(frozen=True)
class ReceivedCallback:
    """One request delivered to the receiver, as it arrived."""

    method: str
    url: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def correlates_with(self, correlation_id: str) -> bool:
        """True when the ``X-Correlation-Id`` header or a ``correlation_id`` member of the body is the id."""
        if self.header(_CORRELATION_HEADER) == correlation_id:
            return True
        try:
            document = self.json()
        except ValueError:
            return False
        return _holds_correlation_id(document, correlation_id, depth=0)


def _holds_correlation_id(node: Any, correlation_id: str, depth: int) -> bool:
    if depth > 8:
        return False
    if isinstance(node, dict):
        if node.get("correlation_id") == correlation_id:
            return True
        return any(_holds_correlation_id(value, correlation_id, depth + 1) for value in node.values())
    if isinstance(node, list):
        return any(_holds_correlation_id(value, correlation_id, depth + 1) for value in node)
    return False


class CallbackReceiver:
    """An HTTP server on ``host``:``port`` (0 picks a free port) recording every request it receives.

    Use it as an async context manager inside the event loop that will wait for callbacks::

        async with CallbackReceiver() as receiver:
            ...  # give receiver.url to the system under test
            message = await receiver.wait_for("corr-123", timeout=10)

    Every request is answered ``response_status`` with ``response_body`` as JSON.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        response_status: int = 202,
        response_body: Mapping[str, Any] | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._response_status = response_status
        self._response_body = json.dumps(dict(response_body or {"status": "received"})).encode()
        self._messages: list[ReceivedCallback] = []
        self._waiters: list[tuple[Predicate, asyncio.Future[ReceivedCallback]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL senders deliver to, e.g. ``http://127.0.0.1:41234``."""
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def messages(self) -> list[ReceivedCallback]:
        """Every message received so far, in arrival order."""
        return list(self._messages)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="callback-receiver", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        for _, waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()
        self._server = self._thread = None

    async def __aenter__(self) -> CallbackReceiver:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_for(self, match: str | Predicate, timeout: float) -> ReceivedCallback:  # noqa: ASYNC109
        """The first message (already received or arriving within ``timeout`` seconds) that matches.

        ``match`` is a correlation id (see :meth:`ReceivedCallback.correlates_with`) or a predicate.
        Raises :class:`CallbackTimeout` naming what was awaited and how many messages did arrive.
        """
        predicate: Predicate = match if callable(match) else (lambda message: message.correlates_with(match))
        for message in self._messages:
            if predicate(message):
                return message
        if self._loop is None:
            raise RuntimeError("the receiver is not started")
        future: asyncio.Future[ReceivedCallback] = self._loop.create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            awaited = f"correlation id {match!r}" if isinstance(match, str) else "a matching message"
            raise CallbackTimeout(
                f"no callback with {awaited} reached {self.url} within {timeout:g} s "
                f"({len(self._messages)} other message(s) received)"
            ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _deliver(self, message: ReceivedCallback) -> None:
        """Runs on the event loop: record ``message`` and wake the waiters it satisfies."""
        self._messages.append(message)
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(message):
                future.set_result(message)

    def _arrived(self, message: ReceivedCallback) -> None:
        """Runs on a server thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._deliver, message)

    def _reply(self) -> tuple[int, bytes]:
        return self._response_status, self._response_body


def _handler_for(receiver: CallbackReceiver) -> type[BaseHTTPRequestHandler]:
    class _CallbackHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _receive(self) -> None:
            body, problem = self._read_body()
            if problem is not None:
                self._answer(problem, b'{"reason_code": "request.too_large"}')
                return
            address = self.server.server_address
            host = self.headers.get("host") or f"{address[0]!s}:{address[1]!s}"  # type: ignore[index]
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            receiver._arrived(
                ReceivedCallback(
                    method=self.command,
                    url=f"http://{host}{self.path}",
                    path=self.path,
                    headers=headers,
                    body=body,
                )
            )
            self._answer(*receiver._reply())

        def _read_body(self) -> tuple[bytes, int | None]:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                total = 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks), None
                    total += size
                    if total > _MAX_BODY:
                        return b"", 413
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            if length > _MAX_BODY:
                return b"", 413
            return self.rfile.read(length), None

        def _answer(self, status: int, body: bytes) -> None:
            # One request per connection: a kept-alive connection would outlive stop() and go on
            # answering for a receiver nobody waits on any more.
            self.close_connection = True
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _receive

        def log_message(self, format: str, *args: Any) -> None:
            return None  # deliveries are recorded as messages; stderr noise would drown the report

    return _CallbackHandler


def verify_callback_signature(
    message: ReceivedCallback,
    jwks: Mapping[str, Any],
    *,
    max_age: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> str:
    """Verify the RFC 9421 ``dpi`` signature (and RFC 9530 Content-Digest) of a received callback.

    Returns the signer's ``kid``; raises :class:`dpi.signing.SignatureError` with a reason code otherwise.
    """
    return verify_request(
        message.method, message.url, message.headers, message.body, jwks, max_age=max_age, now=now
    )
