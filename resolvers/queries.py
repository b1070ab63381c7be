"""Query resolvers: parse the arguments, call one read use case, map the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain.geo import GeoPoint
from schema import types
from schema.context import Info
from services import kpis as kpis_service
from services import queries

Near = Annotated[types.GeoPointInput, strawberry.argument(description="The point to search from.")]
RadiusKm = Annotated[
    float | None, strawberry.argument(description="How far to look, km (default 50, at most 1000).")
]
First = Annotated[int | None, strawberry.argument(description="How many to return, 1 to 100.")]
StoreId = Annotated[strawberry.ID, strawberry.argument(description="The store's code.")]
ReservationId = Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")]
# The ops lists (dead letters, discrepancies): one store's, and how many.
OnlyStore = Annotated[strawberry.ID | None, strawberry.argument(description="Only this store's.")]
FirstOf50 = Annotated[
    int | None, strawberry.argument(description="How many, 1 to 100 (default 50).")
]


def _point(near: types.GeoPointInput) -> GeoPoint:
    return GeoPoint(near.lat, near.lon)


async def stores(
    info: Info,
    near: Annotated[
        types.GeoPointInput | None,
        strawberry.argument(description="Order by distance from this point, within radiusKm."),
    ] = None,
    radius_km: RadiusKm = None,
    first: First = None,
) -> list[types.Store]:
    read = info.context.deps.read
    if near is None:
        return [
            types.Store.from_domain(s)
            for s in await read.stores_page(queries.validate_first(first))
        ]
    found = await queries.stores_near(read, _point(near), radius_km, first)
    return [types.Store.from_domain(n.store, n.distance_km) for n in found]


async def availability(
    info: Info,
    skus: Annotated[list[str], strawberry.argument(description="SKU codes, 1 to 100.")],
    near: Near,
    quantities: Annotated[
        list[int] | None,
        strawberry.argument(
            description="Units wanted per SKU, in the order of skus (default 1 each)."
        ),
    ] = None,
    radius_km: RadiusKm = None,
    first: First = None,
) -> list[types.StoreAvailability]:
    found = await queries.availability(
        info.context.deps.read, skus, quantities, _point(near), radius_km, first
    )
    return [types.StoreAvailability.from_domain(a) for a in found]


async def stock_level(
    info: Info,
    store_id: StoreId,
    sku: Annotated[str, strawberry.argument(description="The SKU code.")],
) -> types.StockLevel | None:
    levels = await info.context.deps.read.stock_levels([str(store_id)], [sku])
    level = levels.get((str(store_id), sku))
    return types.StockLevel.from_domain(level) if level else None


async def reservation(info: Info, id: ReservationId) -> types.Reservation | None:
    found = await info.context.loaders.reservation.load(str(id))
    return types.Reservation.from_domain(found) if found else None


async def my_reservations(
    info: Info,
    active_only: Annotated[
        bool, strawberry.argument(description="Only HELD and READY_FOR_PICKUP ones.")
    ] = False,
    first: Annotated[
        int | None, strawberry.argument(description="How many, 1 to 100 (default 50).")
    ] = None,
) -> list[types.Reservation]:
    actor = info.context.require_actor()
    found = await info.context.deps.read.reservations_of_customer(
        actor.subject, active_only=active_only, first=queries.validate_first(first, default=50)
    )
    return [types.Reservation.from_domain(r) for r in found]


async def pickup_queue(
    info: Info,
    store_id: StoreId,
    first: Annotated[
        int | None, strawberry.argument(description="How many, 1 to 100 (default 100).")
    ] = None,
) -> list[types.Reservation]:
    found = await info.context.deps.read.pickup_queue(
        str(store_id), queries.validate_first(first, default=100)
    )
    return [types.Reservation.from_domain(r) for r in found]


async def reservation_policy(info: Info) -> types.ReservationPolicy:
    return types.ReservationPolicy.from_domain(await info.context.deps.read.policy())


async def webhook_deliveries(
    info: Info,
    status: Annotated[
        types.WebhookDeliveryStatus,
        strawberry.argument(description="Which ones (default DEAD: the dead letters)."),
    ] = types.WebhookDeliveryStatus.DEAD,
    store_id: OnlyStore = None,
    first: FirstOf50 = None,
    order_by: Annotated[
        types.WebhookDeliveryOrder,
        strawberry.argument(description="Newest first, or most impact first."),
    ] = types.WebhookDeliveryOrder.CREATED_AT_DESC,
) -> list[types.WebhookDelivery]:
    now = info.context.deps.clock.now()
    found = await info.context.deps.read.webhook_deliveries(
        status.name,
        str(store_id) if store_id is not None else None,
        queries.validate_first(first, default=50),
        by_impact_at=now if order_by is types.WebhookDeliveryOrder.IMPACT_DESC else None,
    )
    return [types.WebhookDelivery.from_domain(d, now) for d in found]


async def kpis(
    info: Info,
    store_id: Annotated[
        strawberry.ID | None, strawberry.argument(description="One store's; all when not given.")
    ] = None,
    since: Annotated[
        datetime | None,
        strawberry.argument(description="Start of the window (default: 7 days ago)."),
    ] = None,
) -> types.Kpis:
    deps = info.context.deps
    await deps.reserve_attempts.flush()  # this process's latest attempts too
    found = await kpis_service.kpis(
        str(store_id) if store_id is not None else None, since, read=deps.read, clock=deps.clock
    )
    return types.Kpis.from_domain(found)


async def stock_discrepancies(
    info: Info,
    status: Annotated[
        types.DiscrepancyStatus | None,
        strawberry.argument(description="Which ones (default OPEN; null for all)."),
    ] = types.DiscrepancyStatus.OPEN,
    store_id: OnlyStore = None,
    first: FirstOf50 = None,
) -> list[types.StockDiscrepancy]:
    found = await info.context.deps.read.stock_discrepancies(
        status.name if status is not None else None,
        str(store_id) if store_id is not None else None,
        queries.validate_first(first, default=50),
    )
    return [types.StockDiscrepancy.from_domain(d) for d in found]


async def wms_movements(
    info: Info,
    status: Annotated[
        types.WmsMovementStatus | None,
        strawberry.argument(description="Which ones (default DEAD: the dead letters)."),
    ] = types.WmsMovementStatus.DEAD,
    store_id: OnlyStore = None,
    first: FirstOf50 = None,
    order_by: Annotated[
        types.WmsMovementOrder,
        strawberry.argument(description="Newest first, or most impact first."),
    ] = types.WmsMovementOrder.CREATED_AT_DESC,
) -> list[types.WmsMovement]:
    now = info.context.deps.clock.now()
    found = await info.context.deps.read.wms_movements(
        status.name if status is not None else None,
        str(store_id) if store_id is not None else None,
        queries.validate_first(first, default=50),
        by_impact_at=now if order_by is types.WmsMovementOrder.IMPACT_DESC else None,
    )
    return [types.WmsMovement.from_domain(q, now) for q in found]


async def reconciliation_runs(
    info: Info,
    first: Annotated[
        int | None, strawberry.argument(description="How many, 1 to 100 (default 10).")
    ] = None,
) -> list[types.ReconciliationRun]:
    found = await info.context.deps.read.reconciliation_runs(
        queries.validate_first(first, default=10)
    )
    return [types.ReconciliationRun.from_domain(run) for run in found]
