"""End to end against the stand-in WeChat server: a crash between any two calls resumes without a second draft
or post, every returned id is stored before the next call, and winners are notified once."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from rewards.bootstrap import Container
from rewards.publish.models import PUBLISHED, Publication, WinnerNotice
from rewards.publish.notify import client_msg_id
from tests.fakes import publish_env
from tests.fakes.publish_env import WEEK, CrashingPublisher, SimulatedCrash, close_w47, service
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container

# every call of a normal run, in order (publish_ticks=1: the first poll says "publishing", the second "published")
CRASH_POINTS = [
    (method, when, nth)
    for method, nth in [
        ("upload_content_image", 1),
        ("add_cover", 1),
        ("add_draft", 1),
        ("submit", 1),
        ("publish_status", 1),
        ("publish_status", 2),
    ]
    for when in ("before", "after")
]


@pytest.mark.parametrize(("method", "when", "nth"), CRASH_POINTS, ids=[f"{w}-{m}-{n}" for m, w, n in CRASH_POINTS])
def test_a_crash_between_any_two_calls_resumes_without_a_second_draft_or_post(
    wx_container: Container, wx: WeChatServer, method: str, when: str, nth: int
) -> None:
    close_w47(wx_container, winners=5)
    crashing = CrashingPublisher(wx_container.publisher, method, when, nth)
    with pytest.raises(SimulatedCrash):
        service(wx_container, publisher=crashing).publish(WEEK)  # type: ignore[arg-type]
    pub = service(wx_container).publish(WEEK)  # the restarted process
    assert pub.state == PUBLISHED
    assert wx.state.drafts_created == 1 and wx.state.submits == 1 and len(wx.posts()) == 1
    post = wx.posts()[0]
    assert pub.article_url == f"https://mp.weixin.qq.com/s/{post.article_id}" and pub.article_id == post.article_id
    assert post.articles[0]["content"] == pub.content and post.articles[0]["thumb_media_id"] == pub.thumb_media_id
    assert len(wx.calls_to("media/uploadimg")) <= 2 and not wx.state.filtered_images


class AuditingPublisher:
    """Checks, before every call, that each id returned so far is already committed on the record."""

    FIELDS: ClassVar[dict[str, str]] = {
        "upload_content_image": "content_image_url",
        "add_cover": "thumb_media_id",
        "add_draft": "draft_media_id",
        "submit": "publish_id",
    }

    def __init__(self, container: Container) -> None:
        self.container, self.inner, self.channel = container, container.publisher, container.publisher.channel
        self.returned: list[tuple[str, Any]] = []
        self.checked = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)

        def wrapped(*args: Any) -> Any:
            with self.container.read() as session:
                stored = session.scalars(select(Publication).where(Publication.week == WEEK)).one()
            for method, value in self.returned:
                assert getattr(stored, self.FIELDS[method]) == value, f"{method} -> {value!r} not stored before {name}"
                self.checked += 1
            result = target(*args)
            if name in self.FIELDS:
                self.returned.append((name, result))
            return result

        return wrapped


def test_every_returned_id_is_committed_before_the_next_call(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container)
    auditor = AuditingPublisher(wx_container)
    assert service(wx_container, publisher=auditor).publish(WEEK).state == PUBLISHED  # type: ignore[arg-type]
    assert [m for m, _ in auditor.returned] == ["upload_content_image", "add_cover", "add_draft", "submit"]
    assert auditor.checked >= 1 + 2 + 3 + 4 * 2  # every later call re-checked every earlier id


def test_winners_are_notified_once_each_even_across_a_crash(wx_container: Container, wx: WeChatServer) -> None:
    ids = close_w47(wx_container, winners=4)
    wx_container.settings.wechat_winner_template_id = "tpl-winner"
    crashing = CrashingPublisher(wx_container.publisher, "send_template", "after", nth=2)
    with pytest.raises(SimulatedCrash):
        service(wx_container, publisher=crashing).publish(WEEK)  # type: ignore[arg-type]
    assert service(wx_container).publish(WEEK).state == PUBLISHED
    assert len(wx.state.deliveries) == 4  # the second notice was sent before the crash and not again after
    assert len(wx.calls_to("message/template/send")) == 5  # it was asked twice; WeChat dropped the repeat
    with wx_container.read() as session:
        notices = session.scalars(select(WinnerNotice).order_by(WinnerNotice.id)).all()
    assert [(n.citizen_id, n.state) for n in notices] == [(cid, "sent") for cid in ids]
    assert {n.client_msg_id for n in notices} == {client_msg_id(WEEK, cid) for cid in ids}
    first = wx.state.deliveries[0]
    assert first["template_id"] == "tpl-winner" and "第1名" in first["data"]["keyword1"]["value"]
    service(wx_container).publish(WEEK)
    assert len(wx.calls_to("message/template/send")) == 5  # all sent: nothing more to do


def test_a_refused_notice_is_recorded_without_failing_the_publication(
    wx_container: Container, wx: WeChatServer
) -> None:
    close_w47(wx_container, winners=2)
    wx_container.settings.wechat_winner_template_id = "tpl-unknown"
    assert service(wx_container).publish(WEEK).state == PUBLISHED
    with wx_container.read() as session:
        notices = session.scalars(select(WinnerNotice)).all()
    assert {(n.state, n.error_code) for n in notices} == {("failed", 40037)}
