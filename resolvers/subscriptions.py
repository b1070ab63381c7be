"""Subscriptions: async generators over broker channels. None holds a database connection while it
waits; each starts listening before it reads, so nothing falls between the two."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from domain import events
from domain.errors import BadInput, NotFound
from domain.events import Event, StockAvailable
from schema import intake as intake_types
from schema import types
from schema.context import Info
from services import event_codec

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


async def _events(info: Info, channel: str) -> AsyncGenerator[Event | StockAvailable, None]:
    async with info.context.deps.broadcast.subscribe(channel) as subscriber:
        async for message in subscriber:
            yield event_codec.decode_message(message.message)


async def pickup_events(
    info: Info,
    store_id: Annotated[strawberry.ID, strawberry.argument(description="The store's code.")],
) -> AsyncGenerator[types.PickupEvent, None]:
    seen = _Seen()
    async for event in _events(info, events.store_channel(str(store_id))):
        if (
            isinstance(event, events.ReservationEvent)
            and event.type in events.FOR_THE_STORE
            and seen.first_time(event.id)
        ):
            yield types.PickupEvent.from_domain(event)


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
        async for message in subscriber:
            event = event_codec.decode_message(message.message)
            if not isinstance(event, events.ReservationEvent) or event.sequence <= last:
                continue  # already in the snapshot, or a duplicate
            last = event.sequence
            yield types.ReservationEvent.from_domain(event)
            if event.type in events.FINAL:
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
    async for event in _events(info, channel):
        if not isinstance(event, StockAvailable | events.LowStock):
            continue
        if wanted is not None and event.sku not in wanted:
            continue
        if seen.first_time(event.id):
            yield types.StockEvent.from_domain(event)


async def intake_events(
    info: Info,
    channel: Annotated[
        intake_types.SalesChannel | None,
        strawberry.argument(description="One channel account's outcomes (with account)."),
    ] = None,
    account: Annotated[
        str | None, strawberry.argument(description="The account code, with channel.")
    ] = None,
) -> AsyncGenerator[intake_types.IntakeEvent, None]:
    if (channel is None) != (account is None):
        raise BadInput("Give both channel and account, or neither.", field="account")
    name = events.intake_channel(channel.domain.value if channel else None, account)
    seen = _Seen()
    async for event in _events(info, name):
        if isinstance(event, events.IntakeOutcome) and seen.first_time(event.id):
            yield intake_types.IntakeEvent.from_domain(event)
