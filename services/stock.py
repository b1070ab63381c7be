"""Stores, SKUs and stock levels: the catalogue, counts of what is on hand (the WMS's, or an
operator's) merged into the stock rows, and low-stock thresholds."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from domain import events
from domain.catalog import Sku, StockCount, Store
from domain.clock import Clock
from domain.errors import BadInput, NotFound
from domain.reservations import MovementReason
from domain.stock import LevelUpdate, Movement, Recount, merge_count
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM, resolve_shortages
from services.unit_of_work import UnitOfWork, UnitOfWorkFactory, retrying_deadlocks

log = logging.getLogger(__name__)

MAX_STORES_PER_CALL = 1_000
MAX_SKUS_PER_CALL = 10_000
MAX_LEVELS_PER_CALL = 10_000
MAX_THRESHOLD = 10_000_000
# Rows per stock event: a 10,000-level snapshot is 10 outbox rows, not 10,000.
EVENT_LEVELS = 1_000


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
    new: Sequence[Store],
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    keep_address: Collection[str] = (),
) -> list[Store]:
    """Add or replace stores; those in `keep_address` keep the address they have (a new one
    has none), the others take theirs. Returns the stores as saved."""
    _cap(new, MAX_STORES_PER_CALL, "stores")
    _no_duplicates([s.id for s in new], "store")
    async with uow() as tx:
        rows: list[dict[str, object]] = []
        for s in new:
            row: dict[str, object] = {
                "id": s.id,
                "name": s.name,
                "lat": s.lat,
                "lon": s.lon,
                "timezone": s.timezone,
            }
            if s.id not in keep_address:
                row["address"] = s.address
            rows.append(row)
        await tx.catalog.upsert_stores(rows, clock.now())
        kept = await tx.catalog.addresses(s.id for s in new if s.id in keep_address)
        await tx.commit()
    return [replace(s, address=kept[s.id]) if s.id in kept else s for s in new]


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
            done = await apply_counts(tx, updates, clock.now(), radius_km=radius_km)
            await tx.commit()
        return done.applied

    return await retrying_deadlocks(attempt)


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    stale: int


async def apply_counts(
    tx: UnitOfWork,
    counts: Sequence[LevelUpdate],
    now: datetime,
    *,
    reason: MovementReason = MovementReason.SYNC,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> Applied:
    """Merge counts into their stock rows in bulk statements, within the caller's transaction:
    the rows locked in key order, the changes written, a ledger line per change of on hand, a
    stock event for watchers, and the rows left short given to `resolve_shortages`. Refuses
    (before writing anything) counts of unknown stores; SKUs the WMS knows and ROPOS does not are
    added to the catalogue."""
    store_ids = {count.store_id for count in counts}
    unknown = sorted(store_ids - await tx.catalog.existing_stores(store_ids))
    if unknown:
        raise NotFound(f"Unknown store: {', '.join(unknown[:20])}", storeIds=unknown[:100])
    ordered = sorted(counts, key=lambda count: (count.store_id, count.sku))
    current = await tx.levels.lock([(c.store_id, c.sku) for c in ordered])
    new_skus = {c.sku for c in ordered if (c.store_id, c.sku) not in current}
    if new_skus:
        missing = sorted(new_skus - await tx.catalog.existing_skus(new_skus))
        if missing:
            await tx.catalog.upsert_skus([{"code": sku} for sku in missing], now, overwrite=False)
    recounts = [merge_count(current.get((c.store_id, c.sku)), c) for c in ordered]
    merged = [r for r in recounts if r is not None]
    await tx.levels.write([r.after for r in merged if r.before is not None and r.needs_write], now)
    await tx.levels.insert([r.after for r in merged if r.before is None], now)
    await tx.ledger.record(_movements(merged, reason), now)
    await tx.outbox.add(_stock_events(merged, reason, now))
    short = [(r.after.store_id, r.after.sku) for r in merged if r.after.is_short]
    if short:
        await resolve_shortages(tx, short, now, radius_km=radius_km)
    return Applied(len(merged), len(recounts) - len(merged))


def _movements(merged: Sequence[Recount], reason: MovementReason) -> list[Movement]:
    return [
        Movement(r.after.store_id, r.after.sku, r.on_hand_change, 0, reason)
        for r in merged
        if r.on_hand_change
    ]


def _stock_events(
    merged: Sequence[Recount], reason: MovementReason, now: datetime
) -> list[events.StockChanged]:
    told = [r.after for r in merged if r.tells_watchers]
    return [
        events.StockChanged(
            levels=tuple(told[i : i + EVENT_LEVELS]), reason=str(reason), occurred_at=now
        )
        for i in range(0, len(told), EVENT_LEVELS)
    ]


async def set_low_stock_thresholds(
    thresholds: Sequence[tuple[str, str, int | None]], *, uow: UnitOfWorkFactory, clock: Clock
) -> int:
    """Set (or clear, with None) the low-stock threshold of existing (store, SKU) rows."""
    if not thresholds or len(thresholds) > MAX_LEVELS_PER_CALL:
        raise BadInput(f"Give 1 to {MAX_LEVELS_PER_CALL} thresholds.", field="thresholds")
    if len({(store_id, sku) for store_id, sku, _ in thresholds}) != len(thresholds):
        raise BadInput("A (store, SKU) appears twice.", field="thresholds")
    for _store, _sku, value in thresholds:
        if value is not None and not 0 <= value <= MAX_THRESHOLD:
            raise BadInput(f"A threshold is 0 to {MAX_THRESHOLD} units.", field="threshold")
    async with uow() as tx:
        missing = []
        for store_id, sku, value in sorted(thresholds, key=lambda t: (t[0], t[1])):
            if not await tx.low_stock.set_threshold(store_id, sku, value):
                missing.append(f"{store_id}/{sku}")
        if missing:
            raise NotFound(f"No stock level for {', '.join(missing[:20])}.", levels=missing[:100])
        # The relay checks thresholds when it publishes: a stock event per row does it now.
        levels = await tx.stock.levels([(s, k) for s, k, _ in thresholds])
        await tx.outbox.add(
            [
                events.StockChanged(
                    levels=tuple(levels.values()), reason="THRESHOLD", occurred_at=clock.now()
                )
            ]
        )
        await tx.commit()
    return len(thresholds)
