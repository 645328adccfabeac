"""Secrets: compared in constant time, cookies signed + HttpOnly + SameSite, never written to a log.

Real PostgreSQL and Redis; the WeChat API and WeChat's OAuth endpoint are the loopback stand-ins of tests/fakes.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import inspect
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from wechatpy.crypto import WeChatCrypto

from intake_adapter import auth as intake_auth
from intake_adapter import open311_submit
from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.http import auth as api_auth
from rewards.http import session
from rewards.web import console, oauth, wechat
from tests.conftest import START, MakeContainer, test_settings
from tests.fakes.publish_env import Sleeper, close_w47, service
from tests.fakes.wechat_oauth import OAuthStandIn, serve
from tests.fakes.wechat_server import WeChatServer

ROOT = Path(__file__).resolve().parents[2]
# names that hold (or are derived from) a credential; comparing two of them with == leaks timing
SECRETISH = re.compile(r"signature|digest|hmac|_mac\b|^mac$|secret|token|fingerprint|csrf|api_key|nonce|passw", re.I)
# == between such names that is not a credential check, and why
NOT_CREDENTIALS = {
    ("rewards/leaderboard/weeks.py", "hashlib.sha256(again).hexdigest() != stored.checksum"): "data integrity",
}


def _names(node: ast.AST) -> list[str]:
    return [
        n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node) if isinstance(n, ast.Name | ast.Attribute)
    ]


def _constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name) and node.id.isupper():  # a module constant (PUBLISHED, TOKEN, ...)
        return True
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and all(_constant(e) for e in node.elts)


def equality_on_secrets(source: str) -> list[str]:
    """Every `a == b` / `a != b` between two non-constant expressions naming a credential."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, a, b in zip(node.ops, operands, operands[1:], strict=False):
            compared = isinstance(op, ast.Eq | ast.NotEq) and not (_constant(a) or _constant(b))
            if compared and any(SECRETISH.search(name) for name in _names(a) + _names(b)):
                found.append(ast.unparse(node))
    return found


def test_no_credential_is_compared_with_equals() -> None:
    files = sorted([*ROOT.joinpath("rewards").rglob("*.py"), *ROOT.joinpath("intake_adapter").rglob("*.py")])
    assert len(files) > 40
    hits = [
        f"{f.relative_to(ROOT)}: {expr}"
        for f in files
        for expr in equality_on_secrets(f.read_text(encoding="utf-8"))
        if (str(f.relative_to(ROOT)), expr) not in NOT_CREDENTIALS
    ]
    assert hits == []


def test_the_scan_catches_a_timing_leak() -> None:
    leaky = (
        "def verify(given, secret, body):\n    expected = sign(secret, body)\n    return given_signature == expected\n"
    )
    assert equality_on_secrets(leaky) == ["given_signature == expected"]
    assert equality_on_secrets("if token is None or scheme != 'bearer': pass\nok = pub.state == PUBLISHED") == []


@pytest.mark.parametrize(
    "check",
    [
        intake_auth.verify,  # the intake webhook's HMAC
        wechat.signature_ok,  # the WeChat callback's SHA-1 signatures
        oauth.state_matches,  # the OAuth state
        console.check_csrf,  # the console's form token
        api_auth.TokenTable.principal,  # bearer tokens
        api_auth.require_citizen_or,  # a citizen's own openid
        open311_submit.check_api_key,  # Open311 api_key
        session.SessionCodec.console_session_for,  # console token fingerprints
    ],
    ids=lambda f: f.__qualname__,
)
def test_every_credential_check_uses_compare_digest(check: Any) -> None:
    assert "hmac.compare_digest(" in inspect.getsource(check)


# -- cookies -----------------------------------------------------------------------------------------------------

APP_ID, APP_SECRET = "wxsecuritytest001", "app-secret-7c1f0e9a"
SECRETS = {
    "session_secret": "session-secret-5b0d7e",
    "intake_secret": "intake-secret-93f2aa",
    "wechat_token": "wechat-token-1d84c6",
    "wechat_aes_key": base64.b64encode(bytes(range(100, 132))).decode().rstrip("="),
}
TOKENS = {"validator-token-6e21b4": "validator", "admin-token-0f3c9d": "admin", "publisher-token-a4d2": "publisher"}
OPEN311_KEY = "open311-key-e07b55"


@pytest.fixture(scope="module")
def oauth_stand_in() -> Iterator[tuple[OAuthStandIn, str]]:
    state = OAuthStandIn(APP_ID, APP_SECRET)
    server, base = serve(state)
    yield state, base
    server.shutdown()
    server.server_close()  # shutdown() only stops the loop; the listening socket would be left to the GC


@pytest.fixture
def wx() -> Iterator[WeChatServer]:
    with WeChatServer(appid=APP_ID, secret=APP_SECRET) as server:
        yield server


def secret_settings(oauth_base: str, wx: WeChatServer, tmp_path: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        **SECRETS,
        "api_tokens": {t: {"name": f"{role}-1", "role": role} for t, role in TOKENS.items()},
        "open311_api_keys": [OPEN311_KEY],
        "wechat_app_id": APP_ID,
        "wechat_app_secret": APP_SECRET,
        "wechat_sns_api_base": oauth_base,
        "wechat_api_base": wx.base_url,
        "outbox_dir": tmp_path / "outbox",
        "publish_poll_seconds": 0,
        "publish_backoff_seconds": 0,
        "wechat_timeout_seconds": 2,
    }
    values.update(overrides)
    return test_settings(**values)


@pytest.fixture
def sc(
    pg_engine: Engine,
    make_container: MakeContainer,
    oauth_stand_in: tuple[OAuthStandIn, str],
    wx: WeChatServer,
    tmp_path: Path,
) -> Container:
    return make_container(secret_settings(oauth_stand_in[1], wx, tmp_path), engine=pg_engine)


def oauth_sign_in(http: TestClient, stand_in: OAuthStandIn, code: str, openid: str) -> Any:
    r = http.get("/auth/wechat/login", params={"next": "/me"}, follow_redirects=False)
    state = re.search(r"[?&]state=([A-Za-z0-9]+)", r.headers["location"])
    assert r.status_code == 302 and state
    stand_in.issue(code, openid)
    return http.get("/auth/wechat/callback", params={"code": code, "state": state.group(1)}, follow_redirects=False)


def set_cookies(response: Any) -> list[str]:
    return list(response.headers.get_list("set-cookie"))


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "https://ssp.example.gov.cn"])
def test_every_cookie_is_signed_http_only_and_same_site(
    sc: Container, make_container: MakeContainer, oauth_stand_in: tuple[OAuthStandIn, str], base_url: str
) -> None:
    s = sc.settings.model_copy(update={"public_base_url": base_url, "dev_login": True})
    c = make_container(s, engine=sc.engine)
    stand_in = oauth_stand_in[0]
    with TestClient(create_app(c), base_url=base_url.replace("127.0.0.1:8000", "testserver")) as http:
        responses = {
            "oauth start": http.get("/auth/wechat/login", follow_redirects=False),
            "oauth finish": oauth_sign_in(http, stand_in, f"CODE-{len(base_url)}", "oCookie1"),
            "dev sign-in": http.get("/auth/dev-login", params={"openid": "oCookie2"}, follow_redirects=False),
            "console sign-in": http.post("/auth/console/login", headers={"Authorization": "Bearer admin-token-0f3c9d"}),
            "sign-out": http.post("/auth/logout"),
        }
    seen = set()
    for what, r in responses.items():
        assert r.status_code < 400, (what, r.status_code, r.text)
        for header in set_cookies(r):
            name = header.split("=", 1)[0]
            attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
            seen.add(name)
            assert "httponly" in attrs, (what, header)
            assert attrs.get("samesite", "").lower() in ("samesite=lax", "samesite=strict"), (what, header)
            assert ("secure" in attrs) == base_url.startswith("https://"), (what, header)
            assert "path" in attrs, (what, header)
    assert seen == {"rw_oauth", "rw_session", "rw_console"}


def test_cookies_are_signed_a_changed_or_foreign_cookie_is_no_session(sc: Container) -> None:
    codec = session.SessionCodec(sc.settings)
    foreign = session.SessionCodec(sc.settings.model_copy(update={"session_secret": SecretStr("another-secret")}))
    good = codec.dump_citizen(session.CitizenSession("oSigned"))
    console_cookie = codec.dump_console(session.ConsoleSession("admin-1", "admin", "f" * 32))
    with TestClient(create_app(sc)) as http:
        http.cookies.set(session.CITIZEN_COOKIE, good)
        assert http.get("/auth/session").json()["citizen"] == "oSigned"
        payload, _, sig = good.rpartition(".")
        for forged in (
            payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:],  # signature changed
            good.replace(good.split(".")[0], base64.urlsafe_b64encode(b'{"o":"oAdmin"}').decode().rstrip("=")),
            foreign.dump_citizen(session.CitizenSession("oSigned")),  # signed with another secret
            json.dumps({"o": "oSigned"}),  # not signed at all
        ):
            http.cookies.set(session.CITIZEN_COOKIE, forged)
            assert http.get("/auth/session").json()["citizen"] is None, forged
        http.cookies.clear()
        http.cookies.set(session.CONSOLE_COOKIE, console_cookie)  # well signed, but no such token fingerprint
        assert http.get("/auth/session").json()["console"] is None


# -- no secret in any log record ---------------------------------------------------------------------------------


def wechat_post(http: TestClient, c: Container, openid: str) -> Any:
    """A signed safe-mode message asking for the rank, as WeChat sends it."""
    ts, nonce = str(int(c.clock.now().timestamp())), "lognonce"
    xml = (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[排名]]></Content></xml>"
    )
    token, key = SECRETS["wechat_token"], SECRETS["wechat_aes_key"]
    envelope = xmltodict.parse(WeChatCrypto(token, key, APP_ID).encrypt_message(xml, nonce, ts))["xml"]
    q = {
        "signature": hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest(),
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": envelope["MsgSignature"],
    }
    body = (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    )
    return http.post("/wechat/callback", params=q, content=body.encode())


def test_no_secret_is_ever_logged(
    sc: Container, oauth_stand_in: tuple[OAuthStandIn, str], wx: WeChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything any library logs, requests' and httpx's URLs included
    stand_in = oauth_stand_in[0]
    seen: list[str] = []  # credentials and cookies issued during the run
    with TestClient(create_app(sc)) as http:
        # sign-in: a citizen through WeChat OAuth, a validator into the console (header, JSON, form), wrong tokens
        assert oauth_sign_in(http, stand_in, "LOGCODE1", "oLogged").status_code == 303
        seen += [v for v in (http.cookies.get("rw_session"),) if v]
        for attempt in (
            {"headers": {"Authorization": "Bearer validator-token-6e21b4"}},
            {"json": {"token": "admin-token-0f3c9d"}},
            {"data": {"token": "validator-token-6e21b4"}},
            {"headers": {"Authorization": "Bearer wrong-token-guess-19ab"}},
        ):
            http.post("/auth/console/login", follow_redirects=False, **attempt)
        seen += [v for v in (http.cookies.get("rw_console"),) if v]
        http.cookies.clear()
        assert http.get("/api/v1/cases", headers={"Authorization": "Bearer wrong-token-guess-19ab"}).status_code == 401
        # intake: a signed batch, and one signed with the wrong secret
        event = {
            "event_id": "log-1",
            "type": "report.submitted",
            "occurred_at": START.isoformat(),
            "case_id": "LOG-1",
            "category": "street_lamp",
            "reporter": {"openid": "oLogged", "name": "张三明", "phone": "13812341234", "verified": True},
        }
        body = json.dumps({"events": [event]}).encode()
        ts = str(int(sc.clock.now().timestamp()))
        for secret in (SECRETS["intake_secret"], "wrong-intake-secret"):
            sig = intake_auth.signature(secret, ts, body)
            seen.append(sig)
            http.post("/intake/v1/events", content=body, headers={"X-Timestamp": ts, "X-Signature": sig})
        http.post(
            "/api/v1/cases/LOG-1/verdict",
            json={"verdict": "valid"},
            headers={"Authorization": "Bearer admin-token-0f3c9d"},
        )
        # Open311 with its api_key; the WeChat callback in safe mode
        http.post(
            "/open311/v2/requests.json",
            data={"api_key": OPEN311_KEY, "service_code": "debris", "lat": "36.1", "long": "103.8"},
        )
        assert wechat_post(http, sc, "oLogged").status_code == 200
        # publishing to the WeChat stand-in: token, uploads, draft, submit, polls (with the app secret and tokens)
        close_w47(sc)
        pub = service(sc, Sleeper(wx)).publish("2026-W47")
        assert pub.state == "published", (pub.state, pub.error_message)
        r = http.get("/api/v1/weeks/2026-W47/publication", headers={"Authorization": "Bearer publisher-token-a4d2"})
        assert r.status_code == 200
    issued = [
        *wx.state.tokens,
        *(f"ACCESS_TOKEN_{c}" for c in ("LOGCODE1",)),
        *(f"REFRESH_TOKEN_{c}" for c in ("LOGCODE1",)),
    ]
    assert wx.state.tokens and caplog.records  # the run really used WeChat tokens and really logged
    secrets = [*SECRETS.values(), APP_SECRET, OPEN311_KEY, *TOKENS, "wrong-token-guess-19ab", *issued, *seen]
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {json.dumps(r.__dict__.get('args'), default=str)}"
        for r in caplog.records
    )
    leaked = sorted({s for s in secrets if s and s in text})
    assert leaked == [], [line for line in text.splitlines() if any(s in line for s in leaked)][:5]
