"""The operational figures' rules: what a reserve attempt came to, and how the seed's three KPIs
(reservation success rate, pickup wait, stock accuracy of reserved items) and what explains them
are computed from counts and durations. Pure: the counting and the reading are elsewhere."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from domain.errors import DomainError

# The seed's goals, which the figures are shown beside.
SUCCESS_RATE_TARGET = 0.985
PICKUP_WAIT_TARGET_SECONDS = 30 * 60
STOCK_ACCURACY_TARGET = 0.992


class ReserveSource(Enum):
    """Where a reserve attempt came in."""

    GRAPHQL = "graphql"
    INTAKE = "intake"


class ReserveOutcome(Enum):
    """What one reserve attempt came to. TECHNICAL is never folded into a business refusal: a
    fault of ours (a database down, a bug) must show as such, not as "out of stock"."""

    RESERVED = "reserved"
    OUT_OF_STOCK = "out_of_stock"
    LIMIT_EXCEEDED = "limit_exceeded"
    BAD_INPUT = "bad_input"
    TECHNICAL = "technical"

    @classmethod
    def of_error(cls, error: BaseException) -> ReserveOutcome:
        """The outcome a reserve that raised `error` came to."""
        if not isinstance(error, DomainError):
            return cls.TECHNICAL
        return cls.of_code(error.code)

    @classmethod
    def of_code(cls, code: str | None) -> ReserveOutcome:
        """The outcome of a refusal with this error code (the API's, or the intake's rule and
        acting codes: an unknown SKU or store, a rule's rejection, are the request's fault)."""
        if code == "OUT_OF_STOCK":
            return cls.OUT_OF_STOCK
        if code == "LIMIT_EXCEEDED":
            return cls.LIMIT_EXCEEDED
        if code in (None, "INTERNAL", "TECHNICAL_FAILURE"):
            return cls.TECHNICAL
        return cls.BAD_INPUT


@dataclass(frozen=True, slots=True)
class AttemptCount:
    """Reserve attempts with one outcome, at one store (None: no store was chosen, e.g. none
    near the shopper could serve them) and from one channel (None: not named)."""

    store_id: str | None
    channel: str | None
    outcome: ReserveOutcome
    count: int


@dataclass(frozen=True, slots=True)
class ReservationSuccess:
    """Reserved / asked, with every cause of failure counted apart."""

    counts: Mapping[ReserveOutcome, int]

    @classmethod
    def of(cls, counts: Iterable[AttemptCount]) -> ReservationSuccess:
        summed = dict.fromkeys(ReserveOutcome, 0)
        for count in counts:
            summed[count.outcome] += count.count
        return cls(summed)

    def __getitem__(self, outcome: ReserveOutcome) -> int:
        return self.counts.get(outcome, 0)

    @property
    def asked(self) -> int:
        return sum(self.counts.values())

    @property
    def reserved(self) -> int:
        return self[ReserveOutcome.RESERVED]

    @property
    def business_refusals(self) -> int:
        return (
            self[ReserveOutcome.OUT_OF_STOCK]
            + self[ReserveOutcome.LIMIT_EXCEEDED]
            + self[ReserveOutcome.BAD_INPUT]
        )

    @property
    def rate(self) -> float | None:
        """reserved / asked; None when nothing was asked (no figure beats a made-up one)."""
        return self.reserved / self.asked if self.asked else None

    @property
    def rate_where_stock_existed(self) -> float | None:
        """reserved / the attempts that did not find the stock missing: the seed's figure,
        which judges the service, not the assortment."""
        base = self.asked - self[ReserveOutcome.OUT_OF_STOCK]
        return self.reserved / base if base else None

    @property
    def technical_failure_rate(self) -> float | None:
        return self[ReserveOutcome.TECHNICAL] / self.asked if self.asked else None


def percentile(sorted_values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` 0.5 for p50) of values sorted ascending."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True, slots=True)
class DurationCell:
    """Durations of one kind (reserved -> ready...) at one store from one channel: how many,
    their sum, and how many were within the target."""

    store_id: str
    channel: str | None
    count: int
    total_seconds: float
    within_target: int = 0


@dataclass(frozen=True, slots=True)
class Durations:
    """Seconds between two moments of reservations (reserved -> ready, arrival -> collected...):
    how many, their mean, p50 and p90, and the share within a target when there is one. `count`,
    the mean and the share are exact; the percentiles are read from `sample` (sorted; the
    window's newest durations, at most as many as the reader took)."""

    count: int
    total_seconds: float
    sample: tuple[float, ...]
    target_seconds: float | None = None
    within_target: int = 0

    @classmethod
    def of(
        cls,
        cells: Iterable[DurationCell],
        sample: Iterable[float],
        target_seconds: float | None = None,
    ) -> Durations:
        count = within = 0
        total = 0.0
        for cell in cells:
            count += cell.count
            total += cell.total_seconds
            within += cell.within_target
        return cls(count, total, tuple(sorted(sample)), target_seconds, within)

    @property
    def mean_seconds(self) -> float | None:
        return self.total_seconds / self.count if self.count else None

    @property
    def p50_seconds(self) -> float | None:
        return percentile(self.sample, 0.5)

    @property
    def p90_seconds(self) -> float | None:
        return percentile(self.sample, 0.9)

    @property
    def share_within_target(self) -> float | None:
        if self.target_seconds is None or not self.count:
            return None
        return self.within_target / self.count

    @property
    def mean_within_target(self) -> bool | None:
        """Whether the mean is at or under the target (the pickup wait's goal is a mean)."""
        mean = self.mean_seconds
        if self.target_seconds is None or mean is None:
            return None
        return mean <= self.target_seconds


@dataclass(frozen=True, slots=True)
class Endings:
    """How the reservations that ended in the window ended, and what explains the no-shows and
    short picks (at one store from one channel, or summed over several):

    - no-show: made ready, then expired (the shopper never came);
    - short pick: a reservation whose pick found a line short (of those picked)."""

    collected: int
    cancelled: int
    expired: int
    expired_after_ready: int
    ended_after_ready: int  # collected, cancelled or expired after being made ready
    picked: int
    short_picked: int

    def __add__(self, other: Endings) -> Endings:
        return Endings(
            self.collected + other.collected,
            self.cancelled + other.cancelled,
            self.expired + other.expired,
            self.expired_after_ready + other.expired_after_ready,
            self.ended_after_ready + other.ended_after_ready,
            self.picked + other.picked,
            self.short_picked + other.short_picked,
        )

    @property
    def ended(self) -> int:
        return self.collected + self.cancelled + self.expired

    @property
    def expiry_rate(self) -> float | None:
        return self.expired / self.ended if self.ended else None

    @property
    def cancel_rate(self) -> float | None:
        return self.cancelled / self.ended if self.ended else None

    @property
    def no_show_rate(self) -> float | None:
        if not self.ended_after_ready:
            return None
        return self.expired_after_ready / self.ended_after_ready

    @property
    def short_pick_rate(self) -> float | None:
        return self.short_picked / self.picked if self.picked else None


NO_ENDINGS = Endings(0, 0, 0, 0, 0, 0, 0)


Cell = tuple[str, str | None]  # (store, channel)
Sample = tuple[str, str | None, float]  # (store, channel, seconds)


@dataclass(frozen=True, slots=True)
class DurationFacts:
    """One kind of duration as read: per store and channel, and the newest ones themselves."""

    cells: tuple[DurationCell, ...] = ()
    sample: tuple[Sample, ...] = ()

    def where(
        self, keep: Callable[[str | None, str | None], bool], target: float | None
    ) -> Durations:
        return Durations.of(
            (c for c in self.cells if keep(c.store_id, c.channel)),
            (s for store, channel, s in self.sample if keep(store, channel)),
            target,
        )


@dataclass(frozen=True, slots=True)
class KpiFacts:
    """What the figures of a window are made from, as the database gives it (per store and
    channel, so the overall figures and each breakdown come from one read)."""

    attempts: tuple[AttemptCount, ...] = ()
    time_to_ready: DurationFacts = DurationFacts()
    pickup_wait: DurationFacts = DurationFacts()
    ready_to_collected: DurationFacts = DurationFacts()
    endings: Mapping[Cell, Endings] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KpiFigures:
    """The figures of a window for one scope (overall, a store or a channel)."""

    success: ReservationSuccess
    time_to_ready: Durations
    pickup_wait: Durations
    ready_to_collected: Durations
    endings: Endings


def figures(
    facts: KpiFacts,
    *,
    ready_target_seconds: float,
    keep: Callable[[str | None, str | None], bool] = lambda store, channel: True,
) -> KpiFigures:
    """The figures of the (store, channel) cells `keep` keeps."""
    return KpiFigures(
        success=ReservationSuccess.of(a for a in facts.attempts if keep(a.store_id, a.channel)),
        time_to_ready=facts.time_to_ready.where(keep, ready_target_seconds),
        pickup_wait=facts.pickup_wait.where(keep, PICKUP_WAIT_TARGET_SECONDS),
        ready_to_collected=facts.ready_to_collected.where(keep, None),
        endings=sum(
            (e for (store, channel), e in facts.endings.items() if keep(store, channel)),
            NO_ENDINGS,
        ),
    )


def stores_and_channels(facts: KpiFacts) -> tuple[list[str], list[str | None]]:
    """Every store and every channel the facts name, sorted (no channel: last)."""
    stores: set[str] = set()
    channels: set[str | None] = set()
    for a in facts.attempts:
        if a.store_id is not None:
            stores.add(a.store_id)
        channels.add(a.channel)
    for kind in (facts.time_to_ready, facts.pickup_wait, facts.ready_to_collected):
        for cell in kind.cells:
            stores.add(cell.store_id)
            channels.add(cell.channel)
    for store, channel in facts.endings:
        stores.add(store)
        channels.add(channel)
    return sorted(stores), sorted(channels, key=lambda c: (c is None, c or ""))
