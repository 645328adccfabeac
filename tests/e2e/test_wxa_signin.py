"""The mini program signs in: POST /api/v1/auth/wxa against a stand-in code2Session on loopback, linking by unionid.

Real SQL (SQLite and PostgreSQL) and Redis; WeChat is a real HTTP server on 127.0.0.1 (tests/fakes/wechat_wxa.py)
answering both apps' sign-in endpoints, so the official account's OAuth and the mini program meet in one test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.identity import CitizenIdentity, IdentityLink
from rewards.cases.models import AuditEntry, Citizen
from tests.conftest import test_settings
from tests.fakes.wechat_wxa import MP_APP_ID, MP_SECRET, WXA_APP_ID, WXA_SECRET, WxaStandIn, serve
from tests.integration.test_check_rebuild import award

SIGN_IN = "/api/v1/auth/wxa"


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[WxaStandIn, str]]:
    state = WxaStandIn()
    server, base = serve(state)
    yield state, base
    server.shutdown()
    server.server_close()


@pytest.fixture(name="wx")
def wx_fixture(stand_in: tuple[WxaStandIn, str]) -> WxaStandIn:
    state, _ = stand_in
    state.reset()
    return state


@pytest.fixture
def settings(stand_in: tuple[WxaStandIn, str]) -> Any:  # overrides conftest's: the container uses it
    _, base = stand_in
    return test_settings(
        wxa_app_id=WXA_APP_ID,
        wxa_app_secret=WXA_SECRET,
        wxa_api_base=base,
        wechat_app_id=MP_APP_ID,
        wechat_app_secret=MP_SECRET,
        wechat_sns_api_base=base + "sns/",
    )


def wxa(client: TestClient, code: str) -> Any:
    """The mini program's sign-in; the client keeps no cookie from it (wx.request keeps none either)."""
    r = client.post(SIGN_IN, json={"code": code})
    client.cookies.clear()
    return r


def as_session(token: str) -> dict[str, str]:
    """The header the mini program sends with every citizen API call."""
    return {"Cookie": f"rw_session={token}"}


def mp_sign_in(client: TestClient, wx: WxaStandIn, code: str, openid: str, unionid: str | None) -> str:
    """The official account's web OAuth sign-in (state cookie, WeChat's redirect back); return the session cookie."""
    r = client.get("/auth/wechat/login", params={"next": "/me"}, follow_redirects=False)
    assert r.status_code == 302, r.text
    state = parse_qs(urlsplit(r.headers["location"].partition("#")[0]).query)["state"][0]
    wx.issue_mp(code, openid, unionid)
    r = client.get("/auth/wechat/callback", params={"code": code, "state": state}, follow_redirects=False)
    assert r.status_code == 303, r.text
    token = client.cookies.get("rw_session")
    assert token
    client.cookies.clear()
    return str(token)


def counts(c: Container) -> tuple[int, int, int, int]:
    """Rows a sign-in may write: citizens, identities, links, audit lines."""
    with c.read() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in (Citizen, CitizenIdentity, IdentityLink, AuditEntry)
        )


def test_a_new_citizen_signs_in_and_calls_the_citizen_api_with_the_token(
    client: TestClient, wx: WxaStandIn, container: Container
) -> None:
    issued = wx.issue_wxa("WXCODE1", "oWxaNew")
    r = wxa(client, "WXCODE1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["openid"] == "oWxaNew" and body["cookie"] == "rw_session"
    assert body["expires_in"] == container.settings.session_max_age_seconds == 604800
    assert body["linked"] is False and body["link_pending"] is False
    assert issued.session_key not in r.text  # the session_key stays with WeChat's answer, dropped at once
    # the call WeChat saw: AppID, AppSecret, the code; no access token fetched or sent (code2Session needs none)
    assert wx.calls("/sns/jscode2session") == [
        {
            "path": "/sns/jscode2session",
            "appid": WXA_APP_ID,
            "secret": WXA_SECRET,
            "js_code": "WXCODE1",
            "grant_type": "authorization_code",
        }
    ]
    assert wx.calls("/cgi-bin/token") == []
    token = body["token"]
    assert client.get("/api/v1/citizens/oWxaNew/points").status_code == 401  # no session without the token
    points = client.get("/api/v1/citizens/oWxaNew/points", headers=as_session(token))
    assert points.status_code == 200 and points.json()["total"] == 0
    assert client.get("/api/v1/citizens/oWxaNew/standing", headers=as_session(token)).status_code == 200
    assert client.get("/auth/session", headers=as_session(token)).json()["citizen"] == "oWxaNew"
    assert client.get("/api/v1/citizens/oSomeoneElse/points", headers=as_session(token)).status_code == 403
    with container.read() as s:
        row = s.scalar(select(CitizenIdentity).where(CitizenIdentity.openid == "oWxaNew"))
        assert row is not None and row.app == "wxa" and row.unionid is None


def test_a_unionid_links_the_mini_program_to_the_official_account_citizen(
    client: TestClient, wx: WxaStandIn, container: Container
) -> None:
    award(container, "LZ-W-1", "oMpAlice")
    award(container, "LZ-W-2", "oMpAlice")
    mp_token = mp_sign_in(client, wx, "MPCODE1", "oMpAlice", "uAlice")  # the official account records the unionid
    wx.issue_wxa("WXCODE2", "oWxaAlice", "uAlice")
    r = wxa(client, "WXCODE2")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["openid"] == "oMpAlice" and body["linked"] is True and body["link_pending"] is False
    container.projector.catch_up()
    via_mp = client.get("/api/v1/citizens/oMpAlice/points", headers=as_session(mp_token)).json()
    via_wxa = client.get("/api/v1/citizens/oMpAlice/points", headers=as_session(body["token"])).json()
    assert via_wxa == via_mp and via_wxa["total"] == 2
    standing_mp = client.get("/api/v1/citizens/oMpAlice/standing", headers=as_session(mp_token)).json()
    standing_wxa = client.get("/api/v1/citizens/oMpAlice/standing", headers=as_session(body["token"])).json()
    assert standing_wxa == standing_mp
    # the next mini-program sign-in finds the same citizen; no second citizen was ever made for the wxa openid
    wx.issue_wxa("WXCODE3", "oWxaAlice", "uAlice")
    assert wxa(client, "WXCODE3").json()["openid"] == "oMpAlice"
    with container.read() as s:
        assert s.scalar(select(Citizen).where(Citizen.openid == "oWxaAlice")) is None
        audit = s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("identity_%"))).all()
        assert audit == ["identity_linked"]


def test_linking_works_when_the_mini_program_comes_first(
    client: TestClient, wx: WxaStandIn, container: Container
) -> None:
    award(container, "LZ-W-3", "oMpBob")  # Bob earned through the official account, never signed in anywhere
    wx.issue_wxa("WXCODE4", "oWxaBob", "uBob")
    first = wxa(client, "WXCODE4").json()
    assert first["openid"] == "oWxaBob" and first["linked"] is False  # nobody knew uBob yet: a new (empty) citizen
    mp_token = mp_sign_in(client, wx, "MPCODE2", "oMpBob", "uBob")  # now the unionid meets Bob, who has points
    assert client.get("/auth/session", headers=as_session(mp_token)).json()["citizen"] == "oMpBob"
    wx.issue_wxa("WXCODE5", "oWxaBob", "uBob")
    again = wxa(client, "WXCODE5").json()
    assert again["openid"] == "oMpBob"  # the empty mini-program citizen was absorbed: its openid is Bob's now
    points = client.get("/api/v1/citizens/oMpBob/points", headers=as_session(again["token"])).json()
    assert points["total"] == 1
    with container.read() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("identity_%"))).all()
        assert actions == ["identity_absorbed"]


def test_bad_code_is_a_clear_400_and_writes_nothing(client: TestClient, wx: WxaStandIn, container: Container) -> None:
    before = counts(container)
    r = wxa(client, "NEVERISSUED")
    assert r.status_code == 400
    assert r.json() == {"error": "bad_code", "detail": "the wx.login code is invalid or expired: call wx.login again"}
    malformed = wxa(client, "bad code!")
    assert malformed.status_code == 422  # not even sent to WeChat
    assert len(wx.calls("/sns/jscode2session")) == 1
    assert counts(container) == before


def test_rate_limited_code2session_is_429_with_retry_after_and_writes_nothing(
    client: TestClient, wx: WxaStandIn, container: Container
) -> None:
    wx.issue_wxa("WXCODE6", "oWxaCarol")
    wx.limit(1)
    before = counts(container)
    r = wxa(client, "WXCODE6")
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    assert r.json()["error"] == "wechat_rate_limited" and "retry" in r.json()["detail"]
    assert "set-cookie" not in r.headers
    assert counts(container) == before
    wx.busy(1)
    busy = wxa(client, "WXCODE6")
    assert busy.status_code == 503 and busy.json()["error"] == "wechat_busy"
    assert counts(container) == before
    ok = wxa(client, "WXCODE6")  # WeChat did not spend the code while refusing: the retry signs in
    assert ok.status_code == 200 and ok.json()["openid"] == "oWxaCarol"


def test_a_replayed_code_is_refused_and_writes_nothing(
    client: TestClient, wx: WxaStandIn, container: Container
) -> None:
    wx.issue_wxa("WXCODE7", "oWxaDan", "uDan")
    assert wxa(client, "WXCODE7").status_code == 200
    before = counts(container)
    with container.read() as s:
        seen = s.scalar(select(CitizenIdentity.seen_at).where(CitizenIdentity.openid == "oWxaDan"))
    container.clock.advance(seconds=30)  # type: ignore[attr-defined]
    r = wxa(client, "WXCODE7")
    assert r.status_code == 400 and r.json()["error"] == "code_used"
    assert counts(container) == before
    with container.read() as s:
        assert s.scalar(select(CitizenIdentity.seen_at).where(CitizenIdentity.openid == "oWxaDan")) == seen


def test_an_unconfigured_mini_program_is_404_and_an_unreachable_wechat_503(
    make_container: Any, db_engine: Any, container: Container
) -> None:
    unconfigured = make_container(test_settings(), engine=db_engine)
    with TestClient(create_app(unconfigured)) as http:
        r = http.post(SIGN_IN, json={"code": "X"})
    assert r.status_code == 404 and r.json()["error"] == "wxa_unconfigured"
    nobody_listens = container.settings.model_copy(update={"wxa_api_base": "http://127.0.0.1:9/"})
    before = counts(container)
    with TestClient(create_app(make_container(nobody_listens, engine=db_engine))) as http:
        r = http.post(SIGN_IN, json={"code": "X"})
    assert r.status_code == 503 and r.json()["error"] == "wechat_unavailable"
    assert counts(container) == before


def test_session_secrets_are_never_logged(
    client: TestClient, wx: WxaStandIn, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = wx.issue_wxa("WXCODE8", "oWxaEve", "uEve")
    r = wxa(client, "WXCODE8")
    assert r.status_code == 200
    wxa(client, "WXCODE8")  # refused: the exception wechatpy raises carries the request URL with the secret
    wx.limit(1)
    wx.issue_wxa("WXCODE9", "oWxaEve", "uEve")
    wxa(client, "WXCODE9")
    assert "secret=***" in caplog.text  # the code2Session URL was logged (urllib3), redacted
    for secret in (WXA_SECRET, issued.session_key, r.json()["token"], "WXCODE8", "test-session-secret"):
        assert secret not in caplog.text
