"""Browsers get pages, API clients JSON, each with the right status (over HTTP; the browser tests see them too).

A browser navigating asks for text/html; the same URL asked for by an API client (httpx's default Accept) keeps
the JSON `{error, detail}` answer.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.demo import photo_url
from tests.conftest import VALIDATOR_TOKEN, MakeContainer, auth, test_settings

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_bad_week_is_a_page_for_a_browser_and_json_for_an_api_client(client: TestClient) -> None:
    page = client.get("/weeks/2026-W99", headers=BROWSER)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "周次格式不正确" in page.text and "<nav>" in page.text and '"error"' not in page.text
    api = client.get("/weeks/2026-W99")
    assert api.status_code == 422 and api.json()["error"] == "invalid_week"


def test_unknown_pages_and_bad_parameters_are_pages_for_browsers(client: TestClient) -> None:
    missing = client.get("/no-such-page", headers=BROWSER)
    assert missing.status_code == 404 and "页面不存在" in missing.text
    assert client.get("/no-such-page").json() == {"detail": "Not Found"}  # FastAPI's own answer, unchanged
    bad = client.get("/me?offset=-1", headers=BROWSER)
    assert bad.status_code == 422 and "offset" in bad.text and "参数有误" in bad.text
    assert client.get("/me?offset=-1").json()["detail"][0]["loc"] == ["query", "offset"]


def test_the_week_pages_say_what_they_are_with_the_right_status(client: TestClient, container: Container) -> None:
    # the clock stands in 2026-W48: this week and last week exist and explain, a future or ancient week does not
    this_week = client.get("/weeks/2026-W48", headers=BROWSER)
    assert this_week.status_code == 200 and "本周尚未结算" in this_week.text
    last_week = client.get("/weeks/2026-W47", headers=BROWSER)
    assert last_week.status_code == 200 and "正在结算" in last_week.text
    future = client.get("/weeks/2026-W50", headers=BROWSER)
    assert future.status_code == 404 and "还没有到来" in future.text
    ancient = client.get("/weeks/2020-W10", headers=BROWSER)
    assert ancient.status_code == 404 and "没有这一周的结算记录" in ancient.text
    for page in (this_week, future):
        assert 'href="/weeks" class="on"' in page.text  # the site's navigation, on the announcement pages too


def test_favicon_is_served(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert client.get("/static/web/icon.svg").status_code == 200


def test_a_wrong_console_token_shows_the_sign_in_form_with_a_message(client: TestClient) -> None:
    form = client.post("/auth/console/login", data={"token": "wrong"}, headers=BROWSER, follow_redirects=False)
    assert form.status_code == 401 and "访问令牌不正确" in form.text and 'id="token"' in form.text
    api = client.post("/auth/console/login", json={"token": "wrong"})
    assert api.status_code == 401 and api.json()["error"] == "unauthorized"
    right = client.post("/auth/console/login", data={"token": VALIDATOR_TOKEN}, headers=BROWSER, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/console"


def test_wechat_sign_in_without_wechat_explains_itself(container: Container, make_container: MakeContainer) -> None:
    demo = make_container(test_settings(dev_login=True), engine=container.engine)
    with TestClient(create_app(demo)) as http:
        page = http.get("/auth/wechat/login?next=/me", headers=BROWSER, follow_redirects=False)
        assert page.status_code == 503 and "尚未接入微信公众号" in page.text
        assert "开发环境登录" in page.text and 'id="dev-login"' in page.text  # the way in that does work here
        api = http.get("/auth/wechat/login?next=/me", follow_redirects=False)
        assert api.status_code == 503 and api.json()["error"] == "oauth_unconfigured"


def test_console_errors_are_chinese_pages_for_browsers(client: TestClient) -> None:
    stale_form = client.post(
        "/console/cases/X/verdict", data={"verdict": "valid", "csrf": "0" * 64}, headers={**BROWSER, **auth()}
    )
    assert stale_form.status_code == 403 and "请刷新页面后重试" in stale_form.text
    signed_out = client.get("/console", headers=BROWSER, follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/console/login"
    nobody = client.get("/console/citizens/999999", headers={**BROWSER, **auth()})
    assert nobody.status_code == 404 and "没有找到这位市民" in nobody.text and "返回审核台" in nobody.text


def test_api_docs_need_nothing_from_outside(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html and "tiangolo" not in html
        assert "/static/docs/" in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert client.get(f"/static/docs/{asset}").status_code == 200


def test_demo_pictures_are_served_for_every_default_category(client: TestClient, container: Container) -> None:
    for category in container.settings.categories:
        (url,) = photo_url(category.code)
        picture = client.get(url)
        assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/svg+xml"), url
        assert b"<script" not in picture.content and b"http" not in picture.content.replace(b"http://www.w3.org", b"")
