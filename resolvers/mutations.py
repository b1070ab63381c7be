"""Mutation resolvers: translate the input into a command, call one use case, map the result."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.access import STORE_ROLES
from domain.catalog import Sku, StockCount, Store
from domain.commands import Reserve
from domain.errors import BadInput
from domain.geo import GeoPoint
from domain.kpis import ReserveOutcome, ReserveSource
from domain.pickup import Payment
from domain.policy import ReservationPolicy
from domain.webhooks import WebhookTarget
from schema import types
from schema.context import Info
from services import pickup, reservations, shortage, stock, webhooks
from services import policy as policy_service
from services.wms import feed, reconciliation


def _group(group: reservations.ReservationGroup) -> types.ReservationGroup:
    return types.ReservationGroup(
        id=strawberry.ID(group.id),
        customer=group.customer_id,
        reservations=[types.Reservation.from_domain(r) for r in group.reservations],
        replayed=group.replayed,
    )


async def reserve(
    info: Info,
    input: Annotated[types.ReserveInput, strawberry.argument(description="What to reserve.")],
) -> types.ReservationGroup:
    actor = info.context.require_actor()
    store_id = str(input.store_id) if input.store_id is not None else None
    # Who may reserve for whom is settled first: a refused caller made no reserve attempt.
    customer_id = actor.reserving_customer(
        str(input.customer_id) if input.customer_id is not None else None, store_id
    )
    channel = actor.reserving_channel(input.channel)
    deps = info.context.deps
    try:
        cmd = Reserve.build(
            customer_id=customer_id,
            lines=[(line.sku, line.quantity) for line in input.lines],
            store_id=store_id,
            near=GeoPoint(input.near.lat, input.near.lon) if input.near else None,
            radius_km=input.radius_km,
            hold_seconds=input.hold_seconds,
            idempotency_key=input.idempotency_key,
            channel=channel,
        )
        group = await reservations.reserve(cmd, uow=deps.uow, clock=deps.clock)
    except Exception as error:
        outcome = ReserveOutcome.of_error(error)
        deps.reserve_attempts.add(
            ReserveSource.GRAPHQL, outcome, deps.clock.now(), store_id=store_id, channel=channel
        )
        raise
    if not group.replayed:  # a retried request is the same attempt
        deps.reserve_attempts.add(
            ReserveSource.GRAPHQL,
            ReserveOutcome.RESERVED,
            deps.clock.now(),
            store_id=group.reservations[0].store_id if group.reservations else store_id,
            channel=channel,
        )
    return _group(group)


async def cancel_reservation(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
    reason: Annotated[str | None, strawberry.argument(description="Why, for the record.")] = None,
) -> types.Reservation:
    deps = info.context.deps
    cancelled = await reservations.cancel(str(id), reason, uow=deps.uow, clock=deps.clock)
    return types.Reservation.from_domain(cancelled)


async def mark_ready_for_pickup(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
) -> types.Reservation:
    deps = info.context.deps
    ready = await pickup.mark_ready(str(id), uow=deps.uow, clock=deps.clock)
    return types.Reservation.from_domain(ready)


async def check_in(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
    note: Annotated[
        str | None,
        strawberry.argument(
            description="For the store's staff, e.g. the car bay (at most 200 characters, one "
            "line)."
        ),
    ] = None,
) -> types.Reservation:
    actor = info.context.require_actor()
    deps = info.context.deps
    arrived = await pickup.check_in(str(id), actor.subject, note, uow=deps.uow, clock=deps.clock)
    return types.Reservation.from_domain(arrived)


async def scan_pickup(
    info: Info,
    code: Annotated[
        str,
        strawberry.argument(
            description="What the till scanned from the QR code, or the receipt's pickup code "
            "(case and spaces do not matter)."
        ),
    ],
) -> types.Reservation:
    actor = info.context.require_actor()
    deps = info.context.deps
    # Only a store's staff and POS find its reservations; to anyone else none exists.
    store_id = actor.store_id if actor.role in STORE_ROLES and actor.store_id else None
    found = await pickup.scan(code, store_id, read=deps.read, key=deps.qr_key, clock=deps.clock)
    return types.Reservation.from_domain(found)


async def complete_pickup(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
    payment: Annotated[types.PaymentInput, strawberry.argument(description="The money taken.")],
) -> types.Reservation:
    actor = info.context.require_actor()
    deps = info.context.deps
    collected = await pickup.complete_pickup(
        str(id),
        Payment.build(
            amount=payment.amount,
            currency=payment.currency,
            method=payment.method,
            reference=payment.reference,
        ),
        actor.subject,
        uow=deps.uow,
        clock=deps.clock,
    )
    return types.Reservation.from_domain(collected)


async def set_store_webhook(
    info: Info,
    store_id: Annotated[strawberry.ID, strawberry.argument(description="The store's code.")],
    url: Annotated[
        str | None,
        strawberry.argument(description="http(s) URL its events are POSTed to; null removes it."),
    ] = None,
    secret: Annotated[
        str | None,
        strawberry.argument(
            description="The shared secret the X-Ropos-Signature HMAC is made with (16 to 200 "
            "characters); required with url."
        ),
    ] = None,
) -> types.StoreWebhook:
    deps = info.context.deps
    target = None
    if url is not None:
        if secret is None:
            raise BadInput("A webhook needs a secret to sign its requests with.", field="secret")
        target = WebhookTarget.build(url, secret)
    saved = await webhooks.set_store_webhook(str(store_id), target, uow=deps.uow, clock=deps.clock)
    return types.StoreWebhook(store_id=store_id, url=saved.url if saved else None)


async def replay_webhook_delivery(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The dead delivery's id.")],
) -> types.WebhookDelivery:
    deps = info.context.deps
    replayed = await webhooks.replay(str(id), uow=deps.uow, clock=deps.clock)
    return types.WebhookDelivery.from_domain(replayed, deps.clock.now())


DiscardReason = Annotated[
    str, strawberry.argument(description="Why it is given up on (1 to 500 characters).")
]


async def discard_webhook_delivery(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The dead delivery's id.")],
    reason: DiscardReason,
) -> types.WebhookDelivery:
    deps = info.context.deps
    actor = info.context.require_actor().subject
    discarded = await webhooks.discard(str(id), reason, actor, uow=deps.uow, clock=deps.clock)
    return types.WebhookDelivery.from_domain(discarded, deps.clock.now())


async def upsert_stores(
    info: Info,
    stores: Annotated[list[types.StoreInput], strawberry.argument(description="1 to 1000 stores.")],
) -> list[types.Store]:
    deps = info.context.deps
    saved = await stock.upsert_stores(
        [
            Store.build(
                id=str(s.id),
                name=s.name,
                lat=s.lat,
                lon=s.lon,
                timezone=s.timezone,
                address=None if s.address is strawberry.UNSET else s.address,
            )
            for s in stores
        ],
        uow=deps.uow,
        clock=deps.clock,
        keep_address={str(s.id).strip() for s in stores if s.address is strawberry.UNSET},
    )
    return [types.Store.from_domain(s) for s in saved]


async def upsert_skus(
    info: Info,
    skus: Annotated[list[types.SkuInput], strawberry.argument(description="1 to 10000 SKUs.")],
) -> list[types.Sku]:
    deps = info.context.deps
    saved = await stock.upsert_skus(
        [Sku.build(code=s.code, name=s.name, unit_price=s.unit_price) for s in skus],
        uow=deps.uow,
        clock=deps.clock,
    )
    return [types.Sku(code=s.code, name=s.name, unit_price=s.unit_price) for s in saved]


async def sync_stock(
    info: Info,
    levels: Annotated[
        list[types.StockLevelInput],
        strawberry.argument(description="1 to 10000 counts, each (store, SKU) once."),
    ],
) -> types.SyncStockResult:
    deps = info.context.deps
    applied = await stock.sync_stock(
        [
            StockCount.build(
                store_id=str(lv.store_id),
                sku=lv.sku,
                on_hand=lv.on_hand,
                safety_stock=lv.safety_stock,
            )
            for lv in levels
        ],
        uow=deps.uow,
        clock=deps.clock,
    )
    return types.SyncStockResult(applied=applied)


async def update_reservation_policy(
    info: Info,
    input: Annotated[
        types.ReservationPolicyInput, strawberry.argument(description="The new policy.")
    ],
) -> types.ReservationPolicy:
    deps = info.context.deps
    policy = ReservationPolicy.create(
        allowed_hold_seconds=input.allowed_hold_seconds,
        default_hold_seconds=input.default_hold_seconds,
        max_active_reservations_per_customer=input.max_active_reservations_per_customer,
        max_units_per_sku_per_customer=input.max_units_per_sku_per_customer,
        expiry_warning_seconds=input.expiry_warning_seconds,
        max_stores_per_group=input.max_stores_per_group,
        pickup_window_seconds=input.pickup_window_seconds,
        allow_pickup_without_ready=input.allow_pickup_without_ready,
        ready_target_seconds=input.ready_target_seconds,
    )
    saved = await policy_service.update_policy(policy, uow=deps.uow, clock=deps.clock)
    return types.ReservationPolicy.from_domain(saved)


async def report_short_pick(
    info: Info,
    reservation_id: Annotated[
        strawberry.ID, strawberry.argument(description="The reservation being picked.")
    ],
    sku: Annotated[str, strawberry.argument(description="The SKU that is short.")],
    quantity_found: Annotated[
        int, strawberry.argument(description="Units of it found, fewer than reserved.")
    ],
) -> types.Reservation:
    deps = info.context.deps
    found = await shortage.report_short_pick(
        str(reservation_id),
        sku,
        quantity_found,
        info.context.require_actor(),
        uow=deps.uow,
        clock=deps.clock,
        radius_km=deps.resource_radius_km,
    )
    return types.Reservation.from_domain(found)


async def reconcile_stock(
    info: Info,
    store_ids: Annotated[
        list[strawberry.ID] | None,
        strawberry.argument(description="Only these stores (at most 1000); all when not given."),
    ] = None,
) -> types.ReconciliationRun:
    deps = info.context.deps
    if deps.wms is None:
        raise BadInput("No WMS is configured here (ROPOS_WMS_URL): nothing to reconcile with.")
    if store_ids is not None and not 1 <= len(store_ids) <= 1_000:
        raise BadInput("storeIds takes 1 to 1000 stores.", field="storeIds")
    run = await reconciliation.reconcile(
        uow=deps.uow,
        clock=deps.clock,
        wms=deps.wms,
        store_ids=[str(s) for s in store_ids] if store_ids else None,
        radius_km=deps.resource_radius_km,
    )
    return types.ReconciliationRun.from_domain(run)


async def resolve_stock_discrepancy(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The discrepancy's id.")],
    note: Annotated[str, strawberry.argument(description="What was found and done.")],
) -> types.StockDiscrepancy:
    deps = info.context.deps
    resolved = await reconciliation.resolve_discrepancy(
        str(id), note, info.context.require_actor().subject, uow=deps.uow, clock=deps.clock
    )
    return types.StockDiscrepancy.from_domain(resolved)


async def replay_wms_movement(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The dead movement's id.")],
) -> types.WmsMovement:
    deps = info.context.deps
    replayed = await feed.replay_movement(str(id), uow=deps.uow, clock=deps.clock)
    return types.WmsMovement.from_domain(replayed, deps.clock.now())


async def discard_wms_movement(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The dead movement's id.")],
    reason: DiscardReason,
) -> types.WmsMovement:
    deps = info.context.deps
    actor = info.context.require_actor().subject
    discarded = await feed.discard_movement(str(id), reason, actor, uow=deps.uow, clock=deps.clock)
    return types.WmsMovement.from_domain(discarded, deps.clock.now())


async def set_low_stock_thresholds(
    info: Info,
    thresholds: Annotated[
        list[types.LowStockThresholdInput],
        strawberry.argument(description="1 to 10000 thresholds."),
    ],
) -> int:
    deps = info.context.deps
    return await stock.set_low_stock_thresholds(
        [(str(t.store_id), t.sku, t.threshold) for t in thresholds],
        uow=deps.uow,
        clock=deps.clock,
    )
