"""``dpi registry sender ...``: the systems allowed to call the registries' DCI API.

Exit codes: 0 done; 2 input or a configuration that does not work, in one line and never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi import db
from dpi.settings import Settings
from registry.cli import _MIGRATIONS, _fail, _run
from registry.dci.senders import Sender, SenderError, add_sender, disable_sender, list_senders
from registry.definition import load_definitions

__all__ = ["sender_group"]

T = TypeVar("T")


async def _with_sessions(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    settings = Settings.from_environment()
    engine = db.create_engine(settings.database)
    try:
        await db.upgrade(engine, [_MIGRATIONS])
        return await work(db.session_factory(engine))
    finally:
        await engine.dispose()


def _line(sender: Sender) -> str:
    document = sender.as_document()
    return (
        f"{document['sender_id']:<32} {document['status']:<8} {','.join(document['grants']):<40} "
        f"{document['callback_url'] or '-'}"
    )


def _checked(work: Callable[[], T]) -> T:
    try:
        return work()
    except SenderError as error:
        _fail(str(error))


@click.group("sender")
def sender_group() -> None:
    """Systems allowed to call the DCI API: their keys, callback URL and grants."""


@sender_group.command("add")
@click.argument("sender_id")
@click.option(
    "--jwks",
    "jwks_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON file with the sender's public JWK Set.",
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    required=True,
    help="CODE (whole records) or CODE:GROUP (one field group); repeat for several.",
)
@click.option(
    "--callback",
    "callback_url",
    default=None,
    help="Base URL of asynchronous answers: <URL>/on-search and <URL>/notify.",
)
def add(sender_id: str, jwks_path: Path, grants: tuple[str, ...], callback_url: str | None) -> None:
    """Register SENDER_ID, or replace its keys, grants and callback (enabling it again)."""
    try:
        jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        _fail(f"{jwks_path} is not a JSON file")
    sender = _checked(
        lambda: _run(
            _with_sessions(
                lambda sessions: add_sender(
                    sessions,
                    load_definitions(),
                    sender_id,
                    jwks=jwks,
                    grants=grants,
                    callback_url=callback_url,
                )
            )
        )
    )
    click.echo(_line(sender))


@sender_group.command("list")
def list_command() -> None:
    """Every registered sender: id, status, grants, callback URL."""
    for sender in _run(_with_sessions(list_senders)):
        click.echo(_line(sender))


@sender_group.command("disable")
@click.argument("sender_id")
def disable(sender_id: str) -> None:
    """Refuse every further message of SENDER_ID."""
    sender = _checked(lambda: _run(_with_sessions(lambda sessions: disable_sender(sessions, sender_id))))
    click.echo(_line(sender))
