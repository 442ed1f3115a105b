"""The registry block as the kernel sees it: routes under ``/registry``, its migrations, the indexes its
registry definitions ask for, its CLI and its chapter of the demo.

To be registered under the entry-point group ``dpi.blocks`` as ``registry = "registry.block:block"``.
One :class:`RegistryRuntime` (service and token verifier) exists per mounted app.
"""

from __future__ import annotations

import hashlib
import hmac
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from dpi.blocks import Block, BlockContext
from dpi.settings import Settings
from registry import api, changes, demo
from registry.auth import JwtTokenVerifier, TokenVerifier
from registry.cli import registry_group
from registry.dci import api as dci_api
from registry.dci import background as dci_background
from registry.dci.cli import sender_group
from registry.dci.search import Searcher
from registry.definition import RegistryDefinition, load_definitions
from registry.keyfile import subject_key
from registry.service import RegistryService, ensure_indexes

__all__ = ["VERSION", "RegistryRuntime", "block", "jwt_verifier", "registry_block"]

VERSION: Final = "0.1.0"

registry_group.add_command(sender_group)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def jwt_verifier(settings: Settings) -> TokenVerifier:
    """Access tokens of the issuer the kernel settings name (``DPI_TOKEN_ISSUER``, ``DPI_TOKEN_JWKS_URL``)."""
    return JwtTokenVerifier(settings.access_token_issuer, jwks_url=settings.access_token_jwks_url)


@dataclass
class RegistryRuntime:
    """What the block's routes and background work share within one app."""

    context: BlockContext
    service: RegistryService
    verifier: TokenVerifier
    dci: dci_api.DciRuntime


def _capabilities(definitions: Mapping[str, RegistryDefinition]) -> Callable[[Settings], dict[str, Any]]:
    def capabilities(_settings: Settings) -> dict[str, Any]:
        return {
            "registries": [
                {
                    "code": definition.code,
                    "record_types": list(definition.record_types),
                    "identifiers": sorted({field.type for field in definition.identifiers}),
                    "definition": f"/registry/{definition.code}/v1/definition",
                    "dci": dci_api.capabilities_document(definition),
                }
                for definition in definitions.values()
            ]
        }

    return capabilities


def registry_block(
    *,
    token_verifier: Callable[[Settings], TokenVerifier] = jwt_verifier,
    definitions: Mapping[str, RegistryDefinition] | None = None,
    clock: Callable[[], datetime] = _utcnow,
    dci_interval_seconds: float = 2.0,
) -> Block:
    """The registry block; tests give a verifier for their own token issuer, or other definitions, and
    may stop the DCI callback dispatcher (``dci_interval_seconds=0``) to run it themselves."""
    hosted = definitions if definitions is not None else load_definitions()
    runtimes: weakref.WeakKeyDictionary[BlockContext, RegistryRuntime] = weakref.WeakKeyDictionary()

    def runtime_for(context: BlockContext) -> RegistryRuntime:
        runtime = runtimes.get(context)
        if runtime is None:
            key = subject_key(context.settings)
            service = RegistryService(context.sessions, hosted, subject_key=key, clock=clock)
            member = context.settings.member_id
            dci = dci_api.DciRuntime(
                service=service,
                searcher=Searcher(service, cursor_key=hmac.new(key, b"dci-cursor", hashlib.sha256).digest()),
                keys=context.keys,
                system_id=lambda code: member or f"registry:{code}",
                clock=clock,
            )
            runtime = RegistryRuntime(
                context=context, service=service, verifier=token_verifier(context.settings), dci=dci
            )
            runtimes[context] = runtime
        return runtime

    @asynccontextmanager
    async def lifespan(context: BlockContext) -> AsyncIterator[None]:
        # The indexes a definition asks for exist before the first search, and those a killed bulk load
        # left missing come back (one catalogue read when they all exist).
        async with context.engine.begin() as connection:
            await connection.run_sync(ensure_indexes, hosted)
        if dci_interval_seconds <= 0:
            yield
            return
        async with dci_background.running(
            runtime_for(context).dci, context.settings, interval_seconds=dci_interval_seconds
        ):
            yield

    return Block(
        name="registry",
        prefix="/registry",
        version=VERSION,
        routes=lambda context: [
            *api.build_routes(runtime_for(context)),
            *dci_api.build_routes(runtime_for(context).dci),
            *changes.build_routes(runtime_for(context), clock),
        ],
        lifespan=lifespan,
        cli=registry_group,
        demo=lambda context: demo.load(runtime_for(context).service),
        migrations=Path(__file__).parent / "migrations",
        capabilities=_capabilities(hosted),
    )


block: Final = registry_block()
