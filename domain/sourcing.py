"""Sourcing: which store(s) serve a reservation. The nearest store that has every line wins; when
no single store can, the lines are split over the fewest stores, then the least total distance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from domain.errors import OutOfStock
from domain.reservations import Line

# Exhaustive search over store combinations is exact but grows fast: it covers splits over up to
# EXACT_MAX_STORES stores among the EXACT_CANDIDATES nearest useful stores; beyond that a greedy
# cover (largest contribution first, nearest on ties) takes over.
EXACT_MAX_STORES = 3
EXACT_CANDIDATES = 24


@dataclass(frozen=True, slots=True)
class Candidate:
    """A store within the search radius and what it can give of the wanted SKUs."""

    store_id: str
    distance_km: float
    available: Mapping[str, int]

    def can_serve(self, wanted: Mapping[str, int]) -> bool:
        return all(self.available.get(sku, 0) >= quantity for sku, quantity in wanted.items())


@dataclass(frozen=True, slots=True)
class Allocation:
    """The lines one store will hold."""

    store_id: str
    distance_km: float
    lines: tuple[Line, ...]


def short_skus(wanted: Mapping[str, int], candidates: Sequence[Candidate]) -> list[str]:
    """SKUs that even all candidates together cannot supply."""
    return sorted(
        sku
        for sku, quantity in wanted.items()
        if sum(max(0, c.available.get(sku, 0)) for c in candidates) < quantity
    )


def plan(
    wanted: Mapping[str, int], candidates: Sequence[Candidate], max_stores: int
) -> list[Allocation]:
    """Allocate `wanted` (SKU -> units) to stores. Raises OutOfStock naming the short SKUs."""
    ordered = sorted(candidates, key=lambda c: (c.distance_km, c.store_id))
    for candidate in ordered:
        if candidate.can_serve(wanted):
            return [_allocation(candidate, dict(wanted))]

    short = short_skus(wanted, ordered)
    if short:
        raise OutOfStock(short)
    useful = [c for c in ordered if any(c.available.get(sku, 0) > 0 for sku in wanted)]

    pool = useful[:EXACT_CANDIDATES]
    for size in range(2, min(EXACT_MAX_STORES, max_stores, len(pool)) + 1):
        best: tuple[float, tuple[str, ...], tuple[Candidate, ...]] | None = None
        for combo in combinations(pool, size):
            if not _covers(combo, wanted):
                continue
            key = (sum(c.distance_km for c in combo), tuple(c.store_id for c in combo))
            if best is None or key < best[:2]:
                best = (*key, combo)
        if best is not None:
            return _assign(best[2], wanted)

    chosen = _greedy(useful, wanted, max_stores)
    if not _covers(chosen, wanted):
        raise OutOfStock(
            _uncovered(chosen, wanted),
            f"No {max_stores} stores within the radius can together serve: "
            f"{', '.join(_uncovered(chosen, wanted))}",
        )
    return _assign(chosen, wanted)


def _covers(stores: Sequence[Candidate], wanted: Mapping[str, int]) -> bool:
    return not _uncovered(stores, wanted)


def _uncovered(stores: Sequence[Candidate], wanted: Mapping[str, int]) -> list[str]:
    return sorted(
        sku
        for sku, quantity in wanted.items()
        if sum(max(0, c.available.get(sku, 0)) for c in stores) < quantity
    )


def _greedy(
    useful: Sequence[Candidate], wanted: Mapping[str, int], max_stores: int
) -> list[Candidate]:
    remaining = dict(wanted)
    chosen: list[Candidate] = []
    left = list(useful)
    while any(remaining.values()) and left and len(chosen) < max_stores:
        best = max(
            left,
            key=lambda c: (
                sum(min(max(0, c.available.get(sku, 0)), q) for sku, q in remaining.items()),
                -c.distance_km,
            ),
        )
        gain = {sku: min(max(0, best.available.get(sku, 0)), q) for sku, q in remaining.items()}
        if not any(gain.values()):
            break
        chosen.append(best)
        left.remove(best)
        for sku, units in gain.items():
            remaining[sku] -= units
    return chosen


def _assign(stores: Sequence[Candidate], wanted: Mapping[str, int]) -> list[Allocation]:
    """Give each SKU's units to the nearest chosen store first; drop stores left empty."""
    by_distance = sorted(stores, key=lambda c: (c.distance_km, c.store_id))
    per_store: dict[str, dict[str, int]] = {c.store_id: {} for c in by_distance}
    for sku, quantity in sorted(wanted.items()):
        left = quantity
        for c in by_distance:
            take = min(left, max(0, c.available.get(sku, 0)))
            if take:
                per_store[c.store_id][sku] = take
                left -= take
            if not left:
                break
    return [_allocation(c, per_store[c.store_id]) for c in by_distance if per_store[c.store_id]]


def _allocation(candidate: Candidate, units: Mapping[str, int]) -> Allocation:
    return Allocation(
        store_id=candidate.store_id,
        distance_km=candidate.distance_km,
        lines=tuple(Line(sku, quantity) for sku, quantity in sorted(units.items())),
    )
