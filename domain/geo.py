"""Great-circle distance and the bounding box that narrows a radius search."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from domain.errors import BadInput

EARTH_RADIUS_KM = 6371.0088
DEFAULT_RADIUS_KM = 50.0
MAX_RADIUS_KM = 1000.0


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise BadInput(f"Latitude must be between -90 and 90, got {self.lat}.", field="lat")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise BadInput(f"Longitude must be between -180 and 180, got {self.lon}.", field="lon")


def validate_radius(radius_km: float | None) -> float:
    if radius_km is None:
        return DEFAULT_RADIUS_KM
    if not (math.isfinite(radius_km) and 0.0 < radius_km <= MAX_RADIUS_KM):
        raise BadInput(
            f"radiusKm must be more than 0 and at most {MAX_RADIUS_KM:g}, got {radius_km}.",
            field="radiusKm",
        )
    return radius_km


def distance_km(a: GeoPoint, b_lat: float, b_lon: float) -> float:
    """Haversine distance in kilometres."""
    phi1, phi2 = math.radians(a.lat), math.radians(b_lat)
    dphi = phi2 - phi1
    dlambda = math.radians(b_lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class BoundingBox:
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float


def bounding_box(center: GeoPoint, radius_km: float) -> BoundingBox:
    """A lat/lon box that contains every point within radius_km of center (it may contain more)."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    min_lat, max_lat = center.lat - dlat, center.lat + dlat
    if min_lat <= -90.0 or max_lat >= 90.0:
        # The circle reaches a pole: every longitude is in range.
        return BoundingBox(max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0)
    dlon = math.degrees(
        math.asin(
            min(1.0, math.sin(radius_km / EARTH_RADIUS_KM) / math.cos(math.radians(center.lat)))
        )
    )
    min_lon, max_lon = center.lon - dlon, center.lon + dlon
    if min_lon < -180.0 or max_lon > 180.0:
        # Crossing the antimeridian: keep it simple and search every longitude.
        return BoundingBox(min_lat, max_lat, -180.0, 180.0)
    return BoundingBox(min_lat, max_lat, min_lon, max_lon)


T = TypeVar("T")

# The flat-earth (equirectangular) distance is a tenth of the cost of the haversine and, for the
# distances and latitudes a store search covers, within a few percent of it: good enough to rule
# out places that cannot be among the nearest, never to rank them. Near the poles it is not used.
_APPROXIMATION_SLACK = 1.05
_APPROXIMATION_SLACK_KM = 1.0
_APPROXIMATION_MAX_LAT = 70.0


def nearest(
    center: GeoPoint,
    places: Iterable[T],
    position: Callable[[T], tuple[float, float]],
    radius_km: float,
    limit: int,
) -> list[tuple[T, float]]:
    """The `limit` places nearest to `center` within `radius_km`, nearest first (ties in the
    order given), each with its haversine distance."""
    items = list(places)
    if abs(center.lat) > _APPROXIMATION_MAX_LAT:
        exact = [(p, distance_km(center, *position(p))) for p in items]
        within = [(p, d) for p, d in exact if d <= radius_km]
        within.sort(key=lambda pd: pd[1])
        return within[:limit]
    km_per_degree = math.pi * EARTH_RADIUS_KM / 180.0
    lat0, lon0 = center.lat, center.lon
    approximate: list[tuple[float, int, T]] = []
    for index, place in enumerate(items):
        lat, lon = position(place)
        # the short way round: across the antimeridian, 179.9 and -179.9 are 0.2 degrees apart
        dx = ((lon - lon0 + 180.0) % 360.0 - 180.0) * math.cos(math.radians((lat + lat0) / 2))
        dy = lat - lat0
        approximate.append((km_per_degree * math.sqrt(dx * dx + dy * dy), index, place))
    approximate.sort(key=lambda a: (a[0], a[1]))
    found: list[tuple[float, int, T]] = []
    for rough, index, place in approximate:
        bound = radius_km if len(found) < limit else min(radius_km, found[limit - 1][0])
        if rough > bound * _APPROXIMATION_SLACK + _APPROXIMATION_SLACK_KM:
            break
        exact_km = distance_km(center, *position(place))
        if exact_km <= radius_km:
            found.append((exact_km, index, place))
            found.sort(key=lambda f: (f[0], f[1]))
            del found[limit:]
    return [(place, d) for d, _, place in found]
