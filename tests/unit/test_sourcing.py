"""Sourcing: the nearest store that has every line, else a split over the fewest, nearest stores."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import combinations

import pytest

from domain.errors import OutOfStock
from domain.reservations import Line
from domain.sourcing import Allocation, Candidate, plan, short_skus


def store(store_id: str, km: float, **available: int) -> Candidate:
    return Candidate(store_id=store_id, distance_km=km, available=available)


def stores_of(allocations: Sequence[Allocation]) -> list[str]:
    return [a.store_id for a in allocations]


# --- one store --------------------------------------------------------------------------------


def test_the_nearest_store_that_has_every_line_serves_it_all() -> None:
    candidates = [store("S3", 3.0, A=5, B=5), store("S2", 2.0, A=2, B=1), store("S9", 9.0, A=9)]

    allocations = plan({"A": 2, "B": 1}, candidates, max_stores=3)

    assert allocations == [Allocation("S2", 2.0, (Line("A", 2), Line("B", 1)))]


def test_a_farther_complete_store_wins_over_a_nearer_store_that_has_only_part() -> None:
    candidates = [
        store("NEAR", 0.5, A=10, B=0),
        store("PART", 1.0, B=10),
        store("FAR", 7.0, A=1, B=1),
    ]

    allocations = plan({"A": 1, "B": 1}, candidates, max_stores=3)

    assert allocations == [Allocation("FAR", 7.0, (Line("A", 1), Line("B", 1)))]


def test_a_store_short_of_one_unit_is_passed_over() -> None:
    candidates = [store("S1", 1.0, A=2, B=2), store("S2", 2.0, A=3, B=2)]

    allocations = plan({"A": 3, "B": 2}, candidates, max_stores=1)

    assert stores_of(allocations) == ["S2"]


def test_stores_at_the_same_distance_are_tied_by_store_id() -> None:
    candidates = [store("S2", 4.0, A=1), store("S10", 4.0, A=1), store("S1", 4.0, A=1)]

    allocations = plan({"A": 1}, candidates, max_stores=3)

    # Store ids compare as text: "S1" < "S10" < "S2".
    assert stores_of(allocations) == ["S1"]


def test_single_store_lines_are_sorted_by_sku() -> None:
    allocations = plan({"Z": 1, "A": 2, "M": 3}, [store("S1", 1.0, A=5, M=5, Z=5)], max_stores=1)

    assert allocations[0].lines == (Line("A", 2), Line("M", 3), Line("Z", 1))


# --- splits -----------------------------------------------------------------------------------


def test_split_takes_the_pair_with_the_least_total_distance() -> None:
    # Covering pairs: N1+N3 = 4 km, N1+N5 = 6, N2+N4 = 6, N2+N5 = 7, N3+N4 = 7, N4+N5 = 9.
    # (Largest-contribution-first would take N4 and then N2: 6 km.)
    candidates = [
        store("N5", 5.0, A=1, B=2),
        store("N4", 4.0, A=2, B=1),
        store("N3", 3.0, B=2),
        store("N2", 2.0, A=1, B=1),
        store("N1", 1.0, A=2),
    ]

    allocations = plan({"A": 2, "B": 2}, candidates, max_stores=3)

    assert allocations == [
        Allocation("N1", 1.0, (Line("A", 2),)),
        Allocation("N3", 3.0, (Line("B", 2),)),
    ]


def test_fewer_stores_win_over_a_shorter_total_distance() -> None:
    # Three stores 1 km away each (3 km) against two stores 11 km in all.
    candidates = [
        store("N1", 1.0, A=1),
        store("N2", 1.0, B=1),
        store("N3", 1.0, C=1),
        store("F1", 10.0, A=1, B=1),
    ]

    allocations = plan({"A": 1, "B": 1, "C": 1}, candidates, max_stores=3)

    assert allocations == [
        Allocation("N3", 1.0, (Line("C", 1),)),
        Allocation("F1", 10.0, (Line("A", 1), Line("B", 1))),
    ]


def test_pairs_of_equal_total_distance_are_tied_by_store_ids() -> None:
    candidates = [store("S4", 2.0, B=1), store("S3", 2.0, B=1), store("S1", 1.0, A=1)]

    allocations = plan({"A": 1, "B": 1}, candidates, max_stores=2)

    assert stores_of(allocations) == ["S1", "S3"]


def test_three_stores_when_no_two_can_serve() -> None:
    # No store has more than one of the SKUs; X+Y+Z (6 km) is the nearest triple.
    candidates = [
        store("X", 1.0, A=1),
        store("Y", 2.0, B=1),
        store("Z", 3.0, C=1),
        store("W", 4.0, A=1, B=0),
        store("V", 9.0, C=1),
    ]

    allocations = plan({"A": 1, "B": 1, "C": 1}, candidates, max_stores=3)

    assert allocations == [
        Allocation("X", 1.0, (Line("A", 1),)),
        Allocation("Y", 2.0, (Line("B", 1),)),
        Allocation("Z", 3.0, (Line("C", 1),)),
    ]


def test_one_skus_units_split_over_two_stores_nearest_first() -> None:
    candidates = [store("S1", 1.0, A=3), store("S2", 2.0, A=4), store("S3", 3.0, A=2)]

    allocations = plan({"A": 5}, candidates, max_stores=3)

    assert allocations == [
        Allocation("S1", 1.0, (Line("A", 3),)),
        Allocation("S2", 2.0, (Line("A", 2),)),
    ]


def test_split_lines_are_sorted_and_no_store_is_left_empty() -> None:
    candidates = [store("S1", 1.0, Z=1, B=1), store("S2", 2.0, M=1, A=1, Z=5)]

    allocations = plan({"Z": 2, "M": 1, "B": 1, "A": 1}, candidates, max_stores=3)

    assert allocations == [
        Allocation("S1", 1.0, (Line("B", 1), Line("Z", 1))),
        Allocation("S2", 2.0, (Line("A", 1), Line("M", 1), Line("Z", 1))),
    ]


def test_more_than_three_stores_when_the_policy_allows_it() -> None:
    candidates = [store(f"S{i}", float(i), **{sku: 1}) for i, sku in enumerate("ABCD", start=1)]

    allocations = plan({"A": 1, "B": 1, "C": 1, "D": 1}, candidates, max_stores=4)

    assert stores_of(allocations) == ["S1", "S2", "S3", "S4"]
    assert [a.lines for a in allocations] == [
        (Line("A", 1),),
        (Line("B", 1),),
        (Line("C", 1),),
        (Line("D", 1),),
    ]


def test_a_store_whose_units_nearer_stores_cover_is_left_out_of_the_plan() -> None:
    # No three stores can serve the seven SKUs. Largest-contribution-first picks FAR (A, B, C)
    # and then N1..N4; giving each unit to the nearest chosen store leaves FAR with nothing.
    candidates = [
        store("FAR", 50.0, A=1, B=1, C=1),
        store("N1", 1.0, A=1, D=1),
        store("N2", 2.0, B=1, E=1),
        store("N3", 3.0, C=1, G=1),
        store("N4", 4.0, H=1),
    ]
    wanted = dict.fromkeys("ABCDEGH", 1)

    allocations = plan(wanted, candidates, max_stores=5)

    assert allocations == [
        Allocation("N1", 1.0, (Line("A", 1), Line("D", 1))),
        Allocation("N2", 2.0, (Line("B", 1), Line("E", 1))),
        Allocation("N3", 3.0, (Line("C", 1), Line("G", 1))),
        Allocation("N4", 4.0, (Line("H", 1),)),
    ]


# --- not enough -------------------------------------------------------------------------------


def test_out_of_stock_names_exactly_the_skus_all_stores_together_cannot_cover() -> None:
    candidates = [store("S1", 1.0, A=2, B=3, C=1), store("S2", 2.0, A=2, C=0)]

    with pytest.raises(OutOfStock) as raised:
        plan({"A": 5, "B": 1, "C": 2, "D": 1}, candidates, max_stores=3)

    assert raised.value.skus == ["A", "C", "D"]
    assert raised.value.details == {"skus": ["A", "C", "D"]}
    assert raised.value.code == "OUT_OF_STOCK"


def test_no_candidates_at_all_is_out_of_stock_for_every_sku() -> None:
    with pytest.raises(OutOfStock) as raised:
        plan({"B": 1, "A": 1}, [], max_stores=3)

    assert raised.value.skus == ["A", "B"]


def test_a_split_needing_three_stores_is_refused_when_at_most_two_are_allowed() -> None:
    candidates = [store("X", 1.0, A=1), store("Y", 2.0, B=1), store("Z", 3.0, C=1)]

    with pytest.raises(OutOfStock) as raised:
        plan({"A": 1, "B": 1, "C": 1}, candidates, max_stores=2)

    assert raised.value.skus
    assert set(raised.value.skus) <= {"A", "B", "C"}


def test_a_split_is_refused_when_only_one_store_is_allowed() -> None:
    candidates = [store("X", 1.0, A=1), store("Y", 2.0, A=1)]

    with pytest.raises(OutOfStock) as raised:
        plan({"A": 2}, candidates, max_stores=1)

    assert raised.value.skus == ["A"]


def test_short_skus_ignores_negative_availability() -> None:
    candidates = [store("S1", 1.0, A=-5, B=1), store("S2", 2.0, A=3)]

    assert short_skus({"A": 3, "B": 2}, candidates) == ["B"]


def test_a_four_store_split_is_found_when_four_stores_are_allowed() -> None:
    # N1..N4 together serve every line, and no three stores can. Out of stock would be false.
    candidates = [
        store("FAR", 50.0, A=1, B=1, C=1),
        store("N1", 1.0, A=1, D=1),
        store("N2", 2.0, B=1, E=1),
        store("N3", 3.0, C=1, G=1),
        store("N4", 4.0, H=1),
    ]

    allocations = plan(dict.fromkeys("ABCDEGH", 1), candidates, max_stores=4)

    assert stores_of(allocations) == ["N1", "N2", "N3", "N4"]


# --- stores with nothing to give --------------------------------------------------------------


def test_stores_with_zero_or_negative_available_are_ignored() -> None:
    candidates = [
        store("S0", 0.1, A=0, B=0),
        store("S1", 0.2, A=-4, B=-1),
        store("S2", 1.0, A=2),
        store("S3", 2.0, A=2, B=1),
    ]

    allocations = plan({"A": 4, "B": 1}, candidates, max_stores=3)

    assert allocations == [
        Allocation("S2", 1.0, (Line("A", 2),)),
        Allocation("S3", 2.0, (Line("A", 2), Line("B", 1))),
    ]


def test_negative_availability_does_not_hide_a_shortage() -> None:
    # -5 must count as 0, not as a debt; 2 + 0 is still short of 3.
    candidates = [store("S1", 1.0, A=2), store("S2", 2.0, A=-5)]

    with pytest.raises(OutOfStock) as raised:
        plan({"A": 3}, candidates, max_stores=3)

    assert raised.value.skus == ["A"]


def test_negative_availability_is_ignored_beyond_three_stores() -> None:
    candidates = [
        store("S0", 0.5, A=-3, B=-3, C=-3, D=-3),
        *(store(f"S{i}", float(i), **{sku: 1}) for i, sku in enumerate("ABCD", start=1)),
    ]

    allocations = plan({"A": 1, "B": 1, "C": 1, "D": 1}, candidates, max_stores=5)

    assert stores_of(allocations) == ["S1", "S2", "S3", "S4"]


# --- properties over many random cases --------------------------------------------------------


def _covers(stores: Sequence[Candidate], wanted: Mapping[str, int]) -> bool:
    return all(
        sum(max(0, c.available.get(sku, 0)) for c in stores) >= quantity
        for sku, quantity in wanted.items()
    )


def _best_cover(
    candidates: Sequence[Candidate], wanted: Mapping[str, int], up_to: int
) -> tuple[int, float] | None:
    """(fewest stores, least total distance among those) of any cover of at most `up_to` stores."""
    for size in range(1, min(up_to, len(candidates)) + 1):
        totals = [
            sum(c.distance_km for c in combo)
            for combo in combinations(candidates, size)
            if _covers(combo, wanted)
        ]
        if totals:
            return size, min(totals)
    return None


def _random_case(rng: random.Random) -> tuple[dict[str, int], list[Candidate], int]:
    skus = rng.sample("ABCD", rng.randint(1, 4))
    wanted = {sku: rng.randint(1, 3) for sku in skus}
    candidates = []
    for i in rng.sample(range(20), rng.randint(2, 9)):
        # Each store stocks some of the SKUs (and one nobody wants), -1 meaning oversold.
        stocked = rng.sample([*skus, "Q"], rng.randint(1, max(1, len(skus) - 1)))
        candidates.append(
            Candidate(
                store_id=f"S{i}",
                # Whole kilometres keep sums exact; repeats exercise the ties.
                distance_km=float(rng.randint(0, 30)),
                available={sku: rng.choice([-1, 0, 1, 2, 2, 3, 3, 4]) for sku in stocked},
            )
        )
    return wanted, candidates, rng.randint(1, 4)


def test_plans_over_random_cases_keep_every_rule() -> None:
    rng = random.Random(20260302)
    outcomes = {"single": 0, "split": 0, "out_of_stock": 0}

    for case in range(200):
        wanted, candidates, max_stores = _random_case(rng)
        by_id = {c.store_id: c for c in candidates}
        context = f"case {case}: wanted={wanted} max_stores={max_stores} candidates={candidates}"
        exact_up_to = min(max_stores, 3)  # the sizes searched exhaustively
        best = _best_cover(candidates, wanted, exact_up_to)

        refused: OutOfStock | None = None
        try:
            allocations = plan(wanted, candidates, max_stores)
        except OutOfStock as error:
            refused = error
        if refused is not None:
            outcomes["out_of_stock"] += 1
            assert refused.skus, context
            assert set(refused.skus) <= set(wanted), context
            assert best is None, context
            short = short_skus(wanted, candidates)
            if short:
                assert refused.skus == short, context
            continue

        outcomes["single" if len(allocations) == 1 else "split"] += 1
        # Every wanted unit, exactly, and nothing else.
        served: dict[str, int] = {}
        for allocation in allocations:
            assert allocation.lines, context
            assert list(allocation.lines) == sorted(allocation.lines, key=lambda x: x.sku), context
            for line in allocation.lines:
                served[line.sku] = served.get(line.sku, 0) + line.quantity
                # Never more than the store has, never an empty line.
                assert 0 < line.quantity <= by_id[allocation.store_id].available[line.sku], context
            assert allocation.distance_km == by_id[allocation.store_id].distance_km, context
        assert served == wanted, context
        ids = stores_of(allocations)
        assert len(ids) == len(set(ids)), context
        assert len(allocations) <= max_stores, context
        # One store whenever one can serve everything: the nearest such, ties by id.
        complete = sorted((c.distance_km, c.store_id) for c in candidates if c.can_serve(wanted))
        if complete:
            assert ids == [complete[0][1]], context
        # Within the exhaustive range: the fewest stores, then the least total distance.
        if best is not None:
            assert (len(allocations), sum(a.distance_km for a in allocations)) == best, context

    # The cases reach every outcome often enough to mean something.
    assert min(outcomes.values()) >= 20, outcomes
