"""The public board shows the prize list plainly (issue 12, item 7): 80 eligible places with their 获奖名次 and
tier, ineligible citizens marked but never holding a prize place, and pages past 80 (H5 page and API).

Real PostgreSQL/SQLite and Redis; a brute-force model of the prize list checks the service on random boards.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.clock import FixedClock
from tests.conftest import RUN_ID, MakeContainer, test_settings, wipe

ACTOR = Actor("validator-1", "console")


def award(c: Container, n: int, openid: str, *, verified: bool = True, times: int = 1) -> None:
    """Give a citizen `times` valid cases (one point each), a minute apart."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    for i in range(times):
        clock.advance(minutes=1)
        who = Reporter(openid, name=f"市民{n:03d}号", phone="13900001111", verified=verified)
        case_id = f"PB-{openid}-{i}"
        with c.uow() as uow:
            c.flows.report(uow, ReportCase(case_id, "street_lamp", clock.now(), who), ACTOR)
        with c.uow() as uow:
            c.flows.verdict(uow, GiveVerdict(case_id, "valid"), ACTOR)


def seed_board(c: Container, eligible: int, ineligible_every: int) -> None:
    """`eligible` verified citizens with falling points; an unverified one after every `ineligible_every`."""
    n = 0
    for i in range(eligible):
        points = 3 if i < 10 else (2 if i < 60 else 1)
        award(c, n, f"o-e{i:03d}", times=points)
        n += 1
        if i % ineligible_every == 0:
            award(c, n, f"o-x{i:03d}", verified=False, times=points)
            n += 1


@pytest.fixture
def board_site(pg_engine: Engine, make_container: MakeContainer) -> tuple[Container, TestClient]:
    c = make_container(test_settings(rate_limit_per_ip=10**6), engine=pg_engine)
    seed_board(c, 95, 8)  # 95 eligible, 12 ineligible spread among them (the first one above prize place 1)
    return c, TestClient(create_app(c))


def test_the_api_prize_view_holds_80_prize_places_with_the_ineligible_marked(
    board_site: tuple[Container, TestClient],
) -> None:
    _, http = board_site
    body = http.get("/api/v1/leaderboards/weekly", params={"view": "prizes"}).json()
    prize_rows = [r for r in body["rows"] if r["eligible"]]
    assert [r["prize_rank"] for r in prize_rows] == list(range(1, 81))
    assert all(r["tier"] is not None for r in prize_rows)
    assert prize_rows[0]["tier"]["name"] == "一等奖"
    marked = [r for r in body["rows"] if not r["eligible"]]
    assert marked and all(r["prize_rank"] is None and r["tier"] is None for r in marked)
    assert [r["rank"] for r in body["rows"]] == sorted(r["rank"] for r in body["rows"])  # board order kept
    # the plain board's first 80 rows hide prize places: the prize view shows all of them
    plain = http.get("/api/v1/leaderboards/weekly").json()
    assert len(plain["rows"]) == 80 and max(r["prize_rank"] or 0 for r in plain["rows"]) < 80
    after = http.get("/api/v1/leaderboards/weekly", params={"view": "prizes", "offset": 80}).json()
    assert [r["prize_rank"] for r in after["rows"] if r["eligible"]] == list(range(81, 96))
    assert all(r["tier"] is None for r in after["rows"])


@pytest.mark.parametrize(
    ("params", "code"),
    [({"view": "winners"}, 422), ({"view": "prizes", "offset": -1}, 422), ({"view": "prizes", "limit": 0}, 422)],
)
def test_bad_views_are_refused_with_a_reason(
    board_site: tuple[Container, TestClient], params: dict[str, Any], code: int
) -> None:
    _, http = board_site
    r = http.get("/api/v1/leaderboards/weekly", params=params)
    body = r.json()
    assert r.status_code == code and (body.get("error") or body.get("detail"))


def test_the_page_defaults_to_the_prize_list_and_pages_past_80(board_site: tuple[Container, TestClient]) -> None:
    _, http = board_site
    html = http.get("/leaderboard").text
    assert 'data-view="prizes"' in html and "获奖名次" in html
    ranks = [int(x) for x in re.findall(r'data-prize-rank="(\d+)"', html)]
    assert ranks == list(range(1, 81))
    assert html.count("不参与评奖</span>") >= 10
    assert re.search(r'href="/leaderboard\?view=prizes&(amp;)?offset=80"', html)
    second = http.get("/leaderboard?view=prizes&offset=80").text
    assert [int(x) for x in re.findall(r'data-prize-rank="(\d+)"', second)] == list(range(81, 96))
    full = http.get("/leaderboard?view=all&week=2026-W48").text
    assert 'data-view="prizes"' not in full and re.search(r"week=2026-W48&(amp;)?view=all&(amp;)?offset=80", full)
    assert http.get("/leaderboard?view=prizes&week=2026-48").status_code == 422


# -- the prize list against a brute-force model -------------------------------------------------------------------

boards = st.lists(st.tuples(st.integers(1, 4), st.booleans()), min_size=0, max_size=14)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(board=boards, offset=st.integers(0, 6), limit=st.integers(1, 5))
def test_prize_pages_match_a_model(
    board: list[tuple[int, bool]], offset: int, limit: int, pg_engine: Engine, make_container: MakeContainer
) -> None:
    wipe(pg_engine)  # one fresh board per example
    c = make_container(test_settings(leaderboard_key_prefix=f"t{RUN_ID}pb{uuid.uuid4().hex[:6]}"), engine=pg_engine)
    for i, (points, verified) in enumerate(board):
        award(c, i, f"o-m{i:03d}", verified=verified, times=points)
    full = c.leaderboard.page("weekly", offset=0, limit=200).rows
    # the model: walk the full board; eligible rows take prize places in order; an ineligible row belongs to the
    # page of the prize place before it (the first page when there is none)
    expected: list[tuple[int, int | None]] = []
    place = 0
    for row in full:
        if row.eligible:
            place += 1
            if offset < place <= offset + limit:
                expected.append((row.rank, place))
        elif offset <= place < offset + limit and (place > 0 or offset == 0):
            expected.append((row.rank, None))
    got = c.leaderboard.prize_list(offset=offset, limit=limit).rows
    assert [(r.rank, r.prize_rank) for r in got] == expected
    assert all((r.tier is not None) == (r.prize_rank is not None and r.prize_rank <= 80) for r in got)
