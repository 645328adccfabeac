"""Rating a handled report over HTTP: the API, the form on 我的, a WeChat reply; the console's follow-up items."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator

import pytest
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.models import AuditEntry
from rewards.clock import FixedClock
from rewards.engagement.ratings import CaseRating
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import INTAKE_TOKEN, MakeContainer, auth, test_settings
from tests.integration.test_ratings_service import handled_case

WECHAT_TOKEN = "test-wechat-token"
_nonces = itertools.count(7_100_000)


@pytest.fixture
def site(db_engine: Engine, make_container: MakeContainer) -> Container:
    settings = test_settings(dev_login=True, wechat_token=WECHAT_TOKEN, wechat_app_id="wxratingtest")
    c = make_container(settings, engine=db_engine)
    handled_case(c, "LZ1", "o-zhang", final="closed", department="环卫处")
    handled_case(c, "LZ2", "o-zhang", department="市政所")
    handled_case(c, "LI1", "o-li")
    return c


@pytest.fixture
def zhang(site: Container) -> Iterator[TestClient]:
    """A browser signed in as the citizen o-zhang."""
    with TestClient(create_app(site)) as http:
        r = http.get("/auth/dev-login", params={"openid": "o-zhang", "next": "/me"}, follow_redirects=False)
        assert r.status_code in (302, 303, 307), r.text
        yield http


def rows(c: Container) -> tuple[int, int, int]:
    with c.read() as s:
        return (
            s.scalar(select(func.count(CaseRating.id))) or 0,
            s.scalar(select(func.count(LedgerEntry.id))) or 0,
            s.scalar(select(func.count(AuditEntry.id))) or 0,
        )


def test_the_api_rates_once_and_refuses_with_reasons(zhang: TestClient, site: Container) -> None:
    url = "/api/v1/citizens/o-zhang/reports/LZ1/rating"
    overview = zhang.get("/api/v1/citizens/o-zhang/ratings").json()
    assert [r["case_id"] for r in overview["rateable"]] == ["LZ1", "LZ2"] and overview["rated"] == []
    assert overview["window_days"] == 7
    assert zhang.get(url).status_code == 404 and zhang.get(url).json()["error"] == "not_rated"
    r = zhang.post(url, json={"rating": "不满意", "comment": "垃圾仍未清走"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rating"], body["label"], body["followup"], body["points"]) == ("unsatisfied", "不满意", True, 0)
    assert zhang.get(url).json()["comment"] == "垃圾仍未清走"
    overview = zhang.get("/api/v1/citizens/o-zhang/ratings").json()
    assert [r["case_id"] for r in overview["rateable"]] == ["LZ2"]
    assert [(r["case_id"], r["label"]) for r in overview["rated"]] == [("LZ1", "不满意")]
    assert zhang.get("/api/v1/citizens/o-li/ratings").status_code == 403
    before = rows(site)
    refusals = [
        (url, {"rating": "满意"}, 409, "already_rated"),
        ("/api/v1/citizens/o-zhang/reports/LI1/rating", {"rating": "满意"}, 403, "not_your_case"),
        ("/api/v1/citizens/o-zhang/reports/NOPE/rating", {"rating": "满意"}, 404, "unknown_case"),
        ("/api/v1/citizens/o-zhang/reports/LZ2/rating", {"rating": "好极了"}, 422, "invalid_rating"),
    ]
    for path, payload, status, code in refusals:
        r = zhang.post(path, json=payload)
        assert (r.status_code, r.json().get("error")) == (status, code), r.text
        assert r.json()["detail"]
    # another citizen's path with this session, and no credentials at all
    r = zhang.post("/api/v1/citizens/o-li/reports/LI1/rating", json={"rating": "满意"})
    assert r.status_code == 403
    with TestClient(create_app(site)) as anonymous:
        assert anonymous.post(url, json={"rating": "满意"}).status_code == 401
    assert zhang.post(url, json={"rating": "满意", "comment": "x" * 201}).status_code == 422
    assert rows(site) == before


def test_the_command_center_may_record_a_call_back_rating(site: Container) -> None:
    with TestClient(create_app(site)) as http:
        r = http.post("/api/v1/citizens/o-li/reports/LI1/rating", json={"rating": "satisfied"}, headers=auth())
        assert r.status_code == 201 and r.json()["label"] == "满意"
        r = http.post("/api/v1/citizens/o-li/reports/LZ2/rating", json={"rating": "满意"}, headers=auth())
        assert r.status_code == 403 and r.json()["error"] == "not_your_case"
        r = http.post("/api/v1/citizens/o-li/reports/LI1/rating", json={"rating": "满意"}, headers=auth(INTAKE_TOKEN))
        assert r.status_code == 403  # the intake role may not


def test_the_window_closes(zhang: TestClient, site: Container) -> None:
    assert isinstance(site.clock, FixedClock)
    site.clock.advance(days=7)
    assert zhang.get("/api/v1/citizens/o-zhang/ratings").json()["rateable"] == []
    r = zhang.post("/api/v1/citizens/o-zhang/reports/LZ2/rating", json={"rating": "满意"})
    assert (r.status_code, r.json()["error"]) == (409, "rating_window_closed")
    assert "对处置结果满意吗" not in zhang.get("/me").text  # the form is gone with the window


def test_rating_from_me(zhang: TestClient, site: Container) -> None:
    page = zhang.get("/me").text
    assert page.count('class="rating-form"') == 2  # LZ1 (closed) and LZ2 (resolved); not LI1 (not theirs)
    r = zhang.post("/me/ratings/LZ2", data={"rating": "basic", "comment": "修好了，稍慢"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/me?rated=LZ2")
    page = zhang.get(r.headers["location"]).text
    assert "感谢您的评价" in page and "我的评价：<strong>基本满意</strong> · 修好了，稍慢" in page
    assert page.count('class="rating-form"') == 1
    again = zhang.post("/me/ratings/LZ2", data={"rating": "satisfied"}, follow_redirects=False)
    assert "rating_error=already_rated" in again.headers["location"]
    assert "该案件您已评价过" in zhang.get(again.headers["location"]).text
    # another site's form: the session is not honoured on a cross-site post, so nothing is rated
    foreign = zhang.post(
        "/me/ratings/LZ1",
        data={"rating": "satisfied"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 401  # as if signed out
    with TestClient(create_app(site)) as anonymous:  # signed out (an expired session): 401, nothing rated
        r = anonymous.post("/me/ratings/LZ1", data={"rating": "satisfied"}, headers={"Accept": "application/json"})
        assert (r.status_code, r.json()["error"]) == (401, "sign_in_required")
    with site.read() as s:
        assert s.scalar(select(func.count(CaseRating.id))) == 1


def wechat(http: TestClient, c: Container, openid: str, content: str, nonce: str | None = None) -> str:
    nonce = nonce or str(next(_nonces))
    ts = str(int(c.clock.now().timestamp()))
    signature = hashlib.sha1("".join(sorted([WECHAT_TOKEN, ts, nonce])).encode()).hexdigest()
    xml = (
        f"<xml><ToUserName><![CDATA[gh_city]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{nonce}</MsgId></xml>"
    )
    r = http.post(
        "/wechat/callback",
        params={"signature": signature, "timestamp": ts, "nonce": nonce},
        content=xml.encode(),
        headers={"Content-Type": "text/xml"},
    )
    assert r.status_code == 200, r.text
    text: str = xmltodict.parse(r.text)["xml"]["Content"]
    assert openid not in text
    return text


def test_rating_by_wechat_reply(site: Container) -> None:
    with TestClient(create_app(site)) as http:
        assert "评价 案件号 满意" in wechat(http, site, "o-zhang", "你好")  # the help text invites ratings
        assert "评价格式" in wechat(http, site, "o-zhang", "评价 LZ1")
        thanks = wechat(http, site, "o-zhang", "评价\u3000LZ1 不满意 垃圾 仍未清走", nonce="42")
        assert "感谢您的评价" in thanks and "不满意" in thanks and "转交责任部门" in thanks
        # WeChat's retry of the same message (same signed URL and body) gets the same answer, writes nothing
        before = rows(site)
        assert wechat(http, site, "o-zhang", "评价\u3000LZ1 不满意 垃圾 仍未清走", nonce="42") == thanks
        assert rows(site) == before
        assert "已评价过" in wechat(http, site, "o-zhang", "评价 LZ1 满意")
        assert "只能评价您本人" in wechat(http, site, "o-zhang", "评价 LI1 满意")
        assert "没有找到这个案件号" in wechat(http, site, "o-zhang", "评价 NOPE 满意")
        assert rows(site) == before
    with site.read() as s:
        rating = s.scalars(select(CaseRating)).one()
        assert (rating.level, rating.comment, rating.channel) == ("unsatisfied", "垃圾 仍未清走", "wechat")


def csrf(http: TestClient) -> str:
    html = http.get("/console/followups", headers=auth()).text
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html
    return m.group(1)


def test_console_follow_ups(site: Container) -> None:
    site.ratings.rate("o-zhang", "LZ1", "不满意", "垃圾仍未清走", "api")
    site.ratings.rate("o-zhang", "LZ2", "不满意", None, "api")  # no comment: nothing to follow up
    site.ratings.rate("o-li", "LI1", "满意", "很好", "api")
    with TestClient(create_app(site)) as http:
        assert (
            http.get("/console/followups", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
        )
        page = http.get("/console/followups", headers=auth()).text
        assert "待跟进评价" in page and "垃圾仍未清走" in page and "LZ1" in page
        assert 'data-followup="' in page and page.count('data-followup="') == 1 and "很好" not in page
        assert "o-zhang" not in page
        assert "LZ1" in http.get("/console/followups", params={"department": "环卫处"}, headers=auth()).text
        assert "LZ1" not in http.get("/console/followups", params={"department": "市政所"}, headers=auth()).text
        rating_id = re.search(r'data-followup="(\d+)"', page)
        assert rating_id
        path = f"/console/followups/{rating_id.group(1)}/handled"
        token = csrf(http)
        bad = http.post(path, data={"csrf": "0" * 64}, headers=auth())
        assert bad.status_code == 403
        r = http.post(path, data={"csrf": token, "note": "已转环卫处复查"}, headers=auth(), follow_redirects=False)
        assert r.status_code == 303 and "flash=" in r.headers["location"]
        r = http.post(path, data={"csrf": token}, headers=auth(), follow_redirects=False)
        assert "error=" in r.headers["location"]
        assert "已由他人标记为已处理" in http.get(r.headers["location"], headers=auth()).text
        assert "垃圾仍未清走" not in http.get("/console/followups", headers=auth()).text
        done = http.get("/console/followups", params={"handled": "true"}, headers=auth()).text
        assert "已转环卫处复查" in done and "validator-1" in done
        audit = http.get("/console/audit", headers=auth()).text
        assert "不满意评价已跟进处理" in audit and "已转环卫处复查" in audit
        missing = http.post("/console/followups/999999/handled", data={"csrf": token}, headers=auth())
        assert "没有这条待跟进事项" in missing.text


def test_the_award_shows_in_my_points_when_on(db_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(test_settings(dev_login=True, rating_award_points=1), engine=db_engine)
    handled_case(c, "LZ1", "o-zhang")
    with TestClient(create_app(c)) as http:
        http.get("/auth/dev-login", params={"openid": "o-zhang", "next": "/me"}, follow_redirects=False)
        r = http.post("/api/v1/citizens/o-zhang/reports/LZ1/rating", json={"rating": "满意"})
        assert r.json()["points"] == 1
        points = http.get("/api/v1/citizens/o-zhang/points").json()
        assert points["total"] == 2
        assert {(line["rule"], line["reason"]) for line in points["lines"]} >= {
            ("rating_award", "评价举报 LZ1 的处置结果")
        }
        assert "评价举报 LZ1 的处置结果：+1 分" in http.get("/me").text
        assert "评价奖励" in http.get("/rules").text
