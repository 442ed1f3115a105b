"""The identity block's OpenID provider (OpenID Connect Core 1.0,
https://openid.net/specs/openid-connect-core-1_0.html): authorization code flow with PKCE (RFC 7636),
sign-in by one-time code, pairwise subjects per sector, RFC 9068 JWT access tokens and userinfo;
clients authenticate at the token endpoint by HTTP Basic or by a signed client assertion
(``private_key_jwt``, OpenID Connect Core 1.0 section 9 and RFC 7523).

The protocol is authlib's (``AuthorizationServer``, ``AuthorizationCodeGrant``, ``CodeChallenge``,
``OpenIDCode``); this module adapts it to Litestar and to an asynchronous database. Authlib's hooks
are synchronous, so every request loads what they may ask for first (the client, the code, the
person's pseudonym), lets authlib decide, then writes the outcome: a code is consumed with one
conditional update after authlib accepted the token request, so two redemptions racing cannot both
get tokens, and a code seen again revokes the access tokens it issued (RFC 6749 section 4.1.2).

The issuer is ``<public_url>/identity``. The ``sub`` of every token is the person's pseudonym for the
client's sector (:func:`identity.pseudonyms.sector_pseudonym`); no UIN leaves this module. Access
tokens are signed with the kernel's active key (EdDSA by default); ID tokens and signed userinfo with
the algorithm the client registered (EdDSA, ES256 or PS256, :mod:`identity.signing_keys`); every key is
published at ``/identity/.well-known/jwks.json``.

A client assertion is checked before authlib runs (its hooks cannot wait on the database), by
:class:`identity.client_auth.ClientAuthenticator`; any failure is ``invalid_client`` (401, RFC 6749
section 5.2).

Sign-in: ``GET /identity/authorize`` checks the request (or takes the one pushed before,
:mod:`identity.par`); with no usable session it shows the sign-in page (UIN or virtual ID), which sends
a code through :class:`identity.authentication.OtpAuthenticator`;
the code page verifies it, opens a session (a signed, HTTP-only, SameSite=Lax cookie living 15 minutes)
and redirects to the client with the authorization code, after the consent page when the client asks for
claims (by scope or by the ``claims`` parameter, :mod:`identity.claims`) that the person's stored choice
does not cover (:mod:`identity.claim_consent`). Only the claims the person released are delivered.
The request in progress rides in a signed cookie with the page's CSRF token; nothing of it is personal.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AccessDeniedError,
    AuthorizationServer,
    InsecureTransportError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.util import extract_basic_authorization  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oidc.core import OpenIDCode, UserInfo  # type: ignore[import-untyped]
from authlib.oidc.core.errors import (  # type: ignore[import-untyped]
    ConsentRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from joserfc import jwk as jose_jwk
from joserfc.errors import SecurityWarning
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consent.client import ClaimReleaseRecorder
from dpi.blocks import BlockContext
from dpi.contract import Body, Contract, Parameter
from dpi.errors import DpiError
from dpi.keys import KeyNotFound, SigningKey
from dpi.settings import Settings, SettingsError
from dpi.tokens import bearer_token
from identity.acr import ACR_SMS_OTP, acr_to_issue, amr_of, can_satisfy, supported_acr_values
from identity.authentication import OtpAuthenticator
from identity.claim_consent import CONSENT_TTL, ClaimChoice, ClaimConsents
from identity.claims import (
    SUPPORTED_CLAIMS,
    ClaimsParameterInvalid,
    ClaimsRequest,
    claim_values,
    delivery,
    parse_claims_parameter,
    requested_claims,
)
from identity.client_auth import CLIENT_ASSERTION_TTL, CLIENT_ASSERTION_TYPE, ClientAuthenticator
from identity.clients import (
    ASSERTION_ALGORITHMS,
    SUPPORTED_AUTH_METHODS,
    ClientRegistry,
    RegisteredClient,
    is_loopback_host,
)
from identity.models import PersonRow, PseudonymRow
from identity.oidc_models import AuthorizationCodeRow, IssuedTokenRow, SignInSessionRow
from identity.pages import LANGUAGES, choose_language, render, strings
from identity.par import PushedRequests, build_par_routes, is_pushed_reference
from identity.pseudonyms import load_or_create_key
from identity.service import PersonRegister, is_uin, is_vid
from identity.signing_keys import ID_TOKEN_ALGORITHMS, ProviderKeys
from standards import component_key

__all__ = [
    "ACCESS_TOKEN_TTL",
    "ACR_SMS_OTP",
    "CLIENT_ASSERTION_TTL",
    "CLIENT_ASSERTION_TYPE",
    "CODE_TTL",
    "SCOPES",
    "SESSION_TTL",
    "build_routes",
    "discovery_document",
    "prepare_signing_keys",
    "require_tls",
]

SCOPES: Final = ("openid", "profile", "phone")
CODE_TTL: Final = timedelta(seconds=60)
ACCESS_TOKEN_TTL: Final = timedelta(minutes=5)
ID_TOKEN_TTL: Final = timedelta(minutes=5)
SESSION_TTL: Final = timedelta(minutes=15)
FLOW_TTL: Final = timedelta(minutes=10)
_KEY_CACHE_SECONDS: Final = 5.0
_SESSION_COOKIE: Final = "dpi_oidc_session"
_FLOW_COOKIE: Final = "dpi_oidc_flow"
_COOKIE_PATH: Final = "/identity"
_MAX_QUERY: Final = 4096
_OTP: Final = re.compile(r"^[0-9]{4,8}$")
_HTML: Final = "text/html; charset=utf-8"
_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_log = logging.getLogger("identity.oidc")
# Sessions, codes, tokens and the person behind a pseudonym are read and written with Core statements:
# the ORM's per-statement work cost several times the statement itself on the sign-in path.
_SESSIONS: Final = cast(Table, SignInSessionRow.__table__)
_CODES: Final = cast(Table, AuthorizationCodeRow.__table__)
_TOKENS: Final = cast(Table, IssuedTokenRow.__table__)
_PERSONS: Final = cast(Table, PersonRow.__table__)
_PSEUDONYMS: Final = cast(Table, PseudonymRow.__table__)
# Built once, run with bound parameters: building a statement cost more CPU than running it.
_SIGNED_IN: Final = select(
    _SESSIONS.c.uin, _SESSIONS.c.auth_time, _SESSIONS.c.acr, _SESSIONS.c.expires_at
).where(_SESSIONS.c.session_hash == bindparam("hash_"))
_NEW_SESSION: Final = insert(_SESSIONS)
_NEW_CODE: Final = insert(_CODES)
_CODE: Final = select(_CODES).where(_CODES.c.code_hash == bindparam("hash_"))
_REVOKE_TOKENS_OF_CODE: Final = (
    update(_TOKENS)
    .where(_TOKENS.c.code_hash == bindparam("hash_"), _TOKENS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now_"))
)
_USE_CODE: Final = (
    update(_CODES)
    .where(_CODES.c.code_hash == bindparam("hash_"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now_"))
)
_NEW_TOKEN: Final = insert(_TOKENS)
_TOKEN: Final = select(_TOKENS.c.revoked_at, _TOKENS.c.claims).where(_TOKENS.c.jti == bindparam("jti_"))
_PERSON_OF_PSEUDONYM: Final = (
    select(_PERSONS.c.status, _PERSONS.c.demographics)
    .join(_PSEUDONYMS, _PSEUDONYMS.c.person_id == _PERSONS.c.id)
    .where(_PSEUDONYMS.c.sector == bindparam("sector_"), _PSEUDONYMS.c.pseudonym == bindparam("subject_"))
)

_TAGS: Final = ("identity-oidc",)
_FORM: Final = "application/x-www-form-urlencoded"
_PAGE: Final = Body("html-page@1.0.0", "text/html")
_OAUTH_ERROR: Final = "oauth-error@1.0.0"
_AUTHORIZE_REQUEST: Final = "identity-oidc-authorize-request@1.2.0"
# Refusals the kernel answers before a handler runs (or when one fails), with the ``error`` body.
_KERNEL_ERRORS: Final = (500,)
_KERNEL_FORM_ERRORS: Final = (413, 500)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _epoch(moment: datetime) -> int:
    return int(_aware(moment).timestamp())


# --- authlib's view of our requests, clients, codes and people -----------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._data.setdefault(name, value)
            self._datalist[name].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(
        self,
        method: str,
        uri: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] = (),
        authorization: str | None = None,
    ) -> None:
        try:
            super().__init__(method, uri, headers={"Authorization": authorization} if authorization else {})
        except InsecureTransportError:
            # require_tls refuses such an issuer when the block starts; should one slip through, the
            # request is refused, never answered with a server error.
            raise InvalidRequestError("The provider is not served over TLS.") from None
        self.payload = _Payload([*query, *form])
        self.pairs = [*query, *form]
        self._args = dict(reversed(query))
        self._form = dict(reversed(form))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class _Person:
    """The signed-in person as a client sees them: only the sector pseudonym."""

    subject: str
    auth_time: int
    acr: str = ACR_SMS_OTP
    id_token_claims: Mapping[str, Any] = field(default_factory=dict)

    def get_user_id(self) -> str:
        return self.subject


@dataclass(frozen=True)
class _Code:
    """A stored, unused, unexpired authorization code, loaded before authlib looks for it."""

    code_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    subject: str
    auth_time: int
    acr: str
    id_token_claims: Mapping[str, Any]
    userinfo_claims: tuple[str, ...]

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return amr_of(self.acr)


@dataclass
class _Outcome:
    """What authlib decided to create, written to the database once it has answered."""

    codes: list[tuple[str, OAuth2Request]] = field(default_factory=list)
    tokens: list[tuple[str, datetime]] = field(default_factory=list)


class _UnmetAuthenticationRequirements(OAuth2Error):  # type: ignore[misc]
    """An essential ``acr`` claim request no sign-in of this provider meets (OpenID Connect Core 1.0 section
    5.5.1.1: a failed authentication), with the error code of OpenID Connect Core Error Code
    unmet_authentication_requirements 1.0
    (https://openid.net/specs/openid-connect-unmet-authentication-requirements-1_0.html)."""

    error = "unmet_authentication_requirements"
    description = "The essential 'acr' asked for cannot be met."


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(SUPPORTED_AUTH_METHODS)
    server: _Server

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.outcome.codes.append((code, request))

    def query_authorization_code(self, code: str, client: RegisteredClient) -> _Code | None:
        loaded = self.server.code
        if loaded is None or loaded.client_id != client.client_id:
            return None
        return loaded if hmac.compare_digest(loaded.code_hash, _sha256(code)) else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Nothing yet: the code is consumed atomically once the response is known (see the module)."""

    def authenticate_user(self, authorization_code: _Code) -> _Person:
        return _Person(
            authorization_code.subject,
            authorization_code.auth_time,
            authorization_code.acr,
            authorization_code.id_token_claims,
        )


class _Pkce(CodeChallenge):  # type: ignore[misc]
    """RFC 7636 with S256 only, required for every client registered with ``require_pkce``."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: _CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        client: RegisteredClient = grant.request.client
        if client.require_pkce and not data.get("code_challenge"):
            raise InvalidRequestError("This client must send a 'code_challenge' (S256).")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("The 'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class _OpenId(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: _Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # Codes are single-use and bound to their client; a nonce is the client's to check in the ID token.
        return False

    def resolve_client_private_key(self, client: RegisteredClient) -> Any:
        return self.provider.id_token_key(client.id_token_algorithm)[1]

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return client.id_token_algorithm

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        key = self.provider.id_token_key(client.id_token_algorithm)[0]
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        now = self.provider.clock()
        return {
            "iss": self.provider.issuer,
            "aud": [client.client_id],
            "iat": _epoch(now),
            "exp": _epoch(now + ID_TOKEN_TTL),
        }

    def encode_id_token(self, token: Mapping[str, Any], request: OAuth2Request) -> str:
        with warnings.catch_warnings():
            # joserfc flags "EdDSA" as superseded by "Ed25519" (RFC 9864); every verifier of the platform
            # (dpi.tokens) and most relying-party libraries still know the key by "EdDSA".
            warnings.simplefilter("ignore", SecurityWarning)
            return str(super().encode_id_token(token, request))

    def generate_user_info(self, user: _Person, scope: str) -> UserInfo:
        # Scope claims come from userinfo; the ID token carries only what the claims parameter asked of
        # it and the person released.
        return UserInfo({**user.id_token_claims, "sub": user.subject})


_KEY_TYPES: Final[Mapping[str, type[jose_jwk.OKPKey | jose_jwk.ECKey | jose_jwk.RSAKey]]] = {
    "EdDSA": jose_jwk.OKPKey,
    "ES256": jose_jwk.ECKey,
    "PS256": jose_jwk.RSAKey,
}


class _Server(AuthorizationServer):  # type: ignore[misc]
    """One authorization server per HTTP request, holding what was loaded for it."""

    def __init__(
        self,
        provider: _Provider,
        clients: Sequence[RegisteredClient] = (),
        code: _Code | None = None,
        asserted: RegisteredClient | None = None,
    ) -> None:
        super().__init__()
        self.provider = provider
        self.clients = {client.client_id: client for client in clients}
        self.code = code
        self.asserted = asserted
        self.outcome = _Outcome()
        self.register_grant(_CodeGrant, [_Pkce(required=True), _OpenId(provider)])
        self.register_token_generator("default", self._access_token)
        self.register_client_auth_method("private_key_jwt", self._asserted_client)

    def _asserted_client(self, query_client: Callable[[str], Any], request: OAuth2Request) -> Any:
        """The client whose assertion :class:`identity.client_auth.ClientAuthenticator` already verified."""
        return self.asserted

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.clients.get(client_id)

    def save_token(self, token: Mapping[str, Any], request: OAuth2Request) -> None:
        """Tokens are recorded by :meth:`_access_token` and written after the response is known."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _access_token(
        self,
        grant_type: str,
        client: RegisteredClient,
        user: _Person | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """An RFC 9068 access token (``typ at+jwt``) for the person's sector pseudonym."""
        if user is None:
            raise InvalidGrantError("There is no person for this code.")
        now = self.provider.clock()
        expires_at = now + ACCESS_TOKEN_TTL
        jti = secrets.token_urlsafe(24)
        key = self.provider.signing_key()
        claims = {
            "iss": self.provider.issuer,
            "sub": user.subject,
            "aud": self.provider.audience,
            "client_id": client.client_id,
            "scope": scope or "",
            "iat": _epoch(now),
            "exp": _epoch(expires_at),
            "jti": jti,
            "auth_time": user.auth_time,
            "acr": user.acr,
        }
        token = jwt.encode(
            claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": "at+jwt"}
        )
        self.outcome.tokens.append((jti, expires_at))
        return {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
            "scope": scope or "",
        }


# --- signed cookies -----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class _SignIn:
    """An open sign-in session: who signed in, when, and how."""

    uin: str
    auth_time: datetime
    acr: str
    expires_at: datetime


@dataclass(frozen=True)
class _Flow:
    """A sign-in in progress: the authorization request, the page's CSRF token, the OTP transaction."""

    query: list[tuple[str, str]]
    csrf: str
    expires: int
    transaction: str | None = None
    destination: str | None = None


# --- the provider --------------------------------------------------------------------------------------


class _Provider:
    def __init__(
        self,
        context: BlockContext,
        register: PersonRegister,
        authenticator: OtpAuthenticator,
        clients: ClientRegistry,
        consents: ClaimConsents,
        *,
        cookie_key: bytes,
        clock: Callable[[], datetime],
    ) -> None:
        self.context = context
        self.register = register
        self.authenticator = authenticator
        self.clients = clients
        self.consents = consents
        self.clock = clock
        self._cookie_key = cookie_key
        self.issuer = f"{context.settings.public_url}/identity"
        self.audience = context.settings.public_url
        self.secure_cookies = self.issuer.startswith("https://")
        self.client_auth = ClientAuthenticator(clients, self.issuer, clock)
        self.pushed = PushedRequests(context.sessions, clock)
        self.keys = clients.keys or ProviderKeys.of(context.settings, context.keys)
        self._active_key: tuple[float, SigningKey] | None = None
        self._id_token_keys: dict[str, tuple[tuple[int, ...] | None, float, SigningKey, Any]] = {}

    def signing_key(self) -> SigningKey:
        """The kernel's active key, read from the key store at most every few seconds (every token signs
        with it). A rotation shows within those seconds; the key it replaces stays published for the
        rotation's grace, so what was signed meanwhile still verifies."""
        now = time.monotonic()
        if self._active_key is None or now - self._active_key[0] > _KEY_CACHE_SECONDS:
            self._active_key = (now, self.context.keys.ensure_active())
        return self._active_key[1]

    def id_token_key(self, algorithm: str) -> tuple[SigningKey, Any]:
        """The active key for ``algorithm`` and its joserfc form, kept while neither its store's directory
        nor the kernel's has changed (every key store change writes a file there, so a rotation shows at
        once) and for a few seconds at most (a change within the file system's timestamp tick)."""
        now = time.monotonic()
        stamp = self._key_stamp(algorithm)
        cached = self._id_token_keys.get(algorithm)
        if cached is None or cached[0] != stamp or stamp is None or now - cached[1] > _KEY_CACHE_SECONDS:
            key = self.keys.signing_key(algorithm)
            cached = (stamp, now, key, _KEY_TYPES[key.alg].import_key(key.private_pem()))
            self._id_token_keys[algorithm] = cached
        return cached[2], cached[3]

    def _key_stamp(self, algorithm: str) -> tuple[int, ...] | None:
        store = self.keys.stores.get(algorithm)
        if store is None:
            return None
        stamp: list[int] = []
        # The algorithm's own store does not exist while the kernel's key serves it; its creation shows.
        for directory in (self.context.keys.directory, store.directory):
            try:
                found = directory.stat()
            except FileNotFoundError:
                stamp.extend((0, 0))
                continue
            except OSError:
                return None
            stamp.extend((found.st_ino, found.st_mtime_ns))
        return tuple(stamp)

    def verification_key(self, kid: str) -> SigningKey:
        """The key named ``kid``: the cached active key, or else read from the store (``KeyNotFound``)."""
        active = self.signing_key()
        return active if kid == active.kid else self.context.keys.get(kid)

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    # cookies

    def _mac(self, label: str, payload: str) -> str:
        return _b64(hmac.new(self._cookie_key, f"{label}\x00{payload}".encode(), hashlib.sha256).digest())

    def _signed(self, label: str, payload: str) -> str:
        return f"{payload}.{self._mac(label, payload)}"

    def _unsigned(self, label: str, value: str | None) -> str | None:
        if not value or "." not in value:
            return None
        payload, _, mac = value.rpartition(".")
        return payload if hmac.compare_digest(mac, self._mac(label, payload)) else None

    def _cookie(self, name: str, value: str, max_age: int) -> Cookie:
        return Cookie(
            key=name,
            value=value,
            max_age=max_age,
            path=_COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
        )

    def flow_cookie(self, flow: _Flow) -> Cookie:
        document = {
            "q": flow.query,
            "c": flow.csrf,
            "e": flow.expires,
            "t": flow.transaction,
            "d": flow.destination,
        }
        payload = _b64(json.dumps(document, separators=(",", ":")).encode("utf-8"))
        return self._cookie(_FLOW_COOKIE, self._signed("flow", payload), int(FLOW_TTL.total_seconds()))

    def read_flow(self, request: Request[Any, Any, Any]) -> _Flow | None:
        payload = self._unsigned("flow", request.cookies.get(_FLOW_COOKIE))
        if payload is None:
            return None
        try:
            document = json.loads(_unb64(payload))
            flow = _Flow(
                query=[(str(name), str(value)) for name, value in document["q"]],
                csrf=str(document["c"]),
                expires=int(document["e"]),
                transaction=document["t"],
                destination=document["d"],
            )
        except (ValueError, KeyError, TypeError):
            return None
        return flow if flow.expires > _epoch(self.clock()) else None

    def clear(self, name: str) -> Cookie:
        return self._cookie(name, "", 0)

    async def signed_in(self, request: Request[Any, Any, Any]) -> _SignIn | None:
        session_id = self._unsigned("session", request.cookies.get(_SESSION_COOKIE))
        if session_id is None:
            return None
        async with self.context.sessions() as session:
            row = (await session.execute(_SIGNED_IN, {"hash_": _sha256(session_id)})).first()
        if row is None or _aware(row.expires_at) <= self.clock():
            return None
        return _SignIn(row.uin, row.auth_time, row.acr, row.expires_at)

    async def open_session(self, uin: str, session: AsyncSession) -> tuple[_SignIn, Cookie]:
        """A new sign-in session for ``uin``, written in the caller's transaction ``session``."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        row = _SignIn(uin=uin, auth_time=now, acr=ACR_SMS_OTP, expires_at=now + SESSION_TTL)
        await session.execute(
            _NEW_SESSION,
            {
                "session_hash": _sha256(session_id),
                "uin": row.uin,
                "auth_time": row.auth_time,
                "acr": row.acr,
                "expires_at": row.expires_at,
            },
        )
        cookie = self._cookie(
            _SESSION_COOKIE, self._signed("session", session_id), int(SESSION_TTL.total_seconds())
        )
        return row, cookie

    @asynccontextmanager
    async def _transaction(self, transaction: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's transaction when it has one, else one of its own, committed on leaving."""
        if transaction is not None:
            yield transaction
            return
        async with self.context.sessions() as session, session.begin():
            yield session

    # pages

    def page(self, template: str, language: str, status: int = 200, **context: Any) -> Response[str]:
        return Response(
            render(template, language, **context), status_code=status, media_type=_HTML, headers=_PAGE_HEADERS
        )

    def error_page(self, language: str, message_key: str, status: int = 400) -> Response[str]:
        text = strings(language)
        return self.page("error.html", language, status, title=text["title_error"], message=text[message_key])

    # the authorization request

    async def authorize(
        self, query: list[tuple[str, str]], language: str, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        """Answer an authorization request: a code, an error, or the sign-in page."""
        payload = _Payload(query)
        request_uri = payload.data.get("request_uri")
        pushed = request_uri is not None and is_pushed_reference(request_uri)
        if request_uri is not None and pushed:
            # RFC 9126 section 4: the pushed parameters replace whatever else came with the reference.
            stored = await self.pushed.take(request_uri, payload.data.get("client_id", ""))
            if stored is None:
                _log.info("request_uri refused", extra={"event": "oidc_invalid_request_uri"})
                return self.error_page(language, "error_session")
            query, payload = stored, _Payload(stored)
            language = _language(request, query)
        client = await self.clients.client(payload.data.get("client_id", ""))
        server = _Server(self, [client] if client is not None else [])
        session = None
        prompts = payload.data.get("prompt", "").split()
        if "login" not in prompts:
            session = await self.signed_in(request)
            max_age = payload.data.get("max_age")
            if session is not None and max_age is not None and not self._fresh(session, max_age):
                session = None
        person = None
        if session is not None and client is not None:
            person = await self.person(session, client)
        try:
            oauth_request = _Request("GET", self.url("/authorize"), query=query)
            grant = server.get_consent_grant(oauth_request, end_user=person)
            self._check_request(grant)
            if client is not None and client.require_pushed_requests and not pushed:
                raise InvalidRequestError(
                    "This client sends its authorization requests by pushed authorization request.",
                    redirect_uri=grant.redirect_uri,
                    state=payload.data.get("state"),
                )
        except OAuth2Error as error:
            return self.oauth_error(error, language)
        if person is not None and client is not None:
            try:
                return await self.conclude(server, oauth_request, grant, person, client, language)
            except OAuth2Error as error:
                return self.oauth_error(error, language)
        flow = _Flow(query=query, csrf=secrets.token_urlsafe(24), expires=_epoch(self.clock() + FLOW_TTL))
        response = self.signin_page(language, flow, client)
        response.set_cookie(self.flow_cookie(flow))
        return response

    def _fresh(self, session: _SignIn, max_age: str) -> bool:
        """Whether the sign-in is recent enough for ``max_age`` (OpenID Connect Core 1.0 section 3.1.2.1)."""
        if not max_age.isdigit():
            return False
        return _aware(session.auth_time) + timedelta(seconds=int(max_age)) > self.clock()

    def _check_request(self, grant: _CodeGrant) -> None:
        data = grant.request.payload.data
        redirect_uri = grant.redirect_uri
        if "request" in data:
            raise RequestNotSupportedError(redirect_uri=redirect_uri, state=data.get("state"))
        if "request_uri" in data:
            raise RequestURINotSupportedError(redirect_uri=redirect_uri, state=data.get("state"))
        if "openid" not in (grant.request.scope or "").split():
            raise InvalidScopeError(
                "The 'openid' scope is required.", redirect_uri=redirect_uri, state=data.get("state")
            )
        max_age = data.get("max_age")
        if max_age is not None and not max_age.isdigit():
            raise InvalidRequestError(
                "Invalid 'max_age'.", redirect_uri=redirect_uri, state=data.get("state")
            )
        if not can_satisfy(_claims_request(grant).id_token.get("acr")):
            raise _UnmetAuthenticationRequirements(redirect_uri=redirect_uri, state=data.get("state"))

    async def conclude(
        self,
        server: _Server,
        oauth_request: OAuth2Request,
        grant: _CodeGrant,
        person: _Person,
        client: RegisteredClient,
        language: str,
        transaction: AsyncSession | None = None,
    ) -> Response[Any]:
        """Issue the code when the person's choice in force covers the claims asked for (or none is
        asked beyond ``sub``); otherwise the consent page, or ``consent_required`` with ``prompt=none``.
        Read and written in ``transaction`` when given."""
        requested = self.requested(grant, client)
        choice = await self.consents.current(person.subject, client.client_id, transaction)
        prompts = grant.request.payload.data.get("prompt", "").split()
        if requested and ("consent" in prompts or choice is None or not choice.covers(requested)):
            if "none" in prompts:
                raise ConsentRequiredError(
                    redirect_uri=grant.redirect_uri, state=grant.request.payload.data.get("state")
                )
            flow = _Flow(
                query=list(oauth_request.pairs),
                csrf=secrets.token_urlsafe(24),
                expires=_epoch(self.clock() + FLOW_TTL),
            )
            response = self.consent_page(language, flow, client, requested, choice)
            response.set_cookie(self.flow_cookie(flow))
            return response
        granted = choice.granted if choice is not None else frozenset()
        return await self.issue_code(
            server, oauth_request, grant, person, _release(grant, granted), transaction
        )

    def requested(self, grant: _CodeGrant, client: RegisteredClient) -> dict[str, bool]:
        """The claims the request asks for beyond ``sub``, each with whether it is essential."""
        return requested_claims(
            (grant.request.scope or "").split(), _claims_request(grant), list(client.metadata["scope"])
        )

    def validate_pushed(
        self, client: RegisteredClient, parameters: list[tuple[str, str]]
    ) -> tuple[str, str] | None:
        """The authorization endpoint's checks on a pushed request (RFC 9126 section 2.1); ``prompt``
        waits for the authorization endpoint, where the person's session is known."""
        server = _Server(self, [client])
        query = [(name, value) for name, value in parameters if name != "prompt"]
        try:
            self._check_request(
                server.get_consent_grant(_Request("POST", self.url("/authorize"), query=query))
            )
        except OAuth2Error as error:
            return str(error.error), str(error.description or "The authorization request is not valid.")
        return None

    def oauth_error(self, error: OAuth2Error, language: str) -> Response[Any]:
        if error.redirect_uri:
            status, _body, headers = error()
            return _redirect(status, headers, self.issuer)
        message = (
            "error_client" if error.error in {"invalid_client", "unauthorized_client"} else "error_request"
        )
        if error.error == "invalid_request" and "redirect" in (error.description or "").lower():
            message = "error_redirect"
        return self.error_page(language, message)

    async def person(
        self, session: _SignIn, client: RegisteredClient, transaction: AsyncSession | None = None
    ) -> _Person | None:
        """The signed-in person as ``client`` sees them (None when no longer active), their pseudonym
        recorded in ``transaction`` when given."""
        try:
            subject = await self.register.active_pseudonym(session.uin, client.sector, transaction)
        except DpiError:
            return None
        if subject is None:
            return None
        return _Person(subject, _epoch(session.auth_time), session.acr)

    async def issue_code(
        self,
        server: _Server,
        oauth_request: OAuth2Request,
        grant: _CodeGrant,
        person: _Person,
        released: Mapping[str, list[str]],
        transaction: AsyncSession | None = None,
    ) -> Response[Any]:
        """The redirect with a new code, the code written in ``transaction`` when given."""
        data = grant.request.payload.data
        acr = acr_to_issue(
            person.acr, acr_values=data.get("acr_values"), claim=_claims_request(grant).id_token.get("acr")
        )
        if acr is None:
            raise _UnmetAuthenticationRequirements(redirect_uri=grant.redirect_uri, state=data.get("state"))
        status, _body, headers = server.create_authorization_response(
            oauth_request, grant_user=person, grant=grant
        )
        now = self.clock()
        async with self._transaction(transaction) as session:
            for code, request in server.outcome.codes:
                data = request.payload.data
                await session.execute(
                    _NEW_CODE,
                    dict(
                        code_hash=_sha256(code),
                        client_id=request.client.client_id,
                        redirect_uri=request.payload.redirect_uri
                        or request.client.get_default_redirect_uri(),
                        scope=request.scope or "",
                        nonce=data.get("nonce"),
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                        subject=person.subject,
                        auth_time=datetime.fromtimestamp(person.auth_time, UTC),
                        acr=acr,
                        created_at=now,
                        expires_at=now + CODE_TTL,
                        used_at=None,
                        claims=dict(released),
                    ),
                )
        return _redirect(status, headers, self.issuer)

    def signin_page(
        self, language: str, flow: _Flow, client: RegisteredClient | None, message: str | None = None
    ) -> Response[str]:
        text = strings(language)
        return self.page(
            "signin.html",
            language,
            400 if message else 200,
            title=text["title_signin"],
            client_name=client.metadata["client_name"] if client is not None else "",
            action=f"{_COOKIE_PATH}/authorize/identifier",
            csrf_token=flow.csrf,
            message=text[message] if message else None,
        )

    def consent_page(
        self,
        language: str,
        flow: _Flow,
        client: RegisteredClient,
        requested: Mapping[str, bool],
        previous: ClaimChoice | None,
        message: str | None = None,
    ) -> Response[str]:
        text = strings(language)
        already = previous.granted if previous is not None else frozenset()
        claims = [
            {
                "name": name,
                "label": text[f"claim_{name}"],
                "essential": essential,
                "checked": name in already,
            }
            for name, essential in sorted(requested.items(), key=lambda item: (not item[1], item[0]))
        ]
        return self.page(
            "consent.html",
            language,
            503 if message else 200,
            title=text["title_consent"],
            client_name=client.metadata["client_name"],
            action=f"{_COOKIE_PATH}/authorize/consent",
            csrf_token=flow.csrf,
            claims=claims,
            days=max(1, self.consents.ttl.days),
            message=text[message] if message else None,
        )

    def otp_page(self, language: str, flow: _Flow, message: str | None = None) -> Response[str]:
        text = strings(language)
        return self.page(
            "otp.html",
            language,
            400 if message else 200,
            title=text["title_otp"],
            destination=flow.destination,
            action=f"{_COOKIE_PATH}/authorize/otp",
            csrf_token=flow.csrf,
            restart_href=f"{_COOKIE_PATH}/authorize/restart",
            message=text[message] if message else None,
        )

    # the token endpoint

    async def token(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form_data = await request.form()
        form = [(str(name), str(value)) for name, value in form_data.multi_items()]
        authorization = request.headers.get("authorization")
        data = dict(form)
        asserted = None
        if "client_assertion" in data or "client_assertion_type" in data:
            # One authentication method per request (RFC 6749 section 2.3): HTTP Basic beside an
            # assertion authenticates nobody.
            client = None if authorization else await self.client_auth.assertion(form, self.url("/token"))
            asserted = client
        else:
            client_id, _secret = extract_basic_authorization(
                {"Authorization": authorization} if authorization else {}
            )
            client = await self.clients.client(client_id or "")
        # The code is read, and consumed with the tokens it issues recorded, on one connection; consuming
        # stays one conditional update, so two redemptions racing cannot both succeed.
        async with self.context.sessions() as session, session.begin():
            code = None
            code_value = data.get("code")
            if client is not None and code_value:
                code = await self._load_code(code_value, client, session)
            server = _Server(self, [client] if client is not None else [], code, asserted)
            try:
                oauth_request = _Request("POST", self.url("/token"), form=form, authorization=authorization)
            except OAuth2Error as error:
                return Response(
                    {"error": str(error.error), "error_description": str(error.description)},
                    status_code=400,
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
                )
            status, body, headers = server.create_token_response(oauth_request)
            if status == 200 and code is not None and not await self._consume(code, server.outcome, session):
                status, body, headers = server.handle_error_response(oauth_request, InvalidGrantError())
        return Response(
            body,
            status_code=status,
            headers={**dict(headers), "Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def _load_code(
        self, value: str, client: RegisteredClient, transaction: AsyncSession | None = None
    ) -> _Code | None:
        code_hash = _sha256(value)
        now = self.clock()
        async with self._transaction(transaction) as session:
            row = (await session.execute(_CODE, {"hash_": code_hash})).first()
            if row is None or row.client_id != client.client_id:
                return None
            if row.used_at is not None:
                # RFC 6749 section 4.1.2: a code used twice revokes what it issued.
                await session.execute(_REVOKE_TOKENS_OF_CODE, {"hash_": code_hash, "now_": now})
                _log.warning(
                    "authorization code replayed",
                    extra={"event": "oidc_code_replayed", "client_id": client.client_id},
                )
                return None
            if _aware(row.expires_at) <= now:
                return None
            released: dict[str, list[str]] = row.claims or {}
            id_token_claims: dict[str, Any] = {}
            if released.get("id_token"):
                person = await self._person_row(session, client.sector, row.subject)
                if person is None or person.status != "active":
                    return None
                id_token_claims = claim_values(
                    row.subject,
                    person.demographics,
                    released["id_token"],
                    locale=client.claims_locale,
                    today=now.date(),
                )
                del id_token_claims["sub"]
            return _Code(
                code_hash=row.code_hash,
                client_id=row.client_id,
                redirect_uri=row.redirect_uri,
                scope=row.scope,
                nonce=row.nonce,
                code_challenge=row.code_challenge,
                code_challenge_method=row.code_challenge_method,
                subject=row.subject,
                auth_time=_epoch(row.auth_time),
                acr=row.acr,
                id_token_claims=id_token_claims,
                userinfo_claims=tuple(released.get("userinfo", ())),
            )

    async def _person_row(self, session: AsyncSession, sector: str, subject: str) -> Row[Any, Any] | None:
        """The status and demographics of the person ``subject`` names in ``sector``."""
        found = await session.execute(_PERSON_OF_PSEUDONYM, {"sector_": sector, "subject_": subject})
        return found.first()

    async def _consume(self, code: _Code, outcome: _Outcome, transaction: AsyncSession | None = None) -> bool:
        now = self.clock()
        async with self._transaction(transaction) as session:
            result = await session.execute(_USE_CODE, {"hash_": code.code_hash, "now_": now})
            if getattr(result, "rowcount", 0) != 1:
                return False
            for jti, expires_at in outcome.tokens:
                await session.execute(
                    _NEW_TOKEN,
                    dict(
                        jti=jti,
                        code_hash=code.code_hash,
                        client_id=code.client_id,
                        issued_at=now,
                        expires_at=expires_at,
                        revoked_at=None,
                        claims=list(code.userinfo_claims),
                    ),
                )
        return True

    # userinfo

    async def userinfo(self, request: Request[Any, Any, Any]) -> Response[Any]:
        token = bearer_token(request.headers.get("authorization"))
        claims = self._access_claims(token)
        client = await self.clients.client(str(claims.get("client_id", "")))
        async with self.context.sessions() as session:
            issued = (await session.execute(_TOKEN, {"jti_": str(claims.get("jti", ""))})).first()
            if issued is None or issued.revoked_at is not None:
                raise _invalid_token("the token was revoked")
            if client is None:
                raise _invalid_token("the token's client is no longer registered")
            person = await self._person_row(session, client.sector, claims["sub"])
            if person is None or person.status != "active":
                raise _invalid_token("the token's subject is no longer active")
            # A withdrawal takes effect at once: tokens issued before it release nothing more than ``sub``.
            choice = await self.consents.current(claims["sub"], client.client_id, session)
        released = set(issued.claims or ()) & (choice.granted if choice is not None else frozenset())
        document = claim_values(
            claims["sub"],
            person.demographics,
            released,
            locale=client.claims_locale,
            today=self.clock().date(),
        )
        headers = {"Cache-Control": "no-store"}
        if client.userinfo_signed:
            key = self.id_token_key(client.userinfo_algorithm)[0]
            signed = jwt.encode(
                {**document, "iss": self.issuer, "aud": client.client_id},
                key.private_key,
                algorithm=key.alg,
                headers={"kid": key.kid, "typ": "JWT"},
            )
            return Response(signed, status_code=200, media_type="application/jwt", headers=headers)
        return Response(document, status_code=200, headers=headers)

    def _access_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = self.verification_key(str(header.get("kid", "")))
        except (jwt.InvalidTokenError, KeyNotFound):
            raise _invalid_token("the token is not one of this provider's") from None
        if header.get("typ") != "at+jwt" or header.get("alg") != key.alg:
            raise _invalid_token("not an access token of this provider")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[key.alg],
                issuer=self.issuer,
                audience=self.audience,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "jti"]},
            )
        except jwt.InvalidTokenError:
            raise _invalid_token("the token's signature or claims do not hold") from None
        if int(claims["exp"]) <= _epoch(self.clock()):
            raise _invalid_token("the token has expired")
        return claims

    # discovery

    def discovery(self) -> dict[str, Any]:
        return discovery_document(self.issuer)


def _redirect(status: int, headers: Sequence[tuple[str, str]], issuer: str) -> Response[bytes]:
    """authlib's redirect to the client, with no body (a ``None`` body would be sent as JSON ``null``),
    its location naming the issuer in ``iss`` (RFC 9207 section 2,
    https://www.rfc-editor.org/rfc/rfc9207#section-2), success and error alike."""
    fields = dict(headers)
    location = fields.get("Location")
    if location:
        separator = "&" if urlsplit(location).query else "?"
        fields["Location"] = f"{location}{separator}{urlencode({'iss': issuer})}"
    return Response(
        b"", status_code=status, media_type="text/plain", headers={**fields, "Cache-Control": "no-store"}
    )


def _claims_request(grant: _CodeGrant) -> ClaimsRequest:
    """The request's ``claims`` parameter, or ``invalid_request`` saying what is wrong with it."""
    data = grant.request.payload.data
    try:
        return parse_claims_parameter(data.get("claims"))
    except ClaimsParameterInvalid as invalid:
        raise InvalidRequestError(
            f"Invalid 'claims': {invalid}.", redirect_uri=grant.redirect_uri, state=data.get("state")
        ) from None


def _release(grant: _CodeGrant, granted: frozenset[str]) -> dict[str, list[str]]:
    return delivery((grant.request.scope or "").split(), _claims_request(grant), granted)


def _invalid_token(message: str) -> DpiError:
    return DpiError(
        "auth.token_invalid",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="dpi", error="invalid_token"'},
    )


def discovery_document(issuer: str) -> dict[str, Any]:
    """OpenID Provider Metadata (OpenID Connect Discovery 1.0 section 3) listing only what is enforced."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGORITHMS),
        "userinfo_signing_alg_values_supported": list(ID_TOKEN_ALGORITHMS),
        "token_endpoint_auth_methods_supported": list(SUPPORTED_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint": f"{issuer}/introspect",
        "introspection_endpoint_auth_methods_supported": list(SUPPORTED_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint": f"{issuer}/revoke",
        "revocation_endpoint_auth_methods_supported": list(SUPPORTED_AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": supported_acr_values(),
        "authorization_response_iss_parameter_supported": True,
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "require_pushed_authorization_requests": False,
        "claims_supported": list(SUPPORTED_CLAIMS),
        "claim_types_supported": ["normal"],
        "ui_locales_supported": list(LANGUAGES),
        "claims_locales_supported": list(LANGUAGES),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        # request_uri takes only this provider's own pushed-request references; request objects by
        # reference (fetched from the client) are not supported, which is what this flag announces.
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
    }


# --- routes --------------------------------------------------------------------------------------------

# The query of ``GET /authorize`` as one object parameter: OpenAPI's default query style (form, exploded)
# spreads its members into separate query parameters, the same names as the ``POST /authorize`` form.
_AUTHORIZATION_PARAMETERS: Final = Parameter(
    "authorization_request",
    "query",
    {"$ref": f"#/components/schemas/{component_key(*_AUTHORIZE_REQUEST.split('@'))}"},
    description="The authentication request's parameters, one query parameter each",
)
_USERINFO_SUMMARY: Final = (
    "Claims about the signed-in person (OpenID Connect Core 1.0 section 5.3), the access token in the "
    "Authorization header; a signed JWT (application/jwt) for clients registered for one"
)
_USERINFO_BODIES: Final = (
    "identity-userinfo@1.1.0",
    Body("identity-userinfo-jwt@1.0.0", "application/jwt"),
)


async def prepare_signing_keys(context: BlockContext) -> None:
    """Make the signing keys of the algorithms registered clients use, and EdDSA's, before serving (the
    JWKS never makes keys, :mod:`identity.signing_keys`)."""
    in_use = await ClientRegistry(context.sessions).algorithms_in_use()
    await asyncio.to_thread(ProviderKeys.of(context.settings, context.keys).ensure, in_use)


def require_tls(settings: Settings) -> None:
    """Refuse a public URL an OpenID provider cannot be served at: OpenID Connect Core 1.0 section 16.17
    (https://openid.net/specs/openid-connect-core-1_0.html#TLSRequirements) requires TLS, so the issuer is
    https, or http on a loopback host for development. A :class:`dpi.settings.SettingsError` names the
    setting."""
    parts = urlsplit(settings.public_url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        return
    raise SettingsError(
        "DPI_BASE_URL: the OpenID provider needs an https:// URL (http:// only on localhost or a loopback "
        f"address), got {settings.public_url!r}"
    )


def _language(request: Request[Any, Any, Any], query: Sequence[tuple[str, str]]) -> str:
    return choose_language(dict(query).get("ui_locales"), request.headers.get("accept-language"))


def build_routes(
    context: BlockContext,
    register: PersonRegister,
    authenticator: OtpAuthenticator,
    *,
    clock: Callable[[], datetime] = _utcnow,
    recorder: ClaimReleaseRecorder | None = None,
    consent_ttl: timedelta = CONSENT_TTL,
) -> list[HTTPRouteHandler]:
    """The OpenID provider's handlers, to mount under the block's ``/identity`` prefix.

    The cookie key is a 32-byte secret in ``<var_dir>/identity/session.key`` (created on first use);
    replacing it ends every sign-in in progress and every session, nothing more. ``recorder`` records
    each claim release as a consent with a signed receipt (see :mod:`identity.claim_consent`); a
    person's choice lasts ``consent_ttl``. A public URL that is not https (nor http on a loopback host) is
    refused (:func:`require_tls`).
    """
    require_tls(context.settings)
    provider = _Provider(
        context,
        register,
        authenticator,
        ClientRegistry(context.sessions, clock=clock, keys=ProviderKeys.of(context.settings, context.keys)),
        ClaimConsents(context.sessions, recorder=recorder, ttl=consent_ttl, clock=clock),
        cookie_key=load_or_create_key(context.settings.var_dir / "identity" / "session.key"),
        clock=clock,
    )

    @get(
        "/.well-known/openid-configuration",
        sync_to_thread=False,
        opt=Contract(
            "OpenID Provider Metadata (OpenID Connect Discovery 1.0 section 3)",
            {200: "identity-oidc-discovery@1.2.0"},
            tags=_TAGS,
            errors=_KERNEL_ERRORS,
        ).as_opt(),
    )
    def openid_configuration() -> Response[dict[str, Any]]:
        return Response(provider.discovery(), headers={"Cache-Control": "public, max-age=300"})

    @get(
        "/.well-known/jwks.json",
        # Reading key files is blocking work: off the event loop.
        sync_to_thread=True,
        opt=Contract(
            "The keys that sign ID tokens, access tokens and signed userinfo (RFC 7517)",
            {200: "jwks@1.0.0"},
            tags=_TAGS,
            errors=_KERNEL_ERRORS,
        ).as_opt(),
    )
    def jwks() -> Response[dict[str, Any]]:
        return Response(provider.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def answer_authorization(
        request: Request[Any, Any, Any], query: list[tuple[str, str]]
    ) -> Response[Any]:
        language = _language(request, query)
        if len(urlencode(query)) > _MAX_QUERY:
            return provider.error_page(language, "error_request")
        return await provider.authorize(query, language, request)

    @get(
        "/authorize",
        opt=Contract(
            "Authentication request (OpenID Connect Core 1.0 section 3.1.2.1): the sign-in page, an error "
            "page, or a 302 redirect to the client with a code or an error",
            {200: _PAGE, 400: _PAGE},
            parameters=(_AUTHORIZATION_PARAMETERS,),
            tags=_TAGS,
            errors=_KERNEL_ERRORS,
        ).as_opt(),
    )
    async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
        return await answer_authorization(
            request, parse_qsl(request.url.query or "", keep_blank_values=False)
        )

    @post(
        "/authorize",
        opt=Contract(
            "Authentication request by form post (OpenID Connect Core 1.0 section 3.1.2.1): the sign-in "
            "page, an error page, or a 302 redirect to the client with a code or an error",
            {200: _PAGE, 400: _PAGE},
            request=Body(_AUTHORIZE_REQUEST, _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def authorize_by_form(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        return await answer_authorization(
            request, [(str(name), str(value)) for name, value in form.multi_items()]
        )

    async def flow_of(request: Request[Any, Any, Any]) -> tuple[_Flow | None, dict[str, str], str]:
        form = await request.form()
        fields = {str(name): str(value) for name, value in form.items()}
        flow = provider.read_flow(request)
        language = _language(request, flow.query if flow is not None else [])
        if flow is None or not hmac.compare_digest(fields.get("csrf_token", ""), flow.csrf):
            return None, fields, language
        return flow, fields, language

    @post(
        "/authorize/identifier",
        opt=Contract(
            "The sign-in page's form: send a one-time code to the person's phone and show the code page",
            {200: _PAGE, 400: _PAGE},
            request=Body("identity-oidc-identifier-form@1.0.0", _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def identifier(request: Request[Any, Any, Any]) -> Response[Any]:
        flow, fields, language = await flow_of(request)
        if flow is None:
            return provider.error_page(language, "error_session")
        client_id = dict(flow.query).get("client_id", "")
        client = await provider.clients.client(client_id)
        if client is None:
            return provider.error_page(language, "error_client")
        value = "".join(fields.get("identifier", "").split())
        if not (is_uin(value) or is_vid(value)):
            return provider.signin_page(language, flow, client, "identifier_invalid")
        try:
            sent = await authenticator.send(value, client_id=client.client_id)
        except DpiError as error:
            message = (
                "otp_locked" if error.reason_code in {"otp.locked", "auth.type_locked"} else "send_refused"
            )
            return provider.signin_page(language, flow, client, message)
        flow = _Flow(flow.query, flow.csrf, flow.expires, sent["transaction_id"], sent["destination"][-2:])
        response = provider.otp_page(language, flow)
        response.set_cookie(provider.flow_cookie(flow))
        return response

    @get(
        "/authorize/restart",
        opt=Contract(
            "The code page's 'Start again' link: the sign-in page again for the same authorization request "
            "(a pushed one included, whose reference is already spent); an error page when the sign-in "
            "has expired",
            {200: _PAGE, 400: _PAGE},
            tags=_TAGS,
            errors=_KERNEL_ERRORS,
        ).as_opt(),
    )
    async def restart(request: Request[Any, Any, Any]) -> Response[Any]:
        flow = provider.read_flow(request)
        language = _language(request, flow.query if flow is not None else [])
        if flow is None:
            return provider.error_page(language, "error_session")
        client = await provider.clients.client(dict(flow.query).get("client_id", ""))
        if client is None:
            return provider.error_page(language, "error_client")
        flow = _Flow(flow.query, secrets.token_urlsafe(24), _epoch(provider.clock() + FLOW_TTL))
        response = provider.signin_page(language, flow, client)
        response.set_cookie(provider.flow_cookie(flow))
        return response

    @post(
        "/authorize/otp",
        opt=Contract(
            "The code page's form: check the code, open the session and redirect (302) to the client with "
            "the authorization code; the page again, or an error page, when it cannot",
            {302: None, 400: _PAGE},
            request=Body("identity-oidc-otp-form@1.0.0", _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def one_time_code(request: Request[Any, Any, Any]) -> Response[Any]:
        flow, fields, language = await flow_of(request)
        if flow is None or flow.transaction is None:
            return provider.error_page(language, "error_session")
        client = await provider.clients.client(dict(flow.query).get("client_id", ""))
        if client is None:
            return provider.error_page(language, "error_client")
        code = fields.get("otp", "").strip()
        if not _OTP.fullmatch(code):
            return provider.otp_page(language, flow, "otp_refused")
        try:
            uin = await authenticator.verify(flow.transaction, code, client_id=client.client_id)
        except DpiError as error:
            message = {
                "otp.expired": "otp_expired",
                "otp.locked": "otp_locked",
                "auth.type_locked": "otp_locked",
            }
            return provider.otp_page(language, flow, message.get(error.reason_code, "otp_refused"))
        # The session, the person's pseudonym and the code are written in one transaction: all of them
        # durable before the redirect, or none.
        async with provider.context.sessions() as transaction, transaction.begin():
            session, cookie = await provider.open_session(uin, transaction)
            person = await provider.person(session, client, transaction)
            server = _Server(provider, [client])
            try:
                oauth_request = _Request("GET", provider.url("/authorize"), query=flow.query)
                if person is None:
                    raise InvalidRequestError("The person cannot sign in.")
                grant = server.get_consent_grant(oauth_request, end_user=person)
                provider._check_request(grant)
                response = await provider.conclude(
                    server, oauth_request, grant, person, client, language, transaction
                )
            except OAuth2Error as error:
                response = provider.oauth_error(error, language)
        response.set_cookie(cookie)
        if response.status_code != 200:
            response.set_cookie(provider.clear(_FLOW_COOKIE))
        return response

    @post(
        "/authorize/consent",
        opt=Contract(
            "The consent page's form: store the person's choice of claims (with its signed receipt when "
            "a recorder is configured) and redirect (302) to the client with the authorization code, or "
            "with access_denied when the person denies; an error page when the page has expired",
            {302: None, 400: _PAGE, 503: _PAGE},
            request=Body("identity-oidc-consent-form@1.0.0", _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def consent(request: Request[Any, Any, Any]) -> Response[Any]:
        flow, fields, language = await flow_of(request)
        form = await request.form()
        chosen = {str(value) for name, value in form.multi_items() if name == "claim"}
        if flow is None:
            return provider.error_page(language, "error_session")
        client = await provider.clients.client(dict(flow.query).get("client_id", ""))
        if client is None:
            return provider.error_page(language, "error_client")
        session = await provider.signed_in(request)
        person = await provider.person(session, client) if session is not None else None
        if person is None:
            return provider.error_page(language, "error_session")
        server = _Server(provider, [client])
        try:
            oauth_request = _Request("GET", provider.url("/authorize"), query=flow.query)
            grant = server.get_consent_grant(oauth_request, end_user=person)
            provider._check_request(grant)
            if fields.get("decision") != "allow":
                raise AccessDeniedError(
                    "The person did not allow the release.",
                    redirect_uri=grant.redirect_uri,
                    state=grant.request.payload.data.get("state"),
                )
            requested = provider.requested(grant, client)
            # The choice and the code it allows are written in one transaction; the recorder, when there
            # is one, is asked before anything is written.
            async with provider.context.sessions() as transaction, transaction.begin():
                try:
                    choice = await provider.consents.choose(
                        person.subject, client, requested, chosen, language, transaction
                    )
                except DpiError as error:
                    _log.error(
                        "claim release not recorded",
                        extra={"event": "oidc_release_not_recorded", "reason_code": error.reason_code},
                    )
                    return provider.consent_page(language, flow, client, requested, None, "consent_failed")
                try:
                    response = await provider.issue_code(
                        server, oauth_request, grant, person, _release(grant, choice.granted), transaction
                    )
                except OAuth2Error as error:
                    response = provider.oauth_error(error, language)
        except OAuth2Error as error:
            response = provider.oauth_error(error, language)
        response.set_cookie(provider.clear(_FLOW_COOKIE))
        return response

    @post(
        "/token",
        opt=Contract(
            "Redeem an authorization code for an ID token and an access token (OpenID Connect Core 1.0 "
            "section 3.1.3), the client authenticated by HTTP Basic or by a private_key_jwt client "
            "assertion (OpenID Connect Core 1.0 section 9)",
            {
                200: "identity-oidc-token-response@1.0.0",
                400: _OAUTH_ERROR,
                401: _OAUTH_ERROR,
            },
            request=Body("identity-oidc-token-request@1.1.0", _FORM),
            tags=_TAGS,
            errors=_KERNEL_FORM_ERRORS,
        ).as_opt(),
    )
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        return await provider.token(request)

    @get(
        "/userinfo",
        opt=Contract(
            _USERINFO_SUMMARY, {200: _USERINFO_BODIES}, tags=_TAGS, errors=(401, *_KERNEL_ERRORS)
        ).as_opt(),
    )
    async def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
        return await provider.userinfo(request)

    @post(
        "/userinfo",
        opt=Contract(
            _USERINFO_SUMMARY,
            {200: _USERINFO_BODIES},
            request=Body("identity-oidc-userinfo-request@1.0.0", _FORM),
            tags=_TAGS,
            errors=(401, *_KERNEL_FORM_ERRORS),
        ).as_opt(),
    )
    async def userinfo_by_post(request: Request[Any, Any, Any]) -> Response[Any]:
        return await provider.userinfo(request)

    return [
        *build_par_routes(provider.issuer, provider.client_auth, provider.pushed, provider.validate_pushed),
        openid_configuration,
        jwks,
        authorize,
        authorize_by_form,
        identifier,
        restart,
        one_time_code,
        consent,
        token,
        userinfo,
        userinfo_by_post,
    ]
