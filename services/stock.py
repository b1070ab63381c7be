"""Stores, SKUs and stock levels: the catalogue and the WMS's absolute on-hand counts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from domain.catalog import Sku, StockCount, Store
from domain.clock import Clock
from domain.errors import BadInput, NotFound
from domain.events import Event
from domain.reservations import MovementReason
from domain.stock import Movement, StockLevel
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

MAX_STORES_PER_CALL = 1_000
MAX_SKUS_PER_CALL = 10_000
MAX_LEVELS_PER_CALL = 10_000
CHUNK = 1_000


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


async def sync_stock(levels: Sequence[StockCount], *, uow: UnitOfWorkFactory, clock: Clock) -> int:
    """Set absolute on hand per (store, SKU), as the WMS counted it. SKUs the WMS knows and we do
    not are added to the catalogue; unknown stores are refused. All or nothing."""
    _cap(levels, MAX_LEVELS_PER_CALL, "levels")
    _no_duplicates([(lv.store_id, lv.sku) for lv in levels], "level")
    async with uow() as tx:
        now = clock.now()
        store_ids = {lv.store_id for lv in levels}
        unknown = sorted(store_ids - await tx.catalog.existing_stores(store_ids))
        if unknown:
            raise NotFound(f"Unknown store: {', '.join(unknown[:20])}", storeIds=unknown[:100])
        await tx.catalog.upsert_skus(
            [{"code": sku} for sku in sorted({lv.sku for lv in levels})], now, overwrite=False
        )

        ordered = sorted(levels, key=lambda lv: (lv.store_id, lv.sku))
        movements: list[Movement] = []
        changes: list[Event] = []
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            before = await tx.stock.current([(lv.store_id, lv.sku) for lv in chunk])
            await tx.stock.set_levels(
                [
                    {
                        "store_id": lv.store_id,
                        "sku": lv.sku,
                        "on_hand": lv.on_hand,
                        "safety_stock": lv.safety_stock,
                    }
                    for lv in chunk
                ],
                now,
            )
            for lv in chunk:
                old = before.get((lv.store_id, lv.sku)) or StockLevel(lv.store_id, lv.sku, 0, 0, 0)
                new = StockLevel(
                    lv.store_id,
                    lv.sku,
                    lv.on_hand,
                    old.reserved,
                    old.safety_stock if lv.safety_stock is None else lv.safety_stock,
                )
                if new.on_hand != old.on_hand:
                    movements.append(
                        Movement(
                            lv.store_id, lv.sku, new.on_hand - old.on_hand, 0, MovementReason.SYNC
                        )
                    )
                if new.available != old.available or (lv.store_id, lv.sku) not in before:
                    changes.append(new.changed(MovementReason.SYNC, now))
                if new.on_hand < new.reserved:
                    log.warning(
                        "on hand below reserved",
                        extra={
                            "store_id": lv.store_id,
                            "sku": lv.sku,
                            "on_hand": new.on_hand,
                            "reserved": new.reserved,
                        },
                    )
        await tx.ledger.record(movements, now)
        await tx.outbox.add(changes)
        await tx.commit()
    return len(levels)
