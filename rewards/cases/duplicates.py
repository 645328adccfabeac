"""Duplicate hints for validators: open cases of the same category nearby and close in time, nearest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from rewards.cases import lifecycle as lc
from rewards.cases.geo import GCJ02_MAX_OFFSET_M, BoundingBox, bounding_box, haversine_m, to_wgs84
from rewards.cases.models import Case
from rewards.errors import Invalid


@dataclass(frozen=True)
class DuplicateHint:
    """A candidate case, its distance from the case under review and whether it was reported first."""

    case: Case
    distance_m: float
    lat: float  # WGS-84
    lon: float
    earlier: bool  # reported before the case under review: it may be named as duplicate_of


def _in_box(box: BoundingBox) -> ColumnElement[bool]:
    lat_ok = Case.lat.between(box.min_lat, box.max_lat)
    if box.crosses_antimeridian:
        return and_(lat_ok, or_(Case.lon >= box.min_lon, Case.lon <= box.max_lon))
    return and_(lat_ok, Case.lon.between(box.min_lon, box.max_lon))


def is_earlier(a: Case, b: Case) -> bool:
    """True when a was reported before b (ties broken by registration order, as CaseFlows does)."""
    return (a.reported_at, a.id) < (b.reported_at, b.id)


def find_duplicates(session: Session, case: Case, radius_m: float, window: timedelta) -> list[DuplicateHint]:
    """Return open cases of the case's category within radius_m and ±window of its report, nearest first."""
    if case.lat is None or case.lon is None:
        raise Invalid(f"case {case.case_id!r} has no location, so nothing can be near it", code="no_location")
    lat, lon = to_wgs84(case.lat, case.lon, case.coord_system)
    # Stored coordinates are as reported (WGS-84 or GCJ-02, which is off by up to GCJ02_MAX_OFFSET_M), so the
    # SQL prefilter box is widened by that much; exact distances are computed on converted points below.
    box = bounding_box(lat, lon, radius_m + GCJ02_MAX_OFFSET_M)
    stmt = select(Case).where(
        Case.category == case.category,
        Case.status.in_(lc.OPEN_STATES),
        Case.id != case.id,
        Case.reported_at >= case.reported_at - window,
        Case.reported_at <= case.reported_at + window,
        _in_box(box),
    )
    hints = []
    for other in session.scalars(stmt).unique().all():
        assert other.lat is not None and other.lon is not None  # the box excludes NULLs
        olat, olon = to_wgs84(other.lat, other.lon, other.coord_system)
        distance = haversine_m(lat, lon, olat, olon)
        if distance <= radius_m:
            hints.append(DuplicateHint(other, distance, olat, olon, is_earlier(other, case)))
    hints.sort(key=lambda h: (h.distance_m, h.case.reported_at, h.case.id))
    return hints


def first_report(case: Case, hints: Sequence[DuplicateHint]) -> Case | None:
    """Return the earliest report among the hints when it precedes the case (mark the case its duplicate)."""
    earlier = [h.case for h in hints if h.earlier]
    return min(earlier, key=lambda c: (c.reported_at, c.id)) if earlier else None
