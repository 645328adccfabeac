"""The exactly-once publication state machine against the stand-in WeChat server and the outbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rewards.bootstrap import Container
from rewards.errors import Conflict
from rewards.locks import Lease
from rewards.publish.models import FAILED, PUBLISHED, SUBMITTED
from rewards.publish.outbox import OutboxPublisher
from rewards.publish.render import CONTENT_MAX
from tests.conftest import MakeContainer
from tests.fakes import publish_env
from tests.fakes.publish_env import WEEK, Sleeper, close_w47, service, wechat_settings
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container


def test_a_normal_week_publishes_once_with_the_right_content(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container, winners=3)
    pub = service(wx_container).publish(WEEK)
    assert pub.state == PUBLISHED and pub.channel == "wechat"
    assert pub.article_url == f"https://mp.weixin.qq.com/s/{pub.article_id}" and pub.published_at is not None
    assert [len(wx.calls_to(e)) for e in ("media/uploadimg", "material/add_material", "draft/add")] == [1, 1, 1]
    assert len(wx.calls_to("freepublish/submit")) == 1 and len(wx.posts()) == 1
    assert wx.calls_to("material/add_material")[0].query["type"] == "thumb"
    (article,) = wx.calls_to("draft/add")[0].body["articles"]
    assert article["title"] == "随手拍周榜｜2026年第47周获奖名单"
    assert article["thumb_media_id"] == pub.thumb_media_id and article["content"] == pub.content
    assert pub.content_image_url and f'<img src="{pub.content_image_url}"' in article["content"]
    assert "<tr><td>1</td><td>市**号</td><td>4</td><td>一等奖</td><td>500元</td></tr>" in article["content"]
    assert "市民0号" not in article["content"]
    assert article["content_source_url"] == "http://127.0.0.1:8000/leaderboard?week=2026-W47"
    assert len(article["content"]) < CONTENT_MAX and not wx.state.filtered_images
    assert wx.state.token_fetches == 1
    calls = len(wx.calls)
    again = service(wx_container).publish(WEEK)  # a second run (job fired twice) does nothing
    assert (again.state, again.attempts, len(wx.calls)) == (PUBLISHED, 1, calls)


def test_without_credentials_the_outbox_publishes(
    container: Container, make_container: MakeContainer, tmp_path: Path
) -> None:
    c = make_container(
        container.settings.model_copy(update={"outbox_dir": tmp_path / "outbox"}), engine=container.engine
    )
    assert isinstance(c.publisher, OutboxPublisher)
    close_w47(c, winners=2)
    pub = service(c).publish(WEEK)
    assert pub.state == PUBLISHED and pub.channel == "outbox"
    html = tmp_path / "outbox" / f"{WEEK}.html"
    assert pub.article_url == str(html.resolve())
    page = html.read_text(encoding="utf-8")
    assert pub.content is not None and pub.content in page and "<td>市**号</td>" in page
    assert "data:image/png;base64," in page  # self-contained on a bare machine
    meta = json.loads((tmp_path / "outbox" / f"{WEEK}.json").read_text(encoding="utf-8"))
    assert meta["state"] == "published" and meta["title"] == pub.title
    assert service(c).publish(WEEK).attempts == 1


def test_publishing_an_unclosed_week_is_refused(wx_container: Container) -> None:
    with pytest.raises(Conflict, match="not closed yet"):
        service(wx_container).publish(WEEK)


def test_an_expired_token_is_refreshed_once(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container)
    wx.inject("draft/add", "errcode", 42001)
    pub = service(wx_container).publish(WEEK)
    assert pub.state == PUBLISHED
    assert wx.state.token_fetches == 2 and wx.state.drafts_created == 1


def test_a_token_refused_forever_fails_without_looping(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container)
    wx.inject("*", "errcode", 40001, times=-1)
    pub = service(wx_container).publish(WEEK)
    assert (pub.state, pub.error_code) == (FAILED, 40001)
    assert "invalid credential" in (pub.error_message or "")
    assert wx.state.token_fetches == 2 and len(wx.calls_to("media/uploadimg")) == 2


def test_rate_limits_are_retried_with_backoff(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container)
    wx.inject("draft/add", "errcode", 45009, times=3)
    sleeper = Sleeper()
    pub = service(wx_container, sleeper).publish(WEEK)
    assert pub.state == PUBLISHED and wx.state.drafts_created == 1
    assert [d for d in sleeper.delays if d] == [0.5, 1.0, 2.0]  # doubling backoff (polls sleep 0 here)


def test_a_rate_limit_that_never_lifts_fails_with_its_code(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container)
    wx.inject("draft/add", "errcode", 45009, times=-1)
    pub = service(wx_container).publish(WEEK)
    assert (pub.state, pub.error_code) == (FAILED, 45009)
    assert "gave up after 4 attempts" in (pub.error_message or "")
    assert len(wx.calls_to("draft/add")) == 4 and wx.state.drafts_created == 0


@pytest.mark.parametrize("endpoint", ["media/uploadimg", "draft/add", "freepublish/submit", "freepublish/get"])
def test_server_errors_are_retried(wx_container: Container, wx: WeChatServer, endpoint: str) -> None:
    close_w47(wx_container)
    wx.inject(endpoint, "http", 502, times=2)
    wx.inject(endpoint, "errcode", -1)
    assert service(wx_container).publish(WEEK).state == PUBLISHED
    assert wx.state.drafts_created == 1 and wx.state.submits == 1 and len(wx.posts()) == 1


@pytest.mark.parametrize("kind", ["drop", "drop_after"])
@pytest.mark.parametrize("endpoint", ["draft/add", "freepublish/submit"])
def test_a_dropped_answer_never_duplicates_the_draft_or_the_post(
    wx_container: Container, wx: WeChatServer, endpoint: str, kind: str
) -> None:
    close_w47(wx_container)
    wx.inject(endpoint, kind)
    pub = service(wx_container).publish(WEEK)
    assert pub.state == PUBLISHED
    assert wx.state.drafts_created == 1 and wx.state.submits == 1 and len(wx.posts()) == 1
    assert pub.article_url == f"https://mp.weixin.qq.com/s/{wx.posts()[0].article_id}"


def test_a_timeout_waits_for_the_slow_call_and_adopts_its_draft(
    db_engine: Engine, make_container: MakeContainer, wx: WeChatServer, tmp_path: Path
) -> None:
    c = make_container(wechat_settings(wx, tmp_path, wechat_timeout_seconds=0.3), engine=db_engine)
    close_w47(c)
    wx.inject("draft/add", "slow", 1.0)
    pub = service(c, Sleeper(wx)).publish(WEEK)
    assert pub.state == PUBLISHED and wx.state.drafts_created == 1 and len(wx.calls_to("draft/add")) == 1


@pytest.mark.parametrize(("endpoint", "code"), [("draft/add", 48001), ("freepublish/submit", 53503)])
def test_terminal_errors_fail_with_the_reason_and_an_explicit_retry_resumes(
    wx_container: Container, wx: WeChatServer, endpoint: str, code: int
) -> None:
    close_w47(wx_container)
    wx.inject(endpoint, "errcode", code)
    svc = service(wx_container)
    pub = svc.publish(WEEK)
    assert (pub.state, pub.error_code) == (FAILED, code)
    assert len(wx.calls_to(endpoint)) == 1  # never retried blindly
    calls = len(wx.calls)
    assert svc.publish(WEEK).state == FAILED and len(wx.calls) == calls  # the scheduler does not retry it
    done = svc.retry(WEEK)
    assert (done.state, done.error_code, done.error_message, done.attempts) == (PUBLISHED, None, None, 2)
    assert wx.state.drafts_created == 1 and len(wx.posts()) == 1
    with pytest.raises(Conflict, match="only a failed publication"):
        svc.retry(WEEK)


def test_a_rejected_publication_fails_with_wechats_status(wx_container: Container, wx: WeChatServer) -> None:
    close_w47(wx_container)
    wx.next_outcome = 4
    pub = service(wx_container).publish(WEEK)
    assert (pub.state, pub.error_code) == (FAILED, 4)
    assert "平台审核不通过" in (pub.error_message or "")


def test_a_slow_publication_stays_submitted_and_a_later_run_finishes_it(
    wx_container: Container, wx: WeChatServer
) -> None:
    close_w47(wx_container)
    wx.publish_ticks = 7  # more than publish_max_polls (5)
    first = service(wx_container).publish(WEEK)
    assert first.state == SUBMITTED and first.publish_id
    second = service(wx_container).publish(WEEK)
    assert second.state == PUBLISHED and wx.state.submits == 1 and wx.state.drafts_created == 1


def test_a_second_process_is_turned_away_while_one_publishes(wx_container: Container) -> None:
    close_w47(wx_container)
    key = f"{wx_container.settings.leaderboard_key_prefix}:publish:{WEEK}:lock"
    holder = Lease(wx_container.redis, key, 30)
    assert holder.acquire()
    with pytest.raises(Conflict, match="being published by another process"):
        service(wx_container).publish(WEEK)
    holder.release()
    assert service(wx_container).publish(WEEK).state == PUBLISHED


def test_a_missing_cover_image_fails_with_the_reason(
    db_engine: Engine, make_container: MakeContainer, wx: WeChatServer, tmp_path: Path
) -> None:
    c = make_container(wechat_settings(wx, tmp_path, wechat_cover_image=tmp_path / "nope.jpg"), engine=db_engine)
    close_w47(c)
    pub = service(c).publish(WEEK)
    assert pub.state == FAILED and "cannot read image" in (pub.error_message or "") and "nope.jpg" in pub.error_message
    assert not wx.calls_to("material/add_material") and not wx.calls_to("draft/add")
