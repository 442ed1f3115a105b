"""The payments block as the kernel sees it: routes under ``/payments``, its migrations and its CLI.

Registered under the entry-point group ``dpi.blocks`` as ``payments = "payments_adapter.block:block"``.
"""

from __future__ import annotations

import os
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final

from dpi.blocks import Block
from dpi.settings import Settings
from payments_adapter.contract import ENTRY_POINT_GROUP, PaymentProvider

__all__ = [
    "MIGRATIONS",
    "PROVIDERS_FILE_VARIABLE",
    "VERSION",
    "ProviderConfigError",
    "block",
    "load_provider",
]

PROVIDERS_FILE_VARIABLE: Final = "DPI_PAYMENTS_PROVIDERS"

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


def _build() -> Block:
    from payments_adapter.cli import payments_group

    return Block(
        name="payments", prefix="/payments", version=VERSION, migrations=MIGRATIONS, cli=payments_group
    )


block: Final = _build()
