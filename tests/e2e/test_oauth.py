"""WeChat web OAuth sign-in against a stand-in token endpoint on loopback, session cookies, the console sign-in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from rewards.app import create_app
from rewards.cases.models import AuditEntry, Citizen
from tests.conftest import ADMIN_TOKEN, INTAKE_TOKEN, VALIDATOR_TOKEN, MakeContainer, auth, test_settings
from tests.fakes.wechat_oauth import OAuthStandIn, serve

APP_ID = "wxoauthstandin01"
SECRET = "stand-in-app-secret-5f2b"
AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
CASE = {
    "case_id": "LZ-2026-000101",
    "category": "street_lamp",
    "description": "路灯不亮",
    "lat": 36.06,
    "lon": 103.83,
    "district": "城关区",
    "reporter": {"openid": "oOther", "name": "李四", "verified": True},
}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[OAuthStandIn, str]]:
    state = OAuthStandIn(APP_ID, SECRET)
    server, base = serve(state)
    yield state, base
    server.shutdown()
    server.server_close()  # shutdown() only stops the loop; the listening socket would be left to the GC


def oauth_settings(base: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"wechat_app_id": APP_ID, "wechat_app_secret": SECRET, "wechat_sns_api_base": base}
    values.update(overrides)
    return test_settings(**values)


@pytest.fixture
def settings(stand_in: tuple[OAuthStandIn, str]) -> Any:  # overrides conftest's: the container uses it
    state, base = stand_in
    state.codes.clear()
    state.used.clear()
    state.requests.clear()
    return oauth_settings(base)


@contextmanager
def app_with(
    make_container: MakeContainer, container: Any, base_url: str = "http://testserver", **overrides: Any
) -> Iterator[TestClient]:
    """A second app on the same database, Redis and clock with other settings."""
    other = make_container(container.settings.model_copy(update=overrides), engine=container.engine)
    with TestClient(create_app(other), base_url=base_url) as http:
        yield http


def start(client: TestClient, next_: str | None = "/me") -> tuple[str, dict[str, str]]:
    params = {"next": next_} if next_ is not None else {}
    r = client.get("/auth/wechat/login", params=params, follow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    url, _, fragment = location.partition("#")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert fragment == "wechat_redirect"
    return url, query


def sign_in(client: TestClient, stand_in: OAuthStandIn, code: str, openid: str, **kw: Any) -> Any:
    _, query = start(client, kw.pop("next_", "/me"))
    stand_in.issue(code, openid, **kw)
    return client.get("/auth/wechat/callback", params={"code": code, "state": query["state"]}, follow_redirects=False)


def set_cookie(response: Any, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def test_authorize_url_is_wechats_snsapi_base_with_a_wechat_safe_state(client: TestClient) -> None:
    url, query = start(client)
    assert url.startswith(AUTHORIZE + "?appid=")
    assert list(query) == ["appid", "redirect_uri", "response_type", "scope", "state"]  # WeChat's documented order
    assert query["appid"] == APP_ID and query["scope"] == "snsapi_base" and query["response_type"] == "code"
    assert query["redirect_uri"] == "http://127.0.0.1:8000/auth/wechat/callback"
    assert query["state"].isalnum() and len(query["state"]) <= 128  # WeChat: [A-Za-z0-9], at most 128 bytes


def test_sign_in_sets_a_signed_http_only_cookie_and_the_citizen_sees_only_their_own_data(
    client: TestClient, stand_in: tuple[OAuthStandIn, str], container: Any
) -> None:
    state, _ = stand_in
    assert client.post("/api/v1/cases", json=CASE, headers=auth()).status_code == 201  # another citizen exists
    r = sign_in(client, state, "CODE1", "oCitizenA")
    assert r.status_code == 303 and r.headers["location"] == "/me"
    cookie = set_cookie(r, "rw_session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "max-age=604800" in cookie and "secure" not in cookie  # http public_base_url: no Secure flag
    assert "oCitizenA" not in cookie  # the openid is inside a signed, encoded payload, not in clear text
    assert state.requests == [
        {
            "path": "/sns/oauth2/access_token",
            "appid": APP_ID,
            "secret": SECRET,
            "code": "CODE1",
            "grant_type": "authorization_code",
        }
    ]
    assert client.get("/auth/session").json() == {"citizen": "oCitizenA", "dev": False, "console": None}
    own = client.get("/api/v1/citizens/oCitizenA/points")
    assert own.status_code == 200 and own.json()["total"] == 0
    assert client.get("/api/v1/citizens/oOther/points").status_code == 403
    assert client.get("/api/v1/citizens/oNobody/points").status_code == 403
    with container.read() as session:
        citizen = session.scalar(select(Citizen).where(Citizen.openid == "oCitizenA"))
        assert citizen is not None and citizen.snapshot_user is False


def test_a_forged_or_foreign_cookie_is_no_session(
    client: TestClient, stand_in: tuple[OAuthStandIn, str], make_container: MakeContainer
) -> None:
    state, _ = stand_in
    sign_in(client, state, "CODE2", "oCitizenB")
    value = client.cookies.get("rw_session")
    assert value
    client.cookies.set("rw_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/auth/session").json()["citizen"] is None
    assert client.get("/api/v1/citizens/oCitizenB/points").status_code == 401
    with app_with(make_container, client.app.state.container, session_secret=SecretStr("another-secret")) as other:
        other.cookies.set("rw_session", value)
        assert other.get("/auth/session").json()["citizen"] is None


def test_state_must_match_this_browser(client: TestClient, stand_in: tuple[OAuthStandIn, str]) -> None:
    state, _ = stand_in
    _, mine = start(client)
    state.issue("CODE3", "oCitizenC")
    with TestClient(client.app) as stranger:  # no login cookie at all
        r = stranger.get("/auth/wechat/callback", params={"code": "CODE3", "state": mine["state"]})
        assert r.status_code == 400 and r.json()["error"] == "bad_state"
        _, theirs = start(stranger)
    r = client.get("/auth/wechat/callback", params={"code": "CODE3", "state": theirs["state"]})  # another browser's
    assert r.status_code == 400 and r.json()["error"] == "bad_state"
    tampered = mine["state"][:-1] + ("0" if mine["state"][-1] != "0" else "1")
    r = client.get("/auth/wechat/callback", params={"code": "CODE3", "state": tampered})
    assert r.status_code == 400 and r.json()["error"] == "bad_state"
    assert client.get("/auth/wechat/callback", params={"code": "CODE3"}).status_code == 400
    assert state.requests == []  # no code was exchanged on a bad state
    r = client.get("/auth/wechat/callback", params={"code": "CODE3", "state": mine["state"]}, follow_redirects=False)
    assert r.status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "http:/evil.example",
        " /me",
        "/me\r\nSet-Cookie: x=1",
    ],
)
def test_open_redirects_are_refused(client: TestClient, target: str) -> None:
    r = client.get("/auth/wechat/login", params={"next": target}, follow_redirects=False)
    assert r.status_code == 400 and r.json()["error"] == "bad_redirect"


def test_next_path_is_kept(client: TestClient, stand_in: tuple[OAuthStandIn, str]) -> None:
    state, _ = stand_in
    r = sign_in(client, state, "CODE4", "oCitizenD", next_="/leaderboard?week=2026-W48")
    assert r.status_code == 303 and r.headers["location"] == "/leaderboard?week=2026-W48"


def test_snapshot_user_is_flagged_and_earns_nothing(
    client: TestClient, stand_in: tuple[OAuthStandIn, str], container: Any
) -> None:
    state, _ = stand_in
    assert sign_in(client, state, "SNAP", "oSnapshot", snapshot=True).status_code == 303
    with container.read() as session:
        citizen = session.scalar(select(Citizen).where(Citizen.openid == "oSnapshot"))
        assert citizen is not None and citizen.snapshot_user is True
    case = {**CASE, "case_id": "LZ-2026-000102", "reporter": {"openid": "oSnapshot", "verified": True}}
    assert client.post("/api/v1/cases", json=case, headers=auth()).status_code == 201
    r = client.post("/api/v1/cases/LZ-2026-000102/verdict", json={"verdict": "valid"}, headers=auth())
    assert r.status_code == 200 and r.json()["status"] == "filed"
    assert client.get("/api/v1/citizens/oSnapshot/points").json()["total"] == 0
    assert sign_in(client, state, "AGAIN", "oSnapshot").status_code == 303  # a later sign-in never unflags
    with container.read() as session:
        assert session.scalar(select(Citizen.snapshot_user).where(Citizen.openid == "oSnapshot")) is True


def test_bad_codes_and_an_unreachable_wechat(
    client: TestClient, stand_in: tuple[OAuthStandIn, str], make_container: MakeContainer
) -> None:
    state, _ = stand_in
    assert sign_in(client, state, "ONCE", "oCitizenE").status_code == 303
    _, query = start(client)
    r = client.get("/auth/wechat/callback", params={"code": "ONCE", "state": query["state"]})  # code been used
    assert r.status_code == 400 and r.json()["error"] == "bad_code"
    r = client.get("/auth/wechat/callback", params={"code": "NEVER-ISSUED", "state": query["state"]})
    assert r.status_code == 400 and r.json()["error"] == "bad_code"
    r = client.get("/auth/wechat/callback", params={"code": "bad code!", "state": query["state"]})
    assert r.status_code == 400 and r.json()["error"] == "bad_code"
    with app_with(make_container, client.app.state.container, wechat_sns_api_base="http://127.0.0.1:9/sns/") as down:
        _, q = start(down)
        r = down.get("/auth/wechat/callback", params={"code": "ANY", "state": q["state"]})
        assert r.status_code == 503 and r.json()["error"] == "wechat_unavailable"
    with app_with(make_container, client.app.state.container, wechat_app_id=None) as unconfigured:
        r = unconfigured.get("/auth/wechat/login", follow_redirects=False)
        assert r.status_code == 503 and r.json()["error"] == "oauth_unconfigured"


def test_secure_cookie_over_https(
    client: TestClient, stand_in: tuple[OAuthStandIn, str], make_container: MakeContainer
) -> None:
    state, _ = stand_in
    container = client.app.state.container
    with app_with(make_container, container, public_base_url="https://ssp.example.gov.cn") as plain:
        _, query = start(plain)  # the state cookie is Secure: a browser on http does not send it back
        state.issue("HTTP1", "oCitizenF")
        r = plain.get("/auth/wechat/callback", params={"code": "HTTP1", "state": query["state"]})
        assert r.status_code == 400 and r.json()["error"] == "bad_state"
    with app_with(
        make_container, container, "https://testserver", public_base_url="https://ssp.example.gov.cn"
    ) as https:
        _, query = start(https)
        assert query["redirect_uri"] == "https://ssp.example.gov.cn/auth/wechat/callback"
        state.issue("HTTPS1", "oCitizenF")
        r = https.get(
            "/auth/wechat/callback", params={"code": "HTTPS1", "state": query["state"]}, follow_redirects=False
        )
        assert r.status_code == 303
        assert "secure" in set_cookie(r, "rw_session").lower()


def test_secrets_and_cookies_are_never_logged(
    client: TestClient, stand_in: tuple[OAuthStandIn, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, _ = stand_in
    caplog.set_level(logging.DEBUG)
    r = sign_in(client, state, "LOGGED", "oCitizenG")
    assert r.status_code == 303
    cookie = client.cookies.get("rw_session")
    assert cookie
    client.get("/api/v1/citizens/oCitizenG/points")
    client.post("/auth/console/login", headers=auth(VALIDATOR_TOKEN))
    assert "secret=***" in caplog.text  # the token request was logged (by httpx), with the secret redacted
    for secret in (SECRET, cookie, VALIDATOR_TOKEN, "test-session-secret", client.cookies.get("rw_console")):
        assert secret and secret not in caplog.text


def test_console_sign_in_opens_a_cookie_session_for_validators_only(
    client: TestClient, container: Any, make_container: MakeContainer
) -> None:
    assert client.get("/api/v1/cases").status_code == 401
    assert client.post("/auth/console/login").status_code == 401
    assert client.post("/auth/console/login", headers=auth("wrong-token")).status_code == 401
    assert client.post("/auth/console/login", headers=auth(INTAKE_TOKEN)).status_code == 401  # a machine role
    r = client.post("/auth/console/login", headers=auth(VALIDATOR_TOKEN))
    assert r.status_code == 200 and r.json() == {"name": "validator-1", "role": "validator"}
    cookie = set_cookie(r, "rw_console").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie
    assert VALIDATOR_TOKEN not in cookie
    assert client.get("/api/v1/cases").status_code == 200  # the cookie stands in for the bearer token
    assert client.get("/auth/session").json()["console"] == {"name": "validator-1", "role": "validator"}
    # a cross-origin state-changing request does not get the session; a same-origin one does
    verdict = {"verdict": "valid"}
    foreign = client.post("/api/v1/cases/NOPE/verdict", json=verdict, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 401
    own = client.post("/api/v1/cases/NOPE/verdict", json=verdict, headers={"Origin": "http://testserver"})
    assert own.status_code == 404
    with container.read() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "console_sign_in")).all()
        assert [(a.actor, a.target) for a in rows] == [("validator-1", "validator")]
    # removing the token from the settings ends its console sessions
    tokens = {k: v for k, v in container.settings.api_tokens.items() if k != VALIDATOR_TOKEN}
    with app_with(make_container, container, api_tokens=tokens) as revoked:
        revoked.cookies.set("rw_console", client.cookies.get("rw_console") or "")
        assert revoked.get("/api/v1/cases").status_code == 401
    assert client.post("/auth/logout").status_code == 204
    assert client.get("/api/v1/cases").status_code == 401


def test_console_sign_in_by_form_and_json(client: TestClient) -> None:
    r = client.post("/auth/console/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console"  # a browser form goes on to the console
    assert client.get("/console").status_code == 200  # the cookie it set opens the console
    r = client.post("/auth/console/login", json={"token": VALIDATOR_TOKEN})
    assert r.status_code == 200 and r.json()["role"] == "validator"
    r = client.post("/auth/console/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_logout_ends_the_citizen_session(client: TestClient, stand_in: tuple[OAuthStandIn, str]) -> None:
    state, _ = stand_in
    sign_in(client, state, "BYE", "oCitizenH")
    assert client.get("/api/v1/citizens/oCitizenH/points").status_code == 200
    r = client.post("/auth/logout")
    assert r.status_code == 204 and "max-age=0" in set_cookie(r, "rw_session").lower()
    assert client.get("/api/v1/citizens/oCitizenH/points").status_code == 401
