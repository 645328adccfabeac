"""Over HTTP: the /weeks/{week} page (preview, then as published) and the console's publication API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.models import Citizen
from rewards.web.console import csrf_token
from tests.conftest import ADMIN_TOKEN, VALIDATOR_TOKEN, MakeContainer, auth
from tests.fakes import publish_env
from tests.fakes.publish_env import WEEK, close_w47, service
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container
PUBLICATION = f"/api/v1/weeks/{WEEK}/publication"


@pytest.fixture
def outbox_container(container: Container, make_container: MakeContainer, tmp_path: Path) -> Container:
    """The service without WeChat credentials, its outbox in a temporary folder."""
    s = container.settings.model_copy(update={"outbox_dir": tmp_path / "outbox"})
    return make_container(s, engine=container.engine)


@pytest.fixture
def http(outbox_container: Container) -> Iterator[TestClient]:
    """HTTP client of the outbox-publishing service."""
    with TestClient(create_app(outbox_container)) as client:
        yield client


def test_the_week_page_before_closing_after_closing_and_once_published(
    http: TestClient, outbox_container: Container, tmp_path: Path
) -> None:
    missing = http.get(f"/weeks/{WEEK}")  # last week, before Monday's close: the page exists and says when
    assert missing.status_code == 200 and "正在结算" in missing.text
    ids = close_w47(outbox_container, winners=3)
    preview = http.get(f"/weeks/{WEEK}")
    assert preview.status_code == 200 and preview.headers["content-type"].startswith("text/html")
    assert "预览（尚未发布）" in preview.text and "<td>市**号</td>" in preview.text
    with outbox_container.read() as session:
        citizens = session.scalars(select(Citizen).where(Citizen.id.in_(ids))).all()
    for citizen in citizens:  # public page: masked names only, never openids
        assert citizen.openid not in preview.text and (citizen.name or "") not in preview.text
    pub = service(outbox_container).publish(WEEK)
    page = http.get(f"/weeks/{WEEK}")
    assert "已发布" in page.text and pub.content is not None and pub.content in page.text
    outbox_html = (tmp_path / "outbox" / f"{WEEK}.html").read_text(encoding="utf-8")
    assert pub.content in outbox_html  # the page shows what the outbox holds
    assert str(tmp_path) not in page.text  # the outbox path is not a public link


def test_the_publication_api_needs_the_publisher_role(http: TestClient, outbox_container: Container) -> None:
    assert http.get(PUBLICATION).status_code == 401
    assert http.get(PUBLICATION, headers=auth(VALIDATOR_TOKEN)).status_code == 403
    none_yet = http.get(PUBLICATION, headers=auth(ADMIN_TOKEN))
    assert none_yet.status_code == 404 and none_yet.json()["error"] == "not_found"
    close_w47(outbox_container)
    service(outbox_container).publish(WEEK)
    body = http.get(PUBLICATION, headers=auth(ADMIN_TOKEN)).json()
    assert (body["week"], body["channel"], body["state"], body["attempts"]) == (WEEK, "outbox", "published", 1)
    again = http.post(f"{PUBLICATION}/retry", headers=auth(ADMIN_TOKEN))
    assert again.status_code == 409 and again.json()["error"] == "not_failed"


@pytest.mark.parametrize("week", ["2026-48", "2026-W54", "W48", "2025-W53"])
def test_a_malformed_week_is_a_422_with_the_reason(http: TestClient, week: str) -> None:
    api = http.get(f"/api/v1/weeks/{week}/publication", headers=auth(ADMIN_TOKEN))
    for response in (http.get(f"/weeks/{week}"), api):
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_week" and response.json()["detail"]


def test_a_failed_publication_shows_its_reason_and_is_retried_over_http(
    wx_container: Container, wx: WeChatServer
) -> None:
    close_w47(wx_container)
    wx.inject("freepublish/submit", "errcode", 48001)
    failed = service(wx_container).publish(WEEK)
    assert failed.state == "failed"
    with TestClient(create_app(wx_container)) as client:
        body = client.get(PUBLICATION, headers=auth(ADMIN_TOKEN)).json()
        assert (body["state"], body["error_code"]) == ("failed", 48001)
        assert "api unauthorized" in body["error_message"] and body["draft_media_id"]
        page = client.get(f"/weeks/{WEEK}")
        assert "api unauthorized" not in page.text and "待发布" in page.text  # no internals on the public page
        asked = client.post(f"{PUBLICATION}/retry", headers=auth(ADMIN_TOKEN))
        assert asked.status_code == 202 and asked.json()["state"] == "drafted"  # resumes after its stored draft
        (done,) = wx_container.jobs.run_resume()  # the scheduler's sweep runs the retry
        assert done.state == "published"
        retried = client.get(PUBLICATION, headers=auth(ADMIN_TOKEN)).json()
        assert retried["state"] == "published" and retried["error_code"] is None and retried["attempts"] == 2
        assert wx.state.drafts_created == 1 and len(wx.posts()) == 1
        page = client.get(f"/weeks/{WEEK}")
        assert "已发布" in page.text and retried["article_url"] in page.text


@pytest.mark.parametrize(
    ("how", "endpoint", "resumes_from"),
    [("api", "draft/add", "pending"), ("api", "freepublish/submit", "drafted"), ("console", "draft/add", "pending")],
)
def test_asking_for_a_retry_over_http_makes_no_wechat_call(
    wx_container: Container, wx: WeChatServer, how: str, endpoint: str, resumes_from: str
) -> None:
    close_w47(wx_container)
    wx.inject(endpoint, "errcode", 48001)
    assert service(wx_container).publish(WEEK).state == "failed"
    calls = len(wx.calls)
    with TestClient(create_app(wx_container)) as client:
        if how == "api":
            asked = client.post(f"{PUBLICATION}/retry", headers=auth(ADMIN_TOKEN))
            assert asked.status_code == 202
        else:  # the console's retry button
            admin = wx_container.http.tokens.principal(ADMIN_TOKEN)
            assert admin is not None
            form = {"csrf": csrf_token(wx_container.http.codec.secret, admin)}
            asked = client.post(
                f"/console/weeks/{WEEK}/retry", headers=auth(ADMIN_TOKEN), data=form, follow_redirects=False
            )
            assert asked.status_code == 303 and "flash=" in asked.headers["location"]
        body = client.get(PUBLICATION, headers=auth(ADMIN_TOKEN)).json()
        assert (body["state"], body["error_code"], body["error_message"]) == (resumes_from, None, None)
        assert body["attempts"] == 1  # asked for, not yet run
        assert len(wx.calls) == calls  # the web worker never talked to WeChat
        again = client.post(f"{PUBLICATION}/retry", headers=auth(ADMIN_TOKEN))
        assert again.status_code == 409 and again.json()["error"] == "not_failed" and len(wx.calls) == calls
    (done,) = wx_container.jobs.run_resume()
    assert (done.state, done.attempts) == ("published", 2) and len(wx.calls) > calls
    assert wx.state.drafts_created == 1 and len(wx.posts()) == 1
