"""Real headless Chromium: a citizen sees their rank, a validator's verdict shows up on the citizen's page,
the leaderboard shows 80 rows. Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import pytest

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.clock import FixedClock
from tests.e2e.browser import save_screenshot, sign_in_console

pytestmark = pytest.mark.browser
ACTOR = Actor("validator-1", "console")


def award(c: Container, case_id: str, openid: str, name: str, verdict: bool = True) -> None:
    clock: FixedClock = c.clock  # type: ignore[assignment]
    clock.advance(minutes=1)
    reporter = Reporter(openid=openid, name=name, phone="13900001111", district="城关区", verified=True)
    with c.uow() as uow:
        report = ReportCase(
            case_id=case_id,
            category="street_lamp",
            reported_at=clock.now(),
            reporter=reporter,
            description="路灯不亮",
            district="城关区",
            lat=36.06,
            lon=103.83,
            coord_system="gcj02",
        )
        c.flows.report(uow, report, ACTOR)
    if verdict:
        with c.uow() as uow:
            c.flows.verdict(uow, GiveVerdict(case_id, "valid"), ACTOR)


def test_citizen_opens_me_and_sees_their_rank(browser, site) -> None:  # type: ignore[no-untyped-def]
    c, url = site
    award(c, "LZ-1", "o-zhang", "张三明")
    award(c, "LZ-2", "o-zhang", "张三明")
    award(c, "LZ-3", "o-li", "李四海")
    page = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    page.goto(f"{url}/me")
    assert "微信授权登录" in page.content()
    page.fill("input[name=openid]", "o-li")
    page.click("#dev-login")
    page.wait_for_url(f"{url}/me")
    assert page.inner_text("#week-rank") == "2"
    assert page.inner_text("#week-points") == "1"
    assert page.inner_text("#all-points") == "1"
    assert "LZ-3" in page.inner_text("#reports")
    assert "o-li" not in page.content()


def test_validator_verdict_appears_on_the_citizens_page(browser, site) -> None:  # type: ignore[no-untyped-def]
    c, url = site
    award(c, "LZ-9", "o-wang", "王五", verdict=False)
    citizen = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    citizen.goto(f"{url}/auth/dev-login?openid=o-wang&next=/me")
    assert "暂未上榜" in citizen.content()
    console = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    console.goto(f"{url}/console")
    assert console.url.endswith("/console/login")
    sign_in_console(console, url)
    card = console.locator('[data-case-id="LZ-9"]')
    assert card.count() == 1
    card.locator("button[value=valid]").click()
    console.wait_for_load_state()
    assert "LZ-9 已处理：有效，已立案" in console.inner_text(".flash")
    citizen.reload()
    assert citizen.inner_text("#week-points") == "1"
    assert citizen.inner_text("#week-rank") == "1"
    assert "已立案" in citizen.inner_text("#reports")


def test_leaderboard_page_shows_80_rows(browser, site) -> None:  # type: ignore[no-untyped-def]
    c, url = site
    for i in range(85):
        award(c, f"LZ-{i:03d}", f"o-{i:03d}", f"市民{i:03d}号")
        if i % 7 == 0:
            award(c, f"LZ-x{i:03d}", f"o-{i:03d}", f"市民{i:03d}号")
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{url}/leaderboard")
    assert page.locator("#board tbody tr").count() == 80
    first = page.locator("#board tbody tr").first.inner_text()
    assert "一等奖" in first and "2" in first
    assert "o-000" not in page.content() and "13900001111" not in page.content()
    page.goto(f"{url}/rules")
    assert "上不封顶" in page.content()
    save_screenshot(page, "rules")
