"""Stores, SKUs and stock levels: the catalogue and the WMS's absolute on-hand counts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from domain.catalog import Sku, StockCount, Store
from domain.clock import Clock
from domain.errors import BadInput
from domain.wms import LevelUpdate
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM
from services.unit_of_work import UnitOfWorkFactory, retrying_deadlocks
from services.wms import apply_levels

log = logging.getLogger(__name__)

MAX_STORES_PER_CALL = 1_000
MAX_SKUS_PER_CALL = 10_000
MAX_LEVELS_PER_CALL = 10_000


def _no_duplicates(keys: Sequence[object], what: str) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise BadInput(f"{what} {key} appears twice in one call.", field=what)
        seen.add(key)


def _cap(items: Sequence[object], limit: int, what: str) -> None:
    if not items:
        raise BadInput(f"Give at least one {what}.", field=what)
    if len(items) > limit:
        raise BadInput(f"At most {limit} {what} per call, got {len(items)}.", field=what)


async def upsert_stores(
    new: Sequence[Store], *, uow: UnitOfWorkFactory, clock: Clock
) -> list[Store]:
    _cap(new, MAX_STORES_PER_CALL, "stores")
    _no_duplicates([s.id for s in new], "store")
    async with uow() as tx:
        await tx.catalog.upsert_stores(
            [
                {"id": s.id, "name": s.name, "lat": s.lat, "lon": s.lon, "timezone": s.timezone}
                for s in new
            ],
            clock.now(),
        )
        await tx.commit()
    return list(new)


async def upsert_skus(new: Sequence[Sku], *, uow: UnitOfWorkFactory, clock: Clock) -> list[Sku]:
    _cap(new, MAX_SKUS_PER_CALL, "skus")
    _no_duplicates([s.code for s in new], "sku")
    async with uow() as tx:
        await tx.catalog.upsert_skus(
            [{"code": s.code, "name": s.name, "unit_price": s.unit_price} for s in new], clock.now()
        )
        await tx.commit()
    return list(new)


async def sync_stock(
    levels: Sequence[StockCount],
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> int:
    """Set absolute on hand per (store, SKU), as the WMS counted it. SKUs the WMS knows and we do
    not are added to the catalogue; unknown stores are refused. All or nothing. A store left with
    fewer units than it has reserved gives the newest reservations up to re-sourcing."""
    _cap(levels, MAX_LEVELS_PER_CALL, "levels")
    _no_duplicates([(lv.store_id, lv.sku) for lv in levels], "level")
    updates = [
        LevelUpdate(lv.store_id, lv.sku, on_hand=lv.on_hand, safety_stock=lv.safety_stock)
        for lv in levels
    ]

    async def attempt() -> int:
        async with uow() as tx:
            done = await apply_levels(tx, updates, clock.now(), radius_km=radius_km)
            await tx.commit()
        return done.applied

    return await retrying_deadlocks(attempt)
