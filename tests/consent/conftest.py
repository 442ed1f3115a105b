"""Fixtures shared by the consent tests: a token issuer of our own, the consent block wired to it, a
migrated app serving the block (on SQLite and, when configured, PostgreSQL), and demo agreements."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from litestar.testing import AsyncTestClient

from consent.auth import JwtTokenVerifier
from consent.block import consent_block
from consent.demo import AGREEMENTS
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block
from dpi.keys import SigningKey
from dpi.settings import Settings

CONSUMER = "DPI/GOV/MOL/jobseekers"
PROVIDER = "DPI/GOV/MOI/civil-registry"
EXCHANGE = "DPI/GOV/EXCHANGE/gateway"
AMINA = "amina-pseudonym-7Q2XK9"
YOUSSEF = "youssef-pseudonym-4B8ZP1"
GUARDIAN = "guardian-pseudonym-2M5RT6"
MINOR = "minor-pseudonym-9K3WQ7LT"
OPERATOR = "operator-centre-17-ahmed"


@dataclass
class TokenIssuer:
    """An OpenID provider stand-in: signs RFC 9068 access tokens with a key of its own."""

    issuer: str = "https://identity.test.example"
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("EdDSA"))

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def token(
        self,
        subject: str,
        *scopes: str,
        member: str | None = None,
        lifetime: int = 300,
        header: dict[str, Any] | None = None,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        signer = key or self.key
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": "dpi",
            "client_id": "dpi-portal",
            "jti": str(uuid.uuid4()),
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + lifetime,
        }
        if member is not None:
            payload["member"] = member
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"kid": signer.kid, "typ": "at+jwt", **(header or {})}
        return jwt.encode(payload, signer.private_key, algorithm=signer.alg, headers=headers)

    def headers(self, subject: str, *scopes: str, member: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, *scopes, member=member)}"}

    def verifier(self) -> JwtTokenVerifier:
        return JwtTokenVerifier(self.issuer, jwks=self.jwks)


@pytest.fixture
def token_issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def consent_block_under_test(token_issuer: TokenIssuer) -> Block:
    """The consent block trusting ``token_issuer``; background rounds are left to the tests that want them."""
    return consent_block(
        token_verifier=lambda _settings: token_issuer.verifier(), background_interval_seconds=3600.0
    )


@pytest.fixture
async def consent_app(settings: Settings, consent_block_under_test: Block) -> DpiApp:
    """A migrated app with the kernel and the consent block, on each configured database."""
    await migrate(settings, [consent_block_under_test])
    return create_app(settings, blocks=[consent_block_under_test])


@pytest.fixture
async def consent_client(consent_app: DpiApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``consent_app`` with its lifespan running, as a server would."""
    async with AsyncTestClient(app=consent_app) as client:
        yield client


@pytest.fixture
def agreement_input() -> dict[str, Any]:
    """The Ministry of Labour's job-seeker agreement of the demo, as a publishing body."""
    return copy.deepcopy(dict(AGREEMENTS[0]))


@pytest.fixture
async def published_agreement(
    consent_client: httpx.AsyncClient, token_issuer: TokenIssuer, agreement_input: dict[str, Any]
) -> dict[str, Any]:
    response = await consent_client.post(
        "/consent/v1/agreements",
        json=agreement_input,
        headers=token_issuer.headers("registrar", "consent:admin"),
    )
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document
