"""/stats and /api/v1/stats over HTTP: the figures of seeded cases, charts as inline SVG with text alternatives,
clear refusals of bad periods, and no personal data of any citizen (openids, names, phones) in page or JSON."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, CaseCommand, ChangeStatus, GiveVerdict, ReportCase, Reporter
from rewards.clock import FixedClock
from tests.conftest import START, MakeContainer, test_settings
from tests.e2e.test_pii_scan import PEOPLE, leaks

CITY = Actor("city-case-system", "intake")
VALIDATOR = Actor("validator-1", "console")
DEPARTMENTS = ("城关区城管局", "市水务集团")


def seed(c: Container) -> None:
    """Last week and this week: each person reports; most are filed, dispatched with a deadline, closed."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    for days_back in (7, 1):
        for i, p in enumerate(PEOPLE):
            t = START - timedelta(days=days_back, hours=i)
            clock.set(t)
            cid = f"ST-{days_back}-{i}"
            who = Reporter(openid=p.openid, name=p.name, phone=p.phone, district=p.district, verified=p.verified)
            with c.uow() as uow:
                c.flows.handle(uow, ReportCase(cid, "street_lamp", t, who, district=p.district), CITY)
            verdict = "invalid" if i == 2 else "valid"
            filing = GiveVerdict(cid, verdict, occurred_at=t + timedelta(hours=1))
            steps: list[tuple[CaseCommand, Actor]] = [(filing, VALIDATOR)]
            if verdict == "valid":
                dept = DEPARTMENTS[i % 2]
                due = t + timedelta(hours=20 if i % 3 else 2)
                steps += [
                    (ChangeStatus(cid, lc.DISPATCHED, t + timedelta(hours=2), dept, None, due), CITY),
                    (ChangeStatus(cid, lc.RESOLVED, t + timedelta(hours=6)), CITY),
                    (ChangeStatus(cid, lc.CLOSED, t + timedelta(hours=8)), CITY),
                ]
            for command, actor in steps:
                with c.uow() as uow:
                    c.flows.handle(uow, command, actor)
    clock.set(START)


@pytest.fixture
def site(pg_engine: Engine, make_container: MakeContainer) -> Container:
    c = make_container(test_settings(rate_limit_per_ip=10**6), engine=pg_engine)
    seed(c)
    return c


def test_the_page_shows_the_figures_with_accessible_charts(site: Container) -> None:
    with TestClient(create_app(site)) as http:
        r = http.get("/stats")
        api = http.get("/api/v1/stats/weeks/2026-W48").json()
    assert r.status_code == 200 and "2026年第48周" in r.text and "进行中" in r.text
    html = r.text
    assert "<script" not in html and "cdn" not in html.lower()
    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg and "nan" not in svg.lower()
    assert html.count("以表格查看") == 3  # a table under each chart says the same in text
    # this week: 6 reports, 5 filed, 1 refused, 5 closed; the figures on the page are those of the API
    city = api["city"]
    assert (city["received"], city["filed"], city["refused"], city["closed"]) == (6, 5, 1, 5)
    assert city["valid_rate"] == pytest.approx(5 / 6)
    assert city["median_hours_to_filing"] == pytest.approx(1.0)
    assert city["median_hours_to_closing"] == pytest.approx(8.0)
    assert city["closed_with_deadline"] == 5 and city["on_time_rate"] == pytest.approx(3 / 5)
    assert city["active_reporters"] == 6 and city["first_time_reporters"] == 0  # all reported last week first
    assert re.search(r'id="fig-received"><div class="n">6<', html)
    assert re.search(r'id="fig-on-time"><div class="n">60.0%<', html)
    assert {d["scope"] for d in api["districts"]} == {"城关区", "七里河区"}
    assert [d["scope"] for d in api["departments"]] == ["市水务集团", "城关区城管局"]  # 3 reports, then 2
    for name in ("城关区", "七里河区", *DEPARTMENTS):
        assert name in html


def test_last_week_is_a_closed_period_and_the_trend_has_both(site: Container) -> None:
    with TestClient(create_app(site)) as http:
        last = http.get("/api/v1/stats/weeks/2026-W47").json()
        overview = http.get("/api/v1/stats").json()
        month = http.get("/api/v1/stats/months/2026-11").json()
        page = http.get("/stats", params={"month": "2026-11"})
    assert last["live"] is False and last["city"]["received"] == 6 and last["city"]["first_time_reporters"] == 6
    assert len(overview["weeks"]) == site.settings.stats_trend_weeks and overview["weeks"][-1]["live"] is True
    assert [w["period"] for w in overview["weeks"][-2:]] == ["2026-W47", "2026-W48"]
    assert overview["weeks"][-2]["city"]["received"] == 6
    assert month["city"]["received"] == 12 and month["city"]["active_reporters"] == 6
    assert page.status_code == 200 and "2026年11月" in page.text


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"week": "2026-W99"}, 422, "周次格式不正确"),
        ({"week": "26W1"}, 422, "周次格式不正确"),
        ({"month": "2026-13"}, 422, "月份格式不正确"),
        ({"month": "2030-01"}, 404, "还没有开始"),
        ({"week": "2026-W48", "month": "2026-11"}, 422, "只选择一周或一个月"),
    ],
)
def test_a_bad_period_is_refused_with_a_reason(
    site: Container, params: dict[str, str], status: int, reason: str
) -> None:
    with TestClient(create_app(site)) as http:
        r = http.get("/stats", params=params)
    assert r.status_code == status and reason in r.text and 'id="stats-error"' in r.text


def test_the_api_refuses_bad_periods_with_a_code(site: Container) -> None:
    with TestClient(create_app(site)) as http:
        assert http.get("/api/v1/stats/weeks/2026-W99").json()["error"] == "invalid_week"
        r = http.get("/api/v1/stats/months/2026-1x")
        assert r.status_code == 422 and r.json()["error"] == "invalid_month"
        r = http.get("/api/v1/stats/weeks/2031-W01")
        assert r.status_code == 404 and r.json()["error"] == "period_in_future"
        assert http.get("/api/v1/stats/months/" + quote("２０２６-11")).status_code == 422


def test_no_personal_data_in_the_record(site: Container) -> None:
    """Aggregates only: no openid, name or phone of any seeded citizen in any page or JSON of the record."""
    urls = ["/stats", "/stats?week=2026-W47", "/stats?month=2026-11", "/api/v1/stats"]
    urls += ["/api/v1/stats/weeks/2026-W47", "/api/v1/stats/weeks/2026-W48", "/api/v1/stats/months/2026-11"]
    found = {}
    with TestClient(create_app(site)) as http:
        for url in urls:
            r = http.get(url)
            assert r.status_code == 200, (url, r.text[:300])
            if bad := leaks(r.text, PEOPLE):
                found[url] = bad
    assert found == {}
