"""The outbox relay: publish committed events to the broker, at least once, in outbox order, and
queue the ones a store's POS webhook is sent."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import orjson

from domain.clock import Clock
from domain.events import LowStock, PendingEvent
from domain.stock import WatchedLevel
from services import event_codec, webhooks
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
        watched = await _watched(tx, pending)
        availability = {key: w.level.available for key, w in watched.items()}
        published: list[int] = []
        try:
            for event in pending:
                message = orjson.dumps(event.payload).decode()
                for channel in event.channels():
                    await publisher.publish(channel, message)
                for channel, stock_message in event_codec.stock_messages(event, availability):
                    await publisher.publish(channel, stock_message)
                published.append(event.position)
        finally:
            if published:
                went_out = set(published)
                done = [e for e in pending if e.position in went_out]
                await webhooks.enqueue(tx, done, clock.now())
                await _low_stock(tx, done, watched, clock)
                await tx.outbox.mark_published(published, clock.now())
                await tx.commit()
    return len(published)


async def _low_stock(
    tx: UnitOfWork,
    done: Sequence[PendingEvent],
    watched: dict[tuple[str, str], WatchedLevel],
    clock: Clock,
) -> None:
    """Rows these events moved that fell below their low-stock threshold: a LOW_STOCK event each
    (written to the outbox: it goes out with the next batch). Decided from the rows the relay
    read anyway; a statement is sent only for a row whose flag changes."""
    keys = {key for e in done for key, _ in event_codec.moved_rows(e)}
    changes = [watched[key] for key in sorted(keys) if key in watched]
    changes = [w for w in changes if w.alert_changes]
    if not changes:
        return
    flagged = await tx.low_stock.flag(changes)
    if flagged:
        now = clock.now()
        await tx.outbox.add(
            [
                LowStock(
                    store_id=w.level.store_id,
                    sku=w.level.sku,
                    available=w.level.available,
                    threshold=w.threshold or 0,
                    occurred_at=now,
                )
                for w in flagged
            ]
        )
        log.info(
            "low stock", extra={"rows": [f"{w.level.store_id}/{w.level.sku}" for w in flagged]}
        )


async def _watched(
    tx: UnitOfWork, pending: Sequence[PendingEvent]
) -> dict[tuple[str, str], WatchedLevel]:
    """The rows the batch's events moved, as they are now: a storefront wants the latest
    availability, which is also the one that is right when events arrive late; and their
    low-stock thresholds."""
    keys = {key for e in pending for key, _ in event_codec.moved_rows(e)}
    if not keys:
        return {}
    return await tx.stock.watched_levels(sorted(keys))
