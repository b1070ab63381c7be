"""The WMS, both ways.

Inbound, the WMS's stock levels: every batch is stored before it is acknowledged, then applied in
bulk; a level whose sequence is no newer than the last one applied changes nothing, and a store
left with fewer units than it has reserved gives the affected reservations up to re-sourcing.

Outbound, every lock, release and consumption: the ledger marks the movements the WMS must hear
of; one feed at a time (under a lease) numbers them per (store, SKU) in the order they committed
and delivers them in that order, with retries, a dead letter and a circuit breaker.

Reconciliation compares both sides per (store, SKU): on hand is the WMS's to say, reserved is
ROPOS's; what has no clear owner is left open for ops."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain import events
from domain.clock import Clock
from domain.errors import BadInput, DomainError, InvalidTransition, NotFound
from domain.reservations import MovementReason
from domain.stock import Movement
from domain.webhooks import retry_delay
from domain.wms import (
    KIND_OF_REASON,
    CircuitBreaker,
    Discrepancy,
    InboundBatch,
    LevelRow,
    LevelUpdate,
    MovementKind,
    MovementResult,
    Outcome,
    Queued,
    StoredBatch,
    WmsLevel,
    WmsMovement,
    WmsPort,
    WmsUnavailable,
    parse_batch,
)
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM, resolve_shortages
from services.unit_of_work import RetryableConflict, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
# Tries of the inbox worker before a stored batch that keeps failing is rejected.
INBOX_MAX_ATTEMPTS = 20
# Rows per stock event: a 10,000-level snapshot is 10 outbox rows, not 10,000.
EVENT_LEVELS = 1_000
FEED_LEASE = "wms-feed"
RECONCILIATION_LEASE = "reconciliation"


# --- inbound --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    stale: int


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of a batch: APPLIED, REJECTED (nothing applied; `error_code` says why), or
    RECEIVED (stored, to be applied by the background worker). `duplicate` when the batch id was
    seen before: the answer is the first one's and nothing changed again."""

    batch_id: str
    status: str
    levels: int
    applied: int = 0
    stale: int = 0
    duplicate: bool = False
    error_code: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, stored: StoredBatch, *, duplicate: bool) -> BatchOutcome:
        levels = stored.payload.get("levels")
        return cls(
            batch_id=stored.batch_id,
            status=stored.status,
            levels=len(levels) if isinstance(levels, list) else 0,
            applied=stored.applied or 0,
            stale=stored.stale or 0,
            duplicate=duplicate,
            error_code=stored.error_code,
            error=stored.error,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "batchId": self.batch_id,
            "status": self.status,
            "levels": self.levels,
            "applied": self.applied,
            "stale": self.stale,
            "duplicate": self.duplicate,
        }
        if self.error_code:
            body["error"] = {"code": self.error_code, "message": self.error}
        return body


async def receive_batch(
    batch: InboundBatch,
    payload: Mapping[str, Any],
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> BatchOutcome:
    """Store the batch (committed: from here on it is not lost), then apply it."""
    async with uow() as tx:
        found = await tx.wms.find_batch(batch.batch_id)
        if found is None:
            added = await tx.wms.add_batch(batch.batch_id, payload, len(batch.levels), clock.now())
            await tx.commit()
        else:
            added = False
    if not added:
        async with uow() as tx:
            found = await tx.wms.find_batch(batch.batch_id)
        assert found is not None
        if found.payload != dict(payload):
            raise BadInput(
                f"Batch {batch.batch_id} was already received with other levels; "
                "give a new batch a new batchId.",
                field="batchId",
            )
        return BatchOutcome.of(found, duplicate=True)
    return await apply_stored(
        batch.batch_id, uow=uow, clock=clock, radius_km=radius_km, parsed=batch
    )


async def apply_stored(
    batch_id: str,
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
    parsed: InboundBatch | None = None,
) -> BatchOutcome:
    """Apply a stored batch in one transaction, or reject it whole. A lost race (a deadlock with
    reserves on the same rows) is tried again; after that the batch waits for the worker.
    `parsed`: the batch as just received (saves reading and parsing the stored payload again)."""
    last_error = "not applied"
    for _attempt in range(MAX_ATTEMPTS):
        try:
            return await _apply_once(batch_id, uow, clock, radius_km, parsed)
        except RetryableConflict as conflict:
            last_error = f"lost a race ({conflict.what})"
    async with uow() as tx:
        await tx.wms.count_attempt(batch_id, last_error)
        await tx.commit()
        stored = await tx.wms.find_batch(batch_id)
    assert stored is not None
    return BatchOutcome.of(stored, duplicate=False)


async def _apply_once(
    batch_id: str,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float,
    parsed: InboundBatch | None,
) -> BatchOutcome:
    refused: DomainError | None = None
    async with uow() as tx:
        now = clock.now()
        if parsed is None or await tx.wms.lock_batch(batch_id) != "RECEIVED":
            stored = await tx.wms.find_batch(batch_id, for_update=True)
            if stored is None:
                raise NotFound(f"No stored batch {batch_id}.")
            if stored.status != "RECEIVED":
                return BatchOutcome.of(stored, duplicate=False)
            payload: Any = stored.payload
        levels = len(parsed.levels) if parsed else len(payload.get("levels") or [])
        try:
            batch = parsed or parse_batch(payload)
            done = await apply_levels(tx, batch.levels, now, radius_km=radius_km)
        except DomainError as error:
            refused = error  # leaving without a commit rolls back whatever was written
        else:
            await tx.wms.finish_batch(
                batch_id, status="APPLIED", now=now, applied=done.applied, stale=done.stale
            )
            await tx.commit()
    if refused is not None:
        # The batch is kept, as rejected, with why; none of its levels applied.
        async with uow() as tx:
            if await tx.wms.lock_batch(batch_id) == "RECEIVED":
                await tx.wms.finish_batch(
                    batch_id,
                    status="REJECTED",
                    now=clock.now(),
                    error_code=refused.code,
                    error=str(refused),
                )
                await tx.commit()
        log.warning("wms batch rejected", extra={"batch_id": batch_id, "error": str(refused)})
        return BatchOutcome(
            batch_id, "REJECTED", levels, error_code=refused.code, error=str(refused)
        )
    log.info(
        "wms batch applied",
        extra={"batch_id": batch_id, "applied": done.applied, "stale": done.stale},
    )
    return BatchOutcome(batch_id, "APPLIED", levels, done.applied, done.stale)


async def retry_received(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    older_than_seconds: float = 5.0,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
    max_attempts: int = INBOX_MAX_ATTEMPTS,
) -> int:
    """Apply batches that were stored but not applied (the process died, or lost every race).
    One that still fails after `max_attempts` is rejected (code INTERNAL, the error kept), so it
    does not hold up the batches behind it for ever; it changed nothing."""
    async with uow() as tx:
        waiting = await tx.wms.batches_to_retry(
            clock.now() - timedelta(seconds=older_than_seconds), 20
        )
    for batch_id, attempts in waiting:
        if attempts >= max_attempts:
            async with uow() as tx:
                await tx.wms.finish_batch(
                    batch_id,
                    status="REJECTED",
                    now=clock.now(),
                    error_code="INTERNAL",
                    error=f"not applied after {attempts} attempts; see the logs",
                )
                await tx.commit()
            log.error("wms batch given up", extra={"batch_id": batch_id, "attempts": attempts})
            continue
        try:
            await apply_stored(batch_id, uow=uow, clock=clock, radius_km=radius_km)
        except Exception as error:
            log.exception("wms batch failed", extra={"batch_id": batch_id})
            async with uow() as tx:
                await tx.wms.count_attempt(batch_id, f"{type(error).__name__}: {error}")
                await tx.commit()
    return len(waiting)


async def apply_levels(
    tx: UnitOfWork,
    levels: Sequence[LevelUpdate],
    now: datetime,
    *,
    reason: MovementReason = MovementReason.SYNC,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> Applied:
    """Write the levels in bulk statements. Refuses (before writing anything) levels of unknown
    stores; SKUs the WMS knows and ROPOS does not are added to the catalogue."""
    store_ids = {level.store_id for level in levels}
    unknown = sorted(store_ids - await tx.catalog.existing_stores(store_ids))
    if unknown:
        raise NotFound(f"Unknown store: {', '.join(unknown[:20])}", storeIds=unknown[:100])
    ordered = sorted(levels, key=lambda level: (level.store_id, level.sku))
    current = await tx.wms.lock_levels([(lv.store_id, lv.sku) for lv in ordered])
    new_skus = {lv.sku for lv in ordered if (lv.store_id, lv.sku) not in current}
    if new_skus:
        missing = sorted(new_skus - await tx.catalog.existing_skus(new_skus))
        if missing:
            await tx.catalog.upsert_skus([{"code": sku} for sku in missing], now, overwrite=False)

    updates: list[LevelRow] = []
    inserts: list[LevelRow] = []
    movements: list[Movement] = []
    changes: list[events.CountedLevel] = []
    short: list[tuple[str, str]] = []
    stale = 0
    for lv in ordered:
        key = (lv.store_id, lv.sku)
        row = current.get(key)
        if (
            lv.sequence is not None
            and row is not None
            and row.wms_sequence is not None
            and lv.sequence <= row.wms_sequence
        ):
            stale += 1
            continue
        old = row or LevelRow(lv.store_id, lv.sku, 0, 0, 0, None, None)
        on_hand = lv.on_hand if lv.on_hand is not None else max(0, old.on_hand + (lv.delta or 0))
        new = LevelRow(
            lv.store_id,
            lv.sku,
            on_hand,
            old.reserved,
            old.safety_stock if lv.safety_stock is None else lv.safety_stock,
            old.wms_sequence if lv.sequence is None else lv.sequence,
            old.low_stock_threshold if lv.low_stock_threshold is None else lv.low_stock_threshold,
        )
        if row is None:
            inserts.append(new)
        elif new != row:
            updates.append(new)
        if new.on_hand != old.on_hand:
            movements.append(Movement(lv.store_id, lv.sku, new.on_hand - old.on_hand, 0, reason))
        if (
            row is None
            or new.available != old.available
            or new.low_stock_threshold != old.low_stock_threshold
        ):
            changes.append(
                events.CountedLevel(
                    lv.store_id, lv.sku, new.on_hand, new.reserved, new.safety_stock
                )
            )
        if new.on_hand < new.reserved:
            short.append(key)
    await tx.wms.write_levels(updates, now)
    await tx.wms.insert_levels(inserts, now)
    await tx.ledger.record(movements, now)
    await tx.outbox.add(
        [
            events.StockChanged(
                levels=tuple(changes[i : i + EVENT_LEVELS]), reason=str(reason), occurred_at=now
            )
            for i in range(0, len(changes), EVENT_LEVELS)
        ]
    )
    if short:
        await resolve_shortages(tx, short, now, radius_km=radius_km)
    return Applied(len(ordered) - stale, stale)


async def set_low_stock_thresholds(
    thresholds: Sequence[tuple[str, str, int | None]], *, uow: UnitOfWorkFactory, clock: Clock
) -> int:
    """Set (or clear, with None) the low-stock threshold of existing (store, SKU) rows."""
    if not thresholds or len(thresholds) > 10_000:
        raise BadInput("Give 1 to 10000 thresholds.", field="thresholds")
    if len({(store_id, sku) for store_id, sku, _ in thresholds}) != len(thresholds):
        raise BadInput("A (store, SKU) appears twice.", field="thresholds")
    for _store, _sku, value in thresholds:
        if value is not None and not 0 <= value <= 10_000_000:
            raise BadInput("A threshold is 0 to 10000000 units.", field="threshold")
    async with uow() as tx:
        missing = []
        for store_id, sku, value in sorted(thresholds, key=lambda t: (t[0], t[1])):
            if not await tx.wms.set_threshold(store_id, sku, value):
                missing.append(f"{store_id}/{sku}")
        if missing:
            raise NotFound(f"No stock level for {', '.join(missing[:20])}.", levels=missing[:100])
        # The relay checks thresholds when it publishes: a stock event per row does it now.
        levels = await tx.stock.levels([(s, k) for s, k, _ in thresholds])
        await tx.outbox.add(
            [
                events.StockChanged(
                    levels=tuple(level.counted() for level in levels.values()),
                    reason="THRESHOLD",
                    occurred_at=clock.now(),
                )
            ]
        )
        await tx.commit()
    return len(thresholds)


# --- outbound: the feed ---------------------------------------------------------------------------


@dataclass
class FeedStats:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped_open_circuit: bool = False


async def take_lease(
    uow: UnitOfWorkFactory, name: str, holder: str, clock: Clock, seconds: float
) -> bool:
    async with uow() as tx:
        held = await tx.wms.acquire_lease(name, holder, clock.now(), seconds)
        await tx.commit()
    return held


async def queue_movements(*, uow: UnitOfWorkFactory, clock: Clock, limit: int = 1_000) -> int:
    """Number the ledger's new movements per (store, SKU) and queue them for the WMS. Run by
    the lease holder only: numbering in the order they became visible keeps, per (store, SKU),
    every release after the lock it releases."""
    async with uow() as tx:
        now = clock.now()
        rows = await tx.wms.unqueued_movements(limit)
        if not rows:
            return 0
        counts = Counter((row.store_id, row.sku) for row in rows)
        nexts = await tx.wms.next_sequences(counts)
        queued: list[tuple[WmsMovement, int | None]] = []
        for row in rows:
            key = (row.store_id, row.sku)
            sequence = nexts[key]
            nexts[key] += 1
            queued.append(
                (
                    WmsMovement(
                        id=f"ropos-mv-{row.id}",
                        store_id=row.store_id,
                        sku=row.sku,
                        sequence=sequence,
                        kind=KIND_OF_REASON[row.reason],
                        quantity=abs(row.reserved_delta),
                        reservation_id=row.reservation_id,
                        occurred_at=row.occurred_at,
                    ),
                    row.id,
                )
            )
        await tx.wms.queue(queued, now)
        await tx.wms.clear_pending([row.id for row in rows])
        await tx.commit()
    return len(queued)


async def baseline(*, uow: UnitOfWorkFactory) -> int:
    """Start the feed from now: movements made before a WMS was connected are not sent (a WMS with
    its own counts already has their effect on hand; reconciliation then sends it ROPOS's reserved
    figures). Returns how many were passed over."""
    async with uow() as tx:
        skipped = await tx.wms.forget_unqueued()
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
        pending = await tx.wms.pending_outbound(now, batch_size)
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
            await tx.wms.mark_failed(
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
        await tx.wms.mark_delivered(delivered, now)
        for movement_id in refused:
            await tx.wms.mark_failed(
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
        found = await tx.wms.get_outbound(movement_id, for_update=True)
        if found is None:
            raise NotFound(f"No WMS movement {movement_id}.")
        if found.status != "DEAD":
            raise InvalidTransition(
                f"WMS movement {movement_id} is {found.status}; only dead ones are replayed.",
                status=found.status,
            )
        key = (found.movement.store_id, found.movement.sku)
        sequence = (await tx.wms.next_sequences({key: 1}))[key]
        await tx.wms.requeue(movement_id, sequence, now)
        await tx.commit()
        replayed = await tx.wms.get_outbound(movement_id)
    assert replayed is not None
    return replayed


# --- reconciliation -------------------------------------------------------------------------------


@dataclass
class RunSummary:
    id: str
    started_at: datetime
    finished_at: datetime | None = None
    stores: int = 0
    compared: int = 0
    skipped: int = 0
    repaired: int = 0
    open: int = 0
    error: str | None = None
    discrepancies: list[Discrepancy] = field(default_factory=list)


class ReconciliationBusy(DomainError):
    """Another reconciliation holds the lease."""

    code = "RATE_LIMITED"


async def reconcile_if_due(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    wms: WmsPort,
    holder: str,
    interval_seconds: float,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> RunSummary | None:
    """The timer's run: only if no run (of any process) started within the interval, and none
    is running now."""
    async with uow() as tx:
        last = await tx.wms.last_run_started()
    if last is not None and (clock.now() - last).total_seconds() < interval_seconds * 0.9:
        return None
    try:
        return await reconcile(uow=uow, clock=clock, wms=wms, holder=holder, radius_km=radius_km)
    except ReconciliationBusy:
        return None


async def reconcile(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    wms: WmsPort,
    store_ids: Sequence[str] | None = None,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
    holder: str | None = None,
    lease_seconds: float = 120.0,
) -> RunSummary:
    """Compare every (store, SKU) with the WMS, one run at a time (a lease, renewed per store).

    Rows with movements on their way (queued, not yet queued, or delivered after the WMS's figures
    were read) are skipped: the two sides are known to differ until those land. On hand differs:
    the WMS's count is taken. Reserved differs: ROPOS's figure is sent (SET_RESERVED), numbered
    in the row's sequence while the row is locked, so every later lock or release follows it. A
    row with dead movements, or one ROPOS has stock in and the WMS does not know, has no clear
    owner: it is left OPEN for ops."""
    holder = holder or f"run-{uuid.uuid4()}"
    if not await take_lease(uow, RECONCILIATION_LEASE, holder, clock, lease_seconds):
        raise ReconciliationBusy("A reconciliation is running; try again when it has finished.")
    run = RunSummary(str(uuid.uuid4()), clock.now())
    try:
        async with uow() as tx:
            await tx.wms.add_run(run.id, run.started_at)
            stores = list(store_ids) if store_ids else await tx.wms.store_ids()
            await tx.commit()
        for store_id in stores:
            if not await take_lease(uow, RECONCILIATION_LEASE, holder, clock, lease_seconds):
                run.error = "stopped: another process took the reconciliation over"
                break
            asked_at = clock.now()
            theirs = {level.sku: level for level in await wms.levels(store_id)}
            if await _reconcile_store(uow, clock, run, store_id, theirs, asked_at, radius_km):
                run.stores += 1
    except WmsUnavailable as failure:
        run.error = f"the WMS did not answer: {failure}"[:500]
        log.warning("reconciliation stopped", extra={"run_id": run.id, "error": run.error})
    finally:
        await release_lease(uow, RECONCILIATION_LEASE, holder, clock)
    run.finished_at = clock.now()
    async with uow() as tx:
        await tx.wms.finish_run(
            run.id,
            run.finished_at,
            stores=run.stores,
            compared=run.compared,
            skipped=run.skipped,
            repaired=run.repaired,
            open=run.open,
            error=run.error,
        )
        await tx.commit()
    log.info(
        "reconciled",
        extra={
            "run_id": run.id,
            "stores": run.stores,
            "compared": run.compared,
            "repaired": run.repaired,
            "open": run.open,
        },
    )
    return run


async def release_lease(uow: UnitOfWorkFactory, name: str, holder: str, clock: Clock) -> None:
    async with uow() as tx:
        await tx.wms.release_lease(name, holder, clock.now())
        await tx.commit()


async def _reconcile_store(
    uow: UnitOfWorkFactory,
    clock: Clock,
    run: RunSummary,
    store_id: str,
    theirs: Mapping[str, WmsLevel],
    asked_at: datetime,
    radius_km: float,
) -> bool:
    """Compare one store in one transaction; False if it lost every race (counted as skipped)."""
    for _attempt in range(MAX_ATTEMPTS):
        counts = _Counts()
        try:
            async with uow() as tx:
                found = await _compare_store(
                    tx, clock, run.id, store_id, theirs, asked_at, radius_km, counts
                )
                await tx.commit()
        except RetryableConflict:
            continue
        run.compared += counts.compared
        run.skipped += counts.skipped
        run.discrepancies += found
        for d in found:
            if d.status == "OPEN":
                run.open += 1
            else:
                run.repaired += 1
        return True
    log.warning("reconciliation skipped a store", extra={"store_id": store_id})
    return False


@dataclass
class _Counts:
    compared: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class _Verdict:
    on_hand_ok: bool
    reserved_ok: bool


def _judge(mine: LevelRow | None, wms_level: WmsLevel) -> _Verdict | None:
    """How one row compares; None when ROPOS already holds a newer count than the one read."""
    if (
        mine is not None
        and mine.wms_sequence is not None
        and wms_level.sequence is not None
        and mine.wms_sequence > wms_level.sequence
    ):
        return None
    on_hand = mine.on_hand if mine else 0
    reserved = mine.reserved if mine else 0
    return _Verdict(on_hand == wms_level.on_hand, reserved == wms_level.reserved)


async def _compare_store(
    tx: UnitOfWork,
    clock: Clock,
    run_id: str,
    store_id: str,
    theirs: Mapping[str, WmsLevel],
    asked_at: datetime,
    radius_km: float,
    counts: _Counts,
) -> list[Discrepancy]:
    now = clock.now()
    # First without locks: most rows agree, and those need nothing more.
    ours = await tx.wms.levels_of_store(store_id)
    differing = sorted(
        sku
        for sku in set(ours) | set(theirs)
        if sku not in theirs
        or sku not in ours
        or (ours[sku].on_hand, ours[sku].reserved) != (theirs[sku].on_hand, theirs[sku].reserved)
    )
    # Then the rows that differ, locked (key order, as every writer locks them): nothing moves
    # their figures or queues their movements until this transaction ends, so what is read
    # below, and the sequence a SET_RESERVED gets, are one consistent picture.
    locked = {
        sku: row
        for (_, sku), row in (
            await tx.wms.lock_levels([(store_id, sku) for sku in differing])
        ).items()
    }
    in_flight = await tx.wms.streams_in_flight(store_id, since=asked_at)
    dead = await tx.wms.dead_movements(store_id)
    already_open = await tx.wms.open_discrepancy_keys(store_id)
    active_lines = await tx.wms.active_line_counts(store_id)
    found: list[Discrepancy] = []
    repairs: list[LevelUpdate] = []
    set_reserved: list[tuple[str, int]] = []
    samples: list[dict[str, Any]] = []

    def note(
        sku: str, kind: str, mine: int | None, wms_value: int | None, status: str, how: str
    ) -> None:
        if status == "OPEN" and (sku, kind) in already_open:
            return  # reported already, still open
        found.append(
            Discrepancy(
                str(uuid.uuid4()), run_id, store_id, sku, kind, mine, wms_value, status, how, now
            )
        )

    def sample(sku: str, ok: bool) -> None:
        lines = active_lines.get(sku, 0)
        if lines:
            samples.append(
                {
                    "store_id": store_id,
                    "sku": sku,
                    "source": "RECONCILIATION",
                    "reservation_id": None,
                    "lines": lines,
                    "ok": lines if ok else 0,
                    "occurred_at": now,
                }
            )

    for sku in sorted(set(ours) | set(theirs)):
        if sku not in locked and sku in ours and sku in differing:
            counts.skipped += 1  # gone meanwhile
            continue
        if sku in in_flight:
            counts.skipped += 1
            continue
        mine = locked.get(sku) or ours.get(sku)
        wms_level = theirs.get(sku)
        if sku in dead:
            if sku in differing:
                counts.compared += 1
                note(
                    sku,
                    "DEAD_MOVEMENTS",
                    mine.reserved if mine else None,
                    wms_level.reserved if wms_level else None,
                    "OPEN",
                    f"{len(dead[sku])} movement(s) never reached the WMS "
                    f"({', '.join(dead[sku][:5])}): replay them (wmsMovements, status DEAD).",
                )
                sample(sku, False)
            continue
        if wms_level is None:
            assert mine is not None
            if mine.on_hand or mine.reserved:
                counts.compared += 1
                note(
                    sku,
                    "MISSING_IN_WMS",
                    mine.on_hand,
                    None,
                    "OPEN",
                    "The WMS keeps no stock of this SKU here while ROPOS counts some.",
                )
                sample(sku, False)
            continue
        verdict = _judge(mine, wms_level)
        if verdict is None:
            counts.skipped += 1
            continue
        counts.compared += 1
        sample(sku, verdict.on_hand_ok and verdict.reserved_ok)
        if not verdict.on_hand_ok:
            newer = wms_level.sequence is not None and (
                mine is None or mine.wms_sequence is None or wms_level.sequence > mine.wms_sequence
            )
            repairs.append(
                LevelUpdate(
                    store_id,
                    sku,
                    on_hand=wms_level.on_hand,
                    sequence=wms_level.sequence if newer else None,
                )
            )
            note(
                sku,
                "ON_HAND",
                mine.on_hand if mine else 0,
                wms_level.on_hand,
                "REPAIRED",
                "On hand set to the WMS's count.",
            )
        if not verdict.reserved_ok:
            reserved = mine.reserved if mine else 0
            set_reserved.append((sku, reserved))
            note(
                sku,
                "RESERVED",
                reserved,
                wms_level.reserved,
                "REPAIRED",
                "ROPOS's reserved units sent to the WMS.",
            )
    if repairs:
        done = await apply_levels(
            tx, repairs, now, reason=MovementReason.RECONCILE, radius_km=radius_km
        )
        assert done.stale == 0, "a repair was refused as stale under the row's lock"
    if set_reserved:
        keys = {(store_id, sku): 1 for sku, _ in set_reserved}
        nexts = await tx.wms.next_sequences(keys)
        await tx.wms.queue(
            [
                (
                    WmsMovement(
                        id=f"ropos-set-{uuid.uuid4()}",
                        store_id=store_id,
                        sku=sku,
                        sequence=nexts[(store_id, sku)],
                        kind=MovementKind.SET_RESERVED,
                        quantity=quantity,
                        reservation_id=None,
                        occurred_at=now,
                    ),
                    None,
                )
                for sku, quantity in set_reserved
            ],
            now,
        )
    await tx.wms.add_discrepancies(found)
    await tx.wms.add_samples(samples)
    return found


async def resolve_discrepancy(
    discrepancy_id: str, note: str, by: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> Discrepancy:
    note = note.strip()
    if not 1 <= len(note) <= 500:
        raise BadInput("note must be 1 to 500 characters.", field="note")
    async with uow() as tx:
        found = await tx.wms.get_discrepancy(discrepancy_id)
        if found is None:
            raise NotFound(f"No stock discrepancy {discrepancy_id}.")
        if found.status != "OPEN":
            raise InvalidTransition(
                f"Discrepancy {discrepancy_id} is {found.status}; only open ones are resolved.",
                status=found.status,
            )
        resolved = await tx.wms.resolve_discrepancy(discrepancy_id, note, by, clock.now())
        await tx.commit()
    assert resolved is not None
    return resolved
