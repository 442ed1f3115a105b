"""The OpenID provider's client registry: relying parties, their metadata (``identity-client`` schema,
names from OpenID Connect Dynamic Client Registration 1.0,
https://openid.net/specs/openid-connect-registration-1_0.html) and their hashed secrets.

Metadata is refused, never stored, when it fails the schema or one of the cross-field rules: every
redirect URI is an absolute https URI without fragment (http only for a loopback host, RFC 8252
section 7.3); ``private_key_jwt`` needs ``jwks`` while ``client_secret_basic`` takes no keys; every
registered key is a public signing key for one of :data:`ASSERTION_ALGORITHMS`; ``scope`` includes
``openid``. ``jwks_uri`` is refused for now: the provider does not fetch client keys, so they are
registered inline.

A client's secret is 32 random bytes shown once at registration and stored as its SHA-256 only. A
``private_key_jwt`` client has no secret: it signs a client assertion (RFC 7523,
https://www.rfc-editor.org/rfc/rfc7523) with a key of its ``jwks``.

Every request of a sign-in looks its client up, so a registry keeps the active clients it has read for
:data:`CLIENT_CACHE_SECONDS`. Registering or disabling a client through any registry of the same process
drops it from every registry's memory at once; a change made by another process (another server worker,
the ``dpi identity client`` command) shows within :data:`CLIENT_CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list  # type: ignore[import-untyped]
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from dpi.errors import DpiError, ErrorDetail
from identity.oidc_models import ClientRow
from identity.signing_keys import ProviderKeys

__all__ = [
    "ASSERTION_ALGORITHMS",
    "CLIENT_CACHE_SECONDS",
    "CLIENT_SCHEMA",
    "SUPPORTED_AUTH_METHODS",
    "ClientRegistry",
    "RegisteredClient",
    "assertion_algorithm",
    "hash_secret",
    "is_loopback_host",
    "validate_client_metadata",
]

CLIENT_SCHEMA: Final = "identity-client@1.1.0"
CLIENT_CACHE_SECONDS: Final = 5.0
SUPPORTED_AUTH_METHODS: Final = ("client_secret_basic", "private_key_jwt")
ASSERTION_ALGORITHMS: Final = ("EdDSA", "ES256", "PS256")
_ALGORITHM_OF_KEY: Final[Mapping[tuple[str, str | None], str]] = {
    ("OKP", "Ed25519"): "EdDSA",
    ("EC", "P-256"): "ES256",
    ("RSA", None): "PS256",
}
_ACTIVE: Final = "active"
_DISABLED: Final = "disabled"
_DEFAULTS: Final[Mapping[str, Any]] = {
    "token_endpoint_auth_method": "client_secret_basic",
    "require_pkce": True,
    "claims_locale": "fr",
    "require_pushed_authorization_requests": False,
    "id_token_signed_response_alg": "EdDSA",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def hash_secret(secret: str) -> str:
    """SHA-256 (hex) of a client secret: enough for 256-bit random secrets, which no search reverses."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is localhost or a loopback address (where http is allowed, RFC 8252 section 7.3)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redirect_problem(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "not a URI"
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment"
    if not parts.hostname:
        return "a redirect URI is absolute, with a host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return None
    return "a redirect URI uses https (http only for localhost)"


def assertion_algorithm(jwk: Mapping[str, Any]) -> str | None:
    """The one algorithm of :data:`ASSERTION_ALGORITHMS` that the public JWK verifies, or None.

    Ed25519 keys verify EdDSA, P-256 keys ES256 and RSA keys PS256 (never RS256); a key naming another
    ``alg``, or meant for encryption, verifies nothing here.
    """
    kty, crv = str(jwk.get("kty")), jwk.get("crv")
    algorithm = _ALGORITHM_OF_KEY.get((kty, crv if isinstance(crv, str) else None))
    if algorithm is None or jwk.get("alg", algorithm) != algorithm or jwk.get("use", "sig") != "sig":
        return None
    try:
        jwt.PyJWK(dict(jwk), algorithm=algorithm)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    return algorithm


def _key_problems(metadata: Mapping[str, Any]) -> list[ErrorDetail]:
    problems: list[ErrorDetail] = []
    if "jwks_uri" in metadata:
        problems.append(
            ErrorDetail(
                "/jwks_uri",
                "request.invalid",
                "this provider does not fetch client keys from jwks_uri yet; register them inline as jwks",
            )
        )
    keys = metadata.get("jwks", {}).get("keys", [])
    for index, key in enumerate(keys):
        if assertion_algorithm(key) is None:
            problems.append(
                ErrorDetail(
                    f"/jwks/keys/{index}",
                    "request.invalid",
                    f"a client key is a public signing key for {', '.join(ASSERTION_ALGORITHMS)}",
                )
            )
    if len({key.get("kid") for key in keys}) != len(keys):
        problems.append(ErrorDetail("/jwks/keys", "request.invalid", "every client key has its own kid"))
    return problems


def validate_client_metadata(document: Any) -> dict[str, Any]:
    """The metadata with its defaults filled in, or ``DpiError("request.invalid")`` with every problem."""
    schema = standards.validator(CLIENT_SCHEMA)
    if not schema.is_valid(document):
        raise DpiError(
            "request.invalid",
            details=[ErrorDetail(i.pointer, i.reason_code, i.message) for i in schema.issues(document)],
        )
    metadata = {**_DEFAULTS, **document}
    problems: list[ErrorDetail] = []
    for index, uri in enumerate(metadata["redirect_uris"]):
        problem = _redirect_problem(uri)
        if problem is not None:
            problems.append(ErrorDetail(f"/redirect_uris/{index}", "request.invalid", problem))
    method = metadata["token_endpoint_auth_method"]
    has_keys = "jwks" in metadata or "jwks_uri" in metadata
    if method == "private_key_jwt" and not has_keys:
        problems.append(
            ErrorDetail(
                "/token_endpoint_auth_method", "request.invalid", "private_key_jwt needs jwks or jwks_uri"
            )
        )
    if method == "client_secret_basic" and has_keys:
        problems.append(
            ErrorDetail("/jwks", "request.invalid", "client_secret_basic clients register no keys")
        )
    if "jwks" in metadata and "jwks_uri" in metadata:
        problems.append(ErrorDetail("/jwks_uri", "request.invalid", "give jwks or jwks_uri, not both"))
    if method == "private_key_jwt":
        problems.extend(_key_problems(metadata))
    if "openid" not in metadata["scope"]:
        problems.append(ErrorDetail("/scope", "request.invalid", "scope must include openid"))
    if problems:
        raise DpiError("request.invalid", details=problems)
    return metadata


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """A registered, active client as authlib's authorization server sees it."""

    metadata: Mapping[str, Any]
    secret_hash: str | None

    @property
    def client_id(self) -> str:
        return str(self.metadata["client_id"])

    @property
    def sector(self) -> str:
        return str(self.metadata["sector"])

    @property
    def require_pkce(self) -> bool:
        return bool(self.metadata["require_pkce"])

    @property
    def claims_locale(self) -> str:
        return str(self.metadata["claims_locale"])

    @property
    def userinfo_signed(self) -> bool:
        return "userinfo_signed_response_alg" in self.metadata

    @property
    def userinfo_algorithm(self) -> str:
        """The JWS algorithm of signed userinfo (meaningful when :attr:`userinfo_signed`)."""
        return str(
            self.metadata.get("userinfo_signed_response_alg", _DEFAULTS["id_token_signed_response_alg"])
        )

    @property
    def id_token_algorithm(self) -> str:
        """The JWS algorithm of this client's ID tokens (OpenID Connect Registration 1.0 section 2)."""
        return str(
            self.metadata.get("id_token_signed_response_alg", _DEFAULTS["id_token_signed_response_alg"])
        )

    @property
    def signing_algorithms(self) -> frozenset[str]:
        """The algorithms the provider signs with for this client (ID tokens, and signed userinfo)."""
        return frozenset(
            {self.id_token_algorithm, *([self.userinfo_algorithm] if self.userinfo_signed else [])}
        )

    @property
    def require_pushed_requests(self) -> bool:
        """Whether the client's authorization requests must come by pushed request (RFC 9126 section 6)."""
        return bool(self.metadata.get("require_pushed_authorization_requests", False))

    @property
    def assertion_keys(self) -> dict[str, dict[str, Any]]:
        """The client's registered public keys by ``kid`` (none for a ``client_secret_basic`` client)."""
        keys = self.metadata.get("jwks", {}).get("keys", []) if self.auth_method == "private_key_jwt" else []
        return {str(key["kid"]): dict(key) for key in keys}

    @property
    def auth_method(self) -> str:
        return str(self.metadata["token_endpoint_auth_method"])

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.metadata["redirect_uris"]
        # OpenID Connect Core 3.1.2.1: redirect_uri is required; only a single registered URI is implied.
        return str(uris[0]) if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.metadata["scope"])
        return " ".join(item for item in scope_to_list(scope) or [] if item in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.metadata["redirect_uris"]

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(hash_secret(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.metadata["token_endpoint_auth_method"])

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


def _document(row: ClientRow) -> dict[str, Any]:
    return {**row.metadata_document, "status": row.status}


# Every registry of this process, so that a change made through one reaches what the others remember.
_REGISTRIES: Final[weakref.WeakSet[ClientRegistry]] = weakref.WeakSet()


def _forget(client_id: str) -> None:
    for registry in list(_REGISTRIES):
        registry.changes += 1
        registry.remembered.pop(client_id, None)


class ClientRegistry:
    """Registered clients in the identity block's database.

    ``cache_seconds`` is how long an active client read once is served from memory (0: read every time);
    see the module for when a change shows.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = _utcnow,
        keys: ProviderKeys | None = None,
        cache_seconds: float = CLIENT_CACHE_SECONDS,
    ) -> None:
        """``keys``, when given, gets the signing key of each algorithm a client registers made at once,
        so the provider's JWKS lists it before the client's first token."""
        self.sessions = sessions
        self.clock = clock
        self.keys = keys
        self.cache_seconds = cache_seconds
        self.remembered: dict[str, tuple[float, RegisteredClient]] = {}
        self.changes = 0
        _REGISTRIES.add(self)

    async def add(self, metadata: Any) -> tuple[dict[str, Any], str | None]:
        """Register a client; returns its stored metadata and its secret (shown only now).

        ``request.invalid`` for metadata the rules refuse, ``identity.client_exists`` for a taken id.
        """
        document = validate_client_metadata(metadata)
        secret = (
            secrets.token_urlsafe(32)
            if document["token_endpoint_auth_method"] == "client_secret_basic"  # noqa: S105 (a method name)
            else None
        )
        row = ClientRow(
            client_id=document["client_id"],
            metadata_document=document,
            secret_hash=hash_secret(secret) if secret is not None else None,
            status=_ACTIVE,
            created_at=self.clock(),
            disabled_at=None,
        )
        try:
            async with self.sessions() as session, session.begin():
                if await session.get(ClientRow, row.client_id) is not None:
                    raise DpiError("identity.client_exists")
                session.add(row)
        except IntegrityError:
            raise DpiError("identity.client_exists") from None
        if self.keys is not None:
            # RSA key generation takes a noticeable time: off the event loop.
            await asyncio.to_thread(
                self.keys.ensure, RegisteredClient(document, row.secret_hash).signing_algorithms
            )
        _forget(row.client_id)
        return _document(row), secret

    async def algorithms_in_use(self) -> frozenset[str]:
        """Every signing algorithm an active client uses."""
        async with self.sessions() as session:
            rows = (await session.scalars(select(ClientRow).where(ClientRow.status == _ACTIVE))).all()
        clients = (RegisteredClient(dict(row.metadata_document), row.secret_hash) for row in rows)
        return frozenset().union(*(client.signing_algorithms for client in clients))

    async def client(self, client_id: str) -> RegisteredClient | None:
        """The active client ``client_id``, or None (unknown and disabled clients alike)."""
        if not client_id or len(client_id) > 64:
            return None
        now = time.monotonic()
        remembered = self.remembered.get(client_id)
        if remembered is not None and now - remembered[0] < self.cache_seconds:
            return remembered[1]
        changes = self.changes
        # Columns rather than the mapped object: every request of a sign-in asks, and this is cheaper.
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(ClientRow.metadata_document, ClientRow.secret_hash).where(
                        ClientRow.client_id == client_id, ClientRow.status == _ACTIVE
                    )
                )
            ).one_or_none()
        if row is None:
            self.remembered.pop(client_id, None)
            return None
        client = RegisteredClient(dict(row.metadata_document), row.secret_hash)
        # A change committed while this read was under way may not be in what it read: keep nothing then.
        if self.cache_seconds > 0 and changes == self.changes:
            self.remembered[client_id] = (now, client)
        return client

    async def show(self, client_id: str) -> dict[str, Any]:
        """The client's metadata and status; ``identity.client_not_found`` if unknown."""
        async with self.sessions() as session:
            row = await session.get(ClientRow, client_id)
        if row is None:
            raise DpiError("identity.client_not_found")
        return _document(row)

    async def list(self) -> list[dict[str, Any]]:
        """Every client, by id."""
        async with self.sessions() as session:
            rows = (await session.scalars(select(ClientRow).order_by(ClientRow.client_id))).all()
        return [_document(row) for row in rows]

    async def disable(self, client_id: str) -> None:
        """Disable the client: it can no longer start a sign-in nor redeem a code."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(ClientRow)
                .where(ClientRow.client_id == client_id)
                .values(status=_DISABLED, disabled_at=self.clock())
            )
            if getattr(result, "rowcount", 0) == 0:
                raise DpiError("identity.client_not_found")
        _forget(client_id)
