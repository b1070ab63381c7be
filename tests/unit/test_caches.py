"""The in-process caches: the policy and the store directory."""

from __future__ import annotations

import pytest

from adapters.db import caches
from adapters.db.caches import PolicyCache, StoreDirectory
from domain.catalog import Store
from domain.geo import GeoPoint, bounding_box
from domain.policy import ReservationPolicy


@pytest.fixture
def now(monkeypatch):
    clock = {"t": 1000.0}
    monkeypatch.setattr(caches.time, "monotonic", lambda: clock["t"])
    return clock


def store(i: str, lat: float, lon: float) -> Store:
    return Store.build(id=i, name=f"Store {i}", lat=lat, lon=lon, timezone="Europe/London")


def test_the_policy_is_served_from_the_cache_until_its_time_is_up(now):
    cache = PolicyCache(ttl_seconds=2)
    policy = ReservationPolicy(max_active_reservations_per_customer=3)
    cache.put(policy)

    now["t"] += 1.9
    assert cache.get() is policy
    now["t"] += 0.2
    assert cache.get() is None


def test_a_cleared_policy_cache_is_read_again(now):
    cache = PolicyCache()
    cache.put(ReservationPolicy())
    cache.clear()
    assert cache.get() is None


def test_the_directory_finds_exactly_the_stores_in_a_box():
    directory = StoreDirectory()
    london, paris, leeds = store("L", 51.5, -0.12), store("P", 48.85, 2.35), store("Y", 53.8, -1.55)
    directory.load([paris, leeds, london])

    found = directory.in_box(bounding_box(GeoPoint(51.5, -0.1), 50))

    assert found == [london]
    assert directory.in_box(bounding_box(GeoPoint(51.5, -0.1), 600)) == [paris, london, leeds]


def test_the_directory_answers_by_id_and_in_id_order():
    directory = StoreDirectory()
    directory.load([store("S2", 51, 0), store("S1", 52, 0), store("S3", 50, 0)])

    assert directory.by_ids(["S1", "NOPE"]) == {"S1": store("S1", 52, 0)}
    assert [s.id for s in directory.first(2)] == ["S1", "S2"]


def test_the_directory_goes_stale_after_its_time_or_when_cleared(now):
    directory = StoreDirectory(ttl_seconds=30)
    assert not directory.fresh
    directory.load([])
    assert directory.fresh
    now["t"] += 30
    assert not directory.fresh
    directory.load([])
    directory.clear()
    assert not directory.fresh
