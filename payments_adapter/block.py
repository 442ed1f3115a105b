"""The payments block as the kernel sees it: routes under ``/payments``, its migrations, its CLI, and its
background work (delivering status events to webhooks).

Registered under the entry-point group ``dpi.blocks`` as ``payments = "payments_adapter.block:block"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

from dpi.blocks import Block, BlockContext, ProfileClaim
from dpi.errors import DpiError
from dpi.settings import Settings
from dpi.tokens import JwtTokenVerifier, TokenVerifier
from payments_adapter.contract import ENTRY_POINT_GROUP, BeneficiaryAccounts, PaymentProvider
from payments_adapter.engine import Disburser, RetryPolicy
from payments_adapter.g2p import server as g2p_server
from payments_adapter.mapper import api as mapper_api
from payments_adapter.mapper.cli import mapper_group
from payments_adapter.mapper.service import beneficiary_accounts
from payments_adapter.mojaloop import MojaloopProvider
from payments_adapter.mojaloop import routes as fspiop_routes
from payments_adapter.service import DisbursementService
from payments_adapter.webhooks import WebhookRegistry, dispatch_once

__all__ = [
    "MIGRATIONS",
    "VERSION",
    "G2pOptions",
    "PaymentsRuntime",
    "ProviderConfigError",
    "block",
    "g2p_options",
    "load_provider",
    "payments_block",
    "provider_configs",
]

_log = logging.getLogger("payments_adapter")

VERSION: Final = "0.1.0"
MIGRATIONS: Final = Path(__file__).parent / "migrations"


class ProviderConfigError(ValueError):
    """The providers file cannot be read, or names no such provider or factory."""


def _providers_file(settings: Settings, path: Path | None) -> Path | None:
    if path is not None:
        return path
    if settings.payments_providers is not None:
        return settings.payments_providers
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


@dataclass(frozen=True)
class G2pOptions:
    """Who may send G2P Connect ``disburse`` requests to this block, and which provider pays them."""

    provider: str | None
    senders_file: Path | None


def g2p_options(settings: Settings, path: Path | None = None) -> G2pOptions:
    """The ``[g2p]`` table of the providers file::

        [g2p]
        provider = "wallet1"             # a provider of [providers.NAME]; default "sandbox" if configured
        senders = "g2p-senders.json"     # relative to the file; default <var_dir>/payments-g2p-senders.json

    With no provider named and no ``sandbox`` configured, the G2P Connect API is not served. Without a
    senders file it is served but refuses every sender (``payments.g2p.sender_unknown``): senders are
    registered by an operator, never by a request.
    """
    file = _providers_file(settings, path)
    table: dict[str, Any] = {}
    if file is not None:
        try:
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ProviderConfigError(f"payments providers file {file}: {error}") from None
        found = document.get("g2p", {})
        if not isinstance(found, dict):
            raise ProviderConfigError(f"payments providers file {file}: [g2p] is not a table")
        table = found
    provider = str(table["provider"]) if "provider" in table else None
    if provider is None and "sandbox" in provider_configs(settings, path):
        provider = "sandbox"
    if "senders" in table:
        named = Path(str(table["senders"]))
        senders: Path | None = named if named.is_absolute() or file is None else file.parent / named
    else:
        default = settings.var_dir / "payments-g2p-senders.json"
        senders = default if default.exists() else None
    return G2pOptions(provider, senders)


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
    _g2p: g2p_server.DisburseServer | None = None
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def provider(self, name: str) -> PaymentProvider:
        """The configured provider ``name`` (built once per app); ``payments.provider.unknown`` otherwise."""
        if name not in self._providers:
            try:
                self._providers[name] = load_provider(name, self.context.settings, self.providers_file)
            except (ProviderConfigError, ValueError) as error:
                raise DpiError("payments.provider.unknown", str(error)) from None
        return self._providers[name]

    def g2p(self) -> g2p_server.DisburseServer | None:
        """The G2P Connect disburse API of this app, paying through the provider the ``[g2p]`` table names
        (None when no provider is named for it)."""
        if self._g2p is None:
            settings = self.context.settings
            options = g2p_options(settings, self.providers_file)
            if options.provider is None:
                return None
            try:
                senders = g2p_server.load_senders(options.senders_file) if options.senders_file else {}
            except (OSError, ValueError) as error:
                raise ProviderConfigError(f"G2P Connect senders file: {error}") from None
            self._g2p = g2p_server.DisburseServer.for_block(
                self.context,
                provider=self.provider(options.provider),
                senders=senders,
                system_id=settings.member_id or settings.public_url,
            )
        return self._g2p

    def fspiop_providers(self) -> list[MojaloopProvider]:
        """The configured Mojaloop providers, whose callbacks this app must receive."""
        configs = provider_configs(self.context.settings, self.providers_file)
        names = [name for name, config in configs.items() if config.get("factory", name) == "mojaloop"]
        providers = [self.provider(name) for name in names]
        return [provider for provider in providers if isinstance(provider, MojaloopProvider)]

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

    payments_group.add_command(mapper_group, "mapper")

    runtimes: weakref.WeakKeyDictionary[BlockContext, PaymentsRuntime] = weakref.WeakKeyDictionary()

    def runtime_for(context: BlockContext) -> PaymentsRuntime:
        runtime = runtimes.get(context)
        if runtime is None:
            runtime = PaymentsRuntime(
                context=context,
                service=DisbursementService(context.engine),
                verifier=token_verifier(context.settings),
                webhooks=WebhookRegistry(context.engine),
                accounts=accounts if accounts is not None else beneficiary_accounts(context),
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

        g2p = runtime.g2p()
        async with (
            runtime.webhook_client() as client,
            g2p_server.running(g2p) if g2p is not None else contextlib.nullcontext(),
        ):
            task = asyncio.create_task(deliver(client), name="payments-webhooks")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await runtime.aclose()

    def routes(context: BlockContext) -> list[Any]:
        runtime = runtime_for(context)
        handlers: list[Any] = [*build_routes(runtime), *mapper_api.routes(context, verifier=runtime.verifier)]
        g2p = runtime.g2p()
        if g2p is not None:
            handlers.extend(g2p_server.routes(g2p))
        handlers.extend(fspiop_routes(provider) for provider in runtime.fspiop_providers())
        return handlers

    async def demo(context: BlockContext) -> list[str]:
        from payments_adapter.demo import load

        return await load(context)

    def capabilities(settings: Settings) -> dict[str, Any]:
        entry = mapper_api.capabilities()
        if g2p_options(settings, providers_file).provider is not None:
            entry.update(g2p_server.capabilities_for(settings.member_id or settings.public_url))
        return entry

    return Block(
        name="payments",
        prefix="/payments",
        version=VERSION,
        routes=routes,
        lifespan=lifespan,
        cli=payments_group,
        migrations=MIGRATIONS,
        profiles=(ProfileClaim("payments-provider", "1.0.0"),),
        capabilities=capabilities,
        demo=demo,
        demo_after=("consent", "identity", "registry"),
    )


block: Final = payments_block()
