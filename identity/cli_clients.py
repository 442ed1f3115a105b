"""The ``dpi identity client`` commands: register, list, show and disable OpenID clients.

``add`` reads the client's metadata (the ``identity-client`` schema) from a JSON file or standard input
and prints the stored metadata with the secret, shown this once; the provider's signing key for the
algorithm the client asks for is made in the key directory (``DPI_KEYS_DIR``) at the same time. Exit
codes: 0 done; 2 metadata the registry refuses, an unknown client, or a database that cannot be used, in
one line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from dpi import db
from dpi.errors import DpiError
from dpi.keys import KeyStoreError
from dpi.settings import Settings, SettingsError
from identity.clients import ClientRegistry
from identity.signing_keys import ProviderKeys

__all__ = ["client_group"]

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    click.echo(f"dpi identity client: {message}", err=True)
    sys.exit(2)


def _run(work: Callable[[ClientRegistry], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            registry = ClientRegistry(db.session_factory(engine), keys=ProviderKeys.of(settings))
            return await work(registry)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DpiError as error:
        problems = "; ".join(f"{detail.pointer or '/'}: {detail.message}" for detail in error.details)
        _fail(f"{error.custom_message or error.reason.message()}{' (' + problems + ')' if problems else ''}")
    except (SettingsError, KeyStoreError, SQLAlchemyError, OSError) as error:
        _fail(str(error).splitlines()[0] if str(error) else type(error).__name__)


def _print(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True))


@click.group("client")
def client_group() -> None:
    """Register and manage the OpenID provider's clients."""


@client_group.command("add")
@click.argument("metadata", type=click.File("r", encoding="utf-8"), default="-")
def add(metadata: Any) -> None:
    """Register the client described by METADATA (a JSON file, or - for standard input)."""
    try:
        document = json.load(metadata)
    except ValueError:
        _fail("the metadata is not JSON")
    stored, secret = _run(lambda registry: registry.add(document))
    _print({"client": stored, "client_secret": secret})


@client_group.command("list")
def list_clients() -> None:
    """Every registered client: id, status, sector, name."""
    for client in _run(lambda registry: registry.list()):
        click.echo(f"{client['client_id']}\t{client['status']}\t{client['sector']}\t{client['client_name']}")


@client_group.command("show")
@click.argument("client_id")
def show(client_id: str) -> None:
    """The metadata and status of CLIENT_ID."""
    _print(_run(lambda registry: registry.show(client_id)))


@client_group.command("disable")
@click.argument("client_id")
def disable(client_id: str) -> None:
    """Disable CLIENT_ID: no new sign-in, no code redeemed."""
    _run(lambda registry: registry.disable(client_id))
    click.echo(f"disabled {client_id}")
