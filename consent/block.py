"""The consent block as the kernel sees it: routes under ``/consent``, its migrations, its background
work, its CLI and its chapter of the demo.

Registered under the entry-point group ``dpi.blocks`` as ``consent = "consent.block:block"``. One
:class:`ConsentRuntime` (service, checker, token verifier) exists per mounted app and is shared by the
routes and the background work.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx

from consent import api, background, demo
from consent.auth import JwtTokenVerifier, TokenVerifier
from consent.checks import ConsentChecker
from consent.cli import consent_group
from consent.service import ConsentService
from dpi.blocks import Block, BlockContext, ProfileClaim
from dpi.settings import Settings

__all__ = ["VERSION", "ConsentRuntime", "block", "consent_block", "jwt_verifier"]

VERSION: Final = "0.1.0"
_JWKS_CACHE_SECONDS: Final = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def jwt_verifier(settings: Settings) -> TokenVerifier:
    """The production verifier: access tokens of the issuer the kernel settings name
    (``DPI_TOKEN_ISSUER``, keys at ``DPI_TOKEN_JWKS_URL``)."""
    return JwtTokenVerifier(settings.access_token_issuer, jwks_url=settings.access_token_jwks_url)


def _webhook_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10.0, follow_redirects=False)


@dataclass
class ConsentRuntime:
    """What the block's routes and background work share within one app."""

    context: BlockContext
    service: ConsentService
    checker: ConsentChecker
    verifier: TokenVerifier
    webhook_client: Callable[[], httpx.AsyncClient]
    interval_seconds: float
    _jwks: tuple[float, dict[str, Any]] | None = field(default=None, repr=False)

    def published_keys(self) -> dict[str, Any]:
        """The block's JWKS (receipts, chain heads and notices are signed with the kernel's key store),
        re-read at most every few seconds so a rotation shows without parsing key files on every call."""
        now = time.monotonic()
        if self._jwks is None or now - self._jwks[0] > _JWKS_CACHE_SECONDS:
            self._jwks = (now, self.context.keys.jwks())
        return self._jwks[1]


def _issuer(settings: Settings) -> str:
    return settings.member_id if settings.member_id is not None else settings.public_url


def _capabilities(_settings: Settings) -> dict[str, Any]:
    return {
        "jwks_uri": "/consent/.well-known/jwks.json",
        "check": "/consent/v1/checks",
        "receipt_type": "dpi-consent-receipt+jws",
    }


def consent_block(
    *,
    token_verifier: Callable[[Settings], TokenVerifier] = jwt_verifier,
    webhook_client: Callable[[], httpx.AsyncClient] = _webhook_client,
    clock: Callable[[], datetime] = _utcnow,
    background_interval_seconds: float = 5.0,
) -> Block:
    """The consent block; the keyword arguments replace its collaborators (tests give a verifier for
    their own token issuer, a webhook client over a mock transport, a clock they control)."""
    runtimes: weakref.WeakKeyDictionary[BlockContext, ConsentRuntime] = weakref.WeakKeyDictionary()

    def runtime_for(context: BlockContext) -> ConsentRuntime:
        runtime = runtimes.get(context)
        if runtime is None:
            service = ConsentService(
                sessions=context.sessions, keys=context.keys, issuer=_issuer(context.settings), clock=clock
            )
            runtime = ConsentRuntime(
                context=context,
                service=service,
                checker=ConsentChecker(context.sessions, clock=clock),
                verifier=token_verifier(context.settings),
                webhook_client=webhook_client,
                interval_seconds=background_interval_seconds,
            )
            runtimes[context] = runtime
        return runtime

    return Block(
        name="consent",
        prefix="/consent",
        version=VERSION,
        routes=lambda context: api.build_routes(runtime_for(context)),
        lifespan=lambda context: background.lifespan(runtime_for(context)),
        cli=consent_group,
        demo=demo.load,
        migrations=Path(__file__).parent / "migrations",
        profiles=(ProfileClaim("consent", "1.0.0"),),
        capabilities=_capabilities,
    )


block: Final = consent_block()
