"""Stock levels per (store, SKU) and the movements that change them."""

from __future__ import annotations

from dataclasses import dataclass

from domain import events


@dataclass(frozen=True, slots=True)
class StockLevel:
    store_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int

    @property
    def available(self) -> int:
        """What can still be reserved; never shown below zero (a WMS count can drop on hand under
        what is already reserved)."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    def counted(self) -> events.CountedLevel:
        return events.CountedLevel(
            self.store_id, self.sku, self.on_hand, self.reserved, self.safety_stock
        )


@dataclass(frozen=True, slots=True)
class WatchedLevel:
    """A stock row with its low-stock threshold, and whether LOW_STOCK went out for its fall."""

    level: StockLevel
    threshold: int | None
    alerted: bool

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
