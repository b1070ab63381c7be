"""The SQL unit of work: one connection, one transaction, the repositories bound to it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from adapters.db.accuracy import AccuracyRepository
from adapters.db.conflicts import conflict_of
from adapters.db.engine import Database
from adapters.db.fast import Statements
from adapters.db.intake import ChannelAccountRepository, ChannelOrderRepository, IntakeRepository
from adapters.db.kpis import AttemptRepository
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


class SqlUnitOfWork:
    """One transaction on the database. With `single` (PostgreSQL) no transaction is begun and
    each statement commits on its own: for work of one statement (the intake edge's INSERT),
    where BEGIN and COMMIT would triple its round trips. On SQLite it is a transaction still."""

    def __init__(
        self, db: Database, notify: Callable[[], None] | None = None, *, single: bool = False
    ) -> None:
        self._db = db
        self._notify = notify
        self._single = single
        self._stack: AsyncExitStack | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        self._stack = AsyncExitStack()
        conn = await self._stack.enter_async_context(self._db.unit_of_work())
        self.conn = conn
        try:
            statements = await Statements.open(conn, begin=not self._single)
        except BaseException:
            await self._stack.aclose()
            raise
        self._statements = statements
        self.stock = StockRepository(conn, statements)
        self.ledger = LedgerRepository(statements)
        self.holds = HoldsRepository(conn, statements)
        self.reservations = ReservationRepository(conn, statements)
        self._after_commit: list[Callable[[], None]] = []
        self.catalog = CatalogRepository(
            conn,
            self._db.store_directory,
            self._after_commit,
            statements,
            (self._db.known_skus, self._db.known_stores),
        )
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
        self.attempts = AttemptRepository(conn)
        self.retention = RetentionRepository(conn)
        self.channel_accounts = ChannelAccountRepository(conn)
        self.intake = IntakeRepository(conn, statements)
        self.channel_orders = ChannelOrderRepository(conn, statements)
        return self

    async def commit(self) -> None:
        await self.outbox.flush()
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
        # Through SQLAlchemy a DBAPIError, from the statements sent straight to asyncpg asyncpg's
        # own error: conflict_of reads both.
        what = conflict_of(exc)
        if what is not None:
            raise RetryableConflict(what) from exc
