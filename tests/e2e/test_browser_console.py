"""A validator's working day in real Chromium: one key per verdict, the photo large, the location view with the
duplicate suspects, filters, the queue's size and age, a pre-filled duplicate hint that leaves "valid" valid,
and the way from a case to its reporter's cases, ledger and standing."""

from __future__ import annotations

from typing import Any

import pytest

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ReportCase, Reporter
from rewards.cases.models import Case
from rewards.clock import FixedClock
from tests.e2e.browser import DESKTOP, sign_in_console

pytestmark = pytest.mark.browser
CITY = Actor("city-case-system", "intake")
CENTRE = (36.0611, 103.8343)


def report(
    c: Container,
    case_id: str,
    *,
    openid: str = "o-zhang",
    name: str = "张三明",
    phone: str = "13912345678",
    north_m: float = 0.0,
    category: str = "street_lamp",
    district: str = "城关区",
) -> None:
    """A report `north_m` metres north of the centre, a minute after the previous one."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    clock.advance(minutes=1)
    who = Reporter(openid=openid, name=name, phone=phone, district=district, verified=True)
    command = ReportCase(
        case_id=case_id,
        category=category,
        reported_at=clock.now(),
        reporter=who,
        description="路灯不亮",
        lat=CENTRE[0] + north_m / 111_195,
        lon=CENTRE[1],
        coord_system="wgs84",
        district=district,
        photos=(f"/static/web/demo/{category}.svg",),
    )
    with c.uow() as uow:
        c.flows.report(uow, command, CITY)


def case_of(c: Container, case_id: str) -> Case:
    with c.read() as session:
        found = session.query(Case).filter(Case.case_id == case_id).one()
        session.expunge(found)
        return found


def console(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    sign_in_console(page, url)
    return page


def current(page: Any) -> str:
    return str(page.get_attribute(".case-card.current", "data-case-id"))


def press(page: Any, key: str) -> str:
    """Press one key that gives a verdict; return the message the queue shows when it is back."""
    with page.expect_navigation():
        page.keyboard.press(key)
    return str(page.inner_text(".flash, .error"))


def test_one_key_per_verdict(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    report(c, "K-1")
    report(c, "K-2", openid="o-li", name="李四", north_m=40)  # a second report of K-1's problem
    report(c, "K-3", openid="o-wang", name="王五", north_m=5000)
    report(c, "K-4", openid="o-zhao", name="赵六", north_m=9000)
    page = console(browser, url)
    assert current(page) == "K-1"
    assert "K-1 已处理：有效，已立案" in press(page, "v")  # one key: valid
    assert current(page) == "K-2"  # the next case is up, nothing to click
    assert page.input_value('[data-case-id="K-2"] input[name=duplicate_of]') == "K-1"
    assert "K-2 已处理：重复举报" in press(page, "d")  # one key: duplicate of the nearest earlier suspect
    page.keyboard.press("j")  # next case, then back
    assert current(page) == "K-4"
    page.keyboard.press("k")
    assert current(page) == "K-3"
    assert "K-3 已处理：无效，不予立案" in press(page, "x")  # one key: invalid
    page.keyboard.press("r")  # a reason, typed into the current card; Enter must not file the case
    page.keyboard.type("情况属实")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement.name") == "reason" and case_of(c, "K-4").status == "reported"
    page.keyboard.press("Escape")
    assert "K-4 已处理" in press(page, "v")
    assert [case_of(c, k).verdict for k in ("K-1", "K-2", "K-3", "K-4")] == ["valid", "duplicate", "invalid", "valid"]
    assert case_of(c, "K-2").duplicate_of == "K-1" and case_of(c, "K-4").verdict_reason == "情况属实"
    assert page.inner_text("#queue-empty") == "队列已清空。"


def test_the_photo_opens_large_and_a_verdict_key_works_over_it(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    report(c, "P-1", category="overflowing_bin")
    page = console(browser, url)
    thumbnail = page.locator('[data-case-id="P-1"] .photos img').bounding_box()
    page.click('[data-case-id="P-1"] .photos a')  # a click opens it large, in the page (no new tab)
    assert page.is_visible("#lightbox[open] img")
    large = page.locator("#lightbox img").bounding_box()
    assert thumbnail is not None and large is not None and large["width"] > 2 * thumbnail["width"]
    assert page.evaluate("document.querySelector('#lightbox img').naturalWidth") > 0  # served by the service
    page.keyboard.press("Escape")
    assert not page.is_visible("#lightbox[open]")
    page.keyboard.press("f")  # the key opens it too, and the verdict key answers over it
    assert page.is_visible("#lightbox[open]")
    assert "P-1 已处理" in press(page, "v")
    assert case_of(c, "P-1").verdict == "valid"


def test_the_location_view_plots_the_suspects_with_their_distances(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    report(c, "L-1")
    report(c, "L-2", openid="o-li", name="李四", north_m=100)
    report(c, "L-3", openid="o-wang", name="王五", north_m=60)
    report(c, "L-4", openid="o-zhao", name="赵六", north_m=4000)  # too far to be the same problem
    page = console(browser, url)
    card = page.locator('[data-case-id="L-3"]')
    assert card.locator("svg.map circle[r='8']").count() == 2  # L-1 and L-2 plotted around L-3
    suspects = card.locator(".suspects li")
    assert suspects.count() == 2
    assert "L-2" in suspects.nth(0).inner_text() and "40 米" in suspects.nth(0).inner_text()  # nearest first
    assert "L-1" in suspects.nth(1).inner_text() and "60 米" in suspects.nth(1).inner_text()
    assert "250 米查重范围" in card.inner_text()
    assert page.locator('[data-case-id="L-4"] .suspects').count() == 0
    # the second suspect, not the pre-filled first: one click
    with page.expect_navigation():
        card.locator('[data-suspect="L-1"] button').click()
    assert "L-3 已处理：重复举报" in page.inner_text(".flash")
    assert case_of(c, "L-3").duplicate_of == "L-1"


def test_the_duplicate_hint_does_not_change_what_valid_means(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    report(c, "H-1")
    report(c, "H-2", openid="o-li", name="李四", north_m=30)
    page = console(browser, url)
    assert page.input_value('[data-case-id="H-2"] input[name=duplicate_of]') == "H-1"  # pre-filled
    with page.expect_navigation():
        page.click('[data-case-id="H-2"] button[value=valid]')
    assert "H-2 已处理：有效，已立案" in page.inner_text(".flash")
    assert case_of(c, "H-2").status == "filed" and case_of(c, "H-2").duplicate_of is None


def test_filters_and_the_queue_size_and_age(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    report(c, "F-1", district="城关区")
    report(c, "F-2", district="安宁区", category="road_damage", north_m=3000)
    report(c, "F-3", district="安宁区", category="street_lamp", north_m=6000)
    clock: FixedClock = c.clock  # type: ignore[assignment]
    clock.advance(hours=3)
    page = console(browser, url)
    assert page.inner_text("#queue-size") == "3"
    assert page.inner_text("#queue-age") == "3 小时 2 分钟"  # the oldest case, F-1
    page.select_option("select[name=district]", "安宁区")  # applies at once
    page.wait_for_url("**/console?district=*")
    assert page.locator(".case-card").count() == 2 and "全部 3 件" in page.inner_text("#queue-stats")
    page.select_option("select[name=category]", "road_damage")
    page.wait_for_url("**category=road_damage*")
    assert [e.get_attribute("data-case-id") for e in page.locator(".case-card").all()] == ["F-2"]
    assert "F-2 已处理" in press(page, "x")  # the verdict returns to the filtered queue
    assert "district=" in page.url and "category=road_damage" in page.url
    assert "没有符合筛选条件" in page.inner_text("#queue-empty")


def test_from_a_case_to_its_citizen_and_back(browser: Any, site: tuple[Container, str]) -> None:
    c, url = site
    report(c, "C-1", openid="o-ouyang", name="欧阳明月", phone="13712345678")
    report(c, "C-2", openid="o-ouyang", name="欧阳明月", phone="13712345678", north_m=8000)
    page = console(browser, url)
    assert "C-1 已处理" in press(page, "v")
    page.click('[data-case-id="C-2"] a[href^="/console/citizens/"]')  # the reporter, from the card
    page.wait_for_selector("#citizen")
    assert "欧**月" in page.inner_text("#citizen") and "137****5678" in page.inner_text("#citizen")
    assert page.inner_text("#c-week-points") == "1" and page.inner_text("#c-week-rank") == "1"
    assert "C-1" in page.inner_text("#citizen-ledger") and "+1" in page.inner_text("#citizen-ledger")
    cases_text = page.inner_text("#citizen-cases")
    assert "C-1" in cases_text and "C-2" in cases_text and "待审核" in cases_text
    page.click('#citizen-cases a:text("C-1")')
    assert "C-1 · 已立案" in page.inner_text("h2")
    assert page.locator("#reporter-link").count() == 1
    for term in ("o-ouyang", "13712345678", "欧阳明月", "欧**月", "137****5678", "C-2"):  # every way to search
        page.goto(f"{url}/console/citizens?q={term}")
        assert page.locator(".citizen-row").count() == 1, term
        found = page.inner_text(".citizen-row")
        assert "欧**月" in found and "o-ouyang" not in found and "13712345678" not in found
