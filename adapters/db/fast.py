"""The hot statements of a write transaction, run straight on asyncpg on PostgreSQL.

SQLAlchemy's execution machinery (greenlet bridge, execution context, result wrapping) costs about
twice what the round trip itself costs in CPU, and a reserve runs eight statements. The statements
stay SQLAlchemy Core statements, built once at import; here each is compiled once for PostgreSQL,
its parameters go through their types' bind processors (UTC datetimes, JSON) as in SQLAlchemy,
and asyncpg runs it. The transaction is asyncpg's, begun here on the connection SQLAlchemy hands
out and leaves in autocommit, so SQLAlchemy's statements on it run in that transaction too. On
SQLite the statements simply go through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# The same JSON encoding as the engine's (adapters/db/engine.py).
_DIALECT = AsyncpgDialect(json_serializer=_json_text)  # type: ignore[no-untyped-call]  # untyped __init__
_Compiled = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...]]
_COMPILED: dict[tuple[int, tuple[str, ...], bool], _Compiled] = {}


def _compile(stmt: Executable, keys: tuple[str, ...], many: bool) -> _Compiled:
    cache_key = (id(stmt), keys, many)
    found = _COMPILED.get(cache_key)
    if found is None:
        compiled = stmt.compile(  # type: ignore[attr-defined]
            dialect=_DIALECT, column_keys=list(keys), for_executemany=many
        )
        names = tuple(compiled.positiontup or ())
        missing = sorted(set(names) - set(keys))
        if missing:  # an inline literal or an unnamed bind: its value would never be sent
            raise ValueError(f"statement parameters not given: {', '.join(missing)}")
        found = _COMPILED[cache_key] = (
            compiled.string,
            names,
            tuple(_bind_processor(compiled.binds[n]) for n in names),
        )
    return found


def _bind_processor(bind: sa.BindParameter[Any]) -> Callable[[Any], Any] | None:
    """What SQLAlchemy does to a value of this parameter before asyncpg sees it (None: nothing)."""
    return bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)


def _values(
    params: Mapping[str, Any], names: tuple[str, ...], processors: tuple[Any, ...]
) -> list[Any]:
    return [
        process(params[name]) if process is not None else params[name]
        for name, process in zip(names, processors, strict=True)
    ]


class Statements:
    """Runs module-level (never per-call) Core statements on the unit of work's connection."""

    def __init__(
        self, conn: AsyncConnection, driver: Any | None, transaction: Any | None = None
    ) -> None:
        self._conn = conn
        self._driver = driver  # the asyncpg connection on PostgreSQL, else None
        self._transaction = transaction  # asyncpg's, until committed or rolled back

    @classmethod
    async def open(cls, conn: AsyncConnection, *, begin: bool = True) -> Statements:
        """Statements on `conn`, in its transaction. On SQLite `conn` is already in one
        (Database.unit_of_work); on PostgreSQL it must be in none yet, and it is begun here,
        unless `begin` is false: then each statement commits on its own (autocommit)."""
        if conn.dialect.name != "postgresql":
            return cls(conn, None)
        # In autocommit SQLAlchemy's asyncpg adapter never begins, commits or rolls back a
        # transaction of its own, so the one asyncpg begins holds SQLAlchemy's statements too.
        # (Left in its default mode, the adapter would begin one lazily, which asyncpg nests
        # inside this one as a savepoint.) Raises if a SQLAlchemy transaction is begun already.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if not begin:
            return cls(conn, driver)
        transaction = driver.transaction()
        try:
            await transaction.start()
        except BaseException:
            # asyncpg still counts a transaction whose BEGIN failed as the connection's own.
            await conn.invalidate()
            raise
        return cls(conn, driver, transaction)

    async def commit(self) -> None:
        """Commit the transaction. On PostgreSQL straight on asyncpg: SQLAlchemy, in autocommit,
        has nothing to commit."""
        if self._driver is None:
            await self._conn.commit()
            return
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return  # committed already: what ran since ran in autocommit
        try:
            await transaction.commit()
        finally:
            await self._discard_unless_idle()

    async def rollback(self) -> None:
        """Roll back, unless committed. On PostgreSQL the pool's reset on check-in would not: the
        adapter in autocommit holds no transaction to roll back. So a connection that may still
        be in one when it goes back to the pool is closed instead (which ends it on the server)."""
        if self._driver is None:
            await self._conn.rollback()
            return
        transaction, self._transaction = self._transaction, None
        try:
            if transaction is not None and not self._driver.is_closed():
                # A connection lost, or still busy with a cancelled statement, is closed below,
                # which rolls back all the same; the error that brought the unit of work here
                # is the one worth raising.
                with suppress(Exception):
                    await transaction.rollback()
        finally:
            await self._discard_unless_idle()

    async def _discard_unless_idle(self) -> None:
        if self._driver is not None and (
            self._driver.is_closed() or self._driver.is_in_transaction()
        ):
            await self._conn.invalidate()

    async def first(self, stmt: Executable, params: Mapping[str, Any]) -> Any | None:
        """The first row the statement returns (indexable by column name), or None."""
        if self._driver is None:
            row = (await self._conn.execute(stmt, dict(params))).first()
            return row._mapping if row is not None else None
        sql, names, processors = _compile(stmt, tuple(params), False)
        record = await self._driver.fetchrow(sql, *_values(params, names, processors))
        return record  # asyncpg's Record: values by column name, like SQLAlchemy's RowMapping

    async def all(self, stmt: Executable, params: Mapping[str, Any]) -> list[Any]:
        """Every row the statement returns (each indexable by column name)."""
        if self._driver is None:
            return [row._mapping for row in await self._conn.execute(stmt, dict(params))]
        sql, names, processors = _compile(stmt, tuple(params), False)
        rows: list[Any] = await self._driver.fetch(sql, *_values(params, names, processors))
        return rows

    async def run(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        if self._driver is None:
            result: Any = await self._conn.execute(stmt, dict(params))
            return int(result.rowcount)
        sql, names, processors = _compile(stmt, tuple(params), False)
        status: str = await self._driver.execute(sql, *_values(params, names, processors))
        return _rowcount(status)

    async def run_many(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row (INSERTs of several rows)."""
        if not rows:
            return
        if self._driver is None:
            await self._conn.execute(stmt, [dict(row) for row in rows])
            return
        sql, names, processors = _compile(stmt, tuple(rows[0]), True)
        if len(rows) == 1:  # executemany's pipeline costs more than one plain execute
            await self._driver.execute(sql, *_values(rows[0], names, processors))
            return
        await self._driver.executemany(sql, [_values(row, names, processors) for row in rows])

    @property
    def driver(self) -> Any | None:
        """The asyncpg connection on PostgreSQL (inside the unit of work's transaction)."""
        return self._driver

    async def insert_rows(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert many rows. On PostgreSQL in one statement whatever their number (each column
        sent as one array and unnested), where a row-per-statement executemany costs a round of
        parsing and planning per row; elsewhere through SQLAlchemy."""
        if not rows:
            return
        if self._driver is None or len(rows) < _BULK_FROM:
            stmt = _INSERTS.get(table.name)
            if stmt is None:  # built once per table: compiled statements are cached by identity
                stmt = _INSERTS[table.name] = table.insert()
            await self.run_many(stmt, rows)
            return
        names = tuple(rows[0])
        sql, kinds = _unnest_insert(table, names)
        arrays = [
            [_json_text(row[name]) for row in rows]
            if kind == "json"
            else [row[name] for row in rows]
            for name, kind in zip(names, kinds, strict=True)
        ]
        await self._driver.execute(sql, *arrays)


def _rowcount(status: str) -> int:
    """The row count of asyncpg's command status ("UPDATE 1", "INSERT 0 1"); 0 when it has none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


# From this many rows an insert goes as arrays (fewer rows: the prepared executemany is as quick).
_BULK_FROM = 2
_INSERTS: dict[str, Any] = {}
_UNNEST: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}


def pg_array_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL element type to send a column's values as in an array."""
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl  # type: ignore[assignment]
    if isinstance(kind, sa.JSON):
        return "json"
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.BigInteger):
        return "int8"
    if isinstance(kind, sa.Integer):
        return "int4"
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    if isinstance(kind, sa.Numeric):
        return "numeric"
    return "text"


def _unnest_insert(table: sa.Table, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    key = (table.name, names)
    found = _UNNEST.get(key)
    if found is None:
        kinds = tuple(pg_array_type(table.c[name]) for name in names)
        params = ", ".join(
            f"${i}::{'text' if kind == 'json' else kind}[]" for i, kind in enumerate(kinds, 1)
        )
        columns = ", ".join(f'"{name}"' for name in names)
        selected = ", ".join(
            f"u{i}::json" if kind == "json" else f"u{i}" for i, kind in enumerate(kinds, 1)
        )
        aliases = ", ".join(f"u{i}" for i in range(1, len(names) + 1))
        sql = (
            f'INSERT INTO "{table.name}" ({columns}) '
            f"SELECT {selected} FROM unnest({params}) AS u({aliases})"
        )
        found = _UNNEST[key] = (sql, kinds)
    return found
