"""Stock levels per (store, SKU), the counts that set them, and the movements that change them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StockLevel:
    """One (store, SKU) row. `wms_sequence` is the WMS's number of the last count applied to it
    (a count no newer changes nothing); `low_stock_threshold`, when set, is where LOW_STOCK goes
    out. Reads that need neither leave them None."""

    store_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int
    wms_sequence: int | None = None
    low_stock_threshold: int | None = None

    @property
    def available(self) -> int:
        """What can still be reserved; never shown below zero (a WMS count can drop on hand under
        what is already reserved)."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    @property
    def is_short(self) -> bool:
        """Fewer units on hand than reserved: some reservations cannot all be served."""
        return self.on_hand < self.reserved


@dataclass(frozen=True, slots=True)
class LevelUpdate:
    """One (store, SKU) as the WMS reports it: an absolute count (`on_hand`) or a change
    (`delta`), and the WMS's sequence number for that (store, SKU): updates with a sequence no
    newer than the last one applied change nothing. Without a sequence (GraphQL syncStock, an
    operator's correction) it always applies."""

    store_id: str
    sku: str
    on_hand: int | None = None
    delta: int | None = None
    sequence: int | None = None
    safety_stock: int | None = None
    low_stock_threshold: int | None = None

    def is_stale_for(self, row: StockLevel | None) -> bool:
        return (
            self.sequence is not None
            and row is not None
            and row.wms_sequence is not None
            and self.sequence <= row.wms_sequence
        )


@dataclass(frozen=True, slots=True)
class Recount:
    """A row before and after a count was merged into it (`before` None: the row is new)."""

    before: StockLevel | None
    after: StockLevel

    @property
    def on_hand_change(self) -> int:
        return self.after.on_hand - (self.before.on_hand if self.before else 0)

    @property
    def needs_write(self) -> bool:
        return self.before is None or self.after != self.before

    @property
    def tells_watchers(self) -> bool:
        """Storefronts and the low-stock check must hear of it: a new row, or its availability
        or threshold moved."""
        before = self.before
        return (
            before is None
            or self.after.available != before.available
            or self.after.low_stock_threshold != before.low_stock_threshold
        )


def merge_count(row: StockLevel | None, count: LevelUpdate) -> Recount | None:
    """The row after the count: on hand set (or moved by the delta, never below 0), safety stock,
    threshold and sequence taken when the count gives them, reserved always kept (it is ROPOS's).
    None when the count is stale: the row holds a newer one."""
    if count.is_stale_for(row):
        return None
    old = row or StockLevel(count.store_id, count.sku, 0, 0, 0)
    if count.on_hand is not None:
        on_hand = count.on_hand
    else:
        on_hand = max(0, old.on_hand + (count.delta or 0))
    new = StockLevel(
        count.store_id,
        count.sku,
        on_hand,
        old.reserved,
        old.safety_stock if count.safety_stock is None else count.safety_stock,
        old.wms_sequence if count.sequence is None else count.sequence,
        old.low_stock_threshold if count.low_stock_threshold is None else count.low_stock_threshold,
    )
    return Recount(row, new)


@dataclass(frozen=True, slots=True)
class WatchedLevel:
    """A stock row read with its low-stock threshold, and whether LOW_STOCK went out for its
    fall."""

    level: StockLevel
    alerted: bool

    @property
    def threshold(self) -> int | None:
        return self.level.low_stock_threshold

    @property
    def alert_changes(self) -> bool:
        """It fell below its threshold and was not flagged yet, or recovered and still is."""
        if self.threshold is None:
            return False
        return (self.level.available < self.threshold) != self.alerted


@dataclass(frozen=True, slots=True)
class Movement:
    """One line of the stock ledger."""

    store_id: str
    sku: str
    on_hand_delta: int
    reserved_delta: int
    reason: str
    reservation_id: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A ledger line as stored: its id (its place in the ledger) and when it happened."""

    id: int
    movement: Movement
    occurred_at: datetime
