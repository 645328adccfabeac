"""Real headless Chromium on a phone: a citizen rates a handled report from 我的; the 不满意 with a comment shows
up in the console's follow-up list, where a validator marks it handled."""

from __future__ import annotations

import pytest

from tests.e2e.browser import DESKTOP, FITS, PHONE, block_outside, save_screenshot, sign_in_console
from tests.integration.test_ratings_service import handled_case

pytestmark = pytest.mark.browser


def test_a_citizen_rates_from_me_on_a_phone(browser, site) -> None:  # type: ignore[no-untyped-def]
    c, url = site
    handled_case(c, "LZ-2026-0101", "o-zhang", final="closed", district="城关区", department="城关区环卫局")
    handled_case(c, "LZ-2026-0102", "o-zhang", district="城关区", department="城关区市政所")
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True).new_page()
    blocked = block_outside(phone, url)
    phone.goto(f"{url}/auth/dev-login?openid=o-zhang&next=/me")
    phone.wait_for_url(f"{url}/me")
    form = phone.locator("#report-LZ-2026-0101 form.rating-form")
    assert form.count() == 1 and phone.locator("form.rating-form").count() == 2
    assert "对处置结果满意吗" in form.inner_text()
    form.scroll_into_view_if_needed()
    assert phone.evaluate(FITS), "the rating form is wider than the phone"
    form.get_by_label("不满意").check()
    form.locator("textarea[name=comment]").fill("垃圾桶旁仍有堆放的垃圾，请再清理")
    save_screenshot(phone, "me-rating-form")
    form.locator("button").tap()
    phone.wait_for_url(f"{url}/me?rated=LZ-2026-0101#report-LZ-2026-0101")
    rated = phone.locator("#report-LZ-2026-0101")
    assert "感谢您的评价" in rated.inner_text()
    assert "我的评价：不满意 · 垃圾桶旁仍有堆放的垃圾，请再清理" in rated.inner_text()
    assert phone.locator("form.rating-form").count() == 1  # the other report can still be rated
    assert phone.evaluate(FITS)
    assert "o-zhang" not in phone.content()
    save_screenshot(phone, "me-rating-done")
    assert blocked == []

    console = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in_console(console, url)
    console.click("text=待跟进评价")
    console.wait_for_url(f"{url}/console/followups")
    row = console.locator("[data-followup]")
    assert row.count() == 1 and "垃圾桶旁仍有堆放的垃圾" in row.inner_text() and "城关区环卫局" in row.inner_text()
    save_screenshot(console, "console-followups")
    row.locator("input[name=note]").fill("已转城关区环卫局复查")
    row.locator("button").click()
    console.wait_for_load_state()
    assert "已标记为已处理" in console.inner_text(".flash")
    assert console.locator("[data-followup]").count() == 0
