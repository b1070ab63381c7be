"""Database errors a second try wins are told apart by SQLSTATE and constraint name (PostgreSQL)
or by error name and columns (SQLite), whatever language the message is in."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from asyncpg.exceptions import PostgresError
from sqlalchemy.exc import IntegrityError, OperationalError

from adapters.db.conflicts import conflict_of

# What PostgreSQL says with lc_messages = 'de_DE.UTF-8'.
GERMAN_UNIQUE = (
    "doppelter Schlüsselwert verletzt Unique-Constraint »{}«",
    "Schlüssel »(customer_id, key)=(c1, k)« existiert bereits.",
)
GERMAN_FOREIGN_KEY = (
    "Einfügen oder Aktualisieren in Tabelle »reservations« verletzt Fremdschlüssel-Constraint "
    "»fk_reservations_store_id_stores«"
)
GERMAN_DEADLOCK = "Verklemmung (Deadlock) entdeckt"


def postgres(sqlstate: str, message: str, **fields: str) -> PostgresError:
    """The exception asyncpg raises for an error the server sent with these fields."""
    codes = {"constraint_name": "n", "table_name": "t", "detail": "D"}
    sent: dict[str, Any] = {"S": "FEHLER", "C": sqlstate, "M": message}
    sent.update({codes[name]: value for name, value in fields.items()})
    return PostgresError.new(sent)


def sqlite(message: str, errorname: str) -> sqlite3.Error:
    error = sqlite3.IntegrityError(message)
    error.sqlite_errorname = errorname
    return error


def wrapped(error: Exception) -> IntegrityError:
    """As SQLAlchemy raises it for a statement it ran."""
    return IntegrityError("INSERT ...", {}, error)


@pytest.mark.parametrize(
    ("constraint", "what"),
    [
        ("pk_idempotency_keys", "idempotency_key"),
        ("uq_reservations_active_code", "pickup_code"),
        ("pk_stock_levels", "deadlock"),
    ],
)
def test_a_unique_violation_is_told_by_its_constraint_not_its_words(
    constraint: str, what: str | None
) -> None:
    error = postgres(
        "23505",
        GERMAN_UNIQUE[0].format(constraint),
        constraint_name=constraint,
        detail=GERMAN_UNIQUE[1],
    )

    assert conflict_of(error) == what
    assert conflict_of(wrapped(error)) == what


def test_the_constraint_name_counts_not_a_name_the_message_happens_to_hold() -> None:
    error = postgres(
        "23505",
        'duplicate key value violates unique constraint "pk_idempotency_keys"',
        constraint_name="uq_webhook_deliveries_event_id_store_id",
    )

    assert conflict_of(error) is None


def test_a_unique_violation_of_any_other_key_is_no_conflict() -> None:
    for constraint in ("uq_webhook_deliveries_event_id_store_id", "pk_reservations", ""):
        error = postgres("23505", GERMAN_UNIQUE[0].format(constraint), constraint_name=constraint)
        assert conflict_of(error) is None
    assert conflict_of(postgres("23505", "no constraint named")) is None


def test_a_foreign_key_violation_is_an_unknown_reference_in_any_language() -> None:
    error = postgres(
        "23503",
        GERMAN_FOREIGN_KEY,
        constraint_name="fk_reservations_store_id_stores",
        table_name="reservations",
    )

    assert conflict_of(error) == "unknown_reference"
    assert conflict_of(wrapped(error)) == "unknown_reference"


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_broken_lock_cycle_or_serialization_failure_is_a_deadlock(sqlstate: str) -> None:
    error = postgres(sqlstate, GERMAN_DEADLOCK)

    assert conflict_of(error) == "deadlock"
    assert conflict_of(OperationalError("UPDATE ...", {}, error)) == "deadlock"


def test_other_postgresql_errors_are_no_conflict() -> None:
    for sqlstate in ("23514", "23502", "57014", "42P01", "25P02"):
        assert conflict_of(postgres(sqlstate, "irgendein Fehler")) is None


@pytest.mark.parametrize(
    ("message", "errorname", "what"),
    [
        (
            "UNIQUE constraint failed: idempotency_keys.customer_id, idempotency_keys.key",
            "SQLITE_CONSTRAINT_PRIMARYKEY",
            "idempotency_key",
        ),
        ("UNIQUE constraint failed: reservations.code", "SQLITE_CONSTRAINT_UNIQUE", "pickup_code"),
        (
            "UNIQUE constraint failed: stock_levels.store_id, stock_levels.sku",
            "SQLITE_CONSTRAINT_PRIMARYKEY",
            "deadlock",
        ),
        ("FOREIGN KEY constraint failed", "SQLITE_CONSTRAINT_FOREIGNKEY", "unknown_reference"),
    ],
)
def test_sqlite_errors_are_told_by_their_name_and_columns(
    message: str, errorname: str, what: str | None
) -> None:
    error = sqlite(message, errorname)

    assert conflict_of(error) == what
    assert conflict_of(wrapped(error)) == what


def test_other_sqlite_errors_are_no_conflict() -> None:
    others = [
        ("UNIQUE constraint failed: reservations.id", "SQLITE_CONSTRAINT_PRIMARYKEY"),
        ("UNIQUE constraint failed: outbox.event_id", "SQLITE_CONSTRAINT_UNIQUE"),
        # The columns of a key, as the message of another kind of failure.
        ("NOT NULL constraint failed: reservations.code", "SQLITE_CONSTRAINT_NOTNULL"),
        ("CHECK constraint failed: on_hand_not_negative", "SQLITE_CONSTRAINT_CHECK"),
        ("database is locked", "SQLITE_BUSY"),
    ]
    for message, errorname in others:
        assert conflict_of(sqlite(message, errorname)) is None


def test_what_is_no_database_error_is_no_conflict() -> None:
    assert conflict_of(None) is None
    assert conflict_of(ValueError("pk_idempotency_keys")) is None
    assert conflict_of(IntegrityError("INSERT ...", {}, None)) is None  # type: ignore[arg-type]
