"""公示 at the edges over HTTP (real PostgreSQL and Redis): the week page's review section and objection form, the
API, the WeChat command "异议 <名次> <理由>", /me, and the console's review desk, redemption and payout export.

Every bad input is a 4xx with a reason and writes nothing (the review tables and the audit log are counted).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.models import AuditEntry, Citizen
from rewards.clock import IsoWeek
from rewards.http.auth import Principal
from rewards.http.session import CITIZEN_COOKIE, CitizenSession, SessionCodec
from rewards.publish.models import PUBLISHED
from rewards.review.models import Claim, Decision, FinalList, ListVersion, Objection
from rewards.web.console import csrf_token
from rewards.web.review import form_token
from tests.conftest import ADMIN_TOKEN, VALIDATOR_TOKEN, MakeContainer, test_settings
from tests.fakes.ledger_seed import Person, add_citizens, add_entries

WEEK = "2026-W47"
TOKEN = "test-wechat-token"
HTML = {"Accept": "text/html"}
VALIDATOR = Principal("validator-1", "validator")
ADMIN = Principal("admin-1", "admin")


@dataclass
class Site:
    c: Container
    http: TestClient
    ids: list[int]  # eligible citizens, best first
    openids: list[str]

    def as_citizen(self, openid: str) -> TestClient:
        self.http.cookies.clear()
        self.http.cookies.set(CITIZEN_COOKIE, SessionCodec(self.c.settings).dump_citizen(CitizenSession(openid)))
        return self.http

    def as_stranger(self) -> TestClient:
        self.http.cookies.clear()
        return self.http

    def counts(self) -> dict[str, int]:
        with self.c.read() as s:
            return {
                m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Objection, Decision, ListVersion, FinalList, Claim, AuditEntry)
            }


@pytest.fixture
def site(pg_engine: Engine, make_container: MakeContainer, tmp_path: Path) -> Iterator[Site]:
    s = test_settings(
        outbox_dir=tmp_path / "outbox",
        wechat_token=TOKEN,
        rate_limit_per_ip=10**6,
        rate_limit_per_citizen=10**6,
        api_tokens={
            VALIDATOR_TOKEN: {"name": "validator-1", "role": "validator"},
            ADMIN_TOKEN: {"name": "admin-1", "role": "admin"},
        },
    )
    c = make_container(s, engine=pg_engine)
    start = IsoWeek.parse(WEEK).start(c.settings.tz)
    ids = add_citizens(c, [Person(f"市民{i:03d}号") for i in range(85)], start)
    add_entries(c, WEEK, [(cid, 500 - i, start + timedelta(minutes=i)) for i, cid in enumerate(ids)])
    c.closer.close(IsoWeek.parse(WEEK))
    assert c.publishing.publish(WEEK).state == PUBLISHED  # 公示 starts: the window is open for 3 days
    c.review.current(WEEK)  # the pool and version 1 are sealed on first use: before any "nothing written" count
    with c.read() as session:
        openids = [session.get(Citizen, i).openid for i in ids]  # type: ignore[union-attr]
    with TestClient(create_app(c)) as http:
        yield Site(c, http, ids, openids)


def object_on_page(site: Site, openid: str, rank: str, reason: str, token: str | None = None) -> Any:
    http = site.as_citizen(openid)
    csrf = token if token is not None else form_token(site.c.http.codec.secret, openid)
    data = {"rank": rank, "reason": reason, "csrf": csrf}
    return http.post(f"/weeks/{WEEK}/objections", data=data, headers=HTML, follow_redirects=False)


# -- the week page ----------------------------------------------------------------------------------------------


def test_the_week_page_shows_the_list_the_deadline_and_the_form(site: Site) -> None:
    page = site.as_stranger().get(f"/weeks/{WEEK}").text
    assert 'id="review"' in page and "公示中" in page and 'id="objection-deadline"' in page
    assert len(re.findall(r'<tr class="[^"]*" data-rank="\d+"', page)) == 80
    assert "登录后提出异议" in page and 'id="objection-form"' not in page
    signed = site.as_citizen(site.openids[40]).get(f"/weeks/{WEEK}").text
    assert 'id="objection-form"' in signed and form_token(site.c.http.codec.secret, site.openids[40]) in signed
    assert site.openids[40] not in signed  # masked names only, never an openid
    checksum = site.c.review.current(WEEK).checksum
    assert checksum in signed


def test_an_objection_from_the_page_shows_on_the_page_and_on_me(site: Site) -> None:
    r = object_on_page(site, site.openids[40], "3", "该市民的照片是网上下载的")
    assert r.status_code == 303 and r.headers["location"] == f"/weeks/{WEEK}?objected=1#review"
    page = site.http.get(r.headers["location"]).text
    assert "异议已提交" in page and "待处理" in page
    me = site.http.get("/me").text
    assert 'id="objections"' in me and "第 3 名" in me and "待处理" in me and "该市民的照片是网上下载的" in me


@pytest.mark.parametrize(
    ("rank", "reason", "status", "says"),
    [
        ("81", "理由", 404, "没有这个名次"),
        ("0", "理由", 422, "正整数"),
        ("abc", "理由", 422, "正整数"),
        ("", "理由", 422, "正整数"),
        ("99999999999999999999", "理由", 422, "正整数"),
        ("3", "", 422, "请填写异议理由"),
        ("3", "   ", 422, "请填写异议理由"),
        ("3", "长" * 3_400, 422, "理由太长"),
    ],
)
def test_bad_objections_from_the_page_are_refused_and_write_nothing(
    site: Site, rank: str, reason: str, status: int, says: str
) -> None:
    before = site.counts()
    r = object_on_page(site, site.openids[40], rank, reason)
    assert r.status_code == status and says in r.text and "异议未能提交" in r.text
    assert site.counts() == before


def test_the_page_refuses_twice_strangers_forged_forms_and_foreign_origins(site: Site) -> None:
    assert object_on_page(site, site.openids[40], "3", "第一次").status_code == 303
    before = site.counts()
    again = object_on_page(site, site.openids[40], "3", "第二次")
    assert again.status_code == 409 and "已对该条目提出过异议" in again.text
    forged = object_on_page(site, site.openids[41], "3", "理由", token="0" * 64)
    assert forged.status_code == 403 and "表单已过期" in forged.text
    other = object_on_page(site, site.openids[41], "3", "理由", token=form_token(site.c.http.codec.secret, "oX"))
    assert other.status_code == 403
    stranger = site.as_stranger().post(f"/weeks/{WEEK}/objections", data={"rank": "3", "reason": "x"}, headers=HTML)
    assert stranger.status_code == 401 and "请先登录" in stranger.text
    http = site.as_citizen(site.openids[41])
    data = {"rank": "3", "reason": "x", "csrf": form_token(site.c.http.codec.secret, site.openids[41])}
    cross = http.post(f"/weeks/{WEEK}/objections", data=data, headers={**HTML, "Origin": "https://evil.example"})
    assert cross.status_code == 401  # a foreign origin's post is treated as signed out
    assert site.counts() == before


def test_after_the_deadline_and_for_a_week_without_a_list_objections_are_refused(site: Site) -> None:
    before = site.counts()
    no_list = site.as_citizen(site.openids[40]).post(
        "/weeks/2026-W40/objections",
        data={"rank": "1", "reason": "x", "csrf": form_token(site.c.http.codec.secret, site.openids[40])},
        headers=HTML,
    )
    assert no_list.status_code == 404 and "还没有获奖名单" in no_list.text
    bad_week = object_on_page(site, site.openids[40], "3", "x")
    assert bad_week.status_code == 303  # the good one, for contrast
    deadline = site.c.review.status(WEEK).deadline
    assert deadline is not None
    site.c.clock.set(deadline)  # type: ignore[attr-defined]
    late = object_on_page(site, site.openids[41], "3", "晚了")
    assert late.status_code == 409 and "公示期已结束" in late.text
    after = site.counts()
    assert after["review_objections"] == before["review_objections"] + 1


# -- the API ----------------------------------------------------------------------------------------------------


def test_the_api_files_objections_for_the_citizen_only(site: Site) -> None:
    me = site.openids[50]
    http = site.as_citizen(me)
    r = http.post(f"/api/v1/citizens/{me}/objections", json={"week": WEEK, "rank": 2, "reason": "重复上报"})
    assert r.status_code == 201 and r.json()["status"] == "open" and r.json()["channel"] == "api"
    assert [o["rank"] for o in http.get(f"/api/v1/citizens/{me}/objections").json()] == [2]
    before = site.counts()
    other = site.openids[51]
    assert (
        http.post(f"/api/v1/citizens/{other}/objections", json={"week": WEEK, "rank": 2, "reason": "x"}).status_code
        == 403
    )
    stranger = site.as_stranger().post(
        f"/api/v1/citizens/{me}/objections", json={"week": WEEK, "rank": 2, "reason": "x"}
    )
    assert stranger.status_code == 401
    http = site.as_citizen(me)
    cases = [
        ({"week": WEEK, "rank": 2, "reason": "again"}, 409, "already_objected"),
        ({"week": WEEK, "rank": 81, "reason": "x"}, 404, "no_such_rank"),
        ({"week": WEEK, "rank": 0, "reason": "x"}, 422, "invalid_rank"),
        ({"week": WEEK, "rank": 3, "reason": ""}, 422, "reason_required"),
        ({"week": WEEK, "rank": 3, "reason": "长" * 3_400}, 422, "reason_too_long"),
        ({"week": "2026-W40", "rank": 1, "reason": "x"}, 404, "no_list"),
        ({"week": "2026-48", "rank": 1, "reason": "x"}, 422, "invalid_week"),
    ]
    for body, status, code in cases:
        site.c.clock.advance(seconds=61)  # type: ignore[attr-defined]  # a fresh rate-limit window per attempt
        got = http.post(f"/api/v1/citizens/{me}/objections", json=body)
        assert (got.status_code, got.json().get("error")) == (status, code), body
    assert http.post(f"/api/v1/citizens/{me}/objections", json={"week": WEEK, "rank": "x"}).status_code == 422
    assert site.counts() == before


def test_objections_are_rate_limited_per_citizen(site: Site) -> None:
    me = site.openids[60]
    http = site.as_citizen(me)
    answers = [
        http.post(f"/api/v1/citizens/{me}/objections", json={"week": WEEK, "rank": 90, "reason": "x"}).status_code
        for _ in range(6)
    ]
    assert answers == [404] * 5 + [429]
    refused = object_on_page(site, me, "3", "x")
    assert refused.status_code == 429 and "太频繁" in refused.text and refused.headers["Retry-After"]


def test_the_public_review_api(site: Site) -> None:
    http = site.as_stranger()
    body = http.get(f"/api/v1/review/weeks/{WEEK}").json()
    assert body["status"]["phase"] == "open" and body["current"]["number"] == 1 and len(body["current"]["rows"]) == 80
    assert "openid" not in str(body)
    assert http.get("/api/v1/review/weeks/2026-W40").json() == {
        "status": http.get("/api/v1/review/weeks/2026-W40").json()["status"],
        "current": None,
    }
    assert http.get("/api/v1/review/weeks/2026-W40/versions").json()["error"] == "no_list"
    assert http.get(f"/api/v1/review/weeks/{WEEK}/versions/7").json()["error"] == "no_such_version"
    assert http.get("/api/v1/review/weeks/2026-48").json()["error"] == "invalid_week"
    v1 = http.get(f"/api/v1/review/weeks/{WEEK}/versions/1").json()
    assert v1["checksum"] == body["current"]["checksum"]
    page = http.get(f"/weeks/{WEEK}/versions/1").text
    assert v1["checksum"] in page and "第 1 版" in page
    assert http.get(f"/weeks/{WEEK}/versions/9", headers=HTML).status_code == 404


# -- WeChat -----------------------------------------------------------------------------------------------------

_nonces = itertools.count(770001)
TEXT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>
<MsgId>1234567890123456</MsgId></xml>"""


def wechat(site: Site, openid: str, text: str) -> str:
    nonce = str(next(_nonces))
    ts = str(int(site.c.clock.now().timestamp()))
    signature = hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest()
    query = {"signature": signature, "timestamp": ts, "nonce": nonce}
    body = TEXT.format(openid=openid, content=text).encode()
    r = site.as_stranger().post("/wechat/callback", params=query, content=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    found = re.search(r"<Content><!\[CDATA\[(.*)\]\]></Content>", r.text, re.S)
    assert found is not None
    return found.group(1)


def test_wechat_objections(site: Site) -> None:
    me = site.openids[70]
    said = wechat(site, me, "异议 5 该市民的上报与他人重复")
    assert "已收到" in said and "第 5 名" in said and me not in said
    assert [o.channel for o in site.c.review.objections_of(me)] == ["wechat"]
    before = site.counts()
    assert "已对该条目提出过异议" in wechat(site, me, "异议 5 再来一次")
    assert "没有这个名次" in wechat(site, me, "异议 500 理由")
    assert "名次必须是正整数" in wechat(site, me, "异议 第x名 理由")
    assert "提出异议请回复" in wechat(site, me, "异议")
    assert "理由太长" in wechat(site, me, "异议 6 " + "长" * 1000)
    assert site.counts() == before
    deadline = site.c.review.status(WEEK).deadline
    assert deadline is not None
    site.c.clock.set(deadline)  # type: ignore[attr-defined]
    assert "目前没有处于公示期的获奖名单" in wechat(site, me, "异议 6 理由")


# -- the console ------------------------------------------------------------------------------------------------


def console(site: Site, token: str = VALIDATOR_TOKEN) -> TestClient:
    http = site.as_stranger()
    r = http.post("/auth/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303
    return http


def test_the_console_rejects_and_upholds_with_evidence(site: Site) -> None:
    first = site.c.review.object(WEEK, 3, site.openids[40], "照片翻拍", channel="web")
    second = site.c.review.object(WEEK, 4, site.openids[41], "重复上报", channel="web")
    http = console(site)
    desk = http.get("/console/review").text
    assert f'data-objection-id="{first.id}"' in desk and "照片翻拍" in desk
    page = http.get(f"/console/review/objections/{first.id}").text
    evidence = site.c.review.evidence(first.id)
    assert evidence.ledger[0].case_id in page and 'id="reject-form"' in page
    token = csrf_token(site.c.http.codec.secret, VALIDATOR)
    before = site.counts()
    bad = [
        (f"/console/review/objections/{first.id}/reject", {"csrf": "0" * 64, "reason": "x"}, 403),
        (f"/console/review/objections/{first.id}/reject", {"csrf": token, "reason": "  "}, 422),
        (f"/console/review/objections/{first.id}/uphold", {"csrf": token, "reason": "x", "action": "ban"}, 422),
        (f"/console/review/objections/{first.id}/uphold", {"csrf": token, "reason": "x", "action": "void_case"}, 422),
        (
            f"/console/review/objections/{first.id}/uphold",
            {
                "csrf": token,
                "reason": "x",
                "action": "void_case",
                "case_id": site.c.review.evidence(second.id).ledger[0].case_id,
            },
            422,
        ),
        ("/console/review/objections/999999/reject", {"csrf": token, "reason": "x"}, 404),
    ]
    for path, data, status in bad:
        r = http.post(path, data=data, headers=HTML, follow_redirects=False)
        assert r.status_code == status, (path, data, r.text[:300])
    assert site.counts() == before
    r = http.post(f"/console/review/objections/{first.id}/reject", data={"csrf": token, "reason": "照片为现场拍摄"},
                  follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and "未采纳" in http.get(r.headers["location"]).text
    again = http.post(
        f"/console/review/objections/{first.id}/reject", data={"csrf": token, "reason": "x"}, headers=HTML
    )
    assert again.status_code == 409
    case_id = site.c.review.evidence(second.id).ledger[0].case_id
    data = {"csrf": token, "reason": "经核查确系重复", "action": "void_case", "case_id": case_id}
    r = http.post(f"/console/review/objections/{second.id}/uphold", data=data, follow_redirects=False)
    assert r.status_code == 303 and "第 2 版" in http.get(r.headers["location"]).text
    # the objectors see the outcomes on /me, the week page shows the changes
    assert "照片为现场拍摄" in site.as_citizen(site.openids[40]).get("/me").text
    week = site.as_stranger().get(f"/weeks/{WEEK}").text
    assert "异议处理结果" in week and "第 2 版" in week and 'href="/weeks/2026-W47/versions/1"' in week
    with site.c.read() as s:
        actions = set(s.scalars(select(AuditEntry.action)).all())
    assert {"objection_rejected", "objection_upheld"} <= actions


def test_console_review_needs_a_validator(site: Site) -> None:
    http = site.as_stranger()
    assert http.get("/console/review", headers=HTML, follow_redirects=False).status_code == 303
    assert http.get("/console/review").status_code == 401
    assert http.post("/console/review/claims/redeem", data={"code": "x", "csrf": "x"}).status_code == 401
    citizen = site.as_citizen(site.openids[1])
    assert citizen.get("/console/review").status_code == 401


# -- claims and the payout export -------------------------------------------------------------------------------


def finalize(site: Site) -> None:
    deadline = site.c.review.status(WEEK).deadline
    assert deadline is not None
    site.c.clock.set(deadline)  # type: ignore[attr-defined]
    assert site.c.review.run_due()[0].finalized


def test_winners_see_their_code_and_the_console_redeems_it_once(site: Site) -> None:
    finalize(site)
    claim = site.c.review.claims_of(site.openids[0])[0]
    me = site.as_citizen(site.openids[0]).get("/me").text
    assert claim.code in me and "领奖码" in me and 'id="claims"' in me
    assert claim.code not in site.as_citizen(site.openids[1]).get("/me").text
    http = console(site)
    looked = http.get("/console/review/claims", params={"code": claim.code.replace("-", "").lower()}).text
    assert 'id="redeem-form"' in looked and claim.code in looked
    token = csrf_token(site.c.http.codec.secret, VALIDATOR)
    before = site.counts()
    bad = [
        ({"csrf": token, "code": "not-a-code!"}, 422, "格式不正确"),
        ({"csrf": token, "code": "AAAA-AAAA-AAAA"}, 404, "不存在"),
        ({"csrf": token, "code": claim.code, "week": "2026-W46"}, 409, "不属于本周"),
        ({"csrf": "0" * 64, "code": claim.code}, 403, ""),
    ]
    for data, status, says in bad:
        r = http.post("/console/review/claims/redeem", data=data, headers=HTML, follow_redirects=False)
        assert r.status_code == status and says in r.text, (data, r.status_code)
    assert site.counts() == before
    ok = http.post("/console/review/claims/redeem", data={"csrf": token, "code": claim.code}, follow_redirects=False)
    assert ok.status_code == 303 and "已核销" in http.get(ok.headers["location"]).text
    used = http.post("/console/review/claims/redeem", data={"csrf": token, "code": claim.code}, headers=HTML)
    assert used.status_code == 409 and "已使用" in used.text
    assert "已领取" in site.as_citizen(site.openids[0]).get("/me").text
    # the rest expire after the claim deadline
    late = site.c.review.claims_of(site.openids[1])[0]
    site.c.clock.set(late.expires_at + timedelta(seconds=1))  # type: ignore[attr-defined]
    http = console(site)
    expired = http.post("/console/review/claims/redeem", data={"csrf": token, "code": late.code}, headers=HTML)
    assert expired.status_code == 409 and "已过期" in expired.text


def test_the_payout_export_is_for_admins_and_audited(site: Site) -> None:
    http = console(site, ADMIN_TOKEN)
    assert http.get(f"/console/review/payouts/{WEEK}", headers=HTML).status_code == 404  # not final yet
    finalize(site)
    http = console(site, ADMIN_TOKEN)
    r = http.get(f"/console/review/payouts/{WEEK}")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 81 and rows[1][4] == "市民000号"
    x = http.get(f"/console/review/payouts/{WEEK}", params={"format": "xlsx"})
    book = load_workbook(io.BytesIO(x.content))
    assert book.active is not None and book.active.max_row == 81
    with site.c.read() as s:
        exports = s.scalars(select(AuditEntry).where(AuditEntry.action == "payout_export")).all()
    assert len(exports) == 2 and all(e.actor == "admin-1" for e in exports)
    assert http.get(f"/console/review/payouts/{WEEK}", params={"format": "pdf"}, headers=HTML).status_code == 422
    assert http.get("/console/review/payouts/2026-48", headers=HTML).status_code == 422
    validator = console(site)
    refused = validator.get(f"/console/review/payouts/{WEEK}")
    assert refused.status_code == 403
    assert "payout-csv" not in validator.get("/console/review/claims", params={"week": WEEK}).text
    assert "payout-csv" in console(site, ADMIN_TOKEN).get("/console/review/claims", params={"week": WEEK}).text
    bearer = site.as_stranger().get(
        f"/console/review/payouts/{WEEK}", headers={"Authorization": f"Bearer {VALIDATOR_TOKEN}"}
    )
    assert bearer.status_code == 403
    with site.c.read() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "payout_export")).all()) == 2
