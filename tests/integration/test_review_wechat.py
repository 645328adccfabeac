"""The 定榜 against the stand-in WeChat server (PostgreSQL and SQLite): the second publication and the final winner
notices survive what the first publication survives (expired token, 5xx, dropped answers, a crash between any two
calls), go out exactly once, and each notice carries the winner's claim code."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rewards.bootstrap import Container
from rewards.publish.models import PUBLISHED, WinnerNotice
from rewards.publish.notify import client_msg_id
from rewards.publish.port import FINAL, Publisher
from rewards.review.service import ReviewService
from tests.fakes import publish_env
from tests.fakes.publish_env import WEEK, CrashingPublisher, SimulatedCrash, close_w47, service
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container
WINNERS = 5

CRASH_POINTS = [
    (method, when, nth)
    for method, nth in [
        ("upload_content_image", 1),
        ("add_cover", 1),
        ("add_draft", 1),
        ("submit", 1),
        ("publish_status", 1),
        ("publish_status", 2),
        ("send_template", 1),
        ("send_template", 3),
    ]
    for when in ("before", "after")
]


def review(c: Container, publisher: Publisher | None = None) -> ReviewService:
    """A review service publishing through `publisher` (a crashing one, say) with instant sleeps."""
    return ReviewService(c.db, c.clock, c.settings, c.flows, service(c, publisher=publisher), c.leases)


def notice_published(c: Container, wx: WeChatServer) -> list[int]:
    """W47 closed, its notice published on the stand-in, the clock at the end of the objection window."""
    c.settings.wechat_winner_template_id = "tpl-winner"
    ids = close_w47(c, winners=WINNERS)
    assert service(c).publish(WEEK).state == PUBLISHED
    deadline = c.review.status(WEEK).deadline
    assert deadline is not None
    c.clock.set(deadline)  # type: ignore[attr-defined]  # the test container's FixedClock
    return ids


def assert_announced_once(c: Container, wx: WeChatServer, ids: list[int]) -> None:
    final = c.publishing.get(WEEK, FINAL)
    assert final is not None and final.state == PUBLISHED
    assert wx.state.drafts_created == 2 and wx.state.submits == 2 and len(wx.posts()) == 2  # notice + 定榜
    titles = sorted(p.articles[0]["title"] for p in wx.posts())
    assert len(set(titles)) == 2 and any("定榜" in t for t in titles)
    with c.read() as session:
        notices = session.scalars(select(WinnerNotice).where(WinnerNotice.kind == FINAL)).all()
    assert sorted((n.citizen_id, n.state) for n in notices) == sorted((cid, "sent") for cid in ids)
    assert {n.client_msg_id for n in notices} == {client_msg_id(WEEK, cid, FINAL) for cid in ids}
    finals = [x for x in wx.state.deliveries if "定榜" in x["data"]["first"]["value"]]
    assert len(finals) == WINNERS  # each final winner told once (a repeat with the same key is dropped by WeChat)
    codes = {c.review.claims_of(openid)[0].code for openid in openids(c, ids)}
    assert {x["data"]["remark"]["value"].split("：")[1].split("，")[0] for x in finals} == codes
    status = c.review.status(WEEK)
    assert status.phase == "final" and status.announced_at is not None


def openids(c: Container, ids: list[int]) -> list[str]:
    from rewards.cases.models import Citizen  # local: only this helper needs the ORM class

    with c.read() as session:
        return list(session.scalars(select(Citizen.openid).where(Citizen.id.in_(ids))).all())


def test_the_final_list_is_announced_once_with_codes(wx_container: Container, wx: WeChatServer) -> None:
    ids = notice_published(wx_container, wx)
    out = review(wx_container).finalize(WEEK)
    assert out.finalized and out.announced and out.notified and out.publication_state == PUBLISHED
    assert_announced_once(wx_container, wx, ids)
    calls = len(wx.calls)
    assert review(wx_container).run_due() == [] and len(wx.calls) == calls  # nothing left to do


FAULTS = {
    "expired token": lambda wx: wx.expire_tokens(),
    "5xx on draft/add": lambda wx: wx.inject("draft/add", "http", 502, times=2),
    "dropped draft/add": lambda wx: wx.inject("draft/add", "drop"),
    "dropped submit answer": lambda wx: wx.inject("freepublish/submit", "drop_after"),
    "5xx on template send": lambda wx: wx.inject("message/template/send", "http", 503, times=2),
    "dropped template answer": lambda wx: wx.inject("message/template/send", "drop_after"),
    "system busy everywhere": lambda wx: wx.inject("*", "errcode", -1, times=3),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_final_publication_survives_faults(wx_container: Container, wx: WeChatServer, fault: str) -> None:
    ids = notice_published(wx_container, wx)
    FAULTS[fault](wx)
    out = review(wx_container).finalize(WEEK)
    assert out.announced and out.notified
    assert_announced_once(wx_container, wx, ids)


@pytest.mark.parametrize(("method", "when", "nth"), CRASH_POINTS, ids=[f"{w}-{m}-{n}" for m, w, n in CRASH_POINTS])
def test_a_crash_between_any_two_calls_of_the_final_resumes_once(
    wx_container: Container, wx: WeChatServer, method: str, when: str, nth: int
) -> None:
    ids = notice_published(wx_container, wx)
    crashing = CrashingPublisher(wx_container.publisher, method, when, nth)
    with pytest.raises(SimulatedCrash):
        review(wx_container, publisher=crashing).finalize(WEEK)  # type: ignore[arg-type]
    mid = wx_container.review.status(WEEK)
    assert mid.phase == "final" and mid.announced_at is None  # the final record and claims are in; announcing is not
    before = [c.code for c in wx_container.review.claims(WEEK)]
    results = review(wx_container).run_due()  # the restarted scheduler's sweep
    assert [r.week for r in results] == [WEEK] and results[0].announced
    assert_announced_once(wx_container, wx, ids)
    assert [c.code for c in wx_container.review.claims(WEEK)] == before  # codes were issued once
