"""Subscriptions: async generators over broker channels. None holds a database connection while it
waits; each starts listening before it reads, so nothing falls between the two."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import orjson
import strawberry

from domain import events
from domain.errors import BadInput, NotFound
from resolvers.context import Info
from schema import types

MAX_SKUS = 100


class _Seen:
    """The ids of the last events delivered, to drop the duplicates at-least-once delivery sends."""

    def __init__(self, size: int = 1024) -> None:
        self._order: deque[str] = deque(maxlen=size)
        self._ids: set[str] = set()

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(event_id)
        self._ids.add(event_id)
        return True


async def _messages(info: Info, channel: str) -> AsyncGenerator[dict[str, Any], None]:
    async with info.context.deps.broadcast.subscribe(channel) as subscriber:
        async for event in subscriber:
            yield orjson.loads(event.message)


async def pickup_events(
    info: Info,
    store_id: Annotated[strawberry.ID, strawberry.argument(description="The store's code.")],
) -> AsyncGenerator[types.PickupEvent, None]:
    seen = _Seen()
    async for payload in _messages(info, events.store_channel(str(store_id))):
        if payload["type"] in events.FOR_THE_STORE and seen.first_time(payload["id"]):
            yield types.PickupEvent.from_payload(payload)


async def reservation_updates(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The reservation's id.")],
) -> AsyncGenerator[types.ReservationEvent, None]:
    deps = info.context.deps
    reservation_id = str(id)
    async with deps.broadcast.subscribe(events.reservation_channel(reservation_id)) as subscriber:
        current = (await deps.read.reservations_by_ids([reservation_id])).get(reservation_id)
        if current is None:
            raise NotFound(f"No reservation {reservation_id}.")
        now = deps.clock.now()
        yield types.ReservationEvent(
            id=strawberry.ID(f"{reservation_id}:snapshot:{current.version}"),
            type=types.ReservationEventType.SNAPSHOT,
            occurred_at=now,
            sequence=current.version,
            reservation=types.Reservation.from_domain(current),
        )
        if not current.is_active:
            return
        last = current.version
        async for event in subscriber:
            payload = orjson.loads(event.message)
            if payload["sequence"] <= last:
                continue  # already in the snapshot, or a duplicate
            last = payload["sequence"]
            yield types.ReservationEvent.from_payload(payload)
            if payload["type"] in events.FINAL:
                return


async def stock_updates(
    info: Info,
    store_id: Annotated[
        strawberry.ID | None,
        strawberry.argument(description="One store's changes; every store's when not given."),
    ] = None,
    skus: Annotated[
        list[str] | None,
        strawberry.argument(description="Only these SKUs (at most 100); every SKU when not given."),
    ] = None,
) -> AsyncGenerator[types.StockEvent, None]:
    if skus is not None and not 1 <= len(skus) <= MAX_SKUS:
        raise BadInput(f"skus takes 1 to {MAX_SKUS} SKUs.", field="skus")
    wanted = set(skus) if skus else None
    seen = _Seen()
    channel = events.stock_channel(str(store_id) if store_id is not None else None)
    async for payload in _messages(info, channel):
        if wanted is not None and payload["sku"] not in wanted:
            continue
        if seen.first_time(payload["id"]):
            yield types.StockEvent(
                store_id=strawberry.ID(payload["storeId"]),
                sku=payload["sku"],
                available=payload["available"],
                occurred_at=datetime.fromisoformat(payload["occurredAt"]),
                type=payload.get("type", "STOCK_CHANGED"),
                threshold=payload.get("threshold"),
            )
