"""The offline location view of a case (pure): the case at the centre, nearby reports of the same category plotted
by their true offsets with distances, the duplicate radius as a ring, a scale bar and north up. Drawn as inline
SVG by the console's templates: no map tiles, nothing fetched, works on an intranet."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rewards.cases.geo import EARTH_RADIUS_M

SIZE = 240  # px, square
MARGIN = 22  # px kept free at the edges for labels
NICE_LENGTHS_M = (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)


@dataclass(frozen=True)
class Neighbour:
    """A nearby report: its case id, WGS-84 position, distance and whether it was reported first."""

    case_id: str
    lat: float
    lon: float
    distance_m: float
    earlier: bool


@dataclass(frozen=True)
class PlottedPoint:
    """A neighbour placed on the view (pixels from the top-left corner), marked by its number in the list."""

    number: int
    case_id: str
    x: float
    y: float
    distance_m: float
    earlier: bool


@dataclass(frozen=True)
class LocationView:
    """Everything the template draws."""

    size: int
    centre: float
    ring_px: float
    radius_m: float
    points: tuple[PlottedPoint, ...]
    scale_px: float
    scale_m: int


def offset_m(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """East and north offsets in metres of (lat, lon) from (lat0, lon0), locally flat (fine within kilometres)."""
    east = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    north = math.radians(lat - lat0) * EARTH_RADIUS_M
    return east, north


def nice_length(target_m: float) -> int:
    """The largest round length not above target_m (the smallest one for a tiny target)."""
    fitting = [n for n in NICE_LENGTHS_M if n <= target_m]
    return fitting[-1] if fitting else NICE_LENGTHS_M[0]


def plot(lat: float, lon: float, neighbours: list[Neighbour], radius_m: float, size: int = SIZE) -> LocationView:
    """Place the neighbours around the case at (lat, lon) (all WGS-84) so the duplicate radius and all fit."""
    offsets = [offset_m(lat, lon, n.lat, n.lon) for n in neighbours]
    extent = max([radius_m, *(math.hypot(e, n) for e, n in offsets)]) * 1.08
    centre = size / 2
    px_per_m = (centre - MARGIN) / extent
    points = []
    for number, (n, (east, north)) in enumerate(zip(neighbours, offsets, strict=True), start=1):
        x, y = centre + east * px_per_m, centre - north * px_per_m
        points.append(PlottedPoint(number, n.case_id, x, y, n.distance_m, n.earlier))
    scale_m = nice_length(extent / 2)
    return LocationView(size, centre, radius_m * px_per_m, radius_m, tuple(points), scale_m * px_per_m, scale_m)
