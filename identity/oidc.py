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
client's sector (:func:`identity.pseudonyms.sector_pseudonym`); no UIN leaves this module. ID tokens
and access tokens are signed with the kernel's active key (EdDSA by default), published at
``/identity/.well-known/jwks.json``.

A client assertion is checked before authlib runs (its hooks cannot wait on the database): signed with
one of the client's registered keys (EdDSA, ES256 or PS256), ``iss`` and ``sub`` the client id, ``aud``
the token endpoint or the issuer, ``exp`` in the future and at most :data:`CLIENT_ASSERTION_TTL`
away, and a ``jti`` never seen before: each accepted ``jti`` is kept until the assertion expires, so a
replayed assertion is refused. Any failure is ``invalid_client`` (401, RFC 6749 section 5.2).

Sign-in: ``GET /identity/authorize`` checks the request; with no usable session it shows the sign-in
page (UIN or virtual ID), which sends a code through :class:`identity.authentication.OtpAuthenticator`;
the code page verifies it, opens a session (a signed, HTTP-only, SameSite=Lax cookie living 15 minutes)
and redirects to the client with the authorization code. The request in progress rides in a signed
cookie with the page's CSRF token; nothing of it is personal.
"""

from __future__ import annotations

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, urlencode

import jwt
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AuthorizationServer,
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
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError  # type: ignore[import-untyped]
from joserfc import jwk as jose_jwk
from joserfc.errors import SecurityWarning
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import DateTime, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from dpi.blocks import BlockContext
from dpi.contract import Body, Contract, Parameter
from dpi.errors import DpiError
from dpi.keys import KeyNotFound, SigningKey
from dpi.tokens import bearer_token
from identity.authentication import OtpAuthenticator
from identity.clients import (
    ASSERTION_ALGORITHMS,
    SUPPORTED_AUTH_METHODS,
    ClientRegistry,
    RegisteredClient,
    assertion_algorithm,
)
from identity.models import IdentityBase, PersonRow, PseudonymRow
from identity.oidc_models import AuthorizationCodeRow, IssuedTokenRow, SignInSessionRow
from identity.pages import LANGUAGES, choose_language, render, strings
from identity.pseudonyms import load_or_create_key
from identity.service import PersonRegister, is_uin, is_vid
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
]

SCOPES: Final = ("openid", "profile", "phone")
CODE_TTL: Final = timedelta(seconds=60)
ACCESS_TOKEN_TTL: Final = timedelta(minutes=5)
ID_TOKEN_TTL: Final = timedelta(minutes=5)
SESSION_TTL: Final = timedelta(minutes=15)
FLOW_TTL: Final = timedelta(minutes=10)
ACR_SMS_OTP: Final = "urn:dpi:acr:sms-otp"
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_TTL: Final = timedelta(minutes=5)
_MAX_ASSERTION: Final = 8192
_KEY_CACHE_SECONDS: Final = 5.0
_AMR: Final = ["sms", "otp"]
_SESSION_COOKIE: Final = "dpi_oidc_session"
_FLOW_COOKIE: Final = "dpi_oidc_flow"
_COOKIE_PATH: Final = "/identity"
_MAX_QUERY: Final = 4096
_CLAIMS: Final = ("sub", "name", "given_name", "family_name", "birthdate", "phone_number")
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

_TAGS: Final = ("identity-oidc",)
_FORM: Final = "application/x-www-form-urlencoded"
_PAGE: Final = Body("html-page@1.0.0", "text/html")
_OAUTH_ERROR: Final = "oauth-error@1.0.0"
_AUTHORIZE_REQUEST: Final = "identity-oidc-authorize-request@1.0.0"
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


class _ClientAssertionRow(IdentityBase):
    """A client assertion accepted at the token endpoint (migration ``identity_0004``), kept until it
    expires so that it cannot be used again; keyed by the SHA-256 of its client id and ``jti``."""

    __tablename__ = "identity_oidc_client_assertion"

    assertion_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _AssertionRefused(Exception):
    """A client assertion that does not authenticate its client (the reason is logged, never sent)."""


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
        super().__init__(method, uri, headers={"Authorization": authorization} if authorization else {})
        self.payload = _Payload([*query, *form])
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
        return list(_AMR)


@dataclass
class _Outcome:
    """What authlib decided to create, written to the database once it has answered."""

    codes: list[tuple[str, OAuth2Request]] = field(default_factory=list)
    tokens: list[tuple[str, datetime]] = field(default_factory=list)


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
        return _Person(authorization_code.subject, authorization_code.auth_time, authorization_code.acr)


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
        key = self.provider.signing_key()
        return _KEY_TYPES[key.alg].import_key(key.private_pem())

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return self.provider.signing_key().alg

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        key = self.provider.signing_key()
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
        # The ID token names the person and nothing more; claims come from userinfo.
        return UserInfo(sub=user.subject)


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
        """The client whose assertion :meth:`_Provider.authenticate_assertion` already verified."""
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
        *,
        cookie_key: bytes,
        clock: Callable[[], datetime],
    ) -> None:
        self.context = context
        self.register = register
        self.authenticator = authenticator
        self.clients = clients
        self.clock = clock
        self._cookie_key = cookie_key
        self.issuer = f"{context.settings.public_url}/identity"
        self.audience = context.settings.public_url
        self.secure_cookies = self.issuer.startswith("https://")
        self._active_key: tuple[float, SigningKey] | None = None

    def signing_key(self) -> SigningKey:
        """The kernel's active key, read from the key store at most every few seconds (every token signs
        with it). A rotation shows within those seconds; the key it replaces stays published for the
        rotation's grace, so what was signed meanwhile still verifies."""
        now = time.monotonic()
        if self._active_key is None or now - self._active_key[0] > _KEY_CACHE_SECONDS:
            self._active_key = (now, self.context.keys.ensure_active())
        return self._active_key[1]

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

    async def signed_in(self, request: Request[Any, Any, Any]) -> SignInSessionRow | None:
        session_id = self._unsigned("session", request.cookies.get(_SESSION_COOKIE))
        if session_id is None:
            return None
        async with self.context.sessions() as session:
            row = await session.get(SignInSessionRow, _sha256(session_id))
        if row is None or _aware(row.expires_at) <= self.clock():
            return None
        return row

    async def open_session(self, uin: str) -> tuple[SignInSessionRow, Cookie]:
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        row = SignInSessionRow(
            session_hash=_sha256(session_id),
            uin=uin,
            auth_time=now,
            acr=ACR_SMS_OTP,
            expires_at=now + SESSION_TTL,
        )
        async with self.context.sessions() as session, session.begin():
            session.add(row)
        cookie = self._cookie(
            _SESSION_COOKIE, self._signed("session", session_id), int(SESSION_TTL.total_seconds())
        )
        return row, cookie

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
        client = await self.clients.client(payload.data.get("client_id", ""))
        server = _Server(self, [client] if client is not None else [])
        oauth_request = _Request("GET", self.url("/authorize"), query=query)
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
            grant = server.get_consent_grant(oauth_request, end_user=person)
            self._check_request(grant)
        except OAuth2Error as error:
            return self.oauth_error(error, language)
        if person is not None:
            return await self.issue_code(server, oauth_request, grant, person)
        flow = _Flow(query=query, csrf=secrets.token_urlsafe(24), expires=_epoch(self.clock() + FLOW_TTL))
        response = self.signin_page(language, flow, client)
        response.set_cookie(self.flow_cookie(flow))
        return response

    def _fresh(self, session: SignInSessionRow, max_age: str) -> bool:
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

    def oauth_error(self, error: OAuth2Error, language: str) -> Response[Any]:
        if error.redirect_uri:
            status, _body, headers = error()
            return _redirect(status, headers)
        message = (
            "error_client" if error.error in {"invalid_client", "unauthorized_client"} else "error_request"
        )
        if error.error == "invalid_request" and "redirect" in (error.description or "").lower():
            message = "error_redirect"
        return self.error_page(language, message)

    async def person(self, session: SignInSessionRow, client: RegisteredClient) -> _Person | None:
        try:
            subject = await self.register.active_pseudonym(session.uin, client.sector)
        except DpiError:
            return None
        if subject is None:
            return None
        return _Person(subject, _epoch(session.auth_time), session.acr)

    async def issue_code(
        self, server: _Server, oauth_request: OAuth2Request, grant: _CodeGrant, person: _Person
    ) -> Response[Any]:
        status, _body, headers = server.create_authorization_response(
            oauth_request, grant_user=person, grant=grant
        )
        now = self.clock()
        async with self.context.sessions() as session, session.begin():
            for code, request in server.outcome.codes:
                data = request.payload.data
                session.add(
                    AuthorizationCodeRow(
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
                        acr=person.acr,
                        created_at=now,
                        expires_at=now + CODE_TTL,
                        used_at=None,
                    )
                )
        return _redirect(status, headers)

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
            restart_href=f"{_COOKIE_PATH}/authorize?{urlencode(flow.query)}",
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
            client = None if authorization else await self.authenticate_assertion(form)
            asserted = client
        else:
            client_id, _secret = extract_basic_authorization(
                {"Authorization": authorization} if authorization else {}
            )
            client = await self.clients.client(client_id or "")
        code = None
        code_value = data.get("code")
        if client is not None and code_value:
            code = await self._load_code(code_value, client)
        server = _Server(self, [client] if client is not None else [], code, asserted)
        oauth_request = _Request("POST", self.url("/token"), form=form, authorization=authorization)
        status, body, headers = server.create_token_response(oauth_request)
        if status == 200 and code is not None and not await self._consume(code, server.outcome):
            status, body, headers = server.handle_error_response(oauth_request, InvalidGrantError())
        return Response(
            body,
            status_code=status,
            headers={**dict(headers), "Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def authenticate_assertion(self, form: Sequence[tuple[str, str]]) -> RegisteredClient | None:
        """The ``private_key_jwt`` client the form's assertion authenticates (RFC 7523 section 3), or None.

        The ``jti`` is recorded only once everything else holds, so a forged assertion cannot spend a
        genuine client's ``jti``.
        """
        try:
            client, claims = await self._verified_assertion(form)
            await self._spend(client, claims)
        except _AssertionRefused as refused:
            _log.info(
                "client assertion refused",
                extra={"event": "oidc_client_assertion_refused", "reason": str(refused)},
            )
            return None
        return client

    async def _verified_assertion(
        self, form: Sequence[tuple[str, str]]
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
                audience=[self.url("/token"), self.issuer],
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
            async with self.context.sessions() as session, session.begin():
                await session.execute(
                    delete(_ClientAssertionRow).where(_ClientAssertionRow.expires_at <= now)
                )
                if await session.get(_ClientAssertionRow, row.assertion_hash) is not None:
                    raise _AssertionRefused("the assertion's jti was used before")
                session.add(row)
        except IntegrityError:
            raise _AssertionRefused("the assertion's jti was used before") from None

    async def _load_code(self, value: str, client: RegisteredClient) -> _Code | None:
        code_hash = _sha256(value)
        now = self.clock()
        async with self.context.sessions() as session, session.begin():
            row = await session.get(AuthorizationCodeRow, code_hash)
            if row is None or row.client_id != client.client_id:
                return None
            if row.used_at is not None:
                # RFC 6749 section 4.1.2: a code used twice revokes what it issued.
                await session.execute(
                    update(IssuedTokenRow)
                    .where(IssuedTokenRow.code_hash == code_hash, IssuedTokenRow.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                _log.warning(
                    "authorization code replayed",
                    extra={"event": "oidc_code_replayed", "client_id": client.client_id},
                )
                return None
            if _aware(row.expires_at) <= now:
                return None
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
            )

    async def _consume(self, code: _Code, outcome: _Outcome) -> bool:
        now = self.clock()
        async with self.context.sessions() as session, session.begin():
            result = await session.execute(
                update(AuthorizationCodeRow)
                .where(
                    AuthorizationCodeRow.code_hash == code.code_hash, AuthorizationCodeRow.used_at.is_(None)
                )
                .values(used_at=now)
            )
            if getattr(result, "rowcount", 0) != 1:
                return False
            for jti, expires_at in outcome.tokens:
                session.add(
                    IssuedTokenRow(
                        jti=jti,
                        code_hash=code.code_hash,
                        client_id=code.client_id,
                        issued_at=now,
                        expires_at=expires_at,
                        revoked_at=None,
                    )
                )
        return True

    # userinfo

    async def userinfo(self, request: Request[Any, Any, Any]) -> Response[Any]:
        token = bearer_token(request.headers.get("authorization"))
        claims = self._access_claims(token)
        async with self.context.sessions() as session:
            issued = await session.get(IssuedTokenRow, str(claims.get("jti", "")))
        if issued is None or issued.revoked_at is not None:
            raise _invalid_token("the token was revoked")
        client = await self.clients.client(str(claims.get("client_id", "")))
        if client is None:
            raise _invalid_token("the token's client is no longer registered")
        async with self.context.sessions() as session:
            person = await session.scalar(
                select(PersonRow)
                .join(PseudonymRow, PseudonymRow.person_id == PersonRow.id)
                .where(PseudonymRow.sector == client.sector, PseudonymRow.pseudonym == claims["sub"])
            )
        if person is None or person.status != "active":
            raise _invalid_token("the token's subject is no longer active")
        document = _person_claims(
            claims["sub"], person.demographics, str(claims.get("scope", "")).split(), client
        )
        headers = {"Cache-Control": "no-store"}
        if client.userinfo_signed:
            key = self.signing_key()
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
        return discovery_document(self.issuer, self.signing_key().alg)


def _redirect(status: int, headers: Sequence[tuple[str, str]]) -> Response[bytes]:
    """authlib's redirect to the client, with no body (a ``None`` body would be sent as JSON ``null``)."""
    return Response(
        b"",
        status_code=status,
        media_type="text/plain",
        headers={**dict(headers), "Cache-Control": "no-store"},
    )


def _invalid_token(message: str) -> DpiError:
    return DpiError(
        "auth.token_invalid",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="dpi", error="invalid_token"'},
    )


def _person_claims(
    subject: str, demographics: Mapping[str, Any], scopes: Sequence[str], client: RegisteredClient
) -> dict[str, Any]:
    """The claims ``scopes`` release (OpenID Connect Core 1.0 section 5.4), names in the client's locale."""
    claims: dict[str, Any] = {"sub": subject}
    if "profile" in scopes:
        names = demographics.get("names", {})
        chosen = (
            names.get("arabic")
            if client.claims_locale == "ar" and names.get("arabic")
            else names.get("latin")
        )
        if isinstance(chosen, Mapping):
            given, family = chosen.get("given_name"), chosen.get("family_name")
            if given:
                claims["given_name"] = given
            if family:
                claims["family_name"] = family
            claims["name"] = " ".join(part for part in (given, family) if part)
        if demographics.get("date_of_birth"):
            claims["birthdate"] = demographics["date_of_birth"]
    if "phone" in scopes and demographics.get("phone"):
        claims["phone_number"] = demographics["phone"]
    return claims


def discovery_document(issuer: str, algorithm: str) -> dict[str, Any]:
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
        "id_token_signing_alg_values_supported": [algorithm],
        "userinfo_signing_alg_values_supported": [algorithm],
        "token_endpoint_auth_methods_supported": list(SUPPORTED_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint": f"{issuer}/introspect",
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint": f"{issuer}/revoke",
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(_CLAIMS),
        "claim_types_supported": ["normal"],
        "ui_locales_supported": list(LANGUAGES),
        "claims_locales_supported": list(LANGUAGES),
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
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
    "identity-userinfo@1.0.0",
    Body("identity-userinfo-jwt@1.0.0", "application/jwt"),
)


def _language(request: Request[Any, Any, Any], query: Sequence[tuple[str, str]]) -> str:
    return choose_language(dict(query).get("ui_locales"), request.headers.get("accept-language"))


def build_routes(
    context: BlockContext,
    register: PersonRegister,
    authenticator: OtpAuthenticator,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> list[HTTPRouteHandler]:
    """The OpenID provider's handlers, to mount under the block's ``/identity`` prefix.

    The cookie key is a 32-byte secret in ``<var_dir>/identity/session.key`` (created on first use);
    replacing it ends every sign-in in progress and every session, nothing more.
    """
    provider = _Provider(
        context,
        register,
        authenticator,
        ClientRegistry(context.sessions, clock=clock),
        cookie_key=load_or_create_key(context.settings.var_dir / "identity" / "session.key"),
        clock=clock,
    )

    @get(
        "/.well-known/openid-configuration",
        sync_to_thread=False,
        opt=Contract(
            "OpenID Provider Metadata (OpenID Connect Discovery 1.0 section 3)",
            {200: "identity-oidc-discovery@1.1.0"},
            tags=_TAGS,
            errors=_KERNEL_ERRORS,
        ).as_opt(),
    )
    def openid_configuration() -> Response[dict[str, Any]]:
        return Response(provider.discovery(), headers={"Cache-Control": "public, max-age=300"})

    @get(
        "/.well-known/jwks.json",
        sync_to_thread=False,
        opt=Contract(
            "The keys that sign ID tokens, access tokens and signed userinfo (RFC 7517)",
            {200: "jwks@1.0.0"},
            tags=_TAGS,
            errors=_KERNEL_ERRORS,
        ).as_opt(),
    )
    def jwks() -> Response[dict[str, Any]]:
        provider.signing_key()
        return Response(context.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})

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
        session, cookie = await provider.open_session(uin)
        person = await provider.person(session, client)
        server = _Server(provider, [client])
        oauth_request = _Request("GET", provider.url("/authorize"), query=flow.query)
        try:
            if person is None:
                raise InvalidRequestError("The person cannot sign in.")
            grant = server.get_consent_grant(oauth_request, end_user=person)
            provider._check_request(grant)
            response = await provider.issue_code(server, oauth_request, grant, person)
        except OAuth2Error as error:
            response = provider.oauth_error(error, language)
        response.set_cookie(cookie)
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
            request=Body("identity-oidc-token-request@1.0.0", _FORM),
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
        openid_configuration,
        jwks,
        authorize,
        authorize_by_form,
        identifier,
        one_time_code,
        token,
        userinfo,
        userinfo_by_post,
    ]
