"""Token introspection (RFC 7662, https://www.rfc-editor.org/rfc/rfc7662) and token revocation (RFC 7009,
https://www.rfc-editor.org/rfc/rfc7009) for the access tokens of the identity block's OpenID provider.

``POST /identity/introspect`` and ``POST /identity/revoke`` take a form (``token`` and an optional
``token_type_hint``, which is ignored: this provider issues access tokens only) from a client that
authenticates as at the token endpoint: HTTP Basic (``client_secret_basic``) or a single-use signed client
assertion (``private_key_jwt``, :mod:`identity.client_auth`; its ``aud`` may be the issuer, the token
endpoint or the endpoint itself).

A client may introspect and revoke only the tokens issued to itself. Introspection answers
``{"active": false}`` alone for a token that is unknown, malformed, signed by another issuer, expired,
revoked or issued to another client, so it tells a client nothing about other clients' tokens; an active
token's answer names the person only by the pseudonym of the client's sector (its ``sub``), never a UIN.
Revocation answers 200 with an empty object for any token (RFC 7009 section 2.2), and revokes it only
when it is this client's; a revoked token then introspects as inactive and userinfo refuses it.

A token is active when its signature holds under one of the kernel's keys, it is an ``at+jwt`` of this
issuer and audience, its recorded issuance (``identity_oidc_token``) is neither revoked nor expired and
its ``exp`` is in the future by the provider's clock, and the person it names is still active (as
userinfo requires).

Errors are RFC 6749 section 5.2 bodies (``oauth-error``): ``invalid_client`` with 401 and
``WWW-Authenticate: Basic`` when the client cannot be authenticated, ``invalid_request`` with 400 for a
missing or repeated parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import jwt
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import select, update

from dpi.blocks import BlockContext
from dpi.contract import Body, Contract
from dpi.keys import KeyNotFound
from identity.client_auth import ClientAuthenticator
from identity.clients import ClientRegistry, RegisteredClient
from identity.models import PersonRow, PseudonymRow
from identity.oidc_models import IssuedTokenRow

__all__ = ["build_token_routes"]

_FORM: Final = "application/x-www-form-urlencoded"
_OAUTH_ERROR: Final = "oauth-error@1.0.0"
_TAGS: Final = ("identity-oidc",)
# Refusals the kernel answers before a handler runs (or when one fails), with the ``error`` body.
_KERNEL_FORM_ERRORS: Final = (413, 500)
_MAX_TOKEN: Final = 4096
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_log = logging.getLogger("identity.oidc_tokens")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _OAuthRefusal(Exception):
    """An RFC 6749 section 5.2 error, answered as an ``oauth-error`` body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> Response[dict[str, str]]:
        headers = dict(_NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="identity", error="{self.error}"'
        return Response(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


class _TokenAuthority:
    """Authenticates clients and decides what the provider knows about one of its access tokens."""

    def __init__(self, context: BlockContext, clients: ClientRegistry, clock: Callable[[], datetime]) -> None:
        self.context = context
        self.clients = clients
        self.clock = clock
        self.issuer = f"{context.settings.public_url}/identity"
        self.audience = context.settings.public_url
        self.client_auth = ClientAuthenticator(clients, self.issuer, clock)

    async def authenticate(self, request: Request[Any, Any, Any], path: str) -> tuple[RegisteredClient, str]:
        """The authenticated client and the form's one ``token``; ``invalid_client`` for a client that
        neither HTTP Basic nor a client assertion authenticates, then ``invalid_request`` for a missing
        or repeated parameter."""
        form = await request.form()
        pairs = [(str(name), str(value)) for name, value in form.multi_items()]
        client = await self.client_auth.authenticate(
            pairs, request.headers.get("authorization"), f"{self.issuer}{path}"
        )
        if client is None:
            raise _OAuthRefusal(401, "invalid_client", "The client could not be authenticated.")
        names = [name for name, _ in pairs]
        if any(names.count(name) > 1 for name in ("token", "token_type_hint")):
            raise _OAuthRefusal(400, "invalid_request", "A parameter is repeated.")
        token = dict(pairs).get("token", "")
        if not token:
            raise _OAuthRefusal(400, "invalid_request", "The 'token' parameter is required.")
        return client, token

    def claims(self, token: str) -> dict[str, Any] | None:
        """The verified claims of one of this provider's access tokens, or None."""
        if len(token) > _MAX_TOKEN:
            return None
        try:
            header = jwt.get_unverified_header(token)
            key = self.context.keys.get(str(header.get("kid", "")))
        except (jwt.InvalidTokenError, KeyNotFound):
            return None
        if header.get("typ") != "at+jwt" or header.get("alg") != key.alg:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[key.alg],
                issuer=self.issuer,
                audience=self.audience,
                # Expiry is judged by the provider's clock below, as every other endpoint does.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["exp", "iat", "sub", "jti", "client_id"],
                },
            )
        except jwt.InvalidTokenError:
            return None
        return claims

    async def introspect(self, token: str, client: RegisteredClient) -> dict[str, Any]:
        """RFC 7662 section 2.2: the token's metadata if it is active and this client's, else inactive."""
        claims = self.claims(token)
        if claims is None or str(claims["client_id"]) != client.client_id:
            return {"active": False}
        now = self.clock()
        async with self.context.sessions() as session:
            issued = await session.get(IssuedTokenRow, str(claims["jti"]))
            status = await session.scalar(
                select(PersonRow.status)
                .join(PseudonymRow, PseudonymRow.person_id == PersonRow.id)
                .where(PseudonymRow.sector == client.sector, PseudonymRow.pseudonym == str(claims["sub"]))
            )
        if (
            issued is None
            or issued.revoked_at is not None
            or issued.client_id != client.client_id
            or _aware(issued.expires_at) <= now
            or int(claims["exp"]) <= int(now.timestamp())
            # As userinfo: a person deactivated or deceased since sign-in has no active token.
            or status != "active"
        ):
            return {"active": False}
        return {
            "active": True,
            "scope": str(claims.get("scope", "")),
            "client_id": client.client_id,
            "sub": str(claims["sub"]),
            "exp": int(claims["exp"]),
            "iat": int(claims["iat"]),
            "token_type": "Bearer",
        }

    async def revoke(self, token: str, client: RegisteredClient) -> None:
        """RFC 7009 section 2.1: revoke the token if it is one of this client's; nothing otherwise."""
        claims = self.claims(token)
        if claims is None or str(claims["client_id"]) != client.client_id:
            return
        async with self.context.sessions() as session, session.begin():
            result = await session.execute(
                update(IssuedTokenRow)
                .where(
                    IssuedTokenRow.jti == str(claims["jti"]),
                    IssuedTokenRow.client_id == client.client_id,
                    IssuedTokenRow.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock())
            )
        if getattr(result, "rowcount", 0):
            _log.info(
                "access token revoked", extra={"event": "oidc_token_revoked", "client_id": client.client_id}
            )


def build_token_routes(
    context: BlockContext, *, clock: Callable[[], datetime] = _utcnow
) -> list[HTTPRouteHandler]:
    """The introspection and revocation handlers, to mount under the block's ``/identity`` prefix."""
    authority = _TokenAuthority(context, ClientRegistry(context.sessions, clock=clock), clock)

    @post(
        "/introspect",
        opt=Contract(
            "Token introspection (RFC 7662): whether an access token issued to the calling client is "
            "active, with its scope, subject pseudonym and times; the client authenticated by HTTP Basic "
            "or a private_key_jwt assertion",
            {200: "identity-oidc-introspection@1.0.0", 400: _OAUTH_ERROR, 401: _OAUTH_ERROR},
            request=Body("identity-oidc-introspection-request@1.1.0", _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def introspect(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            client, token = await authority.authenticate(request, "/introspect")
        except _OAuthRefusal as refusal:
            return refusal.response()
        return Response(await authority.introspect(token, client), status_code=200, headers=_NO_STORE)

    @post(
        "/revoke",
        opt=Contract(
            "Token revocation (RFC 7009): revoke an access token issued to the calling client; 200 for any "
            "token, known or not; the client authenticated by HTTP Basic or a private_key_jwt assertion",
            {200: "identity-oidc-revocation@1.0.0", 400: _OAUTH_ERROR, 401: _OAUTH_ERROR},
            request=Body("identity-oidc-revocation-request@1.1.0", _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def revoke(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            client, token = await authority.authenticate(request, "/revoke")
        except _OAuthRefusal as refusal:
            return refusal.response()
        await authority.revoke(token, client)
        return Response({}, status_code=200, headers=_NO_STORE)

    return [introspect, revoke]
