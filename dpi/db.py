"""The database: async SQLAlchemy engines and sessions, and Alembic migrations per block.

The embedded default is a SQLite file in WAL mode, so ``dpi demo`` needs no server; production
runs on PostgreSQL through ``DPI_DATABASE_URL``. Each block owns its tables and its own Alembic
branch (labelled with the block's name); the kernel owns the ``dpi`` branch.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import EMPTY_DICT

__all__ = [
    "KERNEL_MIGRATIONS",
    "POOL_SIZE",
    "MigrationState",
    "create_engine",
    "migration_state",
    "session_factory",
    "upgrade",
]

POOL_SIZE: Final = 10
_SCRIPT_LOCATION: Final = Path(__file__).parent / "migrations"
KERNEL_MIGRATIONS: Final = _SCRIPT_LOCATION / "versions"


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``url``; a SQLite file gets its directory created, WAL mode and foreign keys.

    A PostgreSQL URL may end in ``?search_path=SCHEMA`` to keep every table in that schema.
    """
    parsed = make_url(url)
    # Connections kept open per process: beyond them, each checkout opens a connection and closes it on
    # return (a server process on PostgreSQL, a thread and the pragmas on SQLite), which a server at a
    # few dozen requests at once did all the time with SQLAlchemy's default of five.
    pooled = "poolclass" not in options and "pool" not in options
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            if pooled:
                options.setdefault("pool_size", POOL_SIZE)
        options.setdefault("module", _ONE_HOP_AIOSQLITE)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    if pooled:
        options.setdefault("pool_size", POOL_SIZE)
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


def _run_statement(
    connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, int, int | None, list[Any]]:
    """One statement on aiosqlite's thread: execute, fetch every row, close (a whole statement per hop)."""
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, with each statement one trip to the connection's thread.

    The stock adapter makes four (open a cursor, execute, fetch, close), and each trip wakes a thread
    and then the event loop: on the sign-in path that was a large share of the CPU spent per request.
    Results are fetched whole, as the stock (client-side) cursor does; server-side cursors are unchanged.
    """

    __slots__ = ("_description", "_lastrowid", "_rowcount", "arraysize")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self.arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            # aiosqlite's own queue (SQLAlchemy's adapter uses it the same way): run on its thread.
            self._description, self._rowcount, self._lastrowid, rows = await self._connection._execute(
                _run_statement, self._connection, operation, parameters, many
            )
            self._rows = deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._run(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._run(operation, seq_of_parameters, True)

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneHopCursor

    def rollback(self) -> None:
        connection = self._connection._connection
        # The pool rolls back every connection it takes back; outside a transaction (reads only, or
        # after a commit) there is nothing to roll back, so no trip to the thread.
        if connection is not None and not connection.in_transaction:
            return
        super().rollback()


class _OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _OneHopConnection:
        stock = super().connect(*arg, **kw)
        return _OneHopConnection(self, stock._connection)


_ONE_HOP_AIOSQLITE: Final = _OneHopDbapi(aiosqlite, sqlite3)


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
