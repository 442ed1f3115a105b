"""Client authentication at the OpenID provider's back-channel endpoints (token, pushed authorization
requests, introspection, revocation): HTTP Basic (``client_secret_basic``, RFC 6749 section 2.3.1,
https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1) or a signed client assertion (``private_key_jwt``,
OpenID Connect Core 1.0 section 9, https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication,
and RFC 7523 section 3, https://www.rfc-editor.org/rfc/rfc7523#section-3).

A client assertion is signed with one of the client's registered keys (EdDSA, ES256 or PS256), names
the client as ``iss`` and ``sub``, has for ``aud`` the issuer, the token endpoint or the endpoint it is
sent to (RFC 9126 section 2 asks the pushed authorization request endpoint to accept all three), expires
in the future and at most :data:`CLIENT_ASSERTION_TTL` away, and carries a ``jti`` never seen before:
each accepted ``jti`` is kept until the assertion expires, whichever endpoint it was spent at, so a
replayed assertion is refused everywhere. A request carrying both HTTP Basic credentials and an
assertion authenticates nobody (one method per request, RFC 6749 section 2.3).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from authlib.oauth2.rfc6749.util import extract_basic_authorization  # type: ignore[import-untyped]
from sqlalchemy import DateTime, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from identity.clients import ASSERTION_ALGORITHMS, ClientRegistry, RegisteredClient, assertion_algorithm
from identity.models import IdentityBase

__all__ = ["CLIENT_ASSERTION_TTL", "CLIENT_ASSERTION_TYPE", "ClientAuthenticator", "has_assertion"]

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_TTL: Final = timedelta(minutes=5)
_MAX_ASSERTION: Final = 8192

_log = logging.getLogger("identity.client_auth")


class _ClientAssertionRow(IdentityBase):
    """A client assertion already accepted (migration ``identity_0004``), kept until it expires so that
    it cannot be used again; keyed by the SHA-256 of its client id and ``jti``."""

    __tablename__ = "identity_oidc_client_assertion"

    assertion_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _AssertionRefused(Exception):
    """A client assertion that does not authenticate its client (the reason is logged, never sent)."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp()) if moment.tzinfo else int(moment.replace(tzinfo=UTC).timestamp())


def has_assertion(form: Sequence[tuple[str, str]]) -> bool:
    """Whether the form tries ``private_key_jwt`` (an assertion or its type is present)."""
    return any(name in {"client_assertion", "client_assertion_type"} for name, _ in form)


class ClientAuthenticator:
    """Authenticates the client of a back-channel request of the provider whose issuer is ``issuer``."""

    def __init__(self, clients: ClientRegistry, issuer: str, clock: Callable[[], datetime]) -> None:
        self.clients = clients
        self.issuer = issuer
        self.clock = clock

    async def authenticate(
        self, form: Sequence[tuple[str, str]], authorization: str | None, endpoint: str
    ) -> RegisteredClient | None:
        """The client the request authenticates by either method, or None (``invalid_client``).

        ``endpoint`` is the URL the request was sent to, an accepted assertion audience.
        """
        if has_assertion(form):
            return None if authorization else await self.assertion(form, endpoint)
        return await self.basic(authorization)

    async def basic(self, authorization: str | None) -> RegisteredClient | None:
        """The ``client_secret_basic`` client whose id and secret the Authorization header carries."""
        try:
            client_id, secret = extract_basic_authorization(
                {"Authorization": authorization} if authorization else {}
            )
        except ValueError:  # credentials that are not UTF-8 once decoded
            return None
        client = await self.clients.client(client_id or "") if client_id else None
        if (
            client is None
            or secret is None
            or client.auth_method != "client_secret_basic"
            or not client.check_client_secret(secret)
        ):
            return None
        return client

    async def assertion(self, form: Sequence[tuple[str, str]], endpoint: str) -> RegisteredClient | None:
        """The ``private_key_jwt`` client the form's assertion authenticates (RFC 7523 section 3), or None.

        The ``jti`` is recorded only once everything else holds, so a forged assertion cannot spend a
        genuine client's ``jti``.
        """
        try:
            client, claims = await self._verified(form, endpoint)
            await self._spend(client, claims)
        except _AssertionRefused as refused:
            _log.info(
                "client assertion refused",
                extra={"event": "oidc_client_assertion_refused", "reason": str(refused)},
            )
            return None
        return client

    async def _verified(
        self, form: Sequence[tuple[str, str]], endpoint: str
    ) -> tuple[RegisteredClient, dict[str, Any]]:
        values: dict[str, list[str]] = defaultdict(list)
        for name, value in form:
            values[name].append(value)
        if values.get("client_assertion_type") != [CLIENT_ASSERTION_TYPE]:
            raise _AssertionRefused("client_assertion_type is missing, repeated or not jwt-bearer")
        assertions = values.get("client_assertion", [])
        if len(assertions) != 1 or not assertions[0] or len(assertions[0]) > _MAX_ASSERTION:
            raise _AssertionRefused("client_assertion is missing, repeated or too long")
        assertion = assertions[0]
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise _AssertionRefused("client_assertion is not a JWT") from None
        client_id = unverified.get("iss")
        if not isinstance(client_id, str):
            raise _AssertionRefused("the assertion names no issuer")
        client = await self.clients.client(client_id)
        if client is None or client.auth_method != "private_key_jwt":
            raise _AssertionRefused("the issuer is not a private_key_jwt client")
        if values.get("client_id", [client_id]) != [client_id]:
            raise _AssertionRefused("client_id differs from the assertion's issuer")
        algorithm = header.get("alg")
        jwk = client.assertion_keys.get(str(header.get("kid", "")))
        if jwk is None and "kid" not in header and len(client.assertion_keys) == 1:
            (jwk,) = client.assertion_keys.values()
        if algorithm not in ASSERTION_ALGORITHMS or jwk is None or assertion_algorithm(jwk) != algorithm:
            raise _AssertionRefused("the assertion is not signed with a registered key and algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                jwt.PyJWK(jwk, algorithm=algorithm).key,
                algorithms=[algorithm],
                issuer=client_id,
                audience=list(dict.fromkeys([endpoint, f"{self.issuer}/token", self.issuer])),
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                },
            )
        except (jwt.InvalidTokenError, jwt.PyJWKError):
            raise _AssertionRefused("the assertion's signature or claims do not hold") from None
        now = _epoch(self.clock())
        expires = claims["exp"]
        if (
            claims["sub"] != client_id
            or not isinstance(claims["jti"], str)
            or not 0 < len(claims["jti"]) <= 256
        ):
            raise _AssertionRefused("the assertion's sub or jti is wrong")
        if not isinstance(expires, int) or expires <= now:
            raise _AssertionRefused("the assertion has expired")
        if expires > now + int(CLIENT_ASSERTION_TTL.total_seconds()):
            raise _AssertionRefused("the assertion lives too long")
        return client, claims

    async def _spend(self, client: RegisteredClient, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        row = _ClientAssertionRow(
            assertion_hash=_sha256(f"{client.client_id}\x00{claims['jti']}"),
            client_id=client.client_id,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
        try:
            async with self.clients.sessions() as session, session.begin():
                await session.execute(
                    delete(_ClientAssertionRow).where(_ClientAssertionRow.expires_at <= now)
                )
                if await session.get(_ClientAssertionRow, row.assertion_hash) is not None:
                    raise _AssertionRefused("the assertion's jti was used before")
                session.add(row)
        except IntegrityError:
            raise _AssertionRefused("the assertion's jti was used before") from None
