"""Real headless Chromium (phone viewport for citizens): objecting from the week page, the outcome on 我的, the
console's review of the objection, and a winner's claim code redeemed at the console. Screenshots (with
SAVE_SCREENSHOTS=1) go to docs/screenshots/review-*.png."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rewards.bootstrap import Container
from rewards.cases.models import Citizen
from rewards.clock import IsoWeek
from rewards.publish.models import PUBLISHED
from tests.e2e.browser import DESKTOP, FITS, PHONE, save_screenshot, sign_in_console
from tests.fakes.ledger_seed import Person, add_citizens, add_entries

pytestmark = pytest.mark.browser
WEEK = "2026-W47"


def published_week(c: Container) -> list[str]:
    """W47 with 85 verified citizens (distinct totals), closed and its notice published: 公示 is open."""
    start = IsoWeek.parse(WEEK).start(c.settings.tz)
    names = ["张三明", "李四海", "王五福"] + [f"市民{i:03d}号" for i in range(82)]
    ids = add_citizens(c, [Person(n) for n in names], start)
    add_entries(c, WEEK, [(cid, 500 - i, start + timedelta(minutes=i)) for i, cid in enumerate(ids)])
    c.closer.close(IsoWeek.parse(WEEK))
    assert c.publishing.publish(WEEK).state == PUBLISHED
    with c.read() as s:
        return [s.get(Citizen, i).openid for i in ids]  # type: ignore[union-attr]


def phone(browser: Any, url: str, openid: str, next_path: str) -> Any:
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(f"{url}/auth/dev-login?openid={openid}&next={next_path}")
    return page


def test_objecting_from_the_week_page_and_the_outcome_on_me(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    openids = published_week(c)
    citizen = phone(browser, url, openids[40], f"/weeks/{WEEK}")
    assert citizen.locator("#prize-list tbody tr").count() == 80
    assert "公示中" in citizen.inner_text("#review-phase") and citizen.locator("#objection-deadline").count() == 1
    assert citizen.evaluate(FITS)
    citizen.locator("#objection").scroll_into_view_if_needed()
    citizen.fill("#objection-rank", "2")
    citizen.fill("#objection-reason", "该市民的照片疑似网上下载，并非现场拍摄")
    save_screenshot(citizen, "review-objection-form")
    citizen.click("#objection-submit")
    citizen.wait_for_selector("#objection-received")
    assert "待处理" in citizen.inner_text("#objection")
    citizen.goto(f"{url}/me")
    assert "待处理" in citizen.inner_text("#objections") and "第 2 名" in citizen.inner_text("#objections")
    assert openids[1] not in citizen.content()

    # the command center reviews it with the entry's evidence and rejects it with a reason
    console = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in_console(console, url)
    console.goto(f"{url}/console/review")
    console.locator("#open-objections a").first.click()
    console.wait_for_selector("#evidence")
    assert console.locator("#evidence .ledger-line").count() == 1 and console.locator(".case-card").count() == 1
    save_screenshot(console, "review-console-objection", full_page=True)
    console.fill("#reject-reason", "经核查，照片为现场拍摄，与其他上报不重复")
    console.click("#reject")
    console.wait_for_selector(".flash")
    assert "未采纳" in console.inner_text(".flash")

    citizen.reload()
    outcome = citizen.inner_text("#objections")
    assert "未采纳" in outcome and "照片为现场拍摄" in outcome
    assert citizen.evaluate(FITS)
    citizen.locator("#objections").scroll_into_view_if_needed()
    save_screenshot(citizen, "review-me-outcome")


def test_an_upheld_objection_amends_the_week_page(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    openids = published_week(c)
    objection = c.review.object(WEEK, 3, openids[50], "该条目的上报系重复举报", channel="web")
    console = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in_console(console, url)
    console.goto(f"{url}/console/review/objections/{objection.id}")
    console.select_option("#uphold-action", "disqualify")
    console.fill("#uphold-reason", "经核查该市民本周上报重复，取消本周评奖资格")
    console.click("#uphold")
    console.wait_for_selector(".flash")
    assert "第 2 版" in console.inner_text(".flash")
    citizen = phone(browser, url, openids[50], f"/weeks/{WEEK}")
    assert "第 2 版" in citizen.inner_text("#review h2")
    changes = citizen.inner_text("#changes")
    assert "撤出" in changes and "递补" in changes and "王五福" not in changes  # masked names only
    assert citizen.locator("#versions a").count() == 1
    citizen.locator("#changes").scroll_into_view_if_needed()
    save_screenshot(citizen, "review-week-changes")
    citizen.click("#versions a")
    assert len(citizen.inner_text("#checksum")) == 64


def test_a_winner_sees_the_claim_code_and_the_console_redeems_it(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    openids = published_week(c)
    deadline = c.review.status(WEEK).deadline
    assert deadline is not None
    c.clock.set(deadline)  # type: ignore[attr-defined]
    assert c.review.run_due()[0].finalized
    winner = phone(browser, url, openids[0], "/me")
    code = winner.inner_text(f"#claim-code-{WEEK}")
    assert len(code.replace("-", "")) == 12 and "待领取" in winner.inner_text("#claims")
    assert winner.evaluate(FITS)
    save_screenshot(winner, "review-me-claim")
    console = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in_console(console, url)
    console.goto(f"{url}/console/review/claims")
    console.fill("#claim-code", code.replace("-", "").lower())  # as a scanner or a hurried hand types it
    console.click("#claim-find")
    assert "待领取" in console.inner_text("#claim")
    console.click("#redeem")
    console.wait_for_selector(".flash")
    assert "已核销" in console.inner_text(".flash") and "已领取" in console.inner_text("#claim")
    save_screenshot(console, "review-console-redeemed")
    winner.reload()
    assert "已领取" in winner.inner_text("#claims")


def test_the_board_shows_the_prize_list_with_the_ineligible_marked(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    start = IsoWeek.parse("2026-W48").start(c.settings.tz)
    people = [Person("赵未实", verified=False)] + [Person(f"市民{i:03d}号") for i in range(84)]
    people[5] = Person("钱已禁", banned=True)
    ids = add_citizens(c, people, start)
    add_entries(c, "2026-W48", [(cid, 300 - i, start + timedelta(minutes=i)) for i, cid in enumerate(ids)])
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(f"{url}/leaderboard")
    rows = page.locator("#board tbody tr")
    assert rows.count() == 82 and page.locator("#board tr.ineligible").count() == 2
    assert rows.first.locator("td.rank").inner_text() == "—" and "不参与评奖" in rows.first.inner_text()
    assert rows.nth(1).locator("td.rank").inner_text() == "1" and "一等奖" in rows.nth(1).inner_text()
    assert rows.last.locator("td.rank").inner_text() == "80"
    assert page.evaluate(FITS)
    save_screenshot(page, "review-board-prizes")
    page.click("#next-page")
    assert page.locator("#board tbody tr").first.locator("td.rank").inner_text() == "81"
