"""The unit-of-work protocol: what a use case may ask of storage inside one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from domain.events import Event
from domain.geo import GeoPoint
from domain.pickup import Payment
from domain.policy import ReservationPolicy
from domain.reservations import Reservation
from domain.sourcing import Candidate
from domain.stock import Movement, StockLevel


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
    async def current(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StockLevel]: ...
    async def set_levels(self, levels: Sequence[Mapping[str, Any]], now: datetime) -> None: ...


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
    ) -> None: ...
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
    async def save(
        self, reservation: Reservation, previous_version: int, now: datetime
    ) -> None: ...


class CatalogPort(Protocol):
    async def existing_stores(self, store_ids: Iterable[str]) -> set[str]: ...
    async def existing_skus(self, codes: Iterable[str]) -> set[str]: ...
    async def upsert_stores(self, rows: Sequence[Mapping[str, Any]], now: datetime) -> None: ...
    async def upsert_skus(
        self, rows: Sequence[Mapping[str, Any]], now: datetime, *, overwrite: bool = True
    ) -> None: ...


class PolicyPort(Protocol):
    async def get(self) -> ReservationPolicy: ...
    async def save(self, policy: ReservationPolicy, now: datetime) -> None: ...


class OutboxPort(Protocol):
    async def add(self, new: Sequence[Event]) -> None: ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the `async with` block without `commit()` rolls everything back.
    Events added to `outbox` are committed with the change; after the commit, `committed_events`
    lists them for whoever wants to publish at once."""

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
