"""The operational figures over a window, overall, per store and per channel (domain.kpis says
how each is made):

- reservation success rate: every reserve attempt, from GraphQL and from the intake, is counted
  with its outcome by AttemptCounts (in memory on the hot path, written each second);
- time to ready, pickup wait (the shopper's arrival -> collected), ready -> collected, and how
  reservations ended (no-shows, expiries, cancels, short picks), read from the reservations;
- stock accuracy of reserved items: of the reserved lines checked, the share that was right, at
  pick time (found in full on the shelf) and at reconciliation (ROPOS and the WMS agreeing on the
  row that holds them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clock import Clock
from domain.errors import BadInput
from domain.kpis import KpiFigures, ReserveOutcome, ReserveSource, figures, stores_and_channels
from services.queries import ReadPort
from services.tallies import Tally
from services.unit_of_work import UnitOfWork

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
    ready_target_seconds: int
    overall: KpiFigures
    per_store: tuple[tuple[str, KpiFigures], ...]
    per_channel: tuple[tuple[str | None, KpiFigures], ...]


class AttemptCounts(Tally[tuple[datetime, str | None, str | None, ReserveSource, ReserveOutcome]]):
    """Every reserve attempt's outcome, summed per minute, store, channel and source in memory
    and written each interval (services.tallies): counting costs the reserve path a Counter
    increment, not a statement. Also keeps this process's totals per (source, outcome) since it
    started, for /metrics."""

    WHAT = "reserve attempt counts"

    def __init__(self, interval_seconds: float = 1.0) -> None:
        super().__init__(interval_seconds)
        self._totals: Counter[tuple[str, str]] = Counter()

    def add(
        self,
        source: ReserveSource,
        outcome: ReserveOutcome,
        at: datetime,
        *,
        store_id: str | None,
        channel: str | None,
    ) -> None:
        self.add_key((at.replace(second=0, microsecond=0), store_id, channel, source, outcome))
        self._totals[(source.value, outcome.value)] += 1

    def totals(self) -> Mapping[tuple[str, str], int]:
        """Attempts per (source, outcome) counted by this process since it started."""
        return dict(self._totals)

    async def write(
        self,
        tx: UnitOfWork,
        items: list[
            tuple[tuple[datetime, str | None, str | None, ReserveSource, ReserveOutcome], int]
        ],
    ) -> None:
        await tx.attempts.count(items)


async def kpis(
    store_id: str | None, since: datetime | None, *, read: ReadPort, clock: Clock
) -> Kpis:
    until = clock.now()
    since = since or until - DEFAULT_WINDOW
    if since.tzinfo is None:
        raise BadInput("since needs a time zone (e.g. 2026-11-01T00:00:00Z).", field="since")
    if since > until or until - since > MAX_WINDOW:
        raise BadInput("since must be in the past, at most 366 days ago.", field="since")
    facts = await read.kpi_facts(store_id, since, until)
    policy = await read.policy()
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
    target = policy.ready_target_seconds
    named, channels = stores_and_channels(facts)
    if store_id is not None:
        named = [store_id]
    return Kpis(
        store_id,
        since,
        until,
        StockAccuracy(pick, reconciliation, per_store),
        ready_target_seconds=target,
        overall=figures(facts, ready_target_seconds=target),
        per_store=tuple(
            (store, figures(facts, ready_target_seconds=target, keep=_at_store(store)))
            for store in named
        ),
        per_channel=tuple(
            (channel, figures(facts, ready_target_seconds=target, keep=_from_channel(channel)))
            for channel in channels
        ),
    )


def _at_store(store_id: str) -> Callable[[str | None, str | None], bool]:
    return lambda store, channel: store == store_id


def _from_channel(name: str | None) -> Callable[[str | None, str | None], bool]:
    return lambda store, channel: channel == name
