"""``TargetSession.send_large_body`` over real sockets: a server that refuses a body early is still heard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from conformance_tests import RunOptions, TargetSession

BODY = b'{"pad": "' + b"a" * (8 * 1024 * 1024) + b'"}'
REFUSAL = json.dumps({"reason_code": "request.too_large", "message": "too large"}).encode()

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _answer(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"x-request-id: r1\r\nconnection: close\r\n\r\n" + body


async def _refuse_on_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # What granian does behind Litestar's body limit: answer on Content-Length, close without reading on.
    await _read_head(reader)
    writer.write(_answer("413 Content Too Large", REFUSAL))
    await writer.drain()
    writer.close()


async def _read_everything_then_refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await _read_head(reader)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    writer.write(_answer("413 Content Too Large", REFUSAL))
    await writer.drain()
    writer.close()


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.close()


@asynccontextmanager
async def _session_against(handler: Handler) -> AsyncIterator[TargetSession]:
    """A session over the network to a local server answering every connection with ``handler``."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, httpx.AsyncClient() as client:
        yield TargetSession(url, client, RunOptions(timeout=5.0), over_network=True)


@pytest.mark.parametrize("handler", [_refuse_on_headers, _read_everything_then_refuse])
async def test_an_early_or_late_refusal_is_heard_over_a_socket(handler: Handler) -> None:
    async with _session_against(handler) as session:
        exchange = await session.send_large_body(
            "POST", "/standards/validate", content=BODY, headers={"content-type": "application/json"}
        )
        assert exchange.error is None
        assert exchange.status == 413
        assert exchange.json_object() == json.loads(REFUSAL)
        assert exchange.headers["x-request-id"] == "r1"
        assert exchange.request_body_length == len(BODY)
        assert session.exchanges == [exchange]


async def test_a_server_that_hangs_up_gives_no_status_and_says_why() -> None:
    async with _session_against(_hang_up) as session:
        exchange = await session.send_large_body("POST", "/x", content=BODY)
        assert exchange.status is None
        assert exchange.error
        assert exchange.evidence("413").one_line().startswith(f"POST {session.base_url}/x body (")


async def test_in_process_it_is_an_ordinary_request() -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(len(request.content))
        return httpx.Response(413, json=json.loads(REFUSAL))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        session = TargetSession("http://testserver", client)
        exchange = await session.send_large_body("POST", "/x", content=BODY)
    assert (exchange.status, seen) == (413, [len(BODY)])
