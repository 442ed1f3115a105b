"""The identity block as the kernel sees it: routes under ``/identity``, its migrations, its background
work, its CLI and its chapter of the demo (:mod:`identity.demo`).

:data:`block` is built with no arguments and reads everything from the deployment's settings, ready to
be registered under the ``dpi.blocks`` entry points as ``identity = "identity.block:block"``; until it
is, mount it explicitly with ``dpi.app.create_app(settings, blocks=[block])``. One
:class:`IdentityRuntime` (register, token verifier) exists per mounted app.

Its secrets live in ``<var_dir>/identity/``: ``pseudonym.key`` derives every sector pseudonym (rotating
it re-keys every sector, see :mod:`identity.pseudonyms`), ``vid.key`` keys the hashes under which
virtual IDs are stored (replacing it makes every issued virtual ID unresolvable) and ``otp.key`` keys the
hashes of one-time codes (every process sharing the database must hold the same one). Each is 32 random
bytes, mode 0600, created on first use.

One-time codes reach people through the sender ``DPI_OTP_SENDER`` names: the console (development and
the demo) or an SMS gateway. Expired code transactions are purged by the block's background task.

A person's choice of the claims a client receives is kept ``consent_ttl`` (180 days by default). With a
``release_recorder`` (for instance :meth:`consent.client.InProcessClaimReleaseRecorder.over` when the
consent block is mounted in the same app) each choice is also a consent of the consent block with a
signed receipt; without one the choice is stored and no receipt is produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from litestar.handlers import HTTPRouteHandler

from consent.client import ClaimReleaseRecorder, InProcessClaimReleaseRecorder
from dpi.blocks import Block, BlockContext
from dpi.settings import Settings
from dpi.tokens import JwtTokenVerifier, TokenVerifier
from identity import api, demo, oidc, oidc_tokens
from identity.authentication import OtpAuthenticator, OtpPolicy
from identity.claim_consent import CONSENT_TTL
from identity.cli import identity_group
from identity.pseudonyms import load_or_create_key
from identity.senders import ConsoleOtpSender, HttpSmsGatewaySender, OtpSender
from identity.service import PersonRegister

__all__ = [
    "DEFAULT_OTP_POLICY",
    "DEMO_PROVIDER",
    "VERSION",
    "IdentityRuntime",
    "block",
    "configured_sender",
    "consent_block_recorder",
    "identity_block",
    "jwt_verifier",
    "key_paths",
    "otp_key_path",
    "provider_subsystem",
]

VERSION: Final = "0.1.0"
_log = logging.getLogger("identity.block")
DEFAULT_OTP_POLICY: Final = OtpPolicy()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def jwt_verifier(settings: Settings) -> TokenVerifier:
    """The production verifier: access tokens of the issuer the kernel settings name."""
    return JwtTokenVerifier(settings.access_token_issuer, jwks_url=settings.access_token_jwks_url)


def key_paths(settings: Settings) -> tuple[Path, Path]:
    """Where the pseudonym key and the virtual-ID key of this deployment live."""
    directory = settings.var_dir / "identity"
    return directory / "pseudonym.key", directory / "vid.key"


def otp_key_path(settings: Settings) -> Path:
    return settings.var_dir / "identity" / "otp.key"


def configured_sender(settings: Settings) -> OtpSender:
    """The OTP sender ``DPI_OTP_SENDER`` names."""
    if settings.otp_sender == "http" and settings.sms_gateway_url is not None:
        return HttpSmsGatewaySender(settings.sms_gateway_url, token=settings.sms_gateway_token)
    return ConsoleOtpSender()


@dataclass
class IdentityRuntime:
    """What the block's routes share within one app."""

    context: BlockContext
    register: PersonRegister
    verifier: TokenVerifier
    authenticator: OtpAuthenticator
    recorder: ClaimReleaseRecorder | None = None


def identity_block(
    *,
    token_verifier: Callable[[Settings], TokenVerifier] = jwt_verifier,
    otp_sender: Callable[[Settings], OtpSender] = configured_sender,
    clock: Callable[[], datetime] = _utcnow,
    pseudonym_sectors: Sequence[str] = (),
    purge_interval_seconds: float = 3600.0,
    release_recorder: Callable[[BlockContext], ClaimReleaseRecorder] | None = None,
    consent_ttl: timedelta = CONSENT_TTL,
    otp_policy: OtpPolicy = DEFAULT_OTP_POLICY,
    demo_people: int = demo.DEFAULT_PEOPLE,
) -> Block:
    """The identity block; tests give a verifier for their own token issuer and a clock they control.

    ``pseudonym_sectors`` get a pseudonym for every person at enrolment (so the exchange can translate
    from them at once); other sectors get one when it is first handed out. ``otp_policy`` replaces the
    one-time-code limits of the contract (a load test raises the per-client rate; deployments keep the
    default). ``demo_people`` is how many synthetic people ``dpi demo`` enrols.
    """
    runtimes: weakref.WeakKeyDictionary[BlockContext, IdentityRuntime] = weakref.WeakKeyDictionary()

    def runtime_for(context: BlockContext) -> IdentityRuntime:
        runtime = runtimes.get(context)
        if runtime is None:
            pseudonym_path, vid_path = key_paths(context.settings)
            register = PersonRegister(
                context.sessions,
                pseudonym_key=load_or_create_key(pseudonym_path),
                vid_key=load_or_create_key(vid_path),
                clock=clock,
                pseudonym_sectors=pseudonym_sectors,
            )
            authenticator = OtpAuthenticator(
                context.sessions,
                register,
                otp_sender(context.settings),
                secret=load_or_create_key(otp_key_path(context.settings)),
                clock=clock,
                policy=otp_policy,
            )
            runtime = IdentityRuntime(
                context=context,
                register=register,
                verifier=token_verifier(context.settings),
                authenticator=authenticator,
                recorder=release_recorder(context) if release_recorder is not None else None,
            )
            runtimes[context] = runtime
        return runtime

    return Block(
        name="identity",
        prefix="/identity",
        version=VERSION,
        routes=lambda context: _routes(runtime_for(context), clock, consent_ttl),
        cli=identity_group,
        lifespan=lambda context: _serving(runtime_for(context), purge_interval_seconds),
        demo=lambda context: _demo(context, demo_people),
        migrations=Path(__file__).parent / "migrations",
    )


async def _demo(context: BlockContext, people: int) -> list[str]:
    pseudonym_path, vid_path = key_paths(context.settings)
    return await demo.load(
        context,
        pseudonym_key=load_or_create_key(pseudonym_path),
        vid_key=load_or_create_key(vid_path),
        people=people,
    )


def _routes(
    runtime: IdentityRuntime, clock: Callable[[], datetime], consent_ttl: timedelta
) -> list[HTTPRouteHandler]:
    """The register's operator API, the OpenID provider, and token introspection and revocation."""
    return [
        *api.build_routes(runtime),
        *oidc.build_routes(
            runtime.context,
            runtime.register,
            runtime.authenticator,
            clock=clock,
            recorder=runtime.recorder,
            consent_ttl=consent_ttl,
        ),
        *oidc_tokens.build_token_routes(runtime.context, clock=clock),
    ]


@asynccontextmanager
async def _serving(runtime: IdentityRuntime, interval_seconds: float) -> AsyncIterator[None]:
    """The signing keys of the registered clients' algorithms made, then the purge for the app's life."""
    await oidc.prepare_signing_keys(runtime.context)
    async with _purging(runtime, interval_seconds):
        yield


@asynccontextmanager
async def _purging(runtime: IdentityRuntime, interval_seconds: float) -> AsyncIterator[None]:
    """Delete one-time-code rows no rule needs any more, every ``interval_seconds``, for the app's life."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await runtime.authenticator.purge()
            except Exception as error:  # a failed round is retried next time; the app keeps serving
                _log.error(
                    "identity purge failed",
                    extra={"event": "identity_purge_failed", "exception_type": type(error).__name__},
                )

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


DEMO_PROVIDER: Final = "DPI/GOV/MOI/identity"


def provider_subsystem(settings: Settings) -> str:
    """The OpenID provider's subsystem id, the provider of the consents that record claim releases:
    ``DPI_IDENTITY_SUBSYSTEM``, else ``DPI_MEMBER_ID`` (its ``identity`` subsystem when it names a
    member), else the demo's :data:`DEMO_PROVIDER`."""
    if settings.identity_subsystem is not None:
        return settings.identity_subsystem
    member = settings.member_id
    if member is not None:
        return member if member.count("/") == 3 else f"{member}/identity"
    return DEMO_PROVIDER


def consent_block_recorder(context: BlockContext) -> ClaimReleaseRecorder:
    """Claim releases recorded, with their signed receipts, by the consent block of the same deployment
    (its tables and keys, in-process)."""
    return InProcessClaimReleaseRecorder.over(context, provider=provider_subsystem(context.settings))


# The registered block: installed beside the consent block, every claim release gets a signed receipt.
block: Final = identity_block(release_recorder=consent_block_recorder)
