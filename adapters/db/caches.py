"""In-process caches of data that every request needs and that rarely changes: the reservation
policy and the store directory. Each is cleared when a change commits in this process, and
re-read after a short time for changes made by other replicas."""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from domain.catalog import Store
from domain.geo import BoundingBox
from domain.policy import ReservationPolicy


class PolicyCache:
    """The policy as last read, for a few seconds: every reserve needs it and it rarely changes.
    A change made in this process is seen at once (the cache is cleared when it commits); one made
    by another replica within `ttl_seconds`."""

    def __init__(self, ttl_seconds: float = 2.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._policy: ReservationPolicy | None = None
        self._read_at = 0.0

    def get(self) -> ReservationPolicy | None:
        if self._policy is not None and time.monotonic() - self._read_at < self.ttl_seconds:
            return self._policy
        return None

    def put(self, policy: ReservationPolicy) -> None:
        self._policy, self._read_at = policy, time.monotonic()

    def clear(self) -> None:
        self._policy = None


class StoreDirectory:
    """Every store, sorted by latitude for radius searches. A chain has thousands of stores, not
    millions: a few hundred kilobytes, and a nearest-store search then needs no database."""

    def __init__(self, ttl_seconds: float = 30.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._by_lat: list[Store] = []
        self._lats: list[float] = []
        self._by_id: dict[str, Store] = {}
        self._loaded_at: float | None = None

    @property
    def fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at < self.ttl_seconds

    def load(self, stores: Sequence[Store]) -> None:
        self._by_lat = sorted(stores, key=lambda s: (s.lat, s.id))
        self._lats = [s.lat for s in self._by_lat]
        self._by_id = {s.id: s for s in stores}
        self._loaded_at = time.monotonic()

    def clear(self) -> None:
        self._loaded_at = None

    def in_box(self, box: BoundingBox) -> list[Store]:
        start = bisect.bisect_left(self._lats, box.min_lat)
        end = bisect.bisect_right(self._lats, box.max_lat)
        return [s for s in self._by_lat[start:end] if box.min_lon <= s.lon <= box.max_lon]

    def by_ids(self, ids: Sequence[str]) -> dict[str, Store]:
        return {i: self._by_id[i] for i in ids if i in self._by_id}

    def first(self, count: int) -> list[Store]:
        return sorted(self._by_id.values(), key=lambda s: s.id)[:count]
