"""Geodesy for case locations (pure): haversine distance, bounding boxes and GCJ-02 <-> WGS-84.

GCJ-02 ("Mars coordinates") is the obfuscated datum Chinese map providers, including WeChat's map and location
APIs, must use; it shifts WGS-84 positions by up to ~700 m inside mainland China and not at all outside it.

Accuracy, as tested in tests/unit/test_geo.py:
- `wgs84_to_gcj02` is the public reconstruction of the GCJ-02 offset (the same formula as eviltransform and
  coordtransform); it reproduces those libraries' published reference points to 1e-9 degrees (~0.1 mm). How
  closely that formula matches the official, unpublished one is outside what a test here can show.
- `gcj02_to_wgs84` inverts it by fixed-point iteration until the forward transform of the result is within
  1e-10 degrees (~0.01 mm) of the input; the common one-step approximation is off by up to ~5 m.
- `haversine_m` treats the Earth as a sphere of the IUGG mean radius; against the WGS-84 ellipsoid the error is
  below 0.6 % of the distance (under 1.5 m at the 250 m duplicate radius), ample for "is this nearby".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
# Krasovsky 1940 ellipsoid, which the GCJ-02 formula is built on
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.00669342162296594323
# The offset never exceeds this anywhere in the GCJ-02 area (tests/unit/test_geo.py checks a dense grid), so a
# search box widened by it finds every stored point, whichever system the point was reported in.
GCJ02_MAX_OFFSET_M = 1_000.0
_INVERSE_TOLERANCE_DEG = 1e-10
_BOX_PAD_DEG = 1e-9  # ~0.1 mm: keeps points exactly on the circle inside despite rounding
_INVERSE_MAX_ITERATIONS = 30


@dataclass(frozen=True)
class BoundingBox:
    """A latitude/longitude box; when it crosses the antimeridian, min_lon > max_lon."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    @property
    def crosses_antimeridian(self) -> bool:
        """Return True when the box wraps around longitude ±180."""
        return self.min_lon > self.max_lon

    def contains(self, lat: float, lon: float) -> bool:
        """Return True when the point lies inside the box (edges included)."""
        if not self.min_lat <= lat <= self.max_lat:
            return False
        if self.crosses_antimeridian:
            return lon >= self.min_lon or lon <= self.max_lon
        return self.min_lon <= lon <= self.max_lon


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in metres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(lat: float, lon: float, radius_m: float) -> BoundingBox:
    """Return a box that contains every point within radius_m (great-circle) of (lat, lon)."""
    if radius_m < 0:
        raise ValueError("radius must not be negative")
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) + _BOX_PAD_DEG
    min_lat, max_lat = lat - dlat, lat + dlat
    if min_lat <= -90 or max_lat >= 90:
        # the circle reaches a pole: every longitude is within reach
        return BoundingBox(max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0)
    # the widest longitude span of a circle is at the latitude where its tangent meridians touch it
    angle = min(1.0, math.sin(radius_m / EARTH_RADIUS_M) / math.cos(math.radians(lat)))
    dlon = math.degrees(math.asin(angle)) + _BOX_PAD_DEG
    if dlon >= 180:
        return BoundingBox(min_lat, max_lat, -180.0, 180.0)
    min_lon, max_lon = lon - dlon, lon + dlon
    if min_lon < -180:
        min_lon += 360
    if max_lon > 180:
        max_lon -= 360
    return BoundingBox(min_lat, max_lat, min_lon, max_lon)


def out_of_china(lat: float, lon: float) -> bool:
    """Return True outside the rectangle where GCJ-02 applies (there it equals WGS-84)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _offset_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def gcj02_offset(lat: float, lon: float) -> tuple[float, float]:
    """Return the (dlat, dlon) in degrees that GCJ-02 adds to a WGS-84 point (zero outside China)."""
    if out_of_china(lat, lon):
        return 0.0, 0.0
    dlat = _offset_lat(lon - 105.0, lat - 35.0)
    dlon = _offset_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """Convert a WGS-84 point to GCJ-02 (unchanged outside China)."""
    dlat, dlon = gcj02_offset(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to WGS-84 by iterating the forward transform (exact to ~1e-10 degrees)."""
    wlat, wlon = lat, lon
    for _ in range(_INVERSE_MAX_ITERATIONS):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        err_lat, err_lon = glat - lat, glon - lon
        if abs(err_lat) < _INVERSE_TOLERANCE_DEG and abs(err_lon) < _INVERSE_TOLERANCE_DEG:
            break
        # the offset changes slowly with position, so subtracting the residual converges geometrically
        wlat, wlon = wlat - err_lat, wlon - err_lon
    return wlat, wlon


def to_wgs84(lat: float, lon: float, coord_system: str) -> tuple[float, float]:
    """Return a point in WGS-84, whatever system ('wgs84' or 'gcj02') it was reported in."""
    if coord_system == "wgs84":
        return lat, lon
    if coord_system == "gcj02":
        return gcj02_to_wgs84(lat, lon)
    raise ValueError(f"unknown coordinate system {coord_system!r}")
