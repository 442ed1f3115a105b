"""The ``dpi`` command: serve and demo the blocks, migrate, manage keys, and reach the
``standards`` and ``conformance`` tools.

Every failure a user can cause ends with one clear line on standard error and exit code 2,
never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from conformance_tests.cli import conformance_group
from dpi import db
from dpi.app import migrate, migration_state
from dpi.blocks import Block, BlockContext, BlockError, demo_order, discover_blocks, select_blocks
from dpi.keys import KeyStore, KeyStoreError
from dpi.settings import SETTINGS, Settings, SettingsError
from standards.cli import standards_group

__all__ = ["main"]

P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str) -> None:
    click.echo(f"dpi: {message}", err=True)
    sys.exit(2)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _clear_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn configuration, key-store, file-system and database errors into one line and exit code 2."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (SettingsError, BlockError, KeyStoreError) as error:
            _fail(str(error))
        except _DatabaseUnavailable as error:
            _fail(str(error))
        except OSError as error:
            _fail(_first_line(error))
        raise AssertionError("unreachable")

    return run


class _DatabaseUnavailable(Exception):
    pass


def _database_errors(function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Name the database (password hidden) and the driver's first line when it cannot be used."""

    @wraps(function)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await function(*args, **kwargs)
        except (SQLAlchemyError, OSError) as error:
            cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
            try:
                url = make_url(Settings.from_environment().database).render_as_string(hide_password=True)
            except (SettingsError, ArgumentError):
                url = "(unreadable DPI_DATABASE_URL)"
            raise _DatabaseUnavailable(f"database {url}: {_first_line(cause)}") from None

    return run


def _settings(**overrides: Any) -> Settings:
    settings = Settings.from_environment()
    changes = {key: value for key, value in overrides.items() if value is not None}
    return settings.with_overrides(**changes) if changes else settings


@_database_errors
async def _migrate(settings: Settings) -> db.MigrationState:
    return await migrate(settings, select_blocks(discover_blocks(), settings.blocks))


async def _load_demo(settings: Settings, blocks: list[Block]) -> list[str]:
    """Each block's chapter of the demo story; blocks load it idempotently, so restarts are safe."""
    engine = db.create_engine(settings.database)
    context = BlockContext(
        settings=settings,
        engine=engine,
        sessions=db.session_factory(engine),
        keys=KeyStore(settings.key_directory),
    )
    lines: list[str] = []
    try:
        for block in demo_order(blocks):
            if block.demo is not None:
                lines += await block.demo(context)
    finally:
        await engine.dispose()
    return lines


def _export_settings(settings: Settings) -> None:
    """Hand the settings chosen on the command line to the server's worker processes."""
    os.environ["DPI_HOST"] = settings.host
    os.environ["DPI_PORT"] = str(settings.port)
    os.environ["DPI_VAR_DIR"] = str(settings.var_dir)
    os.environ["DPI_ALLOW_PRIVATE_CALLBACKS"] = "true" if settings.allow_private_callbacks else "false"
    if settings.blocks is not None:
        os.environ["DPI_BLOCKS"] = ",".join(settings.blocks)


def _ensure_port_free(settings: Settings) -> None:
    """Refuse to start on an address another process already listens on.

    The server binds with SO_REUSEPORT, which would otherwise let two deployments (each with its own
    database and keys) silently share one port.
    """
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            raise SettingsError(
                f"DPI_PORT: cannot listen on {settings.host}:{settings.port} ({error.strerror or error})"
            ) from None


def _serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    _ensure_port_free(settings)
    _export_settings(settings)
    Granian(
        target="dpi.app:application_from_environment",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        log_enabled=False,
    ).serve()


@click.group()
@click.version_option(package_name="dpi-blocks", prog_name="dpi")
def main() -> None:
    """dpi-blocks: identity, registries, consent, a consent-enforcing exchange, payments."""


@main.command()
@click.option("--blocks", help="Comma-separated blocks to serve (default: every installed block).")
@click.option("--host", help="Address to listen on (DPI_HOST).")
@click.option("--port", type=int, help="Port to listen on (DPI_PORT).")
@click.option("--workers", type=int, help="Worker processes (DPI_WORKERS).")
@_clear_errors
def serve(blocks: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the chosen blocks in one ASGI app on granian, each under its prefix."""
    chosen = tuple(name.strip() for name in blocks.split(",") if name.strip()) if blocks else None
    settings = _settings(host=host, port=port, workers=workers, blocks=chosen)
    select_blocks(discover_blocks(), settings.blocks)
    if settings.migrate_on_start:
        asyncio.run(_migrate(settings))
    KeyStore(settings.key_directory).ensure_active(settings.key_algorithm)
    _serve(settings)


@main.command()
@click.option("--host", help="Address to listen on (DPI_HOST).")
@click.option("--port", type=int, help="Port to listen on (DPI_PORT).")
@_clear_errors
def demo(host: str | None, port: int | None) -> None:
    """Run every installed block on the embedded SQLite database, with demo keys, and print where to look."""
    settings = _settings(host=host, port=port)
    if "DPI_ALLOW_PRIVATE_CALLBACKS" not in os.environ:
        # Everything of the demo runs on this machine, its webhook receivers included.
        settings = settings.with_overrides(allow_private_callbacks=True)
    state = asyncio.run(_migrate(settings))
    key = KeyStore(settings.key_directory).ensure_active(settings.key_algorithm)
    blocks = select_blocks(discover_blocks(), settings.blocks)
    base = settings.public_url
    click.echo(
        f"dpi-blocks demo: database {settings.database} (migrations at {', '.join(sorted(state.current))})"
    )
    click.echo(f"signing key {key.kid} ({key.alg})")
    click.echo(f"blocks: {', '.join(block.name for block in blocks) or 'none installed yet (kernel only)'}")
    for line in asyncio.run(_load_demo(settings, blocks)):
        click.echo(line)
    click.echo("open:")
    for label, path in (
        ("capabilities", "/.well-known/dpi-capabilities"),
        ("OpenAPI", "/openapi.json"),
        ("health", "/healthz"),
        ("readiness", "/readyz"),
        ("JWKS", "/.well-known/jwks.json"),
        *((block.name, block.prefix) for block in blocks),
    ):
        click.echo(f"  {label:<14} {base}{path}")
    click.echo(f"check it: dpi conformance run --target {base} --profile platform")
    click.echo("stop with Ctrl+C")
    sys.stdout.flush()
    _serve(settings)


@main.group(name="db")
def db_group() -> None:
    """Database migrations."""


@db_group.command()
@_clear_errors
def upgrade() -> None:
    """Apply every pending migration of the kernel and the installed blocks."""
    settings = _settings()
    state = asyncio.run(_migrate(settings))
    click.echo(f"database at {', '.join(sorted(state.current))}")


@db_group.command()
@_clear_errors
def current() -> None:
    """Show the applied revisions and whether they are current; exit 1 when migrations are pending."""
    settings = _settings()

    state = asyncio.run(
        _database_errors(migration_state)(settings, select_blocks(discover_blocks(), settings.blocks))
    )
    click.echo(f"applied: {', '.join(sorted(state.current)) or 'nothing'}")
    click.echo(f"expected: {', '.join(sorted(state.expected))}")
    if not state.is_current:
        click.echo(f"pending: {', '.join(sorted(state.pending))}")
        sys.exit(1)


@main.group(name="keys")
def keys_group() -> None:
    """Signing keys and their JWKS."""


@keys_group.command(name="generate")
@click.option("--alg", type=click.Choice(["EdDSA", "ES256", "PS256"]), help="Algorithm (DPI_KEY_ALGORITHM).")
@_clear_errors
def keys_generate(alg: str | None) -> None:
    """Create a signing key and make it the active one (the previous one is retired with its grace)."""
    settings = _settings()
    store = KeyStore(settings.key_directory)
    key = store.generate(alg or settings.key_algorithm, grace=timedelta(seconds=settings.key_grace_seconds))
    click.echo(f"active key {key.kid} ({key.alg}) in {settings.key_directory}")


@keys_group.command(name="rotate")
@_clear_errors
def keys_rotate() -> None:
    """Replace the active key; the old public key stays published for DPI_KEY_GRACE_SECONDS."""
    settings = _settings()
    key = KeyStore(settings.key_directory).rotate(timedelta(seconds=settings.key_grace_seconds))
    click.echo(f"active key {key.kid} ({key.alg}); previous key published for {settings.key_grace_seconds} s")


@keys_group.command(name="jwks")
@_clear_errors
def keys_jwks() -> None:
    """Print the public JWK Set this deployment publishes."""
    settings = _settings()
    click.echo(json.dumps(KeyStore(settings.key_directory).jwks(), indent=2))


@main.command(name="settings")
@_clear_errors
def show_settings() -> None:
    """Show every DPI_* setting with the value in force."""
    settings = _settings()
    for setting in SETTINGS:
        value = getattr(settings, setting.attribute)
        click.echo(f"{setting.env}={'' if value is None else value}")


@main.command(name="blocks")
@_clear_errors
def list_blocks() -> None:
    """List the installed blocks (entry-point group dpi.blocks)."""
    installed = discover_blocks()
    if not installed:
        click.echo("no blocks installed: the kernel serves the platform endpoints only")
    for block in installed:
        click.echo(f"{block.name:<20} {block.prefix:<16} {block.version}")


main.add_command(standards_group, name="standards")
main.add_command(conformance_group, name="conformance")


def _add_block_commands() -> None:
    try:
        blocks = discover_blocks()
    except BlockError:
        return  # `dpi blocks` and `dpi serve` report the problem with one clear line
    for block in blocks:
        if block.cli is not None and block.name not in main.commands:
            main.add_command(block.cli, name=block.name)


_add_block_commands()
