"""``dpi payments mapper ...``: freeze windows, shared addresses, conflicts and link history, from the
command line of a deployment (the database of ``DPI_DATABASE_URL``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from dpi import db
from dpi.errors import DpiError
from dpi.keys import KeyStore
from dpi.settings import Settings, SettingsError
from payments_adapter.mapper.receipts import KeyStoreReceiptKeys
from payments_adapter.mapper.service import MapperService, wire_time

__all__ = ["mapper_group"]

_MIGRATIONS: Final = Path(__file__).resolve().parents[1] / "migrations"
T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    click.echo(f"dpi payments mapper: {message}", err=True)
    sys.exit(2)


def _run(work: Callable[[MapperService], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            await db.upgrade(engine, [_MIGRATIONS])
            keys = KeyStore(settings.key_directory)
            return await work(MapperService(db.session_factory(engine), KeyStoreReceiptKeys(keys)))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except SettingsError as error:
        _fail(str(error))
    except (SQLAlchemyError, OSError) as error:
        _fail(f"database: {str(error).splitlines()[0]}")
    except DpiError as error:
        _fail(f"{error.reason_code}: {error.custom_message or error.reason.message('en')}")


def _print(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _utc(value: Any) -> str:
    return wire_time(value)


@click.group()
def mapper_group() -> None:
    """The ID-to-account mapper: where each beneficiary chose to be paid."""


@mapper_group.command("freeze")
@click.argument("cycle_id")
@click.option("--cut-off", "cut_off", type=click.DateTime(["%Y-%m-%dT%H:%M:%S"]), required=True, help="UTC.")
@click.option("--ends", "ends_at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S"]), required=True, help="UTC.")
@click.option("--by", "actor", required=True, help="Who registers the window (recorded).")
def freeze_command(cycle_id: str, cut_off: Any, ends_at: Any, actor: str) -> None:
    """Register CYCLE_ID's freeze window: changes from its cut-off to its end count after it."""
    document = {"cycle_id": cycle_id, "cut_off": _utc(cut_off), "ends_at": _utc(ends_at)}
    freeze, _created = _run(lambda service: service.register_freeze(document, actor))
    _print(freeze)


@mapper_group.command("freezes")
def freezes_command() -> None:
    """The registered freeze windows."""
    _print(_run(lambda service: service.freezes()))


@mapper_group.command("allow-shared")
@click.argument("fa")
@click.option("--reason", required=True, help="Why several beneficiaries may share it.")
@click.option("--by", "actor", required=True, help="Who allows it (recorded).")
def allow_shared_command(fa: str, reason: str, actor: str) -> None:
    """Allow the financial address FA to be linked to several beneficiaries (a household wallet)."""
    _print(_run(lambda service: service.allow_shared({"fa": fa, "reason": reason}, actor)))


@mapper_group.command("conflicts")
def conflicts_command() -> None:
    """Refused attempts to link an address already linked to someone else, latest first."""
    _print(_run(lambda service: service.conflicts()))


@mapper_group.command("history")
@click.argument("beneficiary_id")
def history_command(beneficiary_id: str) -> None:
    """Every change of BENEFICIARY_ID's links."""
    _print(_run(lambda service: service.history(beneficiary_id)))
