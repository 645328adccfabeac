"""Milestones over HTTP: /me lists each one with the cases or weeks that earned it, /rules states the thresholds
from the same objects, and the WeChat rank reply mentions a newly reached milestone once (a retry of the same
message gets the same reply)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from wechatpy.crypto import WeChatCrypto

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.clock import FixedClock, IsoWeek
from rewards.config import Settings
from tests.conftest import START, MakeContainer, test_settings
from tests.e2e.test_wechat_callback import AES_KEY, APP_ID, TEXT, TOKEN, content, post, query

ACTOR = Actor("validator-1", "console")
ME = Reporter("o-milestones", name="张三明", phone="13812341234", district="城关区", verified=True)
OTHER = Reporter("o-neighbour", name="李四", district="城关区", verified=True)
WEEKS = [IsoWeek(2026, 45), IsoWeek(2026, 46), IsoWeek(2026, 47)]
MENTION = "【新里程碑】恭喜您达成"


@pytest.fixture
def settings() -> Settings:  # overrides conftest's: the container uses it
    return test_settings(dev_login=True, wechat_token=TOKEN, wechat_app_id=APP_ID, wechat_aes_key=AES_KEY)


def seed_milestones(c: Container, weeks: list[IsoWeek] = WEEKS) -> list[str]:
    """Closed weeks (three by default): ME files 4 valid cases a week (the 2nd voided later), a neighbour 1 a week;
    return ME's case ids."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    now = clock.now()
    mine: list[str] = []
    for week in weeks:
        clock.set(week.start(c.settings.tz) + timedelta(hours=2))
        for n, who in enumerate([ME] * 4 + [OTHER]):
            case_id = f"LZ{week.week}{n:02d}"
            clock.advance(minutes=30)
            with c.uow() as uow:
                c.flows.report(uow, ReportCase(case_id, "street_lamp", clock.now(), reporter=who), ACTOR)
                c.flows.verdict(uow, GiveVerdict(case_id, "valid", reason="情况属实"), ACTOR)
            if who is ME:
                mine.append(case_id)
    clock.set(now)
    with c.uow() as uow:  # found out later: the 2nd case no longer counts, so the 10th valid one is the 11th filed
        c.flows.void(uow, VoidCase(mine[1], "摆拍"), ACTOR)
    for week in weeks:
        c.closer.close(week)
    return mine


def sent_twice(http: TestClient, xml: str) -> tuple[Any, Any]:
    """WeChat's retry: the very same signed URL and encrypted body, sent again."""
    q = query(http)
    envelope = xmltodict.parse(WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(xml, q["nonce"], q["timestamp"]))
    q.update(encrypt_type="aes", msg_signature=envelope["xml"]["MsgSignature"])
    encrypted = envelope["xml"]["Encrypt"]
    body = f"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    headers = {"Content-Type": "text/xml"}
    first = http.post("/wechat/callback", params=q, content=body, headers=headers)
    return first, http.post("/wechat/callback", params=q, content=body, headers=headers)


def sign_in(http: TestClient, openid: str) -> None:
    r = http.get("/auth/dev-login", params={"openid": openid, "next": "/me"}, follow_redirects=False)
    assert r.status_code in (302, 303, 307), r.text


def test_me_explains_each_milestone_with_its_cases_and_weeks(client: TestClient, container: Container) -> None:
    mine = seed_milestones(container)
    sign_in(client, ME.openid)
    html = client.get("/me").text
    assert 'id="milestones"' in html and "已达成 4 项" in html
    first = html.split('data-milestone="valid_1"')[1].split("</details>")[0]
    assert "首次有效举报" in first and mine[0] in first
    tenth = html.split('data-milestone="valid_10"')[1].split("</details>")[0]
    assert "累计 10 件有效举报" in tenth and "第 10 件有效举报" in tenth and mine[10] in tenth
    assert mine[9] not in tenth  # the void moved the 10th valid report on by one
    listed = html.split('data-milestone="prize_first"')[1].split("</details>")[0]
    assert "2026年第45周" in listed and "获奖名单第 1 名（一等奖）" in listed
    top = html.split('data-milestone="district_top"')[1].split("</details>")[0]
    assert all(f"{w.label()}：城关区周榜第一" in top for w in WEEKS)
    assert "已有 11 件有效举报，再有 39 件即可达成“累计 50 件有效举报”" in html
    assert "连续 4 周获奖" in html.split('id="milestone-next"')[1]  # not reached: three weeks in a row so far
    assert "撤销后不再计入" in html
    assert "13812341234" not in html and ME.openid not in html

    sign_in(client, OTHER.openid)
    other = client.get("/me").text
    assert "首次有效举报" in other and 'data-milestone="district_top"' not in other


def test_me_for_a_newcomer_says_how_to_reach_the_first(client: TestClient) -> None:
    sign_in(client, "o-newcomer")
    html = client.get("/me").text
    assert "暂未上榜" in html and "还没有达成里程碑" in html and 'data-milestone="' not in html
    assert "已有 0 件有效举报，再有 1 件即可达成“首次有效举报”" in html


def test_rules_state_the_thresholds_the_engine_uses(db_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(test_settings(milestone_valid_reports=[1, 3, 7], milestone_streak_weeks=3), engine=db_engine)
    assert c.milestones.rules.valid_reports == (1, 3, 7) and c.milestones.rules.streak_weeks == 3
    with TestClient(create_app(c)) as http:
        html = http.get("/rules").text
    section = html.split('id="milestone-rules"')[1]
    assert "首次有效举报" in section and "累计 3 件有效举报" in section and "累计 7 件有效举报" in section
    assert "连续 3 周获奖" in section and "累计 10 件" not in section and "不改变积分、排名和奖励" in section


def test_the_rank_reply_mentions_a_new_milestone_once(client: TestClient, container: Container) -> None:
    seed_milestones(container)
    first = content(post(client, TEXT.format(openid=ME.openid, content="排名"), safe=True), ME.openid, safe=True)
    assert first.endswith(
        "\n【新里程碑】恭喜您达成“首次有效举报”、“累计 10 件有效举报”、“首次登上周获奖名单”、“区县周榜第一”！"
        "在“我的”页面可查看详情。"
    )
    assert first.startswith("【我的积分】")
    again = content(post(client, TEXT.format(openid=ME.openid, content="积分"), safe=True), ME.openid, safe=True)
    assert MENTION not in again and first.startswith(again)
    # a retry of one message (same signed URL, same body) gets the same reply, news included
    xml = TEXT.format(openid=OTHER.openid, content="排名")
    one, two = (content(r, OTHER.openid, safe=True) for r in sent_twice(client, xml))
    assert one == two and "“首次有效举报”" in one
    three = content(post(client, xml, safe=True), OTHER.openid, safe=True)
    assert MENTION not in three
    # another valid report does not reach a new threshold: still nothing to mention
    with container.uow() as uow:
        container.flows.report(uow, ReportCase("LZX1", "street_lamp", START, reporter=OTHER), ACTOR)
        container.flows.verdict(uow, GiveVerdict("LZX1", "valid"), ACTOR)
    assert MENTION not in content(post(client, xml, safe=True), OTHER.openid, safe=True)
