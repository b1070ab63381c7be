"""The operational figures. Stock accuracy of reserved items: of the reserved lines checked, the
share that was right, at pick time (found in full on the shelf) and at reconciliation (ROPOS and
the WMS agreeing on the row that holds them); per store and overall, over a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clock import Clock
from domain.errors import BadInput
from services.queries import ReadPort

DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class Accuracy:
    lines: int
    ok: int

    @property
    def rate(self) -> float | None:
        """ok / lines, or None when nothing was checked (no figure is better than a made-up 1)."""
        return self.ok / self.lines if self.lines else None

    def __add__(self, other: Accuracy) -> Accuracy:
        return Accuracy(self.lines + other.lines, self.ok + other.ok)


NONE = Accuracy(0, 0)


@dataclass(frozen=True, slots=True)
class StoreAccuracy:
    store_id: str
    pick: Accuracy
    reconciliation: Accuracy

    @property
    def overall(self) -> Accuracy:
        return self.pick + self.reconciliation


@dataclass(frozen=True, slots=True)
class StockAccuracy:
    pick: Accuracy
    reconciliation: Accuracy
    per_store: tuple[StoreAccuracy, ...]

    @property
    def overall(self) -> Accuracy:
        return self.pick + self.reconciliation


@dataclass(frozen=True, slots=True)
class Kpis:
    store_id: str | None
    since: datetime
    until: datetime
    stock_accuracy: StockAccuracy


async def kpis(
    store_id: str | None, since: datetime | None, *, read: ReadPort, clock: Clock
) -> Kpis:
    until = clock.now()
    since = since or until - DEFAULT_WINDOW
    if since.tzinfo is None:
        raise BadInput("since needs a time zone (e.g. 2026-11-01T00:00:00Z).", field="since")
    if since > until or until - since > MAX_WINDOW:
        raise BadInput("since must be in the past, at most 366 days ago.", field="since")
    counts = await read.accuracy_counts(store_id, since, until)
    stores: dict[str, dict[str, Accuracy]] = {}
    for count in counts:
        by_source = stores.setdefault(count.store_id, {})
        by_source[count.source] = by_source.get(count.source, NONE) + Accuracy(
            count.lines, count.ok
        )
    per_store = tuple(
        StoreAccuracy(store, sources.get("PICK", NONE), sources.get("RECONCILIATION", NONE))
        for store, sources in sorted(stores.items())
    )
    pick = sum((s.pick for s in per_store), NONE)
    reconciliation = sum((s.reconciliation for s in per_store), NONE)
    return Kpis(store_id, since, until, StockAccuracy(pick, reconciliation, per_store))
