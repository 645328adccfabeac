"""The demo city in real Chromium: what `rewards demo` seeds looks like the real thing (photos served by the
service itself, duplicate suspects on the location view, published weeks with the site's navigation), and the
README's screenshots are taken from it (SAVE_SCREENSHOTS=1)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from rewards.bootstrap import Container
from rewards.cases.models import Case
from rewards.cli.demo import run_demo
from rewards.demo import DemoPlan, showcase_citizen
from tests.e2e.browser import DESKTOP, FITS, PHONE, save_screenshot, sign_in_console

pytestmark = pytest.mark.browser
PLAN = DemoPlan(citizens=600, weeks=1, reports_per_day=30)


def queued_case_with_suspects(c: Container, page: Any) -> str:
    """A case in the queue whose card lists nearby reports of the same problem."""
    card = page.locator(".case-card:has(.suspects)").first
    return str(card.get_attribute("data-case-id"))


def test_the_demo_city_looks_like_the_real_thing(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    run_demo(c, PLAN)
    with c.read() as session:
        assert session.scalar(select(func.count(Case.id)).where(Case.status == "reported")) >= 16
    console = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in_console(console, url)
    photos = console.locator(".case-card .photos img")
    assert photos.count() >= 10
    first = photos.first
    first.scroll_into_view_if_needed()
    console.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    assert "img.example.invalid" not in console.content()
    assert int(console.inner_text("#queue-size")) >= 16 and console.inner_text("#queue-age")
    save_screenshot(console, "console")
    case_id = queued_case_with_suspects(c, console)
    console.goto(f"{url}/console/cases?case_id={case_id}")
    assert console.locator("svg.map circle[r='8']").count() >= 1
    save_screenshot(console, "console-case")
    console.click("#reporter-link")
    console.wait_for_selector("#citizen-ledger")
    save_screenshot(console, "console-citizen")

    phone = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    leader = showcase_citizen(c)  # the citizen the demo tells a newcomer to sign in as
    assert leader is not None
    phone.goto(f"{url}/auth/dev-login?openid={leader}&next=/me")
    assert phone.inner_text("#week-rank") != "—" and int(phone.inner_text("#week-points")) >= 1
    assert phone.locator("#reports .report").count() >= 1
    assert phone.evaluate("[...document.querySelectorAll('.report-body img')].some(i => i.naturalWidth > 0)")
    save_screenshot(phone, "me")
    phone.goto(f"{url}/leaderboard")
    assert phone.locator("#board tbody tr").count() >= 20
    save_screenshot(phone, "leaderboard")
    phone.goto(f"{url}/weeks")
    with phone.expect_navigation():
        phone.locator("main a[href^='/weeks/']").first.click()
    assert phone.locator("#announcement h1").count() == 1 and phone.locator("header nav a").count() == 5
    assert phone.evaluate(FITS)
    save_screenshot(phone, "week")
