"""Sourcing: which store(s) serve a reservation. The nearest store that has every line wins; when
no single store can, the lines are split over the fewest stores, then the least total distance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.errors import OutOfStock
from domain.reservations import Line

# The split search is exact (fewest stores, then least total distance) within this many search
# nodes; a request so fragmented that it needs more gets a greedy cover instead.
SEARCH_BUDGET = 10_000


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

    budget = _Budget(SEARCH_BUDGET)
    for size in range(2, max_stores + 1):
        cover = _cheapest_cover(useful, wanted, size, budget)
        if cover is not None:
            return _assign(cover, wanted)
        if budget.spent:
            break
    # The exact search ran out of budget (a very fragmented request): settle for a greedy cover.
    chosen = _greedy(useful, wanted, max_stores) if budget.spent else []
    if chosen and _covers(chosen, wanted):
        return _assign(chosen, wanted)
    uncovered = _uncovered(chosen, wanted) if chosen else sorted(wanted)
    raise OutOfStock(
        uncovered,
        f"No {max_stores} stores within the radius can together serve: {', '.join(uncovered)}",
    )


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.left = nodes

    @property
    def spent(self) -> bool:
        return self.left <= 0


def _cheapest_cover(
    useful: Sequence[Candidate], wanted: Mapping[str, int], size: int, budget: _Budget
) -> tuple[Candidate, ...] | None:
    """The covering set of at most `size` stores with the least total distance (branch and bound:
    branch on the uncovered SKU with the fewest stores that have it; prune on distance)."""
    givers = {
        sku: [c for c in useful if c.available.get(sku, 0) > 0] for sku in wanted
    }  # each list nearest first, as `useful` is
    best: tuple[float, tuple[str, ...], tuple[Candidate, ...]] | None = None

    def search(chosen: tuple[Candidate, ...], cost: float, missing: dict[str, int]) -> None:
        nonlocal best
        if budget.spent:
            return
        budget.left -= 1
        if not missing:
            key = (cost, tuple(sorted(c.store_id for c in chosen)))
            if best is None or key < best[:2]:
                best = (*key, chosen)
            return
        if len(chosen) == size:
            return
        sku = min(missing, key=lambda s: (len(givers[s]), s))
        for c in givers[sku]:
            if c in chosen:
                continue
            if best is not None and cost + c.distance_km > best[0]:
                break  # the rest are farther still
            left = {
                s: q - max(0, c.available.get(s, 0))
                for s, q in missing.items()
                if q > max(0, c.available.get(s, 0))
            }
            search((*chosen, c), cost + c.distance_km, left)

    search((), 0.0, dict(wanted))
    return best[2] if best else None


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
