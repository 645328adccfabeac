"""Geodesy: GCJ-02 against published reference points, the iterative inverse, haversine, bounding boxes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.cases.geo import (
    EARTH_RADIUS_M,
    GCJ02_MAX_OFFSET_M,
    bounding_box,
    gcj02_to_wgs84,
    haversine_m,
    out_of_china,
    to_wgs84,
    wgs84_to_gcj02,
)

# (wgs84 lat, lon) -> (gcj02 lat, lon), published with independent implementations of the public formula:
# eviltransform's test vectors (Shanghai, Shenzhen, Beijing) and coordtransform's README (Tiananmen).
REFERENCE = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
]
# coordtransform's one-step gcj02towgs84(116.404, 39.915): an approximation, metres off the exact inverse
APPROXIMATE_INVERSE = ((39.915, 116.404), (39.91359571849836, 116.39775550083061))

china = st.tuples(st.floats(18.0, 53.5), st.floats(73.6, 134.7))  # mainland's latitude/longitude span
anywhere = st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 180.0))


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_matches_published_reference_points(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lon = wgs84_to_gcj02(*wgs)
    assert lat == pytest.approx(gcj[0], abs=1e-9)
    assert lon == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_inverse_recovers_the_wgs84_reference(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lon = gcj02_to_wgs84(*gcj)
    assert haversine_m(lat, lon, *wgs) < 0.001
    assert to_wgs84(gcj[0], gcj[1], "gcj02") == (lat, lon)


def test_iterative_inverse_beats_the_one_step_approximation() -> None:
    gcj, approx = APPROXIMATE_INVERSE
    exact = gcj02_to_wgs84(*gcj)
    error_of_approximation = haversine_m(*wgs84_to_gcj02(*approx), *gcj)
    error_of_exact = haversine_m(*wgs84_to_gcj02(*exact), *gcj)
    assert 0.01 < error_of_approximation < 5  # the common shortcut is centimetres to metres off
    assert error_of_exact < 0.001
    assert haversine_m(*exact, *approx) < 10


def test_outside_china_nothing_moves() -> None:
    denver = (39.7392, -104.9903)
    assert out_of_china(*denver)
    assert wgs84_to_gcj02(*denver) == denver
    assert gcj02_to_wgs84(*denver) == denver


@settings(max_examples=300, deadline=None)
@given(china)
def test_round_trip_is_exact_to_a_tenth_of_a_millimetre(point: tuple[float, float]) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(*point))
    assert haversine_m(*back, *point) < 1e-4


def test_offset_never_exceeds_the_documented_bound() -> None:
    # a 0.25-degree grid over the whole GCJ-02 rectangle (~60 000 points)
    worst = 0.0
    for i in range(int((55.82 - 0.83) / 0.25) + 1):
        lat = 0.83 + i * 0.25
        for j in range(int((137.83 - 72.01) / 0.25) + 1):
            lon = 72.01 + j * 0.25
            worst = max(worst, haversine_m(lat, lon, *wgs84_to_gcj02(lat, lon)))
    assert 500 < worst < GCJ02_MAX_OFFSET_M


def test_unknown_coordinate_system_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        to_wgs84(30.0, 120.0, "bd09")


def test_haversine_reference_distances() -> None:
    assert haversine_m(0, 0, 1, 0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180, rel=1e-12)  # 111 195 m
    assert haversine_m(0, 0, 0, 180) == pytest.approx(EARTH_RADIUS_M * math.pi, rel=1e-12)
    # eviltransform's reference: Shanghai to Beijing (GCJ-02 points) is 1 078 164 m on its sphere (R = 6 378 137);
    # ours uses the mean radius, so scale it
    d = haversine_m(31.17530398364597, 121.531541859215, 39.91334545536069, 116.38404722455657)
    assert d == pytest.approx(1_078_164.0 * EARTH_RADIUS_M / 6_378_137.0, abs=1.0)


@settings(max_examples=200, deadline=None)
@given(anywhere, anywhere, anywhere)
def test_haversine_is_a_metric(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> None:
    assert haversine_m(*a, *a) == pytest.approx(0.0, abs=1e-6)
    assert haversine_m(*a, *b) == pytest.approx(haversine_m(*b, *a), abs=1e-6)
    assert 0 <= haversine_m(*a, *b) <= EARTH_RADIUS_M * math.pi + 1e-6
    # asin(sqrt(h)) is ill-conditioned near antipodal points (h -> 1): rounding there reaches centimetres
    assert haversine_m(*a, *c) <= haversine_m(*a, *b) + haversine_m(*b, *c) + 0.5


def destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    """The great-circle destination from a start, a bearing (radians) and a distance (independent formula)."""
    d = distance_m / EARTH_RADIUS_M
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(d) + math.cos(phi1) * math.sin(d) * math.cos(bearing))
    lmb2 = lmb1 + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(phi1), math.cos(d) - math.sin(phi1) * math.sin(phi2)
    )
    lon2 = (math.degrees(lmb2) + 540) % 360 - 180
    return math.degrees(phi2), lon2


@settings(max_examples=500, deadline=None)
@given(
    anywhere,
    st.floats(0, 2 * math.pi),
    st.floats(1, 2_000_000),
    st.floats(0, 1),
)
def test_bounding_box_holds_every_point_within_the_radius(
    origin: tuple[float, float], bearing: float, radius: float, fraction: float
) -> None:
    box = bounding_box(*origin, radius)
    point = destination(*origin, bearing, radius * fraction)
    distance = haversine_m(*origin, *point)
    assert distance == pytest.approx(radius * fraction, rel=1e-6, abs=1e-3)
    if distance <= radius:
        assert box.contains(*point)


def test_bounding_box_wraps_the_antimeridian_and_the_poles() -> None:
    box = bounding_box(10.0, 179.999, 1000.0)
    assert box.crosses_antimeridian and box.contains(10.0, -179.999) and not box.contains(10.0, 0.0)
    polar = bounding_box(89.999, 0.0, 1000.0)
    assert polar.min_lon == -180.0 and polar.max_lon == 180.0 and polar.max_lat == 90.0
    with pytest.raises(ValueError):
        bounding_box(0.0, 0.0, -1.0)
