"""In-process caches of data that every request needs and that rarely changes: the reservation
policy, the SKUs known to exist and the store directory. Each is cleared when a change commits in this process, and
re-read after a short time for changes made by other replicas."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence
from operator import itemgetter

from domain.catalog import Store
from domain.geo import BoundingBox, GeoPoint, bounding_box, distance_km, nearest
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


class KnownCodes:
    """Codes (of SKUs, of stores) read as existing, for a while: the intake checks every order's
    SKUs and stores, and a catalog's come and (almost) never go. Only what was found is kept, so
    one created a moment ago is looked up, not refused. A stale entry costs no correctness: a
    reservation row naming a SKU or store that is gone fails its foreign key, and the caller
    looks again."""

    def __init__(self, ttl_seconds: float = 30.0, max_codes: int = 200_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_codes = max_codes
        self._codes: set[str] = set()
        self._since = time.monotonic()

    def known(self, codes: set[str]) -> set[str]:
        """Those of `codes` seen to exist within the last `ttl_seconds` (all forgotten at once)."""
        if time.monotonic() - self._since >= self.ttl_seconds:
            self.clear()
        return codes & self._codes

    def add(self, codes: set[str]) -> None:
        if len(self._codes) + len(codes) > self.max_codes:
            self.clear()
        self._codes |= codes

    def clear(self) -> None:
        self._codes = set()
        self._since = time.monotonic()


# A nearest-store search measures the stores of a small circle first and widens it until it holds
# `limit` of them: in a city they are a few kilometres away, while the box of the whole radius
# holds hundreds of stores that cannot be among them.
_FIRST_STEP_KM = 2.0
# Each step widens the circle by what its box says is missing, within these bounds.
_MIN_GROWTH, _MAX_GROWTH = 1.5, 4.0
# Bands of latitude of about 5.5 km: a circle of a few kilometres spans two or three.
_BAND_DEG = 0.05
# A step's box is made for a slightly larger circle, so that no rounding leaves out a store that
# the step's measure puts inside it.
_BOX_MARGIN = 1.0 + 1e-6

_Entry = tuple[float, float, int, Store]  # lat, lon, position in the directory's (lat, id) order


class StoreDirectory:
    """Every store, sorted by latitude for radius searches, and in bands of latitude sorted by
    longitude for nearest-store searches. A chain has thousands of stores, not millions: a few
    hundred kilobytes, and a nearest-store search then needs no database."""

    def __init__(self, ttl_seconds: float = 30.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._by_lat: list[Store] = []
        self._lats: list[float] = []
        self._bands: dict[int, tuple[list[float], list[_Entry]]] = {}
        self._by_id: dict[str, Store] = {}
        self._loaded_at: float | None = None

    @property
    def fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at < self.ttl_seconds

    def load(self, stores: Sequence[Store]) -> None:
        self._by_lat = sorted(stores, key=lambda s: (s.lat, s.id))
        self._lats = [s.lat for s in self._by_lat]
        bands: dict[int, list[_Entry]] = {}
        for index, s in enumerate(self._by_lat):
            bands.setdefault(math.floor(s.lat / _BAND_DEG), []).append((s.lat, s.lon, index, s))
        for entries in bands.values():
            entries.sort(key=itemgetter(1, 2))
        self._bands = {band: ([e[1] for e in entries], entries) for band, entries in bands.items()}
        self._by_id = {s.id: s for s in stores}
        self._loaded_at = time.monotonic()

    def clear(self) -> None:
        self._loaded_at = None

    def in_box(self, box: BoundingBox) -> list[Store]:
        start = bisect.bisect_left(self._lats, box.min_lat)
        end = bisect.bisect_right(self._lats, box.max_lat)
        return [s for s in self._by_lat[start:end] if box.min_lon <= s.lon <= box.max_lon]

    def nearest(self, center: GeoPoint, radius_km: float, limit: int) -> list[tuple[Store, float]]:
        """The `limit` stores nearest to center within radius_km, nearest first, each with its
        haversine distance: what `domain.geo.nearest` answers over `in_box` of the radius, ties
        in the same (lat, id) order, without measuring the hundreds of stores of a city.

        The search widens a circle from _FIRST_STEP_KM. Its box is counted in a few bisections,
        and its stores are measured (each once over the steps) when there are `limit` of them.
        Once `limit` are within the circle, no store outside it is nearer, nor as near: that is
        the answer. If the limit-th is beyond the circle, one of that distance holds `limit` for
        sure and is the next step. A box that spans every longitude (near a pole or across the
        antimeridian), and a search that reaches the radius, take the path over the whole box."""
        whole = bounding_box(center, radius_km)
        if limit <= 0 or limit > len(self._by_lat) or whole.max_lon - whole.min_lon >= 360.0:
            return self._nearest_in_box(center, whole, radius_km, limit)
        # Scaling the whole box down keeps every step's circle inside it: the longitude half-width
        # of a circle, asin(sin(r/R) / cos(lat)), is convex in r, and the latitude one linear.
        lat_per_km = (whole.max_lat - center.lat) / radius_km * _BOX_MARGIN
        lon_per_km = (whole.max_lon - center.lon) / radius_km * _BOX_MARGIN
        step = _FIRST_STEP_KM
        # Each box holds the one before, whose stores are all in `found` already.
        found: list[tuple[float, int, Store]] = []
        measured = BoundingBox(math.inf, -math.inf, math.inf, -math.inf)
        while step < radius_km:
            box = BoundingBox(
                max(center.lat - lat_per_km * step, whole.min_lat),
                min(center.lat + lat_per_km * step, whole.max_lat),
                max(center.lon - lon_per_km * step, whole.min_lon),
                min(center.lon + lon_per_km * step, whole.max_lon),
            )
            spans = self._spans(box)
            count = sum(len(span) for span in spans)
            if count >= limit:
                found += [
                    (distance_km(center, lat, lon), index, store)
                    for span in spans
                    for lat, lon, index, store in span
                    if box.min_lat <= lat <= box.max_lat
                    and not (
                        measured.min_lat <= lat <= measured.max_lat
                        and measured.min_lon <= lon <= measured.max_lon
                    )
                ]
                measured = box
                if len(found) >= limit:
                    found.sort(key=itemgetter(0, 1))
                    if found[limit - 1][0] <= step:
                        return [(store, d) for d, _, store in found[:limit]]
                    step = found[limit - 1][0]
                    continue
            growth = math.sqrt(limit / count) if count else _MAX_GROWTH
            step *= min(_MAX_GROWTH, max(_MIN_GROWTH, growth))
        return self._nearest_in_box(center, whole, radius_km, limit)

    def _nearest_in_box(
        self, center: GeoPoint, box: BoundingBox, radius_km: float, limit: int
    ) -> list[tuple[Store, float]]:
        return nearest(center, self.in_box(box), lambda s: (s.lat, s.lon), radius_km, limit)

    def _spans(self, box: BoundingBox) -> list[list[_Entry]]:
        """The stores of each band the box crosses that are within its longitudes: those of its
        first and last bands may be outside its latitudes."""
        spans = []
        for band in range(
            math.floor(box.min_lat / _BAND_DEG), math.floor(box.max_lat / _BAND_DEG) + 1
        ):
            if (lons_entries := self._bands.get(band)) is not None:
                lons, entries = lons_entries
                start = bisect.bisect_left(lons, box.min_lon)
                end = bisect.bisect_right(lons, box.max_lon)
                if start < end:
                    spans.append(entries[start:end])
        return spans

    def by_ids(self, ids: Sequence[str]) -> dict[str, Store]:
        return {i: self._by_id[i] for i in ids if i in self._by_id}

    def first(self, count: int) -> list[Store]:
        return sorted(self._by_id.values(), key=lambda s: s.id)[:count]
