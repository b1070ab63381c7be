"""The outbox relay: publish committed events to the broker, at least once, in outbox order, and
queue the ones a store's POS webhook is sent."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import orjson

from domain.clock import Clock
from domain.events import MOVES_STOCK, LowStock, PendingEvent, StockChanged, stock_channel
from services import webhooks
from services.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, channel: str, message: str) -> None:
        """Raises when the broker cannot take the message (the event then stays in the outbox)."""
        ...


async def publish_pending(
    *, uow: UnitOfWorkFactory, publisher: Publisher, clock: Clock, batch_size: int
) -> int:
    """Publish up to `batch_size` unpublished events and mark them published. If the broker fails
    part-way, what went out is marked and the rest waits for the next attempt; a crash between
    publishing and marking publishes again (consumers drop duplicates by event id and sequence).
    Returns how many events were published."""
    async with uow() as tx:
        pending = await tx.outbox.claim_unpublished(batch_size)
        if not pending:
            return 0
        # Read on the transaction's own connection: waiting on another one while this transaction
        # holds its outbox rows could close a lock cycle PostgreSQL cannot see (DDL, TRUNCATE).
        availability = await _availability(tx, pending)
        published: list[int] = []
        try:
            for event in pending:
                message = orjson.dumps(event.payload).decode()
                for channel in event.channels():
                    await publisher.publish(channel, message)
                for channel, stock_message in _stock_messages(event, availability):
                    await publisher.publish(channel, stock_message)
                published.append(event.position)
        finally:
            if published:
                went_out = set(published)
                done = [e for e in pending if e.position in went_out]
                await webhooks.enqueue(tx, done, clock.now())
                await _low_stock(tx, done, clock)
                await tx.outbox.mark_published(published, clock.now())
                await tx.commit()
    return len(published)


async def _low_stock(tx: UnitOfWork, done: Sequence[PendingEvent], clock: Clock) -> None:
    """Rows these events moved that fell below their low-stock threshold: a LOW_STOCK event each
    (written to the outbox: it goes out with the next batch). Checked here, off the reserve path,
    once per batch."""
    keys = {(e.store_id, sku) for e in done for sku in _lines(e) if e.store_id is not None}
    keys |= {key for e in done for key, _ in _counted(e)}
    if not keys:
        return
    crossed = await tx.wms.low_stock_crossings(sorted(keys))
    if crossed:
        now = clock.now()
        await tx.outbox.add(
            [
                LowStock(store_id=s, sku=k, available=a, threshold=t, occurred_at=now)
                for s, k, a, t in crossed
            ]
        )
        log.info("low stock", extra={"rows": [f"{s}/{k}" for s, k, _, _ in crossed][:20]})


def _lines(event: PendingEvent) -> list[str]:
    if event.type not in MOVES_STOCK or event.store_id is None:
        return []
    return [line["sku"] for line in event.payload["reservation"]["lines"]]


async def _availability(
    tx: UnitOfWork, pending: Sequence[PendingEvent]
) -> dict[tuple[str, str], int]:
    """Current availability of the rows the batch's reservation events moved: a storefront wants
    the latest figure, which is also the one that is right when events arrive late."""
    keys = {(e.store_id, sku) for e in pending for sku in _lines(e) if e.store_id is not None}
    keys |= {key for e in pending for key, _ in _counted(e)}
    if not keys:
        return {}
    levels = await tx.stock.levels(sorted(keys))
    return {key: levels[key].available if key in levels else 0 for key in keys}


def _counted(event: PendingEvent) -> list[tuple[tuple[str, str], str]]:
    """The rows a count event changed: ((store, SKU), the message id for that row)."""
    if event.type != StockChanged.type:
        return []
    return [
        ((store_id, sku), f"{event.event_id}:{store_id}:{sku}")
        for store_id, sku, *_ in event.payload["levels"]
    ]


def _stock_messages(
    event: PendingEvent, availability: dict[tuple[str, str], int]
) -> list[tuple[str, str]]:
    """One STOCK_CHANGED message per row the event moved, to the row's store and to everyone."""
    rows = [((event.store_id, sku), f"{event.event_id}:{sku}") for sku in _lines(event)]
    rows += _counted(event)
    reason = event.payload.get("reason", event.type)
    messages = []
    for (store_id, sku), message_id in rows:
        assert store_id is not None
        message = orjson.dumps(
            {
                "id": message_id,
                "type": "STOCK_CHANGED",
                "occurredAt": event.payload["occurredAt"],
                "storeId": store_id,
                "sku": sku,
                "available": availability.get((store_id, sku), 0),
                "reason": reason,
            }
        ).decode()
        messages += [(stock_channel(store_id), message), (stock_channel(), message)]
    return messages
