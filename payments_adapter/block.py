"""The payments block as the kernel sees it: routes under ``/payments``, its migrations, its CLI, and its
background work (delivering status events to webhooks).

Registered under the entry-point group ``dpi.blocks`` as ``payments = "payments_adapter.block:block"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tomllib
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final

import httpx

from dpi.blocks import Block, BlockContext
from dpi.errors import DpiError
from dpi.settings import Settings
from dpi.tokens import JwtTokenVerifier, TokenVerifier
from payments_adapter.contract import ENTRY_POINT_GROUP, BeneficiaryAccounts, PaymentProvider
from payments_adapter.engine import Disburser, RetryPolicy
from payments_adapter.service import DisbursementService
from payments_adapter.webhooks import WebhookRegistry, dispatch_once

__all__ = [
    "MIGRATIONS",
    "PROVIDERS_FILE_VARIABLE",
    "VERSION",
    "PaymentsRuntime",
    "ProviderConfigError",
    "block",
    "load_provider",
    "payments_block",
    "provider_configs",
]

PROVIDERS_FILE_VARIABLE: Final = "DPI_PAYMENTS_PROVIDERS"
_log = logging.getLogger("payments_adapter")

VERSION: Final = "0.1.0"
MIGRATIONS: Final = Path(__file__).parent / "migrations"


class ProviderConfigError(ValueError):
    """The providers file cannot be read, or names no such provider or factory."""


def _providers_file(settings: Settings, path: Path | None) -> Path | None:
    if path is not None:
        return path
    named = os.environ.get(PROVIDERS_FILE_VARIABLE, "").strip()
    if named:
        return Path(named)
    default = settings.var_dir / "payments-providers.toml"
    return default if default.exists() else None


def provider_configs(settings: Settings, path: Path | None = None) -> dict[str, dict[str, str]]:
    """The configured providers: name -> options (``factory`` names the entry point, default the name).

    Read from ``path``, else the file named by ``DPI_PAYMENTS_PROVIDERS``, else
    ``<var_dir>/payments-providers.toml``; one TOML table per provider::

        [providers.wallet1]
        factory = "sandbox"
        database_url = "postgresql+asyncpg://dpi@db/dpi?search_path=sandbox_wallet1"
        lost_response_rate = "0.01"

    Without any file there is one provider, ``sandbox``, with its ledger in
    ``<var_dir>/payments-sandbox.sqlite3``.
    """
    file = _providers_file(settings, path)
    if file is None:
        ledger = settings.var_dir / "payments-sandbox.sqlite3"
        return {"sandbox": {"factory": "sandbox", "database_url": f"sqlite+aiosqlite:///{ledger}"}}
    try:
        document: dict[str, Any] = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ProviderConfigError(f"payments providers file {file}: {error}") from None
    tables = document.get("providers")
    if not isinstance(tables, dict):
        raise ProviderConfigError(f"payments providers file {file}: no [providers.NAME] table")
    configs: dict[str, dict[str, str]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ProviderConfigError(f"payments providers file {file}: providers.{name} is not a table")
        configs[name] = {key: str(value) for key, value in table.items()}
    return configs


def load_provider(name: str, settings: Settings, path: Path | None = None) -> PaymentProvider:
    """Build the provider ``name`` from its configuration, through its ``dpi.payment_providers`` factory."""
    configs = provider_configs(settings, path)
    if name not in configs:
        raise ProviderConfigError(
            f"no payment provider {name!r} is configured (known: {', '.join(sorted(configs))})"
        )
    config = dict(configs[name])
    factory_name = config.pop("factory", name)
    found = [entry for entry in entry_points(group=ENTRY_POINT_GROUP) if entry.name == factory_name]
    if not found:
        raise ProviderConfigError(f"no payment provider factory {factory_name!r} is installed")
    factory = found[0].load()
    provider = factory(name, config)
    if not isinstance(provider, PaymentProvider):
        raise ProviderConfigError(f"factory {factory_name!r} did not build a PaymentProvider")
    return provider


def _jwt_verifier(settings: Settings) -> TokenVerifier:
    return JwtTokenVerifier(settings.access_token_issuer, jwks_url=settings.access_token_jwks_url)


def _webhook_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10), follow_redirects=False)


@dataclass
class PaymentsRuntime:
    """What the block's routes and background work share within one app: the service, the providers
    built from configuration, the disbursements running in this process, the webhooks."""

    context: BlockContext
    service: DisbursementService
    verifier: TokenVerifier
    webhooks: WebhookRegistry
    accounts: BeneficiaryAccounts | None
    providers_file: Path | None
    webhook_client: Callable[[], httpx.AsyncClient]
    interval: timedelta
    retry: RetryPolicy
    _providers: dict[str, PaymentProvider] = field(default_factory=dict)
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def provider(self, name: str) -> PaymentProvider:
        """The configured provider ``name`` (built once per app); ``payments.provider.unknown`` otherwise."""
        if name not in self._providers:
            try:
                self._providers[name] = load_provider(name, self.context.settings, self.providers_file)
            except (ProviderConfigError, ValueError) as error:
                raise DpiError("payments.provider.unknown", str(error)) from None
        return self._providers[name]

    def running(self, batch_id: str) -> bool:
        task = self._running.get(batch_id)
        return task is not None and not task.done()

    def start(self, batch_id: str, provider_name: str, *, actor: str) -> None:
        """Drive a batch in the background (once per batch in this process; the engine's leases keep
        two processes from paying the same item)."""
        if self.running(batch_id):
            return
        disburser = Disburser(
            self.context.engine, self.provider(provider_name), actor=actor, retry=self.retry
        )
        self._running[batch_id] = asyncio.create_task(disburser.run(batch_id), name=f"payments-{batch_id}")

    async def aclose(self) -> None:
        for task in self._running.values():
            task.cancel()
        for task in self._running.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()


def payments_block(
    *,
    token_verifier: Callable[[Settings], TokenVerifier] = _jwt_verifier,
    webhook_client: Callable[[], httpx.AsyncClient] = _webhook_client,
    accounts: BeneficiaryAccounts | None = None,
    providers_file: Path | None = None,
    background_interval: timedelta = timedelta(seconds=2),
    retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, shared safely
) -> Block:
    """The payments block; the keyword arguments replace its collaborators (tests give a verifier for
    their own token issuer, a webhook client over a mock transport, the mapper as ``accounts``)."""
    from payments_adapter.api import build_routes
    from payments_adapter.cli import payments_group

    runtimes: weakref.WeakKeyDictionary[BlockContext, PaymentsRuntime] = weakref.WeakKeyDictionary()

    def runtime_for(context: BlockContext) -> PaymentsRuntime:
        runtime = runtimes.get(context)
        if runtime is None:
            runtime = PaymentsRuntime(
                context=context,
                service=DisbursementService(context.engine),
                verifier=token_verifier(context.settings),
                webhooks=WebhookRegistry(context.engine),
                accounts=accounts,
                providers_file=providers_file,
                webhook_client=webhook_client,
                interval=background_interval,
                retry=retry,
            )
            runtimes[context] = runtime
        return runtime

    @asynccontextmanager
    async def lifespan(context: BlockContext) -> AsyncIterator[None]:
        runtime = runtime_for(context)

        async def deliver(client: httpx.AsyncClient) -> None:
            while True:
                await asyncio.sleep(runtime.interval.total_seconds())
                try:
                    await dispatch_once(
                        context.engine,
                        context.sessions,
                        context.keys.active(),
                        client,
                        allow_private_networks=context.settings.allow_private_callbacks,
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    # The type only: a database or HTTP error message can quote a beneficiary's id.
                    _log.warning(
                        "payments webhook delivery failed",
                        extra={"event": "payments_dispatch_failed", "exception_type": type(error).__name__},
                    )

        async with runtime.webhook_client() as client:
            task = asyncio.create_task(deliver(client), name="payments-webhooks")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await runtime.aclose()

    return Block(
        name="payments",
        prefix="/payments",
        version=VERSION,
        routes=lambda context: build_routes(runtime_for(context)),
        lifespan=lifespan,
        cli=payments_group,
        migrations=MIGRATIONS,
    )


block: Final = payments_block()
