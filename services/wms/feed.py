"""Every lock, release and consumption out to the WMS. The ledger marks the movements the WMS must
hear of; one feed at a time (under a lease) numbers them per (store, SKU) in the order they
committed and delivers them in that order, with retries, a dead letter and a circuit breaker."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clock import Clock
from domain.commands import validate_discard_reason
from domain.errors import InvalidTransition, NotFound
from domain.retry import retry_delay
from domain.wms import (
    KIND_OF_REASON,
    CircuitBreaker,
    MovementResult,
    MovementStatus,
    Outcome,
    Queued,
    WmsMovement,
    WmsPort,
    WmsUnavailable,
)
from services.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

LEASE = "wms-feed"
# Ledger lines numbered and queued per transaction.
QUEUE_BATCH = 1_000


@dataclass
class FeedStats:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped_open_circuit: bool = False


async def queue_movements(*, uow: UnitOfWorkFactory, clock: Clock, limit: int = QUEUE_BATCH) -> int:
    """Number the ledger's new movements per (store, SKU) and queue them for the WMS. Run by
    the lease holder only: numbering in the order they became visible keeps, per (store, SKU),
    every release after the lock it releases."""
    async with uow() as tx:
        now = clock.now()
        entries = await tx.wms_feed.unqueued(limit)
        if not entries:
            return 0
        counts = Counter((e.movement.store_id, e.movement.sku) for e in entries)
        nexts = await tx.wms_feed.next_sequences(counts)
        queued: list[tuple[WmsMovement, int | None]] = []
        for entry in entries:
            m = entry.movement
            key = (m.store_id, m.sku)
            sequence = nexts[key]
            nexts[key] += 1
            movement = WmsMovement(
                id=f"ropos-mv-{entry.id}",
                store_id=m.store_id,
                sku=m.sku,
                sequence=sequence,
                kind=KIND_OF_REASON[m.reason],
                quantity=abs(m.reserved_delta),
                reservation_id=m.reservation_id,
                occurred_at=entry.occurred_at,
            )
            queued.append((movement, entry.id))
        await tx.wms_feed.queue(queued, now)
        await tx.wms_feed.clear_pending([e.id for e in entries])
        await tx.commit()
    return len(queued)


async def baseline(*, uow: UnitOfWorkFactory) -> int:
    """Start the feed from now: movements made before a WMS was connected are not sent (a WMS with
    its own counts already has their effect on hand; reconciliation then sends it ROPOS's reserved
    figures). Returns how many were passed over."""
    async with uow() as tx:
        skipped = await tx.wms_feed.forget_unqueued()
        await tx.commit()
    log.warning("wms baseline: earlier movements will not be sent", extra={"movements": skipped})
    return skipped


def _sendable(pending: Sequence[Queued], now: datetime, limit: int) -> list[Queued]:
    """Per (store, SKU), the due movements before the first one that must still wait: a later
    movement never overtakes an earlier one of its row."""
    chosen: list[Queued] = []
    blocked: set[tuple[str, str]] = set()
    for queued in pending:
        key = (queued.movement.store_id, queued.movement.sku)
        if key in blocked:
            continue
        if queued.next_attempt_at > now:
            blocked.add(key)
            continue
        chosen.append(queued)
        if len(chosen) >= limit:
            break
    return chosen


async def deliver_movements(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    wms: WmsPort,
    breaker: CircuitBreaker,
    max_attempts: int,
    batch_size: int = 500,
) -> FeedStats:
    """Send one batch of due movements. A batch the WMS did not take is tried again later (with
    backoff, each movement dead after `max_attempts`); one it refuses for good is dead at once."""
    stats = FeedStats()
    now = clock.now()
    async with uow() as tx:
        pending = await tx.wms_feed.pending(now, batch_size)
    batch = _sendable(pending, now, batch_size)
    if not batch:
        return stats
    if not breaker.allow(now):
        stats.skipped_open_circuit = True
        return stats
    try:
        results = await wms.send([q.movement for q in batch])
    except WmsUnavailable as failure:
        breaker.failed(clock.now())
        await _record_failure(uow, clock, batch, str(failure), max_attempts, stats)
        log.warning("wms unavailable", extra={"error": str(failure), "movements": len(batch)})
        return stats
    except BaseException:
        # Whatever else went wrong (a bug in an adapter, a cancellation), the breaker must not
        # stay waiting for the outcome of a trial call that will never come.
        breaker.failed(clock.now())
        raise
    breaker.succeeded()
    await _record_results(uow, clock, batch, results, stats)
    return stats


async def _record_failure(
    uow: UnitOfWorkFactory,
    clock: Clock,
    batch: Sequence[Queued],
    error: str,
    max_attempts: int,
    stats: FeedStats,
) -> None:
    now = clock.now()
    by_attempts: dict[int, list[str]] = {}
    for queued in batch:
        by_attempts.setdefault(queued.attempts + 1, []).append(queued.movement.id)
    async with uow() as tx:
        for attempts, ids in sorted(by_attempts.items()):
            dead = attempts >= max_attempts
            await tx.wms_feed.mark_failed(
                ids,
                error=error,
                next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
                dead=dead,
            )
            if dead:
                stats.dead += len(ids)
                log.error("wms movements dead", extra={"ids": ids[:20], "error": error})
            else:
                stats.failed += len(ids)
        await tx.commit()


async def _record_results(
    uow: UnitOfWorkFactory,
    clock: Clock,
    batch: Sequence[Queued],
    results: Sequence[MovementResult],
    stats: FeedStats,
) -> None:
    now = clock.now()
    by_id = {r.id: r for r in results}
    delivered = [
        q.movement.id
        for q in batch
        if by_id[q.movement.id].outcome in (Outcome.APPLIED, Outcome.DUPLICATE)
    ]
    refused = [q.movement.id for q in batch if by_id[q.movement.id].outcome is Outcome.REJECTED]
    async with uow() as tx:
        await tx.wms_feed.mark_delivered(delivered, now)
        for movement_id in refused:
            await tx.wms_feed.mark_failed(
                [movement_id],
                error=f"refused by the WMS: {by_id[movement_id].error or 'no reason given'}",
                next_attempt_at=now,
                dead=True,
            )
        await tx.commit()
    stats.delivered += len(delivered)
    stats.dead += len(refused)
    if refused:
        log.error("wms refused movements", extra={"ids": refused[:20]})


async def replay_movement(movement_id: str, *, uow: UnitOfWorkFactory, clock: Clock) -> Queued:
    """Send a dead movement again, as the newest of its (store, SKU): the WMS still applies its
    id at most once."""
    async with uow() as tx:
        now = clock.now()
        found = await tx.wms_feed.get(movement_id, for_update=True)
        if found is None:
            raise NotFound(f"No WMS movement {movement_id}.")
        if found.status is not MovementStatus.DEAD:
            raise InvalidTransition(
                f"WMS movement {movement_id} is {found.status}; only dead ones are replayed.",
                status=str(found.status),
            )
        key = (found.movement.store_id, found.movement.sku)
        sequence = (await tx.wms_feed.next_sequences({key: 1}))[key]
        await tx.wms_feed.requeue(movement_id, sequence, now)
        await tx.commit()
        replayed = await tx.wms_feed.get(movement_id)
    assert replayed is not None
    return replayed


async def discard_movement(
    movement_id: str, reason: str, actor: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> Queued:
    """Give up on a dead movement, with the reason ops give: it is never sent, and the next
    reconciliation compares its row as any other (reserved: ROPOS's figure is sent; on hand:
    the WMS's count is taken)."""
    reason = validate_discard_reason(reason)
    async with uow() as tx:
        found = await tx.wms_feed.get(movement_id, for_update=True)
        if found is None:
            raise NotFound(f"No WMS movement {movement_id}.")
        if found.status is not MovementStatus.DEAD:
            raise InvalidTransition(
                f"WMS movement {movement_id} is {found.status}; only dead ones are discarded.",
                status=str(found.status),
            )
        await tx.wms_feed.discard(movement_id, actor=actor, reason=reason, now=clock.now())
        discarded = await tx.wms_feed.get(movement_id)
        await tx.commit()
    log.info(
        "wms movement discarded",
        extra={"movement_id": movement_id, "store_id": found.movement.store_id, "actor": actor},
    )
    assert discarded is not None
    return discarded
