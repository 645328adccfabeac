"""Real Chromium on a 390 px phone: 我的 lists the milestones reached, each opening onto the cases or weeks that
earned it ("explain my milestone"), without horizontal scrolling; /rules states the milestones."""

from __future__ import annotations

from typing import Any

import pytest

from rewards.bootstrap import Container
from rewards.clock import IsoWeek
from tests.e2e.browser import FITS, PHONE, save_screenshot
from tests.e2e.test_milestones_pages import ME, seed_milestones

pytestmark = pytest.mark.browser
FOUR_WEEKS = [IsoWeek(2026, 44), IsoWeek(2026, 45), IsoWeek(2026, 46), IsoWeek(2026, 47)]


def test_me_shows_milestones_and_explains_each_on_a_phone(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    mine = seed_milestones(c, FOUR_WEEKS)  # 16 filed, one voided: 15 valid, four weeks in a row on the list
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(f"{url}/auth/dev-login?openid={ME.openid}&next=/me")
    page.wait_for_url(f"{url}/me")
    section = page.locator("#milestones")
    assert "已达成 5 项" in section.locator("h2").inner_text()
    names = section.locator("details summary strong").all_inner_texts()
    assert names == ["首次有效举报", "累计 10 件有效举报", "首次登上周获奖名单", "连续 4 周获奖", "区县周榜第一"]
    tenth = section.locator('details[data-milestone="valid_10"]')
    assert not tenth.locator("li").first.is_visible()  # closed until asked
    tenth.locator("summary").click()
    evidence = tenth.locator("li").first
    assert evidence.is_visible() and mine[10] in evidence.inner_text() and "第 10 件有效举报" in evidence.inner_text()
    streak = section.locator('details[data-milestone="prize_streak_4"]')
    streak.locator("summary").click()
    weeks = streak.locator("li").all_inner_texts()
    assert [w.split("：")[0] for w in weeks] == [w.label() for w in FOUR_WEEKS]
    assert "再有 35 件即可达成“累计 50 件有效举报”" in page.inner_text("#milestone-next")
    assert page.evaluate(FITS)
    section.scroll_into_view_if_needed()
    save_screenshot(page, "me-milestones")
    page.goto(f"{url}/rules")
    rules = page.inner_text("#milestone-rules")
    assert "累计 500 件有效举报" in rules and "连续 4 周获奖" in rules and "不改变积分、排名和奖励" in rules
    assert page.evaluate(FITS)
