"""The database handle: one async engine per process, with SQLite tuned for concurrent writers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from adapters.db.caches import KnownCodes, PolicyCache, StoreDirectory

READ_ONLY = "ropos_read_only"


class Database:
    """Engine plus the rules for opening read and write transactions.

    SQLite allows one writer at a time: writes start with BEGIN IMMEDIATE (so a transaction never
    upgrades from a read lock and dies with "database is locked"), and writers of this process
    queue on an asyncio lock instead of spinning in SQLite's busy handler. Other processes on the
    same file are kept in line by busy_timeout.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 16,
        max_overflow: int = 0,
        sqlite_busy_timeout_ms: int = 30_000,
        policy_cache_seconds: float = 2.0,
        store_cache_seconds: float = 30.0,
        echo: bool = False,
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {"echo": echo, "json_serializer": _json_text}
        if not self.is_sqlite:
            # No pre-ping: it costs three round trips per checkout. _drop_closed_connections does
            # without any: a connection the server has closed is known closed to asyncpg.
            options.update(
                pool_size=pool_size, max_overflow=max_overflow, pool_timeout=30, pool_recycle=1800
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if not self.is_sqlite:
            _drop_closed_connections(self.engine)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.policy_cache = PolicyCache(policy_cache_seconds)
        self.store_directory = StoreDirectory(store_cache_seconds)
        self.known_skus = KnownCodes(store_cache_seconds)
        self.known_stores = KnownCodes(store_cache_seconds)
        if self.is_sqlite:
            _tune_sqlite(self.engine, sqlite_busy_timeout_ms)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction; the caller commits, anything else rolls back."""
        if self._write_lock is None:
            async with self.engine.connect() as conn:
                await conn.begin()
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.begin()
            yield conn

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncConnection]:
        """The connection of a unit of work, for adapters.db.fast.Statements.open. On SQLite in
        a write transaction, as write() gives it; on PostgreSQL in none yet: Statements.open
        begins it on asyncpg, so that the statements sent straight to asyncpg share it."""
        if self._write_lock is not None:
            async with self.write() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads, never holding a write lock. On PostgreSQL in autocommit: each
        statement sees committed data, with no BEGIN and ROLLBACK round trips around it."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(**{READ_ONLY: True})
                await conn.begin()
            else:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def pg_reader(self) -> AsyncIterator[Any]:
        """The asyncpg connection itself, for single-statement reads on PostgreSQL: outside any
        transaction each statement sees what has committed, and checking the connection out of
        the pool without SQLAlchemy's wrapper costs a fifth of the CPU. Only for PostgreSQL."""
        if self.is_sqlite:
            raise RuntimeError("pg_reader is for PostgreSQL only")
        fairy = await self.engine.raw_connection()
        driver: Any = fairy.driver_connection
        for _ in range(3):
            # One the server closed while it sat in the pool (a restart, a failover): drop it.
            if not driver.is_closed():
                break
            await greenlet_spawn(fairy.invalidate)
            fairy = await self.engine.raw_connection()
            driver = fairy.driver_connection
        try:
            yield driver
        finally:
            if driver.is_closed():  # lost during the statement: never hand it out again
                await greenlet_spawn(fairy.invalidate)
            # The pool may close a connection on check-in, which awaits: give it its greenlet, the
            # way AsyncConnection.close does. (engine.connect() with get_raw_connection() is the
            # documented way round and costs about 50 us more CPU per read, measured.)
            await greenlet_spawn(fairy.close)

    def forget_cached(self) -> None:
        """Drop what the in-process caches hold (the policy, the store directory, the SKUs and
        stores known to exist): for when the database changed under the process, as tests
        reset it."""
        self.policy_cache.clear()
        self.store_directory.clear()
        self.known_skus.clear()
        self.known_stores.clear()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _drop_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection the server closed (a restart, a failover) is replaced at checkout,
    never handed out. SQLAlchemy discards the pool when one of its own statements fails on a dead
    connection, but a unit of work begins its transaction straight on asyncpg (adapters/db/fast.py),
    whose errors it never sees: without this, a dead connection fails the request it is handed to
    (tests/integration/test_service_restarts.py restarts PostgreSQL unseen and shows it). asyncpg
    knows a connection is closed as soon as the server's end of the socket is: no round trip is
    needed to find out."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            # The pool invalidates it and checks out another (a new one if need be).
            raise DisconnectionError("the server closed this pooled connection")


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
