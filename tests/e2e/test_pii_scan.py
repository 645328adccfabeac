"""No public page or API response contains an openid, a full phone number, an e-mail or a full name.

Citizens with distinctive personal data earn points through the real API (PostgreSQL, real Redis), last week is
closed and published (outbox), then every public page and API, the published article, the WeChat rank replies
and each citizen's own views are fetched, and every body is scanned (raw, HTML-unescaped, URL-decoded and, for
JSON, re-serialised without escapes) for any citizen's personal data. The citizen's own 我的 page and standing
may not show their phone or openid either, nor anyone else's personal data.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, SetBan
from rewards.clock import FixedClock, IsoWeek
from rewards.http.session import CITIZEN_COOKIE, CitizenSession, SessionCodec
from rewards.publish.outbox import OutboxPublisher
from tests.conftest import ADMIN_TOKEN, START, MakeContainer, test_settings

WECHAT_TOKEN = "pii-wechat-token"
OPEN311_KEY = "test-open311-key"


@dataclass(frozen=True)
class Person:
    """A citizen with personal data that must never be published."""

    openid: str
    name: str | None
    phone: str | None
    district: str
    verified: bool = True
    email: str | None = None

    def secrets(self) -> list[str]:
        """What must not appear: the openid, the full name (2+ characters), the phone as given and as digits."""
        found = [self.openid]
        if self.name and len(self.name) >= 2:  # a one-character name cannot be told apart from ordinary text
            found.append(self.name)
        if self.phone:
            found += [self.phone, "".join(ch for ch in self.phone if ch.isdigit())[-11:]]
        if self.email:
            found.append(self.email)
        return found


PEOPLE = [
    Person("oPII-ouyang-0001", "欧阳娜娜", "13912345678", "城关区"),
    Person("oPII-li-0002", "李四", "13800001111", "七里河区"),
    Person("oPII-wang-0003", "王", None, "城关区"),
    Person("oPII-phone-0004", None, "+86 137 2222 3333", "城关区"),
    Person("oPII-latin-0005", "Zhang Sanfeng", "15011112222", "七里河区", verified=False),
    Person("oPII-banned-0006", "赵钱孙", "18899990000", "城关区"),
]
OPEN311_PERSON = Person(
    "email:pii.person@example.com", "孙悟空", "13566667777", "城关区", False, "pii.person@example.com"
)
EVERYONE = [*PEOPLE, OPEN311_PERSON]


def leaks(text: str, people: list[Person]) -> list[str]:
    """Return every piece of the people's personal data found in a body, in any of its encodings."""
    variants = [text, html.unescape(text), unquote(text)]
    with contextlib.suppress(ValueError):
        variants.append(json.dumps(json.loads(text), ensure_ascii=False))
    return sorted({s for p in people for s in p.secrets() if any(s in v for v in variants)})


def test_the_scan_finds_personal_data_however_it_is_encoded() -> None:
    p = PEOPLE[0]
    for body in (
        f"<td>{p.name}</td>",
        json.dumps({"name": p.name}),  # \\u escapes
        "<td>&#27431;&#38451;&#23068;&#23068;</td>",  # HTML character references
        f"/leaderboard?who={quote(p.openid)}",
        f'{{"phone": "{p.phone}"}}',
    ):
        assert leaks(body, [p]), body
    assert leaks("<td>欧**娜</td><td>139****5678</td><td>匿名市民</td>", [p]) == []


# -- the seeded program ------------------------------------------------------------------------------------------


@pytest.fixture
def pii(pg_engine: Engine, make_container: MakeContainer, tmp_path: Path) -> Container:
    s = test_settings(
        wechat_token=WECHAT_TOKEN,
        outbox_dir=tmp_path / "outbox",
        wechat_callback_max_skew_seconds=0,
        rate_limit_per_ip=10**6,
        rate_limit_per_citizen=10**6,
        prize_tiers=[
            {"first": 1, "last": 1, "name": "一等奖", "value": 500},
            {"first": 2, "last": 3, "name": "二等奖", "value": 200},
        ],
    )
    return make_container(s, engine=pg_engine, publisher=OutboxPublisher(s.outbox_dir), sleep=lambda _: None)


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def seed(http: TestClient, c: Container) -> list[str]:
    """Award everyone points last week and this week (distinct totals), ban one; return the case ids."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    case_ids: list[str] = []
    for week_shift in (7, 0):
        clock.set(START - timedelta(days=week_shift))
        for i, p in enumerate(PEOPLE):
            for n in range(len(PEOPLE) - i):
                case_id = f"PII-{week_shift}-{i}-{n}"
                reporter = {"openid": p.openid, "name": p.name, "phone": p.phone, "verified": p.verified}
                reporter["district"] = p.district
                body = {"case_id": case_id, "category": "street_lamp", "lat": 36.06 + i / 100, "lon": 103.83}
                body |= {"district": p.district, "description": "路灯不亮", "reporter": reporter}
                assert http.post("/api/v1/cases", json=body, headers=admin()).status_code == 201
                r = http.post(f"/api/v1/cases/{case_id}/verdict", json={"verdict": "valid"}, headers=admin())
                assert r.status_code == 200, r.text
                case_ids.append(case_id)
                clock.advance(minutes=1)
    # a citizen known to Open311 by e-mail, with a name and a phone
    form = {
        "api_key": OPEN311_KEY,
        "service_code": "debris",
        "lat": "36.07",
        "long": "103.84",
        "email": OPEN311_PERSON.email,
    }
    form |= {"last_name": "孙", "first_name": "悟空", "phone": OPEN311_PERSON.phone, "description": "建筑垃圾"}
    r = http.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 201, r.text
    [created] = r.json()
    case_ids.append(created["service_request_id"])
    r = http.post(f"/api/v1/cases/{created['service_request_id']}/verdict", json={"verdict": "valid"}, headers=admin())
    assert r.status_code == 200
    with c.uow() as uow:
        c.flows.set_banned(uow, SetBan(PEOPLE[5].openid, True, "刷分"), Actor("admin-1", "console"))
    c.closer.close(IsoWeek.parse("2026-W47"))
    c.publishing.publish("2026-W47")
    return case_ids


def rank_reply(http: TestClient, openid: str) -> dict[str, str]:
    """The WeChat rank reply to a citizen (plain mode): its fields."""
    ts, nonce = "1795572000", f"n-{openid}"  # a signed (timestamp, nonce) is admitted once: one per message
    q = {"signature": hashlib.sha1("".join(sorted([WECHAT_TOKEN, ts, nonce])).encode()).hexdigest()}
    q |= {"timestamp": ts, "nonce": nonce}
    xml = (
        f"<xml><ToUserName><![CDATA[gh_pii]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[排名]]></Content></xml>"
    )
    r = http.post("/wechat/callback", params=q, content=xml.encode())
    assert r.status_code == 200, r.text
    fields: dict[str, str] = xmltodict.parse(r.text)["xml"]
    return fields


def public_urls(case_ids: list[str]) -> list[str]:
    districts = sorted({p.district for p in PEOPLE})
    urls = ["/", "/me", "/rules", "/weeks", "/weeks/2026-W47", "/weeks/2026-W48", "/auth/session"]
    urls += ["/leaderboard", "/leaderboard?week=2026-W47", "/leaderboard/all-time"]
    urls += [f"/leaderboard/districts/{quote(d)}" for d in districts]
    urls += [f"/leaderboard/districts/{quote(d)}?week=2026-W47" for d in districts]
    urls += ["/api/v1/leaderboards/weekly", "/api/v1/leaderboards/weekly?week=2026-W47"]
    urls += ["/api/v1/leaderboards/all-time", "/api/v1/leaderboards/all-time?limit=200"]
    urls += ["/stats", "/stats?week=2026-W47", "/stats?month=2026-11", "/api/v1/stats"]  # the public record
    urls += ["/api/v1/stats/weeks/2026-W47", "/api/v1/stats/weeks/2026-W48", "/api/v1/stats/months/2026-11"]
    urls += [
        f"/api/v1/leaderboards/districts/{quote(d)}/weekly?week={w}"
        for d in districts
        for w in ("2026-W47", "2026-W48")
    ]
    for fmt in ("json", "xml"):
        urls += [f"/open311/v2/requests.{fmt}", f"/open311/v2/services.{fmt}", f"/open311/v2/discovery.{fmt}"]
        urls += [f"/open311/v2/requests.{fmt}?service_request_id={','.join(case_ids)}"]
        urls += [f"/open311/v2/requests/{cid}.{fmt}" for cid in case_ids[::5]]
    return urls


def test_no_public_response_carries_personal_data(pii: Container) -> None:
    with TestClient(create_app(pii)) as http:
        case_ids = seed(http, pii)
        found: dict[str, list[str]] = {}
        checked = 0
        for url in public_urls(case_ids):
            r = http.get(url)
            assert r.status_code in (200, 404), (url, r.status_code, r.text[:200])
            checked += r.status_code == 200
            if bad := leaks(r.text, EVERYONE):
                found[url] = bad
        # the published article as it went out
        outbox = Path(pii.settings.outbox_dir)
        for path in sorted(outbox.glob("2026-W47.*")):
            if path.suffix in (".html", ".json") and (bad := leaks(path.read_text(encoding="utf-8"), EVERYONE)):
                found[str(path.name)] = bad
        # WeChat's rank reply: addressed to the citizen's openid (the protocol), never containing it or anyone's data
        for p in PEOPLE:  # (the Open311 citizen is no WeChat user)
            reply = rank_reply(http, p.openid)
            assert reply["ToUserName"] == p.openid and "积分" in reply["Content"]
            shown = {k: v for k, v in reply.items() if k != "ToUserName"}
            if bad := leaks(json.dumps(shown, ensure_ascii=False), EVERYONE):
                found[f"WeChat reply to {p.openid}"] = bad
        # a citizen's own views: their own phone and openid stay off the page; nobody else's data appears
        for p in PEOPLE[:2]:
            http.cookies.set(CITIZEN_COOKIE, SessionCodec(pii.settings).dump_citizen(CitizenSession(p.openid)))
            others = [q for q in EVERYONE if q is not p]
            mine = Person(p.openid, None, p.phone, p.district)
            for url in ("/me", f"/api/v1/citizens/{p.openid}/standing", "/leaderboard"):
                r = http.get(url)
                assert r.status_code == 200, (url, r.text[:200])
                if bad := leaks(r.text, [*others, mine]):
                    found[f"{url} as {p.openid}"] = bad
            http.cookies.clear()
    assert checked >= 40  # the pages really answered
    assert found == {}


def test_the_boards_show_masked_names_and_phones(pii: Container) -> None:
    with TestClient(create_app(pii)) as http:
        seed(http, pii)
        rows = http.get("/api/v1/leaderboards/weekly", params={"week": "2026-W47"}).json()["rows"]
        page = http.get("/leaderboard", params={"week": "2026-W47"}).text
        article = http.get("/weeks/2026-W47").text
    names = [r["name"] for r in rows]
    assert names[:6] == ["欧**娜", "李*", "*", "861******3333", "Z***********g", "赵*孙"]  # by points (+86 kept)
    assert all(shown in page for shown in ("欧**娜", "李*", "861******3333"))
    assert "欧**娜" in article and "李*" in article  # the prize list (three places here)
    assert "赵*孙" not in article  # banned: off the prize list
    assert not any(r["eligible"] for r in rows if r["name"] in ("Z***********g", "赵*孙"))
