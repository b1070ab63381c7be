"""The unit-of-work protocol: what a use case may ask of storage inside one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from domain.accuracy import AccuracySample
from domain.events import Event, PendingEvent
from domain.geo import GeoPoint
from domain.intake import (
    ChannelAccount,
    ChannelOrder,
    Decision,
    HeldOrder,
    IntakeClaim,
    IntakeCount,
    IntakeLane,
    IntakeMessage,
    IntakeStatus,
    OrderState,
    SalesChannel,
)
from domain.intake_health import Sampled, StatusCount
from domain.kpis import ReserveOutcome, ReserveSource
from domain.pickup import Payment
from domain.policy import ReservationPolicy
from domain.reconciliation import Discrepancy, DiscrepancyKind, ReconciliationRun
from domain.reservations import Reservation
from domain.sourcing import Candidate
from domain.stock import LedgerEntry, Movement, StockLevel, WatchedLevel
from domain.webhooks import Delivery, DeliveryStatus, WebhookTarget
from domain.wms import BatchStatus, Queued, StoredBatch, WmsMovement


class StockPort(Protocol):
    async def lock(
        self, store_id: str, sku: str, quantity: int, now: datetime
    ) -> StockLevel | None: ...
    async def release(
        self, store_id: str, sku: str, quantity: int, now: datetime
    ) -> StockLevel: ...
    async def consume(
        self, store_id: str, sku: str, quantity: int, now: datetime
    ) -> StockLevel: ...
    async def candidates(
        self, near: GeoPoint, radius_km: float, wanted: Iterable[str]
    ) -> list[Candidate]: ...
    async def available_at(self, store_id: str, wanted: Iterable[str]) -> dict[str, int]: ...
    async def levels(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StockLevel]: ...
    async def watched_levels(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], WatchedLevel]: ...


class LedgerPort(Protocol):
    async def record(self, movements: Sequence[Movement], now: datetime) -> None: ...


class HoldsPort(Protocol):
    async def add_reservations(self, customer_id: str, count: int, limit: int) -> bool: ...
    async def add_units(
        self, customer_id: str, units: Mapping[str, int], limit: int
    ) -> list[str]: ...
    async def remove(
        self, customer_id: str, reservations_count: int, units: Mapping[str, int]
    ) -> None: ...


class ReservationsPort(Protocol):
    async def add_idempotency_key(
        self, customer_id: str, key: str, request_hash: str, group_id: str, now: datetime
    ) -> bool: ...
    async def find_idempotency_key(self, customer_id: str, key: str) -> tuple[str, str] | None: ...
    async def add(self, new: Sequence[Reservation], now: datetime) -> None: ...
    async def get(self, reservation_id: str, *, for_update: bool = False) -> Reservation | None: ...
    async def in_group(self, group_id: str) -> list[Reservation]: ...
    async def claim_due(self, now: datetime, limit: int) -> list[Reservation]: ...
    async def claim_expiring(
        self, now: datetime, lead_seconds: int, limit: int
    ) -> list[Reservation]: ...
    async def add_payment(
        self, reservation_id: str, payment: Payment, received_by: str, now: datetime
    ) -> None: ...
    async def payment_of(self, reservation_id: str) -> Payment | None: ...
    async def active_lines_at(self, store_id: str, sku: str) -> list[tuple[str, int]]: ...
    async def active_line_counts(self, store_id: str) -> dict[str, int]: ...
    async def save_lines(self, reservation: Reservation) -> None: ...
    async def save(
        self, reservation: Reservation, previous_version: int, now: datetime
    ) -> None: ...


class CatalogPort(Protocol):
    async def existing_stores(self, store_ids: Iterable[str]) -> set[str]: ...
    async def store_ids(self) -> list[str]: ...
    async def store_location(self, store_id: str) -> GeoPoint | None: ...
    async def existing_skus(self, codes: Iterable[str]) -> set[str]: ...
    async def known(
        self, sku_codes: Iterable[str], store_ids: Iterable[str]
    ) -> tuple[set[str], set[str]]: ...
    async def upsert_stores(self, rows: Sequence[Mapping[str, Any]], now: datetime) -> None: ...
    async def addresses(self, store_ids: Iterable[str]) -> dict[str, str | None]: ...
    async def upsert_skus(
        self, rows: Sequence[Mapping[str, Any]], now: datetime, *, overwrite: bool = True
    ) -> None: ...


class PolicyPort(Protocol):
    async def get(self) -> ReservationPolicy: ...
    async def save(self, policy: ReservationPolicy, now: datetime) -> None: ...


class OutboxPort(Protocol):
    async def add(self, new: Sequence[Event]) -> None: ...
    async def claim_unpublished(self, limit: int) -> list[PendingEvent]: ...
    async def mark_published(self, positions: Sequence[int], now: datetime) -> None: ...


class WebhooksPort(Protocol):
    async def targets(self, store_ids: Iterable[str]) -> dict[str, WebhookTarget]: ...
    async def set_target(
        self, store_id: str, target: WebhookTarget | None, now: datetime
    ) -> bool: ...
    async def enqueue(self, deliveries: Sequence[Delivery]) -> None: ...
    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Delivery, str | None]]: ...
    async def record(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        now: datetime,
        next_attempt_at: datetime,
        status_code: int | None,
        error: str | None,
    ) -> None: ...
    async def replay(self, delivery_id: str, now: datetime) -> Delivery | None: ...
    async def discard(
        self, delivery_id: str, *, actor: str, reason: str, now: datetime
    ) -> Delivery | None: ...
    async def get(self, delivery_id: str) -> Delivery | None: ...


class ChannelAccountsPort(Protocol):
    async def get(self, channel: SalesChannel, account: str) -> ChannelAccount | None: ...
    async def list(self, channel: SalesChannel | None) -> list[ChannelAccount]: ...
    async def upsert(self, account: ChannelAccount, now: datetime) -> ChannelAccount: ...
    async def mark_swept(self, channel: SalesChannel, account: str, until: datetime) -> None:
        """The gap sweep has asked the account's API up to `until` (never moved back)."""
        ...

    async def count_refusal(
        self, channel: SalesChannel, account: str, what: IntakeCount, n: int = 1
    ) -> None:
        """`n` more deliveries refused before they were stored, in the account's running totals
        (signature failures and oversized bodies; other counts have none)."""
        ...


class IntakePort(Protocol):
    async def add(self, message: IntakeMessage, body: bytes | None) -> IntakeMessage | None:
        """Store a new message; None when its (channel, account, dedupe key) is taken."""
        ...

    async def count(
        self, channel: SalesChannel, account: str, what: IntakeCount, at: datetime, n: int = 1
    ) -> None:
        """Add `n` to the account's count of `what` in the minute of `at` (its health)."""
        ...

    # The health of each account (source) over a window [since, until] of receipt.
    async def status_counts(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], list[StatusCount]]: ...
    async def deliveries(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], int]: ...
    async def counted(
        self, since: datetime, until: datetime, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], dict[IntakeCount, int]]: ...
    async def waiting(
        self, source: tuple[SalesChannel, str] | None = None
    ) -> dict[tuple[str, str], tuple[int, datetime]]: ...
    async def sample(
        self, source: tuple[SalesChannel, str], since: datetime, until: datetime, limit: int
    ) -> list[Sampled]: ...

    async def backlog(
        self, channel: SalesChannel, account: str, since: datetime, horizon: datetime
    ) -> tuple[int, int]: ...
    async def find_delivery(
        self, channel: SalesChannel, account: str, dedupe_key: str
    ) -> IntakeMessage | None: ...
    async def get(
        self,
        message_id: str,
        *,
        for_update: bool = False,
        and_order: tuple[SalesChannel, str, str] | None = None,
    ) -> IntakeMessage | None: ...
    async def body(self, message_id: str) -> bytes | None: ...
    async def bodies(self, message_ids: Sequence[str]) -> dict[str, bytes | None]: ...
    async def claim_due(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        exclude: Collection[tuple[SalesChannel, str]] = (),
    ) -> IntakeClaim:
        """Messages waiting (RECEIVED, or RETRYING and due), fairly across accounts (none of
        the `exclude`d (channel, account)s'), leased: counted as tried and not due again until
        `lease_until`, so a worker that dies mid-message leaves them to another. With the raw
        bodies of those that have one to read, and each claimed account's due count."""
        ...

    async def finish(
        self,
        message_id: str,
        status: IntakeStatus,
        now: datetime,
        *,
        decisions: Sequence[Decision] = (),
        order: ChannelOrder | None = None,
        error_code: str | None = None,
        error: str | None = None,
        group_id: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None: ...
    async def requeue(
        self,
        message_id: str,
        now: datetime,
        *,
        order: ChannelOrder | None = None,
        decisions: Sequence[Decision] = (),
        statuses: Sequence[IntakeStatus],
        lane: IntakeLane = IntakeLane.AGAIN,
    ) -> bool:
        """Back to RECEIVED, due now, attempts from zero, in `lane`, with `order` (fix-and-
        resubmit: it runs again from validation) or none (replay: read again from the raw body);
        False when the message is not in one of `statuses`."""
        ...

    async def search(
        self,
        *,
        statuses: Sequence[IntakeStatus],
        channel: SalesChannel | None,
        account: str | None,
        limit: int,
        by_impact: bool,
        now: datetime,
    ) -> list[IntakeMessage]: ...
    async def children(self, parent_id: str) -> list[IntakeMessage]: ...


class ChannelOrdersPort(Protocol):
    async def lock(self, channel: SalesChannel, account: str, external_id: str) -> None:
        """Until the transaction ends, no other one acts on this order (held yet or not)."""
        ...

    async def get(
        self, channel: SalesChannel, account: str, external_id: str, *, for_update: bool = False
    ) -> HeldOrder | None: ...
    async def put(
        self,
        order: ChannelOrder,
        state: OrderState,
        group_id: str | None,
        message_id: str,
        now: datetime,
    ) -> None: ...


class LevelsPort(Protocol):
    """Whole stock rows, as counts and reconciliation read and write them."""

    async def lock(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StockLevel]: ...
    async def write(self, rows: Sequence[StockLevel], now: datetime) -> None: ...
    async def insert(self, rows: Sequence[StockLevel], now: datetime) -> None: ...
    async def of_store(self, store_id: str) -> dict[str, StockLevel]: ...


class LowStockPort(Protocol):
    async def flag(self, changes: Sequence[WatchedLevel]) -> list[WatchedLevel]: ...
    async def set_threshold(self, store_id: str, sku: str, threshold: int | None) -> bool: ...


class WmsInboxPort(Protocol):
    """Stock-levels batches from the WMS, stored before they are acknowledged."""

    async def find(self, batch_id: str, *, for_update: bool = False) -> StoredBatch | None: ...
    async def lock(self, batch_id: str) -> BatchStatus | None: ...
    async def add(
        self, batch_id: str, payload: Mapping[str, Any], levels: int, now: datetime
    ) -> bool: ...
    async def finish(
        self,
        batch_id: str,
        *,
        status: BatchStatus,
        now: datetime,
        applied: int | None = None,
        stale: int | None = None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None: ...
    async def count_attempt(self, batch_id: str, error: str) -> None: ...
    async def to_retry(self, received_before: datetime, limit: int) -> list[tuple[str, int]]: ...


class WmsFeedPort(Protocol):
    """The movements the WMS must hear of: the ledger's new ones, then the numbered feed."""

    async def unqueued(self, limit: int) -> list[LedgerEntry]: ...
    async def next_sequences(
        self, counts: Mapping[tuple[str, str], int]
    ) -> dict[tuple[str, str], int]: ...
    async def queue(
        self, movements: Sequence[tuple[WmsMovement, int | None]], now: datetime
    ) -> None: ...
    async def clear_pending(self, ledger_ids: Sequence[int]) -> None: ...
    async def forget_unqueued(self) -> int: ...
    async def pending(self, now: datetime, limit: int) -> list[Queued]: ...
    async def dead_of_store(self, store_id: str) -> dict[str, list[str]]: ...
    async def in_flight(self, store_id: str, since: datetime) -> set[str]: ...
    async def mark_delivered(self, ids: Sequence[str], now: datetime) -> None: ...
    async def mark_failed(
        self, ids: Sequence[str], *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None: ...
    async def get(self, movement_id: str, *, for_update: bool = False) -> Queued | None: ...
    async def requeue(self, movement_id: str, sequence: int, now: datetime) -> None: ...
    async def discard(
        self, movement_id: str, *, actor: str, reason: str, now: datetime
    ) -> None: ...


class LeasesPort(Protocol):
    """Named leases: one holder at a time does the job (the WMS feed, a reconciliation)."""

    async def acquire(self, name: str, holder: str, now: datetime, seconds: float) -> bool: ...
    async def release(self, name: str, holder: str, now: datetime) -> None: ...


class ReconciliationPort(Protocol):
    async def last_run_started(self) -> datetime | None: ...
    async def add_run(self, run_id: str, now: datetime) -> None: ...
    async def finish_run(self, run: ReconciliationRun) -> None: ...
    async def add_discrepancies(self, found: Sequence[Discrepancy]) -> None: ...
    async def open_kinds(self, store_id: str) -> dict[str, frozenset[DiscrepancyKind]]: ...
    async def get_discrepancy(self, discrepancy_id: str) -> Discrepancy | None: ...
    async def resolve_discrepancy(
        self, discrepancy_id: str, note: str, by: str, now: datetime
    ) -> Discrepancy | None: ...


class AccuracyPort(Protocol):
    async def add(self, samples: Iterable[AccuracySample]) -> None: ...
    async def picked_skus(self, reservation_id: str) -> set[str]: ...


# A minute's reserve attempts of one store, channel, source and outcome, and how many.
AttemptCell = tuple[datetime, str | None, str | None, ReserveSource, ReserveOutcome]


class AttemptsPort(Protocol):
    async def count(self, cells: Sequence[tuple[AttemptCell, int]]) -> None: ...


class RetentionPort(Protocol):
    async def purge(self, kind: str, cutoff: datetime, limit: int) -> int: ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the `async with` block without `commit()` rolls everything back.
    Events added to `outbox` are written and committed with the change, by `commit()`; the
    relay publishes them from there."""

    @property
    def stock(self) -> StockPort: ...
    @property
    def ledger(self) -> LedgerPort: ...
    @property
    def holds(self) -> HoldsPort: ...
    @property
    def reservations(self) -> ReservationsPort: ...
    @property
    def catalog(self) -> CatalogPort: ...
    @property
    def policy(self) -> PolicyPort: ...
    @property
    def outbox(self) -> OutboxPort: ...
    @property
    def webhooks(self) -> WebhooksPort: ...
    @property
    def levels(self) -> LevelsPort: ...
    @property
    def low_stock(self) -> LowStockPort: ...
    @property
    def wms_inbox(self) -> WmsInboxPort: ...
    @property
    def wms_feed(self) -> WmsFeedPort: ...
    @property
    def leases(self) -> LeasesPort: ...
    @property
    def reconciliation(self) -> ReconciliationPort: ...
    @property
    def accuracy(self) -> AccuracyPort: ...
    @property
    def attempts(self) -> AttemptsPort: ...
    @property
    def retention(self) -> RetentionPort: ...
    @property
    def channel_accounts(self) -> ChannelAccountsPort: ...
    @property
    def intake(self) -> IntakePort: ...
    @property
    def channel_orders(self) -> ChannelOrdersPort: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class RetryableConflict(Exception):
    """The transaction lost a race it can win on a second try (a unique key taken meanwhile)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


T = TypeVar("T")
DEADLOCK_ATTEMPTS = 4


async def retrying_deadlocks(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a use case's transaction again when PostgreSQL broke a lock cycle by failing it (it
    rolled back whole, so running it again is safe). A cycle needs two transactions that lock the
    same rows in opposite orders: a shortage locks stock rows, then the reservations that hold
    them; a cancel or a pickup locks its reservation, then its stock rows."""
    for _ in range(DEADLOCK_ATTEMPTS - 1):
        try:
            return await attempt()
        except RetryableConflict as conflict:
            if conflict.what != "deadlock":
                raise
    return await attempt()
