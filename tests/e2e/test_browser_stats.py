"""/stats in real Chromium on a phone: the demo city's record with its SVG charts, nothing fetched from outside the
service, no script, no horizontal scrolling, a text table under each chart; the README's screenshot
(SAVE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from rewards.bootstrap import Container
from rewards.cli.demo import run_demo
from rewards.demo import DemoPlan
from tests.e2e.browser import FITS, PHONE, block_outside, save_screenshot

pytestmark = pytest.mark.browser
PLAN = DemoPlan(citizens=600, weeks=2, reports_per_day=30)


def test_the_record_reads_well_on_a_phone(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    run_demo(c, PLAN)
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    blocked = block_outside(page, url)
    answer = page.goto(f"{url}/stats?week={c.stats.period().key}")
    assert answer is not None and answer.status == 200
    assert page.evaluate(FITS), "the page is wider than the phone"
    assert page.locator("script").count() == 0  # nothing to run: the charts are drawn by the server
    assert page.get_attribute('header nav a[href="/stats"]', "class") == "on"
    assert int(page.inner_text("#fig-received .n")) > 0
    for figure in ("valid-rate", "on-time", "satisfaction"):  # the demo sends deadlines and seeds ratings
        assert page.inner_text(f"#fig-{figure} .n").endswith("%"), figure
    charts = page.locator("figure.chart svg")
    assert charts.count() == 3
    for i in range(3):
        box = charts.nth(i).bounding_box()
        assert box is not None and 300 <= box["width"] <= PHONE["width"] and box["height"] > 50
    assert page.locator("#districts-received rect.bar").count() == 8  # the demo city's eight districts
    assert page.locator("#trend-received polyline.line").count() >= 1
    assert page.locator("details.alt table").count() == 3
    assert page.locator("#departments tbody tr").count() >= 10
    assert blocked == []
    save_screenshot(page, "stats", full_page=False)
    # the charts, below the sticky header
    page.evaluate("document.getElementById('trend-received').closest('section').scrollIntoView(); scrollBy(0, -100)")
    save_screenshot(page, "stats-charts", full_page=False)
    if os.environ.get("STATS_FULL_PAGE"):  # a look at the whole page while working on it
        page.screenshot(path=os.environ["STATS_FULL_PAGE"], full_page=True)
    # the accessible name of each chart is its title and description
    names = page.evaluate(
        "[...document.querySelectorAll('figure.chart svg')].map(s => s.getAttribute('aria-labelledby')"
        ".split(' ').map(id => document.getElementById(id).textContent).join(' '))"
    )
    assert len(names) == 3 and all("受理" in n or "结案率" in n for n in names)
    month = f"{c.clock.now().astimezone(c.settings.tz):%Y-%m}"
    page.goto(f"{url}/stats?month={month}")
    assert "月" in page.inner_text("#period h1") and page.evaluate(FITS)
    with page.expect_navigation():
        page.click("#prev")
    assert "month=" in page.url and not page.url.endswith(month) and page.locator("#city").count() == 1
    assert blocked == []
