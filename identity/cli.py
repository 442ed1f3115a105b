"""The ``dpi identity`` commands."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from dpi.keys import KeyStoreError
from dpi.settings import Settings, SettingsError
from identity.cli_clients import client_group
from identity.signing_keys import ID_TOKEN_ALGORITHMS, ProviderKeys

__all__ = ["identity_group"]


@click.group(name="identity")
def identity_group() -> None:
    """The identity block: OpenID clients and the provider's signing keys."""


identity_group.add_command(client_group, name="client")


@identity_group.group("keys")
def keys_group() -> None:
    """The OpenID provider's signing keys, one active key per algorithm (in DPI_KEYS_DIR)."""


@keys_group.command("rotate")
@click.option("--alg", "algorithm", type=click.Choice(ID_TOKEN_ALGORITHMS), required=True)
def rotate(algorithm: str) -> None:
    """Make a new active key for ALG; the key it replaces stays in the JWKS for DPI_KEY_GRACE_SECONDS,
    so ID tokens and signed userinfo signed before still verify. Every process sharing the key
    directory signs with the new key from its next token."""
    try:
        settings = Settings.from_environment()
        key = ProviderKeys.of(settings).rotate(algorithm, timedelta(seconds=settings.key_grace_seconds))
    except (SettingsError, KeyStoreError, OSError) as error:
        click.echo(f"dpi identity keys: {str(error).splitlines()[0] if str(error) else error!r}", err=True)
        sys.exit(2)
    click.echo(f"{algorithm}: new active key {key.kid}")
