"""Deliberately non-conformant OpenID providers: our identity block with exactly one thing broken, by an
ASGI middleware around the app (requests or responses rewritten) or by a patched sector pseudonym."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from conformance_tests.relying_party import Pkce
from dpi.types import Message, Receive, Scope, Send
from tests.conformance_tests.broken_apps import Headers, Rewriter

__all__ = [
    "ReplayingTokens",
    "VerifierBlind",
    "error_pages_as_redirects",
    "state_dropped",
    "uin_in_userinfo",
    "userinfo_without_challenge",
]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _is_token_request(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/token")


class VerifierBlind:
    """Ignores PKCE: every code challenge becomes one of its own, every verifier the matching one."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pkce = Pkce()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/authorize"):
            query = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
            if any(name == "code_challenge" for name, _ in query):
                query = [(n, self.pkce.challenge if n == "code_challenge" else v) for n, v in query]
                scope = {**scope, "query_string": urlencode(query).encode()}
        elif _is_token_request(scope):
            form = [(n, v) for n, v in parse_qsl((await _body(receive)).decode()) if n != "code_verifier"]
            body = urlencode([*form, ("code_verifier", self.pkce.verifier)]).encode()
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            scope, receive = {**scope, "headers": headers}, _replay(body)
        await self.app(scope, receive, send)


class ReplayingTokens:
    """Accepts a code twice: a code seen before gets the tokens it got the first time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.answers: dict[str, list[Message]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_token_request(scope):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        code = dict(parse_qsl(body.decode())).get("code", "")
        if code in self.answers:
            for message in self.answers[code]:
                await send(message)
            return
        recorded: list[Message] = []

        async def record(message: Message) -> None:
            recorded.append(message)
            await send(message)

        await self.app(scope, _replay(body), record)
        if recorded and recorded[0].get("status") == 200:
            self.answers[code] = recorded


def _header(headers: Headers, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == name), None)


def error_pages_as_redirects(
    scope: Scope, status: int, headers: Headers, body: bytes
) -> tuple[int, Headers, bytes]:
    """Sends the user agent to whatever redirect URI it asked for instead of showing an error page."""
    if not scope["path"].endswith("/authorize") or status != 400:
        return status, headers, body
    asked = dict(parse_qsl(scope["query_string"].decode())).get("redirect_uri")
    if not asked:
        return status, headers, body
    location = f"{asked}?{urlencode({'error': 'invalid_request'})}"
    return 302, [(b"location", location.encode()), (b"content-type", b"text/plain")], b""


def state_dropped(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    """Redirects to the client without the request's ``state``."""
    location = _header(headers, b"location")
    if status != 302 or location is None or "state=" not in location:
        return status, headers, body
    parts = urlsplit(location)
    query = urlencode([(n, v) for n, v in parse_qsl(parts.query) if n != "state"])
    kept = [(k, v) for k, v in headers if k.lower() != b"location"]
    return status, [*kept, (b"location", urlunsplit(parts._replace(query=query)).encode())], body


def userinfo_without_challenge(
    scope: Scope, status: int, headers: Headers, body: bytes
) -> tuple[int, Headers, bytes]:
    """Refuses userinfo with a bare 401: no ``WWW-Authenticate``."""
    if scope["path"].endswith("/userinfo") and status == 401:
        return status, [(k, v) for k, v in headers if k.lower() != b"www-authenticate"], body
    return status, headers, body


def uin_in_userinfo(uin: str) -> Rewriter:
    """Adds the person's UIN to every JSON userinfo answer."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not scope["path"].endswith("/userinfo") or status != 200:
            return status, headers, body
        try:
            claims = json.loads(body)
        except ValueError:
            return status, headers, body
        return status, headers, json.dumps({**claims, "individual_id": uin}).encode()

    return rewrite
