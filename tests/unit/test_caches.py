"""The in-process caches: the policy and the store directory."""

from __future__ import annotations

import math
import random

import pytest

from adapters.db import caches
from adapters.db.caches import KnownCodes, PolicyCache, StoreDirectory
from domain.catalog import Store
from domain.geo import GeoPoint, bounding_box, distance_km, nearest
from domain.policy import ReservationPolicy


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    clock = {"t": 1000.0}
    monkeypatch.setattr("adapters.db.caches.time.monotonic", lambda: clock["t"])
    return clock


def test_known_codes_answer_only_what_was_found_until_their_time_is_up(
    now: dict[str, float],
) -> None:
    cache = KnownCodes(ttl_seconds=30)
    cache.add({"A", "B"})

    assert cache.known({"A", "C"}) == {"A"}  # C was never found: ask the database
    now["t"] += 29.9
    assert cache.known({"A", "B"}) == {"A", "B"}
    now["t"] += 0.2
    assert cache.known({"A", "B"}) == set()  # all forgotten at once


def test_known_codes_start_again_rather_than_grow_past_their_bound(now: dict[str, float]) -> None:
    cache = KnownCodes(max_codes=3)
    cache.add({"A", "B"})
    cache.add({"C", "D"})

    assert cache.known({"A", "B", "C", "D"}) == {"C", "D"}


def store(i: str, lat: float, lon: float) -> Store:
    return Store.build(id=i, name=f"Store {i}", lat=lat, lon=lon, timezone="Europe/London")


def test_the_policy_is_served_from_the_cache_until_its_time_is_up(now: dict[str, float]) -> None:
    cache = PolicyCache(ttl_seconds=2)
    policy = ReservationPolicy(max_active_reservations_per_customer=3)
    cache.put(policy)

    now["t"] += 1.9
    assert cache.get() is policy
    now["t"] += 0.2
    assert cache.get() is None


def test_a_cleared_policy_cache_is_read_again(now: dict[str, float]) -> None:
    cache = PolicyCache()
    cache.put(ReservationPolicy())
    cache.clear()
    assert cache.get() is None


def test_the_directory_finds_exactly_the_stores_in_a_box() -> None:
    directory = StoreDirectory()
    london, paris, leeds = store("L", 51.5, -0.12), store("P", 48.85, 2.35), store("Y", 53.8, -1.55)
    directory.load([paris, leeds, london])

    found = directory.in_box(bounding_box(GeoPoint(51.5, -0.1), 50))

    assert found == [london]
    assert directory.in_box(bounding_box(GeoPoint(51.5, -0.1), 600)) == [paris, london, leeds]


def test_the_directory_answers_by_id_and_in_id_order() -> None:
    directory = StoreDirectory()
    directory.load([store("S2", 51, 0), store("S1", 52, 0), store("S3", 50, 0)])

    assert directory.by_ids(["S1", "NOPE"]) == {"S1": store("S1", 52, 0)}
    assert [s.id for s in directory.first(2)] == ["S1", "S2"]


def test_the_directory_goes_stale_after_its_time_or_when_cleared(now: dict[str, float]) -> None:
    directory = StoreDirectory(ttl_seconds=30)
    assert not directory.fresh
    directory.load([])
    assert directory.fresh
    now["t"] += 30
    assert not directory.fresh
    directory.load([])
    directory.clear()
    assert not directory.fresh


# --- nearest ----------------------------------------------------------------------------------


def nearest_over_the_box(
    directory: StoreDirectory, center: GeoPoint, radius: float, limit: int
) -> list[tuple[Store, float]]:
    """The path the directory's nearest() must answer like: geo.nearest over the radius's box."""
    box = directory.in_box(bounding_box(center, radius))
    return nearest(center, box, lambda s: (s.lat, s.lon), radius, limit)


def clamp(lat: float, lon: float) -> tuple[float, float]:
    return min(90.0, max(-90.0, lat)), (lon + 540.0) % 360.0 - 180.0


def random_directory(rng: random.Random) -> list[Store]:
    """Clustered or uniform stores, around the UK, a pole or the antimeridian, on a coarse grid
    or with copied coordinates so that some are exactly as far as others."""
    lat0, lon0 = rng.choice([(53.0, -2.0), (87.0, 30.0), (-88.5, -60.0), (10.0, 179.5), (0.0, 0.0)])
    lat0, lon0 = lat0 + rng.uniform(-1, 1), lon0 + rng.uniform(-1, 1)
    count = rng.choice([1, 5, 30, 200, 200, 800, 800])
    clusters = [(lat0 + rng.gauss(0, 2), lon0 + rng.gauss(0, 3)) for _ in range(rng.randint(1, 6))]
    spread = rng.choice([0.01, 0.1, 0.5])
    places = []
    for _ in range(count):
        if rng.random() < 0.7:
            lat, lon = rng.choice(clusters)
            places.append(clamp(lat + rng.gauss(0, spread), lon + rng.gauss(0, spread * 1.6)))
        else:
            places.append(clamp(lat0 + rng.uniform(-4, 4), lon0 + rng.uniform(-8, 8)))
    if rng.random() < 0.3:
        places = [(round(lat, 2), round(lon, 2)) for lat, lon in places]
    if rng.random() < 0.3:
        places += rng.choices(places, k=len(places) // 3)
    return [store(f"S{i:04d}", lat, lon) for i, (lat, lon) in enumerate(places)]


def random_center(rng: random.Random, stores: list[Store]) -> GeoPoint:
    near = rng.choice(stores)
    if rng.random() < 0.2:
        return GeoPoint(near.lat, near.lon)
    spread = rng.choice([0.01, 0.1, 1.0])
    return GeoPoint(*clamp(near.lat + rng.gauss(0, spread), near.lon + rng.gauss(0, spread)))


def test_the_directory_finds_the_same_nearest_stores_as_the_box_does() -> None:
    rng = random.Random(20240611)
    for _ in range(120):
        stores = random_directory(rng)
        directory = StoreDirectory()
        directory.load(stores)
        for _ in range(40):
            center = random_center(rng, stores)
            radius = rng.choice([1, 2, 3, 5, 10, 10, 50, 50, 300, 1000, rng.uniform(0.1, 100)])
            limit = rng.choice(
                [1, 2, 3, 5, 10, 10, 20, 50, max(1, len(stores) + rng.randint(-1, 3))]
            )

            expected = nearest_over_the_box(directory, center, radius, limit)

            assert directory.nearest(center, radius, limit) == expected, (center, radius, limit)


def test_a_search_in_a_city_measures_only_the_stores_near_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    stores = [
        store(f"S{i}", 51.5 + rng.gauss(0, 0.1), -0.12 + rng.gauss(0, 0.16)) for i in range(500)
    ]
    directory = StoreDirectory()
    directory.load(stores)
    center = GeoPoint(51.51, -0.1)
    expected = nearest_over_the_box(directory, center, 50, 10)
    measured = []

    def counting(center: GeoPoint, lat: float, lon: float) -> float:
        measured.append((lat, lon))
        return distance_km(center, lat, lon)

    monkeypatch.setattr(caches, "distance_km", counting)
    monkeypatch.setattr(caches, "nearest", None)  # fails if the whole box is searched

    assert directory.nearest(center, 50, 10) == expected
    assert len(directory.in_box(bounding_box(center, 50))) > 400
    assert len(measured) < 60


def test_an_empty_directory_has_no_nearest_store() -> None:
    directory = StoreDirectory()
    directory.load([])

    assert directory.nearest(GeoPoint(51.5, -0.1), 50, 10) == []


def test_with_fewer_stores_than_asked_for_every_one_within_the_radius_comes_nearest_first() -> None:
    directory = StoreDirectory()
    far, near, paris = store("F", 51.7, -0.1), store("N", 51.51, -0.1), store("P", 48.85, 2.35)
    directory.load([far, near, paris])

    found = directory.nearest(GeoPoint(51.5, -0.1), 50, 10)

    assert [s for s, _ in found] == [near, far]
    assert [d for _, d in found] == [
        distance_km(GeoPoint(51.5, -0.1), s.lat, s.lon) for s in [near, far]
    ]


def test_a_store_exactly_at_the_radius_is_found_and_one_just_beyond_is_not() -> None:
    center = GeoPoint(51.5, -0.1)
    stores = [store(f"S{i}", 51.5 + i * 0.001, -0.1) for i in range(12)]
    at_the_radius, beyond = store("EDGE", 51.5, 0.0), store("FAR", 51.5, 0.01)
    directory = StoreDirectory()
    directory.load([*stores, at_the_radius, beyond])
    radius = distance_km(center, at_the_radius.lat, at_the_radius.lon)

    assert directory.nearest(center, radius, 13)[-1] == (at_the_radius, radius)
    assert at_the_radius not in [
        s for s, _ in directory.nearest(center, math.nextafter(radius, 0), 13)
    ]


def test_stores_as_far_as_each_other_come_in_the_directory_order() -> None:
    center = GeoPoint(51.5, 0.0)
    twins = [store("B", 51.52, 0.0), store("A", 51.52, 0.0)]
    mirrored = [store("W", 51.5, -0.03), store("E", 51.5, 0.03)]
    others = [store(f"S{i}", 51.6 + i * 0.01, 0.0) for i in range(20)]
    directory = StoreDirectory()
    directory.load([*twins, *mirrored, *others])

    found = directory.nearest(center, 50, 3)

    assert [s.id for s, _ in found] == ["E", "W", "A"]
    assert found[0][1] == found[1][1] < found[2][1]
