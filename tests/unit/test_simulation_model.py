"""The simulated world's behaviour (services/simulation.py): the demand curve, the shoppers, the
staff, the shelves and the agenda, each deterministic for a seed."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from domain.geo import GeoPoint
from services.simulation import (
    CHANNELS,
    MACHINERY,
    PEOPLE,
    Agenda,
    Fate,
    Floor,
    Parameters,
    Popularity,
    Shelves,
    SimClock,
    StorePlace,
    arrival_hours,
    counts_of,
    demand,
    losses_of,
    rng_for,
    shelves_of,
    shoppers_of,
    stores_of,
    visit_time,
)

SKUS = [f"SKU-{n:05d}" for n in range(100, 340)]
PLACES = [("S001", GeoPoint(51.5152, -0.1419)), ("S002", GeoPoint(51.5117, -0.1240))]


def test_demand_peaks_in_the_morning_at_lunch_and_after_work() -> None:
    assert demand(9.0) > demand(10.5) < demand(12.75) > demand(15.0) < demand(18.0) > demand(21.5)
    assert demand(18.0) > demand(9.0)


def test_arrivals_follow_the_demand_curve_within_opening_hours() -> None:
    hours = arrival_hours(rng_for(1, "arrivals"), 4_000, 8.0, 14.0)
    assert len(hours) == 4_000
    assert hours == sorted(hours)
    assert hours[0] >= 8.0
    assert hours[-1] < 22.0
    lunch = sum(1 for h in hours if 12.25 <= h < 13.25)
    mid_morning = sum(1 for h in hours if 10.25 <= h < 11.25)
    assert lunch > 1.5 * mid_morning


def test_the_same_seed_gives_the_same_shoppers_and_another_seed_others() -> None:
    def day(seed: int) -> list[object]:
        params = Parameters(seed=seed, shoppers=300)
        stores = stores_of(params, PLACES)
        popularity = Popularity(SKUS, params.zipf_exponent, rng_for(seed, "popularity"))
        return list(shoppers_of(params, stores, popularity, max_units=10))

    first = day(1)
    assert first == day(1)
    assert first != day(2)
    assert len(first) == 300


def test_shoppers_come_from_every_channel_with_every_fate() -> None:
    params = Parameters(shoppers=2_000)
    popularity = Popularity(SKUS, params.zipf_exponent, rng_for(1, "popularity"))
    shoppers = shoppers_of(params, stores_of(params, PLACES), popularity, max_units=10)
    channels = {s.channel for s in shoppers}
    assert channels == {"web", "app", "shop"}
    assert {s.fate for s in shoppers} == set(Fate)
    assert not any(s.checks_in for s in shoppers if s.via_intake)  # no customer token there
    # The sales channel's storefront shows which stores have it, as the app does.
    for channel in CHANNELS:
        share = statistics.mean(s.looks_first for s in shoppers if s.channel == channel)
        assert 0.65 < share < 0.85
    assert any(q > 10 for s in shoppers for _, q in s.lines)  # some go over the limit
    assert any(s.reserves > 1 for s in shoppers)  # a bulk buyer
    assert all(s.customer_id.startswith("C-") == s.via_intake for s in shoppers)


def test_popular_skus_are_asked_for_more_often() -> None:
    popularity = Popularity(SKUS, 0.75, rng_for(1, "popularity"))
    rng = rng_for(1, "picks")
    picks = [popularity.pick(rng) for _ in range(20_000)]
    top, tail = popularity.ranked[0], popularity.ranked[-1]
    assert picks.count(top) > 20 * max(1, picks.count(tail))
    assert len(set(popularity.distinct(rng, 3))) == 3


def _floor(params: Parameters, slow: bool = False) -> Floor:
    return Floor(params, StorePlace("S001", GeoPoint(51.5, -0.1), 1.0, slow))


def _median_minutes(draw: Callable[[], timedelta], n: int = 400) -> float:
    return statistics.median(draw().total_seconds() / 60 for _ in range(n))


def test_picking_takes_longer_when_busy_and_at_a_slow_store() -> None:
    params = Parameters()
    quiet, busy, slow = _floor(params), _floor(params), _floor(params, slow=True)
    busy.waiting = 20
    quiet_median = _median_minutes(quiet.ready_delay)
    assert 15 < quiet_median < 30  # about ready_median_minutes
    assert _median_minutes(busy.ready_delay) > 1.5 * quiet_median
    assert _median_minutes(slow.ready_delay) > 1.4 * quiet_median


def test_the_desk_serves_shoppers_in_turn() -> None:
    params = Parameters(counter_staff=2)
    floor = _floor(params)
    at = params.opens + timedelta(hours=1)
    first, second, third = (floor.hand_over(at) for _ in range(3))
    assert first > at
    assert second > at
    assert third > min(first, second)  # waited for one of the two staff


def test_shelves_hold_what_is_really_there() -> None:
    shelves = Shelves({("S001", "A"): 3})
    assert shelves.pick("S001", "A", 2, misplaced=False) == 2
    assert shelves.shelf("S001", "A") == 1
    assert shelves.pick("S001", "A", 2, misplaced=False) == 1  # short: one unit left
    shelves.put_back("S001", "A", 1)
    assert shelves.pick("S001", "A", 1, misplaced=True) == 0  # there, but not found
    shelves.hand_over("S001", "A", 2)
    assert shelves.on_hand[("S001", "A")] == 1
    assert shelves.lose("S001", "A") is True
    assert shelves.lose("S001", "A") is False  # nothing left to lose


def test_phantom_stock_only_ever_lowers_the_shelves() -> None:
    recorded = {("S001", sku): 10 for sku in SKUS}
    shelves = shelves_of(Parameters(phantom_share=0.2), recorded)
    lower = [row for row, n in shelves.on_hand.items() if n < recorded[row]]
    assert all(8 <= shelves.on_hand[row] <= 10 for row in recorded)
    assert 20 < len(lower) < 80


def test_shrink_and_counts_fall_within_opening_hours() -> None:
    params = Parameters(shrink_share=0.1)
    rows = [("S001", sku) for sku in SKUS]
    losses = losses_of(params, rows)
    assert losses
    assert all(params.opens <= loss.at < params.closes for loss in losses)
    assert losses == losses_of(params, rows)
    counts = counts_of(params, {"S001": SKUS, "S002": SKUS[:5]})
    assert len(counts) == 2 * params.count_rounds
    assert all(params.opens <= c.at <= params.closes for c in counts)
    assert all(len(c.skus) <= 6 for c in counts)


def test_shoppers_come_before_closing_or_another_day() -> None:
    params = Parameters()
    popularity = Popularity(SKUS, params.zipf_exponent, rng_for(1, "popularity"))
    shopper = shoppers_of(params, stores_of(params, PLACES), popularity, 10)[0]
    late = params.closes - timedelta(minutes=10)
    assert visit_time(params, shopper, late) is None
    early = params.closes - timedelta(minutes=30)
    when = visit_time(params, shopper, early)
    assert when is not None
    assert when <= params.closes - timedelta(minutes=5)


def test_the_agenda_orders_by_time_then_priority_then_plan() -> None:
    agenda = Agenda()
    at = datetime(2026, 3, 3, 9, tzinfo=UTC)
    agenda.plan(at, "people", PEOPLE)
    agenda.plan(at, "machinery", MACHINERY)
    agenda.plan(at, "people again", PEOPLE)
    agenda.plan(at - timedelta(seconds=1), "earlier", PEOPLE)
    assert [agenda.next()[1] for _ in range(len(agenda))] == [
        "earlier",
        "machinery",
        "people",
        "people again",
    ]


def test_the_clock_moves_only_forward() -> None:
    start = datetime(2026, 3, 3, 8, tzinfo=UTC)
    clock = SimClock(start)
    clock.move_to(start + timedelta(minutes=1))
    assert clock.now() == start + timedelta(minutes=1)
    with pytest.raises(ValueError, match="does not go back"):
        clock.move_to(start)


@pytest.mark.parametrize("fields", [{"stores": 0}, {"shoppers": -1}, {"hours": 0}, {"hours": 20}])
def test_parameters_refuse_what_cannot_be_simulated(fields: dict[str, int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message is the field's)
        Parameters(**fields)  # type: ignore[arg-type]


def test_every_parameter_is_described() -> None:
    described = dict(Parameters().described())
    assert described["seed"] == "1"
    assert described["channel_shares"] == "0.45/0.35/0.2"
    assert len(described) == len(Parameters.__dataclass_fields__)
