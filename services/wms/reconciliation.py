"""Reconciliation: every (store, SKU) of ROPOS compared with the WMS's figures, one run at a time
(a lease, renewed per store), each store in one transaction. The rules of the comparison are in
domain.reconciliation; this module reads the facts, applies the verdicts and records them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.accuracy import AccuracySample, SampleSource
from domain.clock import Clock
from domain.errors import BadInput, DomainError, InvalidTransition, NotFound
from domain.reconciliation import (
    Discrepancy,
    DiscrepancyStatus,
    ReconciliationRun,
    RowFacts,
    Verdict,
    differing_skus,
    judge,
)
from domain.reservations import MovementReason
from domain.stock import LevelUpdate
from domain.wms import MovementKind, WmsLevel, WmsMovement, WmsPort, WmsUnavailable
from services import leases
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM
from services.stock import apply_counts
from services.unit_of_work import RetryableConflict, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

LEASE = "reconciliation"
# Tries of one store's transaction when it loses races; after that the store is skipped.
MAX_ATTEMPTS = 4
NOTE_MAX = 500


class ReconciliationBusy(DomainError):
    """Another reconciliation holds the lease."""

    code = "RATE_LIMITED"


@dataclass
class _Tally:
    """What one store's comparison found, added to the run's figures when it commits."""

    compared: int = 0
    skipped: int = 0
    repaired: int = 0
    open: int = 0

    def add(self, other: _Tally) -> None:
        self.compared += other.compared
        self.skipped += other.skipped
        self.repaired += other.repaired
        self.open += other.open


async def reconcile_if_due(
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    wms: WmsPort,
    holder: str,
    interval_seconds: float,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> ReconciliationRun | None:
    """The timer's run: only if no run (of any process) started within the interval, and none
    is running now."""
    async with uow() as tx:
        last = await tx.reconciliation.last_run_started()
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
) -> ReconciliationRun:
    """Compare every (store, SKU) with the WMS, or those of `store_ids`.

    Rows with movements on their way (queued, not yet queued, or delivered after the WMS's figures
    were read) are skipped: the two sides are known to differ until those land. On hand differs:
    the WMS's count is taken. Reserved differs: ROPOS's figure is sent (SET_RESERVED), numbered
    in the row's sequence while the row is locked, so every later lock or release follows it. A
    row with dead movements, or one ROPOS has stock in and the WMS does not know, has no clear
    owner: it is left OPEN for ops."""
    holder = holder or f"run-{uuid.uuid4()}"
    if not await leases.take(uow, LEASE, holder, clock, lease_seconds):
        raise ReconciliationBusy("A reconciliation is running; try again when it has finished.")
    run_id, started_at = str(uuid.uuid4()), clock.now()
    tally, stores_done, error = _Tally(), 0, None
    try:
        async with uow() as tx:
            await tx.reconciliation.add_run(run_id, started_at)
            stores = list(store_ids) if store_ids else await tx.catalog.store_ids()
            await tx.commit()
        for store_id in stores:
            if not await leases.take(uow, LEASE, holder, clock, lease_seconds):
                error = "stopped: another process took the reconciliation over"
                break
            asked_at = clock.now()
            theirs = {level.sku: level for level in await wms.levels(store_id)}
            found = await _reconcile_store(
                uow, clock, run_id, store_id, theirs, asked_at, radius_km
            )
            if found is not None:
                tally.add(found)
                stores_done += 1
    except WmsUnavailable as failure:
        error = f"the WMS did not answer: {failure}"[:500]
        log.warning("reconciliation stopped", extra={"run_id": run_id, "error": error})
    finally:
        await leases.give_up(uow, LEASE, holder, clock)
    run = ReconciliationRun(
        id=run_id,
        started_at=started_at,
        finished_at=clock.now(),
        stores=stores_done,
        compared=tally.compared,
        skipped=tally.skipped,
        repaired=tally.repaired,
        open=tally.open,
        error=error,
    )
    async with uow() as tx:
        await tx.reconciliation.finish_run(run)
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


async def _reconcile_store(
    uow: UnitOfWorkFactory,
    clock: Clock,
    run_id: str,
    store_id: str,
    theirs: Mapping[str, WmsLevel],
    asked_at: datetime,
    radius_km: float,
) -> _Tally | None:
    """Compare one store in one transaction; None if it lost every race (then it is left for the
    next run)."""
    for _attempt in range(MAX_ATTEMPTS):
        try:
            async with uow() as tx:
                tally = await _compare_store(
                    tx, clock.now(), run_id, store_id, theirs, asked_at, radius_km
                )
                await tx.commit()
        except RetryableConflict:
            continue
        return tally
    log.warning("reconciliation skipped a store", extra={"store_id": store_id})
    return None


async def _facts(
    tx: UnitOfWork, store_id: str, theirs: Mapping[str, WmsLevel], asked_at: datetime
) -> list[RowFacts]:
    """What is known of every row of the store, the ones that differ read under their locks."""
    # First without locks: most rows agree, and those need nothing more.
    ours = await tx.levels.of_store(store_id)
    differing = differing_skus(ours, theirs)
    # Then the rows that differ, locked (key order, as every writer locks them): nothing moves
    # their figures or queues their movements until this transaction ends, so what is read
    # below, and the sequence a SET_RESERVED gets, are one consistent picture.
    locked = {
        sku: row
        for (_, sku), row in (await tx.levels.lock([(store_id, sku) for sku in differing])).items()
    }
    in_flight = await tx.wms_feed.in_flight(store_id, since=asked_at)
    dead = await tx.wms_feed.dead_of_store(store_id)
    open_kinds = await tx.reconciliation.open_kinds(store_id)
    differs = set(differing)
    return [
        RowFacts(
            sku=sku,
            ours=locked.get(sku) or ours.get(sku),
            theirs=theirs.get(sku),
            differs=sku in differs,
            gone=sku in differs and sku in ours and sku not in locked,
            in_flight=sku in in_flight,
            dead_movements=tuple(dead.get(sku, ())),
            open_kinds=open_kinds.get(sku, frozenset()),
        )
        for sku in sorted(set(ours) | set(theirs))
    ]


async def _compare_store(
    tx: UnitOfWork,
    now: datetime,
    run_id: str,
    store_id: str,
    theirs: Mapping[str, WmsLevel],
    asked_at: datetime,
    radius_km: float,
) -> _Tally:
    facts = await _facts(tx, store_id, theirs, asked_at)
    active_lines = await tx.reservations.active_line_counts(store_id)
    tally = _Tally()
    found: list[Discrepancy] = []
    counts: list[LevelUpdate] = []
    set_reserved: list[tuple[str, int]] = []
    samples: list[AccuracySample] = []
    for row in facts:
        verdict = judge(store_id, row)
        if verdict is None:
            continue
        if not verdict.compared:
            tally.skipped += 1
            continue
        tally.compared += 1
        found += _discrepancies(verdict, run_id, store_id, row.sku, now)
        if verdict.take_count is not None:
            counts.append(verdict.take_count)
        if verdict.send_reserved is not None:
            set_reserved.append((row.sku, verdict.send_reserved))
        lines = active_lines.get(row.sku, 0)
        if lines and verdict.accurate is not None:
            samples.append(
                AccuracySample(
                    store_id,
                    row.sku,
                    SampleSource.RECONCILIATION,
                    lines,
                    lines if verdict.accurate else 0,
                    now,
                )
            )
    if counts:
        done = await apply_counts(
            tx, counts, now, reason=MovementReason.RECONCILE, radius_km=radius_km
        )
        assert done.stale == 0, "a repair was refused as stale under the row's lock"
    await _send_reserved(tx, store_id, set_reserved, now)
    await tx.reconciliation.add_discrepancies(found)
    await tx.accuracy.add(samples)
    tally.open = sum(1 for d in found if d.status is DiscrepancyStatus.OPEN)
    tally.repaired = len(found) - tally.open
    return tally


def _discrepancies(
    verdict: Verdict, run_id: str, store_id: str, sku: str, now: datetime
) -> list[Discrepancy]:
    return [
        Discrepancy(
            str(uuid.uuid4()),
            run_id,
            store_id,
            sku,
            f.kind,
            f.ropos_value,
            f.wms_value,
            f.status,
            f.resolution,
            now,
        )
        for f in verdict.findings
    ]


async def _send_reserved(
    tx: UnitOfWork, store_id: str, reserved: Sequence[tuple[str, int]], now: datetime
) -> None:
    """Queue ROPOS's reserved figures for the WMS, numbered in their rows' sequences (the rows
    are locked: every later lock or release is numbered after them)."""
    if not reserved:
        return
    nexts = await tx.wms_feed.next_sequences({(store_id, sku): 1 for sku, _ in reserved})
    await tx.wms_feed.queue(
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
            for sku, quantity in reserved
        ],
        now,
    )


async def resolve_discrepancy(
    discrepancy_id: str, note: str, by: str, *, uow: UnitOfWorkFactory, clock: Clock
) -> Discrepancy:
    note = note.strip()
    if not 1 <= len(note) <= NOTE_MAX:
        raise BadInput(f"note must be 1 to {NOTE_MAX} characters.", field="note")
    async with uow() as tx:
        found = await tx.reconciliation.get_discrepancy(discrepancy_id)
        if found is None:
            raise NotFound(f"No stock discrepancy {discrepancy_id}.")
        if found.status is not DiscrepancyStatus.OPEN:
            raise InvalidTransition(
                f"Discrepancy {discrepancy_id} is {found.status}; only open ones are resolved.",
                status=str(found.status),
            )
        resolved = await tx.reconciliation.resolve_discrepancy(
            discrepancy_id, note, by, clock.now()
        )
        await tx.commit()
    assert resolved is not None
    return resolved
