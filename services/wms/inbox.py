"""The WMS's stock levels in: every batch is stored (committed) before it is acknowledged, then
applied in one transaction or rejected whole; one stored but not applied (a crash, every race
lost) is applied by the inbox worker."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from domain.clock import Clock
from domain.errors import BadInput, DomainError, NotFound
from domain.wms import BatchStatus, InboundBatch, StoredBatch, parse_batch
from services.shortage import DEFAULT_RESOURCE_RADIUS_KM
from services.stock import apply_counts
from services.unit_of_work import RetryableConflict, UnitOfWorkFactory

log = logging.getLogger(__name__)

# Tries of one batch in a row when it loses races (deadlocks with reserves on the same rows).
MAX_ATTEMPTS = 4
# Tries of the inbox worker before a stored batch that keeps failing is rejected.
INBOX_MAX_ATTEMPTS = 20
# Batches the worker picks up per sweep.
RETRY_BATCH = 20


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of a batch: APPLIED, REJECTED (nothing applied; `error_code` says why), or
    RECEIVED (stored, to be applied by the background worker). `duplicate` when the batch id was
    seen before: the answer is the first one's and nothing changed again."""

    batch_id: str
    status: BatchStatus
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


async def receive_batch(
    batch: InboundBatch,
    payload: Mapping[str, Any],
    *,
    uow: UnitOfWorkFactory,
    clock: Clock,
    radius_km: float = DEFAULT_RESOURCE_RADIUS_KM,
) -> BatchOutcome:
    """Store the batch (committed: from here on it is not lost), then apply it. The same batch id
    again answers as the first time did; with other levels it is refused."""
    async with uow() as tx:
        found = await tx.wms_inbox.find(batch.batch_id)
        if found is None:
            added = await tx.wms_inbox.add(batch.batch_id, payload, len(batch.levels), clock.now())
            await tx.commit()
        else:
            added = False
    if not added:
        async with uow() as tx:
            found = await tx.wms_inbox.find(batch.batch_id)
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
        await tx.wms_inbox.count_attempt(batch_id, last_error)
        await tx.commit()
        stored = await tx.wms_inbox.find(batch_id)
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
        if parsed is None or await tx.wms_inbox.lock(batch_id) is not BatchStatus.RECEIVED:
            stored = await tx.wms_inbox.find(batch_id, for_update=True)
            if stored is None:
                raise NotFound(f"No stored batch {batch_id}.")
            if stored.status is not BatchStatus.RECEIVED:
                return BatchOutcome.of(stored, duplicate=False)
            payload: Any = stored.payload
        levels = len(parsed.levels) if parsed else len(payload.get("levels") or [])
        try:
            batch = parsed or parse_batch(payload)
            done = await apply_counts(tx, batch.levels, now, radius_km=radius_km)
        except DomainError as error:
            refused = error  # leaving without a commit rolls back whatever was written
        else:
            await tx.wms_inbox.finish(
                batch_id,
                status=BatchStatus.APPLIED,
                now=now,
                applied=done.applied,
                stale=done.stale,
            )
            await tx.commit()
    if refused is not None:
        await _reject(batch_id, refused, uow, clock)
        return BatchOutcome(
            batch_id, BatchStatus.REJECTED, levels, error_code=refused.code, error=str(refused)
        )
    log.info(
        "wms batch applied",
        extra={"batch_id": batch_id, "applied": done.applied, "stale": done.stale},
    )
    return BatchOutcome(batch_id, BatchStatus.APPLIED, levels, done.applied, done.stale)


async def _reject(
    batch_id: str, refused: DomainError, uow: UnitOfWorkFactory, clock: Clock
) -> None:
    """The batch is kept, as rejected, with why; none of its levels applied."""
    async with uow() as tx:
        if await tx.wms_inbox.lock(batch_id) is BatchStatus.RECEIVED:
            await tx.wms_inbox.finish(
                batch_id,
                status=BatchStatus.REJECTED,
                now=clock.now(),
                error_code=refused.code,
                error=str(refused),
            )
            await tx.commit()
    log.warning("wms batch rejected", extra={"batch_id": batch_id, "error": str(refused)})


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
        waiting = await tx.wms_inbox.to_retry(
            clock.now() - timedelta(seconds=older_than_seconds), RETRY_BATCH
        )
    for batch_id, attempts in waiting:
        if attempts >= max_attempts:
            async with uow() as tx:
                await tx.wms_inbox.finish(
                    batch_id,
                    status=BatchStatus.REJECTED,
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
                await tx.wms_inbox.count_attempt(batch_id, f"{type(error).__name__}: {error}")
                await tx.commit()
    return len(waiting)
