"""The database: async SQLAlchemy engines and sessions, and Alembic migrations per block.

The embedded default is a SQLite file in WAL mode, so ``dpi demo`` needs no server; production
runs on PostgreSQL through ``DPI_DATABASE_URL``. Each block owns its tables and its own Alembic
branch (labelled with the block's name); the kernel owns the ``dpi`` branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = [
    "KERNEL_MIGRATIONS",
    "MigrationState",
    "create_engine",
    "migration_state",
    "session_factory",
    "upgrade",
]

_SCRIPT_LOCATION: Final = Path(__file__).parent / "migrations"
KERNEL_MIGRATIONS: Final = _SCRIPT_LOCATION / "versions"


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``url``; a SQLite file gets its directory created, WAL mode and foreign keys.

    A PostgreSQL URL may end in ``?search_path=SCHEMA`` to keep every table in that schema.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    search_path = parsed.query.get("search_path")
    if isinstance(search_path, str) and search_path:
        # A deployment may keep dpi-blocks in its own schema: postgresql+asyncpg://.../db?search_path=dpi
        parsed = parsed.difference_update_query(["search_path"])
        connect_args = dict(options.pop("connect_args", {}))
        connect_args["server_settings"] = {
            **connect_args.get("server_settings", {}),
            "search_path": search_path,
        }
        options["connect_args"] = connect_args
    return create_async_engine(parsed, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; busy_timeout waits instead of failing
    # when two processes write at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine`` whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(version_locations: Sequence[Path]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.set_main_option("version_locations", " ".join(str(path) for path in version_locations))
    config.set_main_option("path_separator", "space")
    return config


def _locations(block_migrations: Sequence[Path]) -> list[Path]:
    return [KERNEL_MIGRATIONS, *dict.fromkeys(block_migrations)]


@dataclass(frozen=True)
class MigrationState:
    """Which revisions the database is at and which the installed code expects."""

    current: frozenset[str]
    expected: frozenset[str]

    @property
    def is_current(self) -> bool:
        return self.current == self.expected

    @property
    def pending(self) -> frozenset[str]:
        return self.expected - self.current


def _upgrade_sync(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


def _state_sync(connection: Connection, config: Config) -> MigrationState:
    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(connection).get_current_heads()
    return MigrationState(current=frozenset(current), expected=frozenset(script.get_heads()))


async def upgrade(engine: AsyncEngine, block_migrations: Sequence[Path] = ()) -> MigrationState:
    """Apply every pending migration of the kernel and the given blocks, in one transaction."""
    config = _alembic_config(_locations(block_migrations))
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_sync, config)
        return await connection.run_sync(_state_sync, config)


async def migration_state(engine: AsyncEngine, block_migrations: Sequence[Path] = ()) -> MigrationState:
    """Applied and expected revisions of the kernel and the given blocks (read only)."""
    config = _alembic_config(_locations(block_migrations))
    async with engine.connect() as connection:
        return await connection.run_sync(_state_sync, config)
