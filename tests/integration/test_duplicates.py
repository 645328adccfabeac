"""Duplicate hints on real PostgreSQL/SQLite: same category, open, near (WGS-84 and GCJ-02 alike), recent."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.cases.duplicates import find_duplicates
from rewards.cases.geo import haversine_m, to_wgs84, wgs84_to_gcj02
from rewards.cases.models import Case
from tests.conftest import ADMIN_TOKEN, INTAKE_TOKEN, auth
from tests.unit.test_geo import destination

ACTOR = Actor("validator-1", "console")
ORIGIN = (31.2304, 121.4737)  # WGS-84, People's Square, Shanghai
_ids = itertools.count()


def place(bearing_deg: float, metres: float, origin: tuple[float, float] = ORIGIN) -> tuple[float, float]:
    return destination(*origin, math.radians(bearing_deg), metres)


def report(
    c: Container,
    case_id: str,
    point: tuple[float, float] | None,
    *,
    coord: str = "wgs84",
    category: str = "street_lamp",
    ago: timedelta = timedelta(hours=1),
    openid: str | None = None,
) -> None:
    """Register a case at a WGS-84 point, stored in `coord` as the reporting app would have sent it."""
    lat = lon = None
    if point is not None:
        lat, lon = wgs84_to_gcj02(*point) if coord == "gcj02" else point
    with c.uow() as uow:
        c.flows.report(
            uow,
            ReportCase(
                case_id=case_id,
                category=category,
                reported_at=c.clock.now() - ago,
                reporter=Reporter(openid=openid or f"o-{case_id}"),
                lat=lat,
                lon=lon,
                coord_system=coord,
            ),
            ACTOR,
        )


def test_hints_are_near_open_recent_and_of_the_same_category(client: Any, container: Container) -> None:
    c = container
    report(c, "ME", ORIGIN, coord="gcj02", ago=timedelta(hours=2))
    report(c, "A-100m-earlier", place(0, 100), ago=timedelta(hours=5))
    report(c, "B-200m-later-gcj", place(90, 200), coord="gcj02", ago=timedelta(hours=1))
    report(c, "C-300m", place(180, 300))
    report(c, "D-other-category", place(0, 50), category="debris")
    report(c, "E-refused", place(0, 50), ago=timedelta(hours=3))
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict("E-refused", "invalid"), ACTOR)
    report(c, "F-too-old", place(0, 50), ago=timedelta(days=4))
    report(c, "G-same-spot-wgs", ORIGIN, ago=timedelta(hours=4))  # ~500 m from ME's raw GCJ-02 numbers
    report(c, "H-nowhere", None)
    report(c, "I-filed-earliest", place(270, 240), ago=timedelta(hours=50))
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict("I-filed-earliest", "valid"), ACTOR)

    r = client.get("/api/v1/cases/ME/duplicates", headers=auth())
    assert r.status_code == 200, r.text
    body = r.json()
    got = [(x["case_id"], round(x["distance_m"]), x["earlier"]) for x in body["candidates"]]
    assert got == [
        ("G-same-spot-wgs", 0, True),
        ("A-100m-earlier", 100, True),
        ("B-200m-later-gcj", 200, False),
        ("I-filed-earliest", 240, True),
    ]
    assert body["suggested_duplicate_of"] == "I-filed-earliest"
    assert (body["radius_m"], body["window_hours"]) == (250.0, 72.0)
    g = body["candidates"][0]
    assert haversine_m(g["lat"], g["lon"], *ORIGIN) < 0.01 and g["status_label"] == "已上报"

    wider = client.get("/api/v1/cases/ME/duplicates", params={"radius_m": 350, "limit": 2}, headers=auth()).json()
    assert [x["case_id"] for x in wider["candidates"]] == ["G-same-spot-wgs", "A-100m-earlier"]
    assert wider["suggested_duplicate_of"] == "I-filed-earliest"  # chosen among all, not just the page
    longer = client.get("/api/v1/cases/ME/duplicates", params={"window_hours": 24 * 5}, headers=auth()).json()
    assert "F-too-old" in {x["case_id"] for x in longer["candidates"]}
    assert longer["suggested_duplicate_of"] == "F-too-old"  # now the earliest report in reach


def test_window_and_suggestion_edges(client: Any, container: Container) -> None:
    report(container, "ME", ORIGIN, ago=timedelta(hours=2))
    report(container, "OLD", place(0, 50), ago=timedelta(days=4))
    body = client.get("/api/v1/cases/ME/duplicates", headers=auth()).json()
    assert body["candidates"] == [] and body["suggested_duplicate_of"] is None
    body = client.get("/api/v1/cases/ME/duplicates", params={"window_hours": 120}, headers=auth()).json()
    assert [x["case_id"] for x in body["candidates"]] == ["OLD"] and body["suggested_duplicate_of"] == "OLD"
    # OLD, seen from itself: ME is later, so OLD is the first report and gets no suggestion
    body = client.get("/api/v1/cases/OLD/duplicates", params={"window_hours": 120}, headers=auth()).json()
    assert body["candidates"][0]["earlier"] is False and body["suggested_duplicate_of"] is None


def test_errors(client: Any, container: Container) -> None:
    report(container, "NOWHERE", None)
    r = client.get("/api/v1/cases/NOWHERE/duplicates", headers=auth())
    assert r.status_code == 422 and r.json()["error"] == "no_location"
    assert client.get("/api/v1/cases/NOPE/duplicates", headers=auth()).status_code == 404
    assert client.get("/api/v1/cases/NOWHERE/duplicates").status_code == 401
    assert client.get("/api/v1/cases/NOWHERE/duplicates", headers=auth(INTAKE_TOKEN)).status_code == 403
    assert client.get("/api/v1/cases/NOWHERE/duplicates", headers=auth(ADMIN_TOKEN)).status_code == 422
    for params in ({"radius_m": 0}, {"radius_m": 10_000}, {"window_hours": -1}, {"limit": 0}):
        assert client.get("/api/v1/cases/NOWHERE/duplicates", params=params, headers=auth()).status_code == 422


point_near = st.tuples(st.floats(0, 360), st.floats(0, 1500), st.sampled_from(["wgs84", "gcj02"]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    origin=st.tuples(st.floats(20, 50), st.floats(80, 130)),
    origin_coord=st.sampled_from(["wgs84", "gcj02"]),
    others=st.lists(point_near, min_size=1, max_size=12),
    radius=st.floats(10, 1000),
)
def test_the_sql_prefilter_never_loses_a_case_the_brute_force_finds(
    container: Container,
    origin: tuple[float, float],
    origin_coord: str,
    others: list[tuple[float, float, str]],
    radius: float,
) -> None:
    run = next(_ids)
    me = f"X{run}"
    report(container, me, origin, coord=origin_coord)
    for n, (bearing, metres, coord) in enumerate(others):
        report(container, f"X{run}-{n}", place(bearing, metres, origin), coord=coord, ago=timedelta(minutes=n))
    window = timedelta(hours=72)
    with container.read() as s:
        case = s.scalar(select(Case).where(Case.case_id == me))
        assert case is not None
        found = {h.case.case_id for h in find_duplicates(s, case, radius, window)}
        here = to_wgs84(case.lat, case.lon, case.coord_system)  # type: ignore[arg-type]
        brute = {
            other.case_id
            for other in s.scalars(select(Case).where(Case.id != case.id, Case.status.in_(lc.OPEN_STATES))).all()
            if other.lat is not None
            and other.lon is not None
            and other.category == case.category
            and abs(other.reported_at - case.reported_at) <= window
            and haversine_m(*here, *to_wgs84(other.lat, other.lon, other.coord_system)) <= radius
        }
    assert found == brute
