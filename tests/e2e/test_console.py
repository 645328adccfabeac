"""The command-center console over HTTP (bearer token here; the browser test signs in with a session)."""

from __future__ import annotations

import re

from rewards.http.auth import Principal
from rewards.web.console import csrf_token
from tests.conftest import auth

CASE = {
    "case_id": "LZ-1",
    "category": "street_lamp",
    "description": "路灯不亮",
    "district": "城关区",
    "photos": ["https://img.example.invalid/1.jpg"],
    "reporter": {"openid": "oA1", "name": "张三明", "phone": "13812341234", "verified": True},
}


def csrf(client) -> str:  # type: ignore[no-untyped-def]
    html = client.get("/console", headers=auth()).text
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html
    return m.group(1)


def test_queue_verdict_void_ban_and_audit(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/cases", json=CASE, headers=auth())
    html = client.get("/console", headers=auth()).text
    assert "LZ-1" in html and "张*明" in html and "oA1" not in html and "13812341234" not in html
    token = csrf(client)
    r = client.post(
        "/console/cases/LZ-1/verdict",
        data={"verdict": "valid", "csrf": token, "reason": "属实"},
        headers=auth(),
        follow_redirects=False,
    )
    assert r.status_code == 303 and "flash=" in r.headers["location"]
    assert client.get("/api/v1/citizens/oA1/points", headers=auth()).json()["total"] == 1
    assert "LZ-1" not in client.get("/console", headers=auth()).text  # left the queue
    page = client.get("/console/cases?case_id=LZ-1", headers=auth()).text
    assert "作废并扣回积分" in page
    r = client.post(
        "/console/cases/LZ-1/void", data={"reason": "摆拍", "csrf": token}, headers=auth(), follow_redirects=False
    )
    assert r.status_code == 303
    assert client.get("/api/v1/citizens/oA1/points", headers=auth()).json()["total"] == 0
    found = client.get("/console/citizens?q=13812341234", headers=auth()).text
    assert "138****1234" in found and "13812341234" not in found.replace('value="13812341234"', "")
    r = client.post(
        "/console/citizens/1/ban", data={"reason": "刷分", "csrf": token}, headers=auth(), follow_redirects=False
    )
    assert r.status_code == 303 and "error" not in r.headers["location"]
    audit = client.get("/console/audit", headers=auth()).text
    for action in ("审核：有效，立案", "作废案件", "取消评奖资格"):  # Chinese, not verdict:valid / void / ban
        assert action in audit
    assert "verdict:valid" not in audit


def test_console_refuses_bad_form_token_and_anonymous(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/cases", json=CASE, headers=auth())
    r = client.post("/console/cases/LZ-1/verdict", data={"verdict": "valid", "csrf": "0" * 64}, headers=auth())
    assert r.status_code == 403
    assert client.get("/console").status_code == 401
    assert client.post("/console/cases/LZ-1/verdict", data={"verdict": "valid", "csrf": "x"}).status_code == 401


def test_domain_errors_come_back_as_a_message(client, settings) -> None:  # type: ignore[no-untyped-def]
    token = csrf_token(settings.session_secret.get_secret_value(), Principal("validator-1", "validator"))
    r = client.post(
        "/console/cases/NOPE/verdict", data={"verdict": "valid", "csrf": token}, headers=auth(), follow_redirects=False
    )
    assert r.status_code == 303 and "error=" in r.headers["location"]


def test_csrf_token_is_bound_to_the_user() -> None:
    a = csrf_token("s", Principal("a", "validator"))
    assert a != csrf_token("s", Principal("b", "validator")) and a != csrf_token("t", Principal("a", "validator"))


def test_queue_shows_the_earlier_nearby_report_as_a_duplicate_hint(client) -> None:  # type: ignore[no-untyped-def]
    first = {**CASE, "case_id": "LZ-A", "lat": 36.0611, "lon": 103.8343, "reported_at": "2026-11-25T01:00:00Z"}
    second = {
        **CASE,
        "case_id": "LZ-B",
        "lat": 36.0612,
        "lon": 103.8344,
        "reported_at": "2026-11-25T01:30:00Z",
        "reporter": {"openid": "oB2", "name": "李四"},
    }
    far = {
        **CASE,
        "case_id": "LZ-C",
        "lat": 36.20,
        "lon": 103.90,
        "reported_at": "2026-11-25T01:40:00Z",
        "reporter": {"openid": "oC3", "name": "王五"},
    }
    for body in (first, second, far):
        assert client.post("/api/v1/cases", json=body, headers=auth()).status_code == 201
    html = client.get("/console", headers=auth()).text
    cards = {m.group(1): m.group(2) for m in re.finditer(r'data-case-id="([^"]+)"[^>]*>(.*?)</section>', html, re.S)}
    # only the later report is offered the earlier one as its original (pre-filled, and a one-click button)
    assert 'name="duplicate_of" value="LZ-A"' in cards["LZ-B"] and "标为重复于此件" in cards["LZ-B"]
    assert "标为重复于此件" not in cards["LZ-A"] and 'value="LZ-B"' not in cards["LZ-A"]
    assert "LZ-B" in cards["LZ-A"]  # listed as a later report nearby, nothing to act on
    assert "附近同类举报" not in cards["LZ-C"]  # far away: nothing near it
    # the pre-filled "重复于" only counts for the verdict duplicate: "valid" sent with it files the case
    form = {"verdict": "valid", "duplicate_of": "LZ-A", "reason": "", "csrf": csrf(client)}
    r = client.post("/console/cases/LZ-B/verdict", data=form, headers=auth(), follow_redirects=False)
    assert r.status_code == 303 and "flash=" in r.headers["location"], r.headers["location"]
    assert "已处理：有效，已立案" in client.get(r.headers["location"], headers=auth()).text
    case = client.get("/api/v1/cases/LZ-B", headers=auth()).json()
    assert case["status"] == "filed" and case["duplicate_of"] is None


def test_a_wrong_token_is_refused_even_beside_a_valid_console_session(client) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import VALIDATOR_TOKEN

    r = client.post("/auth/console/login", json={"token": VALIDATOR_TOKEN})
    assert r.status_code == 200
    assert client.get("/api/v1/cases").status_code == 200  # the console session alone
    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer wrong"}).status_code == 401
