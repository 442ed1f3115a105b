"""Fixtures shared by the identity tests: a token issuer of our own, the identity block wired to it, a
migrated database (SQLite and, when configured, PostgreSQL), the person register over it, and people."""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from litestar.testing import AsyncTestClient

import identity
from consent.client import ClaimReleaseRecorder
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block, BlockContext
from dpi.db import create_engine, session_factory
from dpi.keys import KeyRecord, SigningKey
from dpi.settings import Settings
from dpi.tokens import JwtTokenVerifier
from identity import oidc
from identity.authentication import OtpAuthenticator
from identity.block import identity_block
from identity.clients import ClientRegistry
from identity.oidc_tokens import build_token_routes
from identity.senders import MemoryOtpSender
from identity.service import PersonRegister
from identity.signing_keys import ProviderKeys

OPERATOR = "operator-centre-17-ahmed"
AUTHORITY = "civil-registrar-rabat"
EXCHANGE = "DPI/GOV/EXCHANGE/gateway"
LABOUR = "DPI/GOV/MOL/jobseekers"
HEALTH = "DPI/GOV/MOH/patients"
SECTORS = (LABOUR, HEALTH)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

AMINA: dict[str, Any] = {
    "names": {
        "latin": {"given_name": "Amina", "family_name": "El Idrissi"},
        "arabic": {"given_name": "أمينة", "family_name": "الإدريسي"},
    },
    "date_of_birth": "1990-04-12",
    "sex": "female",
    "place_of_birth": {"locality": "Fès", "country": "MA"},
    "address": {"line": "12 rue des Orangers", "locality": "Rabat", "postal_code": "10000", "country": "MA"},
    "phone": "+212612345678",
    "preferred_language": "ar",
}
YOUSSEF: dict[str, Any] = {
    "names": {"latin": {"given_name": "Youssef", "family_name": "Benali"}},
    "date_of_birth": "1985-01-30",
    "place_of_birth": {"locality": "Casablanca", "country": "MA"},
}


def amina() -> dict[str, Any]:
    return copy.deepcopy(AMINA)


def youssef() -> dict[str, Any]:
    return copy.deepcopy(YOUSSEF)


@dataclass
class TokenIssuer:
    """An OpenID provider stand-in: signs RFC 9068 access tokens with a key of its own."""

    issuer: str = "https://identity.test.example"
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("EdDSA"))

    def token(self, subject: str, *scopes: str, member: str | None = None) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "jti": str(uuid.uuid4()),
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + 300,
        }
        if member is not None:
            payload["member"] = member
        headers = {"kid": self.key.kid, "typ": "at+jwt"}
        return jwt.encode(payload, self.key.private_key, algorithm=self.key.alg, headers=headers)

    def headers(self, subject: str, *scopes: str, member: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, *scopes, member=member)}"}

    def verifier(self) -> JwtTokenVerifier:
        return JwtTokenVerifier(self.issuer, jwks={"keys": [self.key.public_jwk()]})


@dataclass
class Clock:
    """A clock the tests move."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def token_issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def identity_block_under_test(token_issuer: TokenIssuer, clock: Clock) -> Block:
    return identity_block(
        token_verifier=lambda _settings: token_issuer.verifier(), clock=clock, pseudonym_sectors=SECTORS
    )


@pytest.fixture
async def migrated(settings: Settings, identity_block_under_test: Block) -> Settings:
    await migrate(settings, [identity_block_under_test])
    return settings


@pytest.fixture
async def register(migrated: Settings, clock: Clock) -> AsyncIterator[PersonRegister]:
    """The person register over a migrated database, with fixed keys and the test clock."""
    engine = create_engine(migrated.database)
    try:
        yield PersonRegister(
            session_factory(engine),
            pseudonym_key=b"p" * 32,
            vid_key=b"v" * 32,
            clock=clock,
            pseudonym_sectors=SECTORS,
        )
    finally:
        await engine.dispose()


@pytest.fixture
async def identity_app(migrated: Settings, identity_block_under_test: Block) -> DpiApp:
    return create_app(migrated, blocks=[identity_block_under_test])


@pytest.fixture
async def identity_client(identity_app: DpiApp) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=identity_app) as client:
        yield client


# --- the OpenID provider, shared by the sign-in and token tests --------------------------------------------

RecorderFactory = Callable[[BlockContext], ClaimReleaseRecorder]
REDIRECT = "https://labour.example/callback"
HEALTH_REDIRECT = "https://health.example/callback"


@dataclass
class Provider:
    app: DpiApp
    http: httpx.AsyncClient
    sender: MemoryOtpSender
    register: PersonRegister
    clients: ClientRegistry
    clock: Clock
    secrets: dict[str, str]
    uin: str
    issuer: str


def _block(sender: MemoryOtpSender, clock: Clock, recorder: RecorderFactory | None) -> Block:
    def routes(context: BlockContext) -> list[Any]:
        register = PersonRegister(context.sessions, pseudonym_key=b"p" * 32, vid_key=b"v" * 32, clock=clock)
        authenticator = OtpAuthenticator(context.sessions, register, sender, secret=b"o" * 32, clock=clock)
        release_recorder = recorder(context) if recorder is not None else None
        return [
            *oidc.build_routes(context, register, authenticator, clock=clock, recorder=release_recorder),
            *build_token_routes(context, clock=clock),
        ]

    @asynccontextmanager
    async def keys_made(context: BlockContext) -> AsyncIterator[None]:
        await oidc.prepare_signing_keys(context)
        yield

    return Block(
        name="identity",
        prefix="/identity",
        version="0.1.0",
        routes=routes,
        lifespan=keys_made,
        migrations=Path(identity.__file__).parent / "migrations",
    )


@pytest.fixture
async def provider(settings: Settings) -> AsyncIterator[Provider]:
    async for opened in open_provider(settings):
        yield opened


async def open_provider(
    settings: Settings, recorder: RecorderFactory | None = None, beside: Sequence[Block] = ()
) -> AsyncIterator[Provider]:
    """The provider with its two clients and Amina enrolled; ``recorder`` records claim releases, and
    ``beside`` are blocks mounted in the same app (the consent block, for receipts)."""
    clock = Clock(now=datetime.now(UTC))
    sender = MemoryOtpSender()
    block = _block(sender, clock, recorder)
    await migrate(settings, [block, *beside])
    engine = create_engine(settings.database)
    sessions = session_factory(engine)
    register = PersonRegister(sessions, pseudonym_key=b"p" * 32, vid_key=b"v" * 32, clock=clock)
    clients = ClientRegistry(sessions, clock=clock, keys=ProviderKeys.of(settings))
    issued: dict[str, str] = {}
    for client_id, sector, uri, extra in (
        ("labour-portal", LABOUR, REDIRECT, {}),
        (
            "health-portal",
            HEALTH,
            HEALTH_REDIRECT,
            {"userinfo_signed_response_alg": "EdDSA", "claims_locale": "ar"},
        ),
    ):
        _, secret = await clients.add(
            {
                "client_id": client_id,
                "client_name": client_id.replace("-", " ").title(),
                "redirect_uris": [uri],
                "sector": sector,
                "scope": ["openid", "profile", "phone"],
                **extra,
            }
        )
        assert secret is not None
        issued[client_id] = secret
    record = await register.enrol(amina(), operator_id=OPERATOR, channel="assisted")
    app = create_app(settings, blocks=[block, *beside])
    try:
        async with AsyncTestClient(app=app) as http:
            http.follow_redirects = False
            yield Provider(
                app,
                http,
                sender,
                register,
                clients,
                clock,
                issued,
                record["uin"],
                f"{settings.public_url}/identity",
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    """One PS256 (RSA 3072) key for the whole run: making one takes a noticeable time."""
    return SigningKey.generate("PS256")


def install_key(directory: Path, key: SigningKey) -> None:
    """Make ``key`` the active key of the empty key store in ``directory`` (the store's file layout)."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / f"{key.kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key.private_pem())
    record = KeyRecord(kid=key.kid, alg=key.alg, created_at=datetime.now(UTC), status="active")
    (directory / f"{key.kid}.json").write_text(json.dumps(record.to_json()), encoding="utf-8")
