"""The SQL unit of work: one connection, one transaction, the repositories bound to it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from asyncpg.exceptions import IntegrityConstraintViolationError
from sqlalchemy.exc import IntegrityError

from adapters.db.accuracy import AccuracyRepository
from adapters.db.engine import Database
from adapters.db.fast import Statements
from adapters.db.leases import LeaseRepository
from adapters.db.levels import LevelsRepository, LowStockRepository
from adapters.db.reconciliation import ReconciliationRepository
from adapters.db.repositories import (
    CatalogRepository,
    HoldsRepository,
    LedgerRepository,
    OutboxRepository,
    PolicyRepository,
    ReservationRepository,
    StockRepository,
    WebhookRepository,
)
from adapters.db.retention import RetentionRepository
from adapters.db.wms_feed import WmsFeedRepository
from adapters.db.wms_inbox import WmsInboxRepository
from services.unit_of_work import RetryableConflict

# Unique keys whose collision means "someone else got there first; look again or retry".
# ("deadlock": a race that running the whole transaction again resolves.)
_CONFLICTS = {
    "pk_idempotency_keys": "idempotency_key",
    "idempotency_keys.customer_id, idempotency_keys.key": "idempotency_key",
    "uq_reservations_active_code": "pickup_code",
    "reservations.code": "pickup_code",
    # Two transactions made the same new stock row: the one that lost reads it on a second try.
    "pk_stock_levels": "deadlock",
    "stock_levels.store_id, stock_levels.sku": "deadlock",
    # A row names a store or SKU that does not exist.
    "violates foreign key constraint": "unknown_reference",
    "FOREIGN KEY constraint failed": "unknown_reference",
}
# PostgreSQL broke a lock cycle or a serialization conflict by failing this transaction.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}


class SqlUnitOfWork:
    def __init__(self, db: Database, notify: Callable[[], None] | None = None) -> None:
        self._db = db
        self._notify = notify
        self._stack: AsyncExitStack | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        self._stack = AsyncExitStack()
        conn = await self._stack.enter_async_context(self._db.unit_of_work())
        self.conn = conn
        try:
            statements = await Statements.open(conn)
        except BaseException:
            await self._stack.aclose()
            raise
        self._statements = statements
        self.stock = StockRepository(conn, statements)
        self.ledger = LedgerRepository(statements)
        self.holds = HoldsRepository(conn, statements)
        self.reservations = ReservationRepository(conn, statements)
        self._after_commit: list[Callable[[], None]] = []
        self.catalog = CatalogRepository(conn, self._db.store_directory, self._after_commit)
        self.policy = PolicyRepository(conn, self._db.policy_cache, self._after_commit)
        self.outbox = OutboxRepository(conn, statements, self._after_commit, self._notify)
        self.webhooks = WebhookRepository(conn)
        self.levels = LevelsRepository(conn, statements)
        self.low_stock = LowStockRepository(conn)
        self.wms_inbox = WmsInboxRepository(conn)
        self.wms_feed = WmsFeedRepository(conn, statements)
        self.leases = LeaseRepository(conn)
        self.reconciliation = ReconciliationRepository(conn)
        self.accuracy = AccuracyRepository(conn)
        self.retention = RetentionRepository(conn)
        return self

    async def commit(self) -> None:
        await self._statements.commit()
        self._committed = True
        for callback in self._after_commit:
            callback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        try:
            if not self._committed:
                await self._statements.rollback()
        finally:
            await self._stack.aclose()
        # Through SQLAlchemy an IntegrityError; from the statements run on asyncpg directly,
        # asyncpg's own integrity errors.
        if _sqlstate(exc) in _TRANSIENT_SQLSTATES:
            raise RetryableConflict("deadlock") from exc
        if isinstance(exc, IntegrityError | IntegrityConstraintViolationError):
            message = str(exc.orig if isinstance(exc, IntegrityError) else exc)
            for marker, what in _CONFLICTS.items():
                if marker in message:
                    raise RetryableConflict(what) from exc


def _sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a database error, through SQLAlchemy's and asyncpg's wrappings."""
    seen = 0
    while exc is not None and seen < 5:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(code, str):
            return code
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return None
