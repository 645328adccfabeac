"""Citizen pages over HTTP: sign-in prompt, boards, bad input on a page, rules, weeks."""

from __future__ import annotations

from tests.conftest import auth

CASE = {
    "case_id": "P-1",
    "category": "street_lamp",
    "district": "城关区",
    "reporter": {"openid": "o-page", "name": "欧阳明月", "phone": "13712345678", "verified": True},
}


def test_me_without_a_session_offers_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/", follow_redirects=False).headers["location"] == "/me"
    html = client.get("/me").text
    assert "微信授权登录" in html and "/auth/wechat/login?next=" in html
    assert "开发环境登录" not in html  # the development sign-in is off by default


def test_boards_pages_show_masked_names_and_refuse_bad_weeks(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/cases", json=CASE, headers=auth())
    client.post("/api/v1/cases/P-1/verdict", json={"verdict": "valid"}, headers=auth())
    for path in (
        "/leaderboard",
        "/leaderboard?week=2026-W48",
        "/leaderboard/all-time",
        "/leaderboard/districts/城关区",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert (
            "欧**月" in r.text and "欧阳明月" not in r.text and "o-page" not in r.text and "13712345678" not in r.text
        )
    bad = client.get("/leaderboard?week=2026-48")
    assert bad.status_code == 422 and "周次格式不正确" in bad.text  # the reason, in the page's language


def test_rules_and_weeks(client, settings) -> None:  # type: ignore[no-untyped-def]
    rules = client.get("/rules").text
    for tier in settings.prize_tiers:
        assert tier.name in rules and str(tier.value) in rules
    assert "上不封顶" in rules
    assert "还没有结算的周榜" in client.get("/weeks").text
