"""Which race a database error is (what RetryableConflict says), told by SQLSTATE and constraint
name on PostgreSQL and by error name and columns on SQLite, never by a message in the server's
language."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from asyncpg.exceptions import PostgresError
from sqlalchemy.exc import DBAPIError

from adapters.db.tables import idempotency_keys, reservations, stock_levels


def _key(table: sa.Table, name: str) -> tuple[str, str]:
    """A unique key's name, and the columns SQLite names instead ("t.a, t.b"). Raises at import
    if the tables have no such key."""
    keys: list[sa.PrimaryKeyConstraint | sa.Index] = [table.primary_key, *table.indexes]
    key = next(k for k in keys if k.name == name)
    return name, ", ".join(f"{table.name}.{column.name}" for column in key.columns)


# Unique keys whose collision means "someone else got there first; look again or retry".
_UNIQUE = {
    _key(idempotency_keys, "pk_idempotency_keys"): "idempotency_key",
    _key(reservations, "uq_reservations_active_code"): "pickup_code",
    # Two transactions made the same new stock row: the one that lost reads it on a second try.
    _key(stock_levels, "pk_stock_levels"): "deadlock",
}
_BY_CONSTRAINT = {name: what for (name, _), what in _UNIQUE.items()}
_BY_COLUMNS = {columns: what for (_, columns), what in _UNIQUE.items()}

_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"
# PostgreSQL broke a lock cycle (deadlock_detected) or a serialization conflict by failing this
# transaction.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}

_SQLITE_UNIQUE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
_SQLITE_FOREIGN_KEY = "SQLITE_CONSTRAINT_FOREIGNKEY"
_SQLITE_FAILED_ON = "constraint failed: "


def conflict_of(error: BaseException | None) -> str | None:
    """The conflict `error` is, or None for any other error (or none): "idempotency_key" or
    "pickup_code" (a unique key someone else took meanwhile), "deadlock" (a race that running the
    whole transaction again resolves), "unknown_reference" (a row names a store or SKU that does
    not exist)."""
    driver = error.driver_exception if isinstance(error, DBAPIError) and error.orig else error
    if isinstance(driver, PostgresError):
        return _postgres(driver)
    if isinstance(driver, sqlite3.Error):
        return _sqlite(driver)
    return None


def _postgres(error: PostgresError) -> str | None:
    sqlstate = error.sqlstate
    if sqlstate in _TRANSIENT_SQLSTATES:
        return "deadlock"
    if sqlstate == _FOREIGN_KEY_VIOLATION:
        return "unknown_reference"
    if sqlstate == _UNIQUE_VIOLATION:
        return _BY_CONSTRAINT.get(getattr(error, "constraint_name", None) or "")
    return None


def _sqlite(error: sqlite3.Error) -> str | None:
    name = error.sqlite_errorname
    if name == _SQLITE_FOREIGN_KEY:
        return "unknown_reference"
    if name in _SQLITE_UNIQUE:
        # SQLite's messages are not translated; the columns are the part after the colon.
        return _BY_COLUMNS.get(str(error).partition(_SQLITE_FAILED_ON)[2])
    return None
