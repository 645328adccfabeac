"""Real Chromium: the API docs with every request outside the service blocked, the status a browser gets for
each kind of page, and every page on a 390 px phone without horizontal scrolling."""

from __future__ import annotations

from typing import Any

import pytest

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.clock import FixedClock, IsoWeek
from tests.conftest import START
from tests.e2e.browser import DESKTOP, FITS, NAV_OUTSIDE, PHONE, block_outside, save_screenshot, sign_in_console

pytestmark = pytest.mark.browser
CITY = Actor("city-case-system", "intake")
VALIDATOR = Actor("validator-1", "console")
OPERATIONS = ("/api/v1/cases/{case_id}/verdict", "/api/v1/citizens/{openid}/standing", "/intake/v1/events")


def test_api_docs_work_with_everything_outside_the_service_blocked(browser: Any, site: tuple[Container, str]) -> None:
    _, url = site
    page = browser.new_context(viewport=DESKTOP).new_page()
    blocked = block_outside(page, url)
    page.goto(f"{url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) >= 20
    for path in OPERATIONS:
        assert any(path in p.replace("\u200b", "") for p in paths), path
    save_screenshot(page, "docs")
    page.goto(f"{url}/redoc")
    page.wait_for_selector("[data-section-id*='operation/']", timeout=30_000)
    assert page.locator("[data-section-id*='operation/']").count() >= 20
    assert "Give Verdict" in page.inner_text("body")
    assert blocked == []  # nothing was even asked of the internet


def test_a_browser_gets_pages_with_the_right_status(browser: Any, site: tuple[Container, str]) -> None:
    _, url = site
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    bad = page.goto(f"{url}/weeks/2026-W99")
    assert bad.status == 422 and "周次格式不正确" in page.inner_text("#error-page")
    assert page.locator("header nav a").count() == 5  # a page of the site, not raw JSON
    this_week = page.goto(f"{url}/weeks/{IsoWeek(2026, 48)}")
    assert this_week.status == 200 and "本周尚未结算" in page.inner_text("#announcement")
    assert page.get_attribute('header nav a[href="/weeks"]', "class") == "on"
    missing = page.goto(f"{url}/no-such-page")
    assert missing.status == 404 and "页面不存在" in page.inner_text("#error-page")
    icon = page.goto(f"{url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    # a wrong console token: the sign-in form again, with the reason
    page.goto(f"{url}/console/login")
    page.fill("#token", "not-a-token")
    with page.expect_navigation() as answer:
        page.click("#sign-in")
    assert answer.value.status == 401 and "访问令牌不正确" in page.inner_text("#login-error")
    assert page.is_visible("#token")
    # 微信授权登录 where WeChat is not configured (the demo): a page that explains, and the way in that works
    page.goto(f"{url}/me")
    with page.expect_navigation() as answer:
        page.click("text=微信授权登录")
    assert answer.value.status == 503 and "尚未接入微信公众号" in page.inner_text("#notice")
    page.fill("input[name=openid]", "o-visitor")
    page.click("#dev-login")
    page.wait_for_url(f"{url}/me")
    assert "暂未上榜" in page.inner_text("main")


def seed_a_week(c: Container) -> str:
    """A closed and published week (2026-W47) and an open queue in this week: every page has something."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    clock.set(START.replace(day=18))  # 2026-W47
    for i in range(3):
        who = Reporter(openid=f"o-{i}", name=f"欧阳明月{i}", phone=f"1371234567{i}", district="城关区", verified=True)
        with c.uow() as uow:
            c.flows.report(
                uow,
                ReportCase(
                    f"W-{i}",
                    "road_damage",
                    clock.now(),
                    who,
                    description="路面塌陷出一个大坑，车辆绕行，请尽快处理" * 3,
                    lat=36.06 + i / 10_000,
                    lon=103.83,
                    district="城关区",
                    address="城关区张掖路 100 号附近一段很长的地址描述，用来检查窄屏换行",
                    photos=("/static/web/demo/road_damage.svg",),
                ),
                CITY,
            )
            if i < 2:
                c.flows.verdict(uow, GiveVerdict(f"W-{i}", "valid", reason="情况属实，予以立案"), VALIDATOR)
        clock.advance(minutes=30)
    clock.set(START)
    c.closer.close(IsoWeek(2026, 47))
    c.publishing.publish("2026-W47")
    return "W-2"


CITIZEN_PAGES = (
    "/me",
    "/leaderboard",
    "/leaderboard?week=2026-W47",
    "/leaderboard/all-time",
    "/leaderboard/districts/城关区",
    "/weeks",
    "/weeks/2026-W47",
    "/weeks/2026-W48",
    "/weeks/2026-W99",
    "/rules",
    "/no-such-page",
    "/console/login",
)
CONSOLE_PAGES = (
    "/console",
    "/console?district=城关区&category=road_damage",
    "/console/cases?case_id=W-2",
    "/console/cases?case_id=W-0",
    "/console/citizens?q=o-0",
    "/console/citizens/1",
    "/console/weeks",
    "/console/audit",
)


def test_every_page_fits_a_390_px_phone(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    seed_a_week(c)
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(f"{url}/auth/dev-login?openid=o-0&next=/me")
    sign_in_console(page, url)
    too_wide = {}
    for path in (*CITIZEN_PAGES, *CONSOLE_PAGES, "/docs", "/redoc"):
        page.goto(f"{url}{path}")
        page.wait_for_load_state("networkidle")
        if not page.evaluate(FITS):
            too_wide[path] = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if not path.startswith(("/docs", "/redoc")):
            assert page.evaluate(NAV_OUTSIDE) == [], path  # every navigation item on the screen
        if path == "/weeks/2026-W47":
            assert page.locator("header nav a").count() == 5  # the announcement has the site's navigation
    assert too_wide == {}
    page.goto(f"{url}/auth/dev-login?openid=o-0&next=/me")  # signed out of nothing: the citizen's own page
    assert page.evaluate(FITS)
