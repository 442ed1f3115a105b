"""Pushed authorization requests (RFC 9126, https://www.rfc-editor.org/rfc/rfc9126) for the identity block's
OpenID provider.

``POST /identity/par`` takes the parameters of an authentication request from a client authenticated as
at the token endpoint (HTTP Basic or a ``private_key_jwt`` assertion, :mod:`identity.client_auth`),
checks them as the authorization endpoint would (client, redirect URI, response type, scope, PKCE...),
and stores them under a random reference answered with 201: ``{"request_uri":
"urn:ietf:params:oauth:request_uri:<random>", "expires_in": 60}``. A refused request stores nothing.

The client then sends the browser to ``/identity/authorize?client_id=...&request_uri=...``. The reference
is used once (a conditional update marks it used), only by the client that pushed it, and only before it
expires; every other parameter sent beside it is ignored (RFC 9126 section 4). A client registered with
``require_pushed_authorization_requests`` may start a sign-in in no other way (RFC 9126 section 6).

Errors are RFC 6749 section 5.2 bodies (``oauth-error``) with the codes RFC 9126 section 2.3 names:
``invalid_client`` (401) when the client cannot be authenticated, and otherwise the codes the
authorization endpoint would redirect with (``invalid_request``, ``invalid_scope``,
``unsupported_response_type``, ``request_not_supported``...) with 400.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import JSON, DateTime, String, delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from dpi.contract import Body, Contract
from identity.client_auth import ClientAuthenticator
from identity.clients import RegisteredClient
from identity.models import IdentityBase

__all__ = [
    "PUSHED_REQUEST_TTL",
    "REQUEST_URI_PREFIX",
    "PushedRequests",
    "Validation",
    "build_par_routes",
    "is_pushed_reference",
]

REQUEST_URI_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"
PUSHED_REQUEST_TTL: Final = timedelta(seconds=60)
# The request rides in the sign-in page's signed cookie once it is used, as a request sent to
# /authorize does, so it is held to the same length.
_MAX_PARAMETERS: Final = 4096
_CLIENT_AUTHENTICATION: Final = frozenset({"client_assertion", "client_assertion_type"})
_FORM: Final = "application/x-www-form-urlencoded"
_OAUTH_ERROR: Final = "oauth-error@1.0.0"
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_log = logging.getLogger("identity.par")

Validation = Callable[[RegisteredClient, list[tuple[str, str]]], "tuple[str, str] | None"]
"""Checks pushed parameters as the authorization endpoint would: None, or an OAuth error and its text."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_pushed_reference(request_uri: str) -> bool:
    """Whether ``request_uri`` is one of this provider's references (other URIs are not fetched)."""
    return request_uri.startswith(REQUEST_URI_PREFIX)


class _PushedRequestRow(IdentityBase):
    """A pushed authorization request (migration ``identity_0005``), keyed by the SHA-256 of its
    reference; ``used_at`` marks its one use."""

    __tablename__ = "identity_oidc_pushed_request"

    uri_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[list[list[str]]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PushedRequests:
    """Pushed authorization requests in the identity block's database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    async def push(self, client_id: str, parameters: Sequence[tuple[str, str]]) -> str:
        """Store checked parameters; returns their single-use reference."""
        request_uri = f"{REQUEST_URI_PREFIX}{secrets.token_urlsafe(32)}"
        now = self.clock()
        async with self.sessions() as session, session.begin():
            await session.execute(delete(_PushedRequestRow).where(_PushedRequestRow.expires_at <= now))
            session.add(
                _PushedRequestRow(
                    uri_hash=_sha256(request_uri),
                    client_id=client_id,
                    parameters=[[name, value] for name, value in parameters],
                    expires_at=now + PUSHED_REQUEST_TTL,
                    used_at=None,
                )
            )
        return request_uri

    async def take(self, request_uri: str, client_id: str) -> list[tuple[str, str]] | None:
        """The parameters pushed by ``client_id`` under ``request_uri``, marked used; None when the
        reference is unknown, used, expired or another client's (RFC 9126 section 4)."""
        uri_hash = _sha256(request_uri)
        now = self.clock()
        async with self.sessions() as session, session.begin():
            row = await session.get(_PushedRequestRow, uri_hash)
            if (
                row is None
                or row.client_id != client_id
                or row.used_at is not None
                or _aware(row.expires_at) <= now
            ):
                return None
            result = await session.execute(
                update(_PushedRequestRow)
                .where(_PushedRequestRow.uri_hash == uri_hash, _PushedRequestRow.used_at.is_(None))
                .values(used_at=now)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            return [(str(name), str(value)) for name, value in row.parameters]


def _refusal(status: int, error: str, description: str, *, basic: bool = False) -> Response[Any]:
    headers = dict(_NO_STORE)
    if basic:
        headers["WWW-Authenticate"] = f'Basic realm="identity", error="{error}"'
    return Response({"error": error, "error_description": description}, status_code=status, headers=headers)


def _problem(client: RegisteredClient, parameters: list[tuple[str, str]]) -> tuple[str, str] | None:
    """What RFC 9126 section 2.1 refuses before the authorization endpoint's own checks."""
    names = [name for name, _ in parameters]
    if len(set(names)) != len(names):
        return "invalid_request", "A parameter is repeated."
    if "request_uri" in names:
        return "invalid_request", "A pushed authorization request cannot carry a request_uri."
    if dict(parameters).get("client_id", client.client_id) != client.client_id:
        return "invalid_request", "The client_id is not the authenticated client's."
    if len(urlencode(parameters)) > _MAX_PARAMETERS:
        return "invalid_request", "The authorization request is too long."
    return None


def build_par_routes(
    issuer: str, client_auth: ClientAuthenticator, pushed: PushedRequests, validate: Validation
) -> list[HTTPRouteHandler]:
    """The pushed authorization request endpoint, to mount under the block's ``/identity`` prefix."""
    endpoint = f"{issuer}/par"

    @post(
        "/par",
        status_code=201,
        opt=Contract(
            "Pushed authorization request (RFC 9126): store an authentication request, checked as at the "
            "authorization endpoint, and answer its single-use request_uri; the client authenticated as at "
            "the token endpoint (HTTP Basic or a private_key_jwt assertion)",
            {201: "identity-oidc-par-response@1.0.0", 400: _OAUTH_ERROR, 401: _OAUTH_ERROR},
            request=Body("identity-oidc-par-request@1.1.0", _FORM),
            tags=("identity-oidc",),
            errors=(413, 500),
        ).as_opt(),
    )
    async def push(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        pairs = [(str(name), str(value)) for name, value in form.multi_items()]
        authorization = request.headers.get("authorization")
        client = await client_auth.authenticate(pairs, authorization, endpoint)
        if client is None:
            return _refusal(
                401, "invalid_client", "The client could not be authenticated.", basic=bool(authorization)
            )
        parameters = [(name, value) for name, value in pairs if name not in _CLIENT_AUTHENTICATION]
        problem = _problem(client, parameters)
        if problem is None:
            if "client_id" not in dict(parameters):
                parameters.append(("client_id", client.client_id))
            problem = validate(client, parameters)
        if problem is not None:
            _log.info(
                "pushed authorization request refused",
                extra={"event": "oidc_par_refused", "client_id": client.client_id, "error": problem[0]},
            )
            return _refusal(400, *problem)
        request_uri = await pushed.push(client.client_id, parameters)
        return Response(
            {"request_uri": request_uri, "expires_in": int(PUSHED_REQUEST_TTL.total_seconds())},
            status_code=201,
            headers=_NO_STORE,
        )

    return [push]
