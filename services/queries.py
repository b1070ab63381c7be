"""Read use cases: stores near a point, availability, and the reservation views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.accuracy import AccuracyCount
from domain.catalog import Store
from domain.commands import validate_code
from domain.errors import BadInput
from domain.geo import GeoPoint, validate_radius
from domain.kpis import KpiFacts
from domain.policy import ReservationPolicy
from domain.reconciliation import Discrepancy, ReconciliationRun
from domain.reservations import Reservation
from domain.stock import StockLevel
from domain.webhooks import Delivery
from domain.wms import Queued

MAX_FIRST = 100
MAX_AVAILABILITY_SKUS = 100


class ReadPort(Protocol):
    async def nearest_stores(
        self, center: GeoPoint, radius_km: float, limit: int
    ) -> list[tuple[Store, float]]: ...
    async def stores_page(self, first: int) -> list[Store]: ...
    async def stores_by_ids(self, ids: Sequence[str]) -> dict[str, Store]: ...
    async def stock_levels(
        self, store_ids: Sequence[str], skus: Sequence[str]
    ) -> dict[tuple[str, str], StockLevel]: ...
    async def reservations_by_ids(self, ids: Sequence[str]) -> dict[str, Reservation]: ...
    async def reservation_by_code(self, code: str) -> Reservation | None: ...
    async def reservations_of_customer(
        self, customer_id: str, *, active_only: bool, first: int
    ) -> list[Reservation]: ...
    async def pickup_queue(self, store_id: str, first: int) -> list[Reservation]: ...
    async def policy(self) -> ReservationPolicy: ...
    async def webhook_deliveries(
        self, status: str, store_id: str | None, first: int, *, by_impact_at: datetime | None = None
    ) -> list[Delivery]: ...
    async def kpi_facts(
        self, store_id: str | None, since: datetime, until: datetime
    ) -> KpiFacts: ...
    async def accuracy_counts(
        self, store_id: str | None, since: datetime, until: datetime
    ) -> list[AccuracyCount]: ...
    async def stock_discrepancies(
        self, status: str | None, store_id: str | None, first: int
    ) -> list[Discrepancy]: ...
    async def wms_movements(
        self,
        status: str | None,
        store_id: str | None,
        first: int,
        *,
        by_impact_at: datetime | None = None,
    ) -> list[Queued]: ...
    async def reconciliation_runs(self, first: int) -> list[ReconciliationRun]: ...


@dataclass(frozen=True, slots=True)
class NearbyStore:
    store: Store
    distance_km: float


@dataclass(frozen=True, slots=True)
class AvailabilityLine:
    sku: str
    available: int
    requested: int


@dataclass(frozen=True, slots=True)
class StoreAvailability:
    store: Store
    distance_km: float
    lines: tuple[AvailabilityLine, ...]

    @property
    def can_serve_all(self) -> bool:
        return all(line.available >= line.requested for line in self.lines)


def validate_first(first: int | None, default: int = 20) -> int:
    if first is None:
        return default
    if not 1 <= first <= MAX_FIRST:
        raise BadInput(f"first must be from 1 to {MAX_FIRST}, got {first}.", field="first")
    return first


async def stores_near(
    read: ReadPort, near: GeoPoint, radius_km: float | None, first: int | None
) -> list[NearbyStore]:
    radius = validate_radius(radius_km)
    limit = validate_first(first)
    return [
        NearbyStore(store, distance)
        for store, distance in await read.nearest_stores(near, radius, limit)
    ]


async def availability(
    read: ReadPort,
    skus: Sequence[str],
    quantities: Sequence[int] | None,
    near: GeoPoint,
    radius_km: float | None,
    first: int | None,
) -> list[StoreAvailability]:
    """The nearest stores and what each can give of the SKUs (nearest first)."""
    if not skus:
        raise BadInput("Give at least one SKU.", field="skus")
    if len(skus) > MAX_AVAILABILITY_SKUS:
        raise BadInput(f"At most {MAX_AVAILABILITY_SKUS} SKUs per query.", field="skus")
    wanted = [validate_code(sku, "sku") for sku in skus]
    if len(set(wanted)) != len(wanted):
        raise BadInput("Each SKU may appear only once.", field="skus")
    if quantities is None:
        requested = [1] * len(wanted)
    else:
        if len(quantities) != len(wanted):
            raise BadInput("quantities must have one entry per SKU.", field="quantities")
        if any(q < 1 for q in quantities):
            raise BadInput("Each quantity must be at least 1.", field="quantities")
        requested = list(quantities)
    nearby = await stores_near(read, near, radius_km, first)
    if not nearby:
        return []
    levels = await read.stock_levels([n.store.id for n in nearby], wanted)
    return [
        StoreAvailability(
            n.store,
            n.distance_km,
            tuple(
                AvailabilityLine(
                    sku, level.available if (level := levels.get((n.store.id, sku))) else 0, q
                )
                for sku, q in zip(wanted, requested, strict=True)
            ),
        )
        for n in nearby
    ]
