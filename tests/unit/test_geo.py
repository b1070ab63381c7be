"""Great-circle distances, point and radius validation, and the box that narrows a radius search."""

from __future__ import annotations

import math

import pytest

from domain.errors import BadInput
from domain.geo import (
    EARTH_RADIUS_KM,
    BoundingBox,
    GeoPoint,
    bounding_box,
    distance_km,
    validate_radius,
)

LONDON = GeoPoint(51.5074, -0.1278)
PARIS = GeoPoint(48.8566, 2.3522)
NEW_YORK = GeoPoint(40.7128, -74.0060)


def destination(start: GeoPoint, bearing_deg: float, km: float) -> tuple[float, float]:
    """The point `km` away from `start` along `bearing_deg` on the same sphere (lon in -180..180)."""
    phi1, lambda1 = math.radians(start.lat), math.radians(start.lon)
    theta, delta = math.radians(bearing_deg), km / EARTH_RADIUS_KM
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    lon = (math.degrees(lambda2) + 540.0) % 360.0 - 180.0
    return math.degrees(phi2), lon


def inside(box: BoundingBox, lat: float, lon: float) -> bool:
    return box.min_lat <= lat <= box.max_lat and box.min_lon <= lon <= box.max_lon


# --- distance ---------------------------------------------------------------------------------


def test_london_to_paris_is_about_343_5_km() -> None:
    assert distance_km(LONDON, PARIS.lat, PARIS.lon) == pytest.approx(343.5, abs=1.0)


def test_new_york_to_london_is_about_5570_km() -> None:
    assert distance_km(NEW_YORK, LONDON.lat, LONDON.lon) == pytest.approx(5570, abs=10)


def test_one_degree_of_longitude_on_the_equator_is_about_111_2_km() -> None:
    assert distance_km(GeoPoint(0.0, 0.0), 0.0, 1.0) == pytest.approx(111.195, abs=0.01)


def test_antipodes_are_half_the_circumference_apart() -> None:
    assert distance_km(GeoPoint(0.0, 0.0), 0.0, 180.0) == pytest.approx(20015.1, abs=0.1)


def test_distance_across_the_antimeridian_is_short() -> None:
    # 179.5 E to 179.5 W on the equator: one degree, not 359.
    assert distance_km(GeoPoint(0.0, 179.5), 0.0, -179.5) == pytest.approx(111.195, abs=0.01)


def test_distance_from_a_point_to_itself_is_zero() -> None:
    assert distance_km(LONDON, LONDON.lat, LONDON.lon) == 0.0


def test_distance_is_symmetric() -> None:
    there = distance_km(LONDON, NEW_YORK.lat, NEW_YORK.lon)
    back = distance_km(NEW_YORK, LONDON.lat, LONDON.lon)

    assert there == pytest.approx(back, rel=1e-12)


# --- points -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("lat", "lon"), [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)])
def test_points_on_the_limits_are_accepted(lat: float, lon: float) -> None:
    point = GeoPoint(lat, lon)

    assert (point.lat, point.lon) == (lat, lon)


@pytest.mark.parametrize("lat", [90.000001, -90.000001, 180.0, math.nan, math.inf, -math.inf])
def test_a_latitude_out_of_range_or_not_a_number_is_refused(lat: float) -> None:
    with pytest.raises(BadInput) as raised:
        GeoPoint(lat, 0.0)

    assert raised.value.details == {"field": "lat"}


@pytest.mark.parametrize("lon", [180.000001, -180.000001, 360.0, math.nan, math.inf, -math.inf])
def test_a_longitude_out_of_range_or_not_a_number_is_refused(lon: float) -> None:
    with pytest.raises(BadInput) as raised:
        GeoPoint(0.0, lon)

    assert raised.value.details == {"field": "lon"}


# --- radius -----------------------------------------------------------------------------------


def test_no_radius_means_50_km() -> None:
    assert validate_radius(None) == 50.0


@pytest.mark.parametrize("radius", [0.001, 1.0, 50.0, 1000.0])
def test_a_radius_within_range_is_kept(radius: float) -> None:
    assert validate_radius(radius) == radius


@pytest.mark.parametrize("radius", [0.0, -0.0, -1.0, 1000.0001, 5000.0, math.nan, math.inf])
def test_a_radius_out_of_range_or_not_a_number_is_refused(radius: float) -> None:
    with pytest.raises(BadInput) as raised:
        validate_radius(radius)

    assert raised.value.details == {"field": "radiusKm"}


# --- bounding box -----------------------------------------------------------------------------

BOX_CASES = [
    pytest.param(LONDON, 50.0, id="london-50km"),
    pytest.param(GeoPoint(0.0, 0.0), 1000.0, id="equator-1000km"),
    pytest.param(GeoPoint(-33.87, 151.21), 5.0, id="sydney-5km"),
    pytest.param(GeoPoint(80.0, 20.0), 1000.0, id="lat80-1000km"),
    pytest.param(GeoPoint(89.5, 0.0), 100.0, id="over-the-north-pole"),
    pytest.param(GeoPoint(-85.0, 45.0), 600.0, id="over-the-south-pole"),
    pytest.param(GeoPoint(10.0, 179.9), 50.0, id="antimeridian-east"),
    pytest.param(GeoPoint(-30.0, -179.95), 20.0, id="antimeridian-west"),
    pytest.param(GeoPoint(65.0, 178.0), 500.0, id="antimeridian-north"),
]


@pytest.mark.parametrize(("center", "radius"), BOX_CASES)
def test_bounding_box_contains_every_point_on_the_circle(center: GeoPoint, radius: float) -> None:
    box = bounding_box(center, radius)

    # Just inside the circle, so rounding at the box's edge does not decide the test.
    km = radius * (1 - 1e-9)
    for step in range(720):
        lat, lon = destination(center, step / 2, km)
        assert distance_km(center, lat, lon) == pytest.approx(km, rel=1e-6)
        assert inside(box, lat, lon), (step / 2, lat, lon, box)


@pytest.mark.parametrize(("center", "radius"), BOX_CASES)
def test_bounding_box_contains_points_inside_the_circle(center: GeoPoint, radius: float) -> None:
    box = bounding_box(center, radius)

    for fraction in (0.0, 0.25, 0.5, 0.9):
        for bearing in range(0, 360, 15):
            lat, lon = destination(center, bearing, radius * fraction)
            assert inside(box, lat, lon), (bearing, fraction, lat, lon, box)


def test_bounding_box_is_tight_in_latitude_and_longitude_away_from_poles() -> None:
    # Points just beyond the radius due north, south, east and west fall outside the box.
    box = bounding_box(LONDON, 50.0)

    for bearing in (0.0, 90.0, 180.0, 270.0):
        lat, lon = destination(LONDON, bearing, 50.0 * 1.01)
        assert not inside(box, lat, lon), (bearing, lat, lon, box)
    assert box.max_lat - LONDON.lat == pytest.approx(0.4497, abs=1e-4)
    assert LONDON.lat - box.min_lat == pytest.approx(0.4497, abs=1e-4)
    assert box.min_lon == pytest.approx(-0.8504, abs=1e-3)
    assert box.max_lon == pytest.approx(0.5948, abs=1e-3)


def test_bounding_box_reaching_a_pole_covers_every_longitude() -> None:
    box = bounding_box(GeoPoint(89.9, 10.0), 50.0)

    assert (box.min_lon, box.max_lon, box.max_lat) == (-180.0, 180.0, 90.0)


def test_bounding_box_across_the_antimeridian_covers_every_longitude() -> None:
    box = bounding_box(GeoPoint(0.0, 179.9), 50.0)

    assert (box.min_lon, box.max_lon) == (-180.0, 180.0)
    assert box.min_lat == pytest.approx(-0.4497, abs=1e-4)
    assert box.max_lat == pytest.approx(0.4497, abs=1e-4)


def test_nearest_agrees_with_sorting_every_place_by_haversine() -> None:
    import random

    from domain.geo import nearest

    rng = random.Random(20261126)
    for _ in range(300):
        center = GeoPoint(rng.uniform(-75, 75), rng.uniform(-179, 179))
        places = [
            (
                center.lat + rng.uniform(-3, 3),
                max(-180.0, min(180.0, center.lon + rng.uniform(-4, 4))),
            )
            for _ in range(rng.randint(0, 120))
        ]
        places = [(max(-90.0, min(90.0, lat)), lon) for lat, lon in places]
        radius, limit = rng.choice([5, 20, 50, 200, 1000]), rng.randint(1, 15)

        found = nearest(center, places, lambda p: p, radius, limit)

        expected = sorted(((p, distance_km(center, *p)) for p in places), key=lambda pd: pd[1])
        expected = [pd for pd in expected if pd[1] <= radius][:limit]
        assert [d for _, d in found] == pytest.approx([d for _, d in expected])
        assert [p for p, _ in found] == [p for p, _ in expected]


def test_nearest_goes_the_short_way_round_across_the_antimeridian() -> None:
    from domain.geo import nearest

    center = GeoPoint(0.0, 179.99)
    across = (0.0, -179.99)  # about 2 km away, on the other side of the antimeridian
    same_side = (0.0, 179.9)  # about 10 km away
    found = nearest(center, [same_side, across], lambda p: p, 50, 2)
    assert [p for p, _ in found] == [across, same_side]
    assert found[0][1] == pytest.approx(distance_km(center, *across))
    assert found[0][1] < 3
