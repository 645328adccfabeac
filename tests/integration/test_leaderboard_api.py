"""The leaderboard API over real Redis and SQL: public boards (masked, eligibility, tiers), a citizen's standing,
bad input as 4xx with a reason, Redis down as 503, boards rebuilt at start-up."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, update

from rewards.app import create_app
from rewards.bootstrap import Container, bootstrap
from rewards.cases.models import Citizen
from rewards.config import Settings
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.check import check
from tests.conftest import MakeContainer, auth, flush_prefix, test_settings
from tests.integration.test_check_rebuild import award, void

TIERS = [
    {"first": 1, "last": 1, "name": "一等奖", "value": 500},
    {"first": 2, "last": 3, "name": "二等奖", "value": 200},
]


@pytest.fixture
def settings() -> Settings:
    """Three prize places, so the prize cut is reachable with a handful of citizens."""
    return test_settings(prize_tiers=TIERS)


def populate(c: Container) -> None:
    """o1: 3 points, o2: 2, o3 (not verified): 2, o4: 1, o5: 1 (o4 first), o6: awarded then voided."""
    plan = [("o1", "城关区", True), ("o2", "七里河区", True), ("o3", "城关区", False), ("o4", "城关区", True)]
    plan += [("o1", "城关区", True), ("o2", "七里河区", True), ("o3", "城关区", False), ("o1", "城关区", True)]
    plan += [("o5", "七里河区", True), ("o6", "城关区", True)]
    for i, (openid, district, verified) in enumerate(plan):
        award(c, f"C{i}", openid, district=district, verified=verified)
        c.clock.advance(seconds=1)  # type: ignore[attr-defined]
    void(c, "C9")


def test_weekly_board_is_public_masked_and_tiered(client: TestClient, container: Container) -> None:
    populate(container)
    r = client.get("/api/v1/leaderboards/weekly", params={"week": "2026-W48"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "openid" not in r.text and '"o1"' not in r.text
    assert body["total"] == 5 and body["prize_places"] == 3 and body["week"] == "2026-W48"
    rows = body["rows"]
    assert [(x["rank"], x["name"], x["points"]) for x in rows] == [
        (1, "市**1", 3),
        (2, "市**2", 2),
        (3, "市**3", 2),
        (4, "市**4", 1),
        (5, "市**5", 1),
    ]
    assert [x["eligible"] for x in rows] == [True, True, False, True, True]
    assert [x["prize_rank"] for x in rows] == [1, 2, None, 3, 4]
    assert [x["tier"]["name"] if x["tier"] else None for x in rows] == ["一等奖", "二等奖", None, "二等奖", None]
    assert body["updated_at"] is not None
    page2 = client.get("/api/v1/leaderboards/weekly", params={"week": "2026-W48", "offset": 3, "limit": 1}).json()
    assert [(x["rank"], x["points"]) for x in page2["rows"]] == [(4, 1)]
    assert client.get("/api/v1/leaderboards/weekly").json()["rows"] == rows  # default: this week


def test_all_time_and_district_boards(client: TestClient, container: Container) -> None:
    populate(container)
    all_time = client.get("/api/v1/leaderboards/all-time").json()
    assert [x["points"] for x in all_time["rows"]] == [3, 2, 2, 1, 1]
    assert all(x["tier"] is None and x["prize_rank"] is None for x in all_time["rows"])
    assert [x["eligible"] for x in all_time["rows"]] == [True, True, False, True, True]
    d = client.get(f"/api/v1/leaderboards/districts/{quote('城关区')}/weekly", params={"week": "2026-W48"}).json()
    assert d["district"] == "城关区"
    rows = [(x["rank"], x["name"], x["prize_rank"]) for x in d["rows"]]
    assert rows == [(1, "市**1", 1), (2, "市**3", None), (3, "市**4", 3)]
    empty = client.get(f"/api/v1/leaderboards/districts/{quote('无此区')}/weekly").json()
    assert empty["rows"] == [] and empty["total"] == 0


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/api/v1/leaderboards/weekly", {"week": "2026-48"}, "not an ISO week"),
        ("/api/v1/leaderboards/weekly", {"week": "2025-W53"}, "no ISO week 53"),
        ("/api/v1/leaderboards/weekly", {"week": "2026-W54"}, "week out of range"),
        ("/api/v1/leaderboards/districts/x/weekly", {"week": "W48"}, "not an ISO week"),
        ("/api/v1/leaderboards/weekly", {"limit": 0}, "limit"),
        ("/api/v1/leaderboards/weekly", {"limit": 201}, "limit"),
        ("/api/v1/leaderboards/all-time", {"offset": -1}, "offset"),
    ],
)
def test_bad_parameters_are_422_with_a_reason(client: TestClient, path: str, params: dict, reason: str) -> None:  # type: ignore[type-arg]
    r = client.get(path, params=params)
    assert r.status_code == 422
    assert reason in r.text


def test_standing_of_a_citizen(client: TestClient, container: Container) -> None:
    populate(container)
    me = client.get("/api/v1/citizens/o4/standing", headers=auth()).json()
    assert me["weekly"]["rank"] == 4 and me["weekly"]["points"] == 1 and me["prize_rank"] == 3
    assert me["tier"]["name"] == "二等奖" and me["points_to_prize"] == 0
    assert [(n["rank"], n["name"]) for n in me["weekly"]["above"]] == [(3, "市**3")]
    assert [(n["rank"], n["name"]) for n in me["weekly"]["below"]] == [(5, "市**5")]
    assert me["all_time"]["rank"] == 4 and "获奖名单" in me["message"]
    out = client.get("/api/v1/citizens/o5/standing", headers=auth()).json()
    assert out["prize_rank"] == 4 and out["tier"] is None
    assert out["points_to_prize"] == 1  # the third prize place has 1 point, reached earlier: one more wins
    unverified = client.get("/api/v1/citizens/o3/standing", headers=auth()).json()
    assert unverified["eligible"] is False and unverified["points_to_prize"] is None
    assert unverified["eligibility_note"] and unverified["weekly"]["rank"] == 3
    top = client.get("/api/v1/citizens/o1/standing", headers=auth()).json()
    assert top["weekly"]["above"] == [] and top["tier"]["value"] == 500


def test_a_citizen_without_points_is_not_ranked_yet(client: TestClient, container: Container) -> None:
    populate(container)
    r = client.get("/api/v1/citizens/o6/standing", headers=auth())  # awarded, then voided: 0 points
    assert r.status_code == 200
    body = r.json()
    assert body["weekly"]["ranked"] is False and body["weekly"]["rank"] is None and body["weekly"]["points"] == 0
    assert "暂未上榜" in body["message"]
    assert body["points_to_prize"] == 2  # the third eligible place has 1 point
    assert body["all_time"]["ranked"] is False


def test_standing_needs_the_citizen_or_staff_and_a_known_citizen(client: TestClient, container: Container) -> None:
    populate(container)
    assert client.get("/api/v1/citizens/o1/standing").status_code == 401
    r = client.get("/api/v1/citizens/nobody/standing", headers=auth())
    assert r.status_code == 404 and r.json()["error"] == "unknown_citizen"


def test_a_ban_moves_the_citizen_off_the_prize_list(client: TestClient, container: Container) -> None:
    populate(container)
    with container.uow() as uow:
        uow.session.execute(update(Citizen).where(Citizen.openid == "o1").values(banned=True))
        cid = uow.session.query(Citizen.id).filter(Citizen.openid == "o1").scalar()
        uow.after_commit(lambda: container.boards.set_eligible(cid, False))  # as the lead wires it
    rows = client.get("/api/v1/leaderboards/weekly").json()["rows"]
    assert [(x["points"], x["eligible"], x["prize_rank"]) for x in rows[:2]] == [(3, False, None), (2, True, 1)]
    assert check(container.db, container.boards).clean


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_down_boards_are_503_and_a_standing_comes_from_the_ledger(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    dead = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    c = make_container(test_settings(), engine=db_engine, redis_client=dead)  # the default prize table
    with TestClient(create_app(c)) as http:
        award(c, "C1", "o1")  # the ledger commits; the boards' effect fails and is logged
        r = http.get("/api/v1/leaderboards/weekly")
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        me = http.get("/api/v1/citizens/o1/standing", headers=auth())
        assert me.status_code == 200
        body = me.json()
        assert body["stale"] is True and body["weekly"]["rank"] == 1 and body["weekly"]["points"] == 1


def test_start_up_rebuilds_empty_boards(container: Container) -> None:
    populate(container)
    flush_prefix(container.redis, container.settings.leaderboard_key_prefix)  # an empty (or flushed) Redis
    assert container.prepare() is not None
    assert Boards(container.redis, container.settings).is_built()
    assert check(container.db, container.boards).clean
    before = container.redis.get(f"{{{container.settings.leaderboard_key_prefix}:lb}}:gen")
    assert container.prepare() is None  # boards present: nothing to do
    assert container.redis.get(f"{{{container.settings.leaderboard_key_prefix}:lb}}:gen") == before


def test_embedded_redis_is_rebuilt_from_the_ledger_once_and_shared(
    container: Container, db_engine: Engine, tmp_path: Path
) -> None:
    populate(container)
    embedded = test_settings(prize_tiers=TIERS, redis_url=None, data_dir=tmp_path / "var")
    # bootstrap itself, not make_container: what is tested is that it starts (or joins) the embedded Redis from
    # Settings, and the factory always hands over the shared test server
    first = bootstrap(embedded, clock=container.clock, engine=db_engine)  # starts the data dir's redis-server
    report = first.prepare()  # a new embedded Redis holds no boards: they are rebuilt from the ledger
    assert report is not None and (report.citizens, report.entries) == (6, 11)
    second = bootstrap(embedded, clock=container.clock, engine=db_engine)  # another process on the same data dir
    assert second.prepare() is None  # it joins the same server: the boards are there, nothing to rebuild
    with TestClient(create_app(second)) as http:
        rows = http.get("/api/v1/leaderboards/weekly").json()["rows"]
    assert [x["points"] for x in rows] == [3, 2, 2, 1, 1]
    assert check(second.db, second.boards).clean
    award(first, "C10", "o5", district="七里河区")  # an award through one lands on the boards the other reads
    assert [x.points for x in second.leaderboard.page("weekly").rows] == [3, 2, 2, 2, 1]
    assert datetime.now(UTC) > container.clock.now()  # the fixed clock is in the past: no wall-clock dependence
