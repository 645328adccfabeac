"""Hostile input against the app in process (real PostgreSQL and Redis): limits before work, clean outputs.

Bodies are fed to the ASGI app by a receive() that counts what the app pulled, so "refused before the body is
read" is a measured number of bytes, not an assumption. tests/e2e/test_limits.py does the same over real
sockets against `rewards serve` and measures the server's memory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, func, select
from wechatpy.crypto import WeChatCrypto

from intake_adapter.auth import signature as hmac_signature
from intake_adapter.open311 import xml_text
from rewards.app import create_app
from rewards.bootstrap import Container, bootstrap
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter
from rewards.cases.models import Case
from rewards.cases.schemas import text_problem
from rewards.clock import FixedClock
from rewards.config import load_settings
from rewards.errors import ConfigError
from rewards.http.headers import INLINE_HANDLER_HASHES, PAGE_CSP
from rewards.http.limits import DEFAULT_RULE, rule_for
from rewards.http.replay import LocalReplayCache
from rewards.http.session import CONSOLE_COOKIE, ConsoleSession, SessionCodec, token_fingerprint
from rewards.logs import RedactAccessLog, redact_target
from tests.conftest import ADMIN_TOKEN, INTAKE_TOKEN, START, VALIDATOR_TOKEN, auth, flush_prefix, test_settings
from tests.integration.test_security_routes import endpoints

WECHAT_TOKEN = "test-wechat-token"
APP_ID = "wxhostiletest0001"
AES_KEY = base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")
OPEN311_KEY = "test-open311-key"
INTAKE_SECRET = "test-intake-secret"
FIFTY_MB = 50 * 1024 * 1024
CHUNK = 64 * 1024
TEMPLATES = Path(__file__).resolve().parents[2] / "rewards" / "web" / "templates"
C0 = [chr(n) for n in range(0x20)]
C0_BUT_LINE = [ch for ch in C0 if ch not in "\t\n\r"]


def hostile_settings(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "wechat_token": WECHAT_TOKEN,
        "rate_limit_per_ip": 10**6,
        "rate_limit_sign_in_per_ip": 10**6,
        "rate_limit_per_citizen": 10**6,
    }
    values.update(overrides)
    return test_settings(**values)


@pytest.fixture
def hc(pg_engine: Engine, redis_server: redis.Redis) -> Iterator[Container]:
    s = hostile_settings()
    flush_prefix(redis_server, s.leaderboard_key_prefix)
    yield bootstrap(s, clock=FixedClock(START), engine=pg_engine, redis_client=redis_server)
    flush_prefix(redis_server, s.leaderboard_key_prefix)


@pytest.fixture
def http(hc: Container) -> Iterator[TestClient]:
    with TestClient(create_app(hc)) as client:
        yield client


def cases_stored(c: Container) -> int:
    with c.read() as session:
        return int(session.scalar(select(func.count(Case.id))) or 0)


# -- the ASGI app fed by a counting receive() ---------------------------------------------------------------------


class Fed:
    """What one request fed straight to the ASGI app got: status, headers, body, and the body bytes it pulled."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.pulled = 0


def feed(
    app: FastAPI,
    method: str,
    path: str,
    *,
    size: int,
    declare_length: bool,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Fed:
    """Send `size` bytes of body (64 KiB at a time, made as they are pulled), declared or chunked."""
    fed = Fed()
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers.append((b"host", b"testserver"))
    raw_headers.append(
        (b"content-length", str(size).encode()) if declare_length else (b"transfer-encoding", b"chunked")
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    chunk = b"x" * CHUNK

    async def receive() -> dict[str, Any]:
        if fed.pulled >= size:
            return {"type": "http.request", "body": b"", "more_body": False}
        part = chunk[: min(CHUNK, size - fed.pulled)]
        fed.pulled += len(part)
        return {"type": "http.request", "body": part, "more_body": fed.pulled < size}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            fed.status = message["status"]
            fed.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            fed.body += message.get("body", b"")

    # a thread of its own: a browser test's Playwright may keep an event loop running in this thread
    with ThreadPoolExecutor(max_workers=1) as runner:
        runner.submit(asyncio.run, app(scope, receive, send)).result()  # type: ignore[arg-type]
    return fed


def post_routes(app: FastAPI) -> list[str]:
    """Every POST path the app serves (from its own route list), with its parameters filled in."""
    return sorted({e.url() for e in endpoints(app) if e.method == "POST"})


def test_every_post_route_has_its_body_cap() -> None:
    for path, cap in {
        "/intake/v1/events": 5 * 1024 * 1024,
        "/wechat/callback": 64 * 1024,
        "/open311/v2/requests.json": 64 * 1024,
        "/auth/console/login": 16 * 1024,
        "/auth/logout": 16 * 1024,
        "/api/v1/cases/X1/verdict": 64 * 1024,
        "/console/cases/X1/void": 64 * 1024,
    }.items():
        assert rule_for("POST", path).max_bytes == cap, path
    assert rule_for("POST", "/api/v1/cases").staff and rule_for("POST", "/console/weeks/2026-W47/retry").staff
    assert not rule_for("POST", "/open311/v2/requests.json").staff
    assert rule_for("GET", "/me") is DEFAULT_RULE and rule_for("GET", "/api/v1/cases") is DEFAULT_RULE


def test_a_declared_50_mb_body_is_refused_on_every_post_route_without_reading_it(hc: Container) -> None:
    app = create_app(hc)
    routes = post_routes(app)
    assert len(routes) >= 10 and "/open311/v2/requests.json" in routes and "/api/v1/cases" in routes
    for path in routes:
        fed = feed(app, "POST", path, size=FIFTY_MB, declare_length=True)
        assert (fed.status, fed.pulled) in ((401, 0), (413, 0)), (path, fed.status, fed.pulled, fed.body[:200])
        assert fed.headers.get("connection") == "close", path  # the server stops reading the body
        assert json.loads(fed.body)["error"] in ("payload_too_large", "unauthorized"), path
    assert cases_stored(hc) == 0


def test_a_chunked_50_mb_body_is_refused_before_the_cap_is_passed(hc: Container) -> None:
    app = create_app(hc)
    for path in post_routes(app):
        fed = feed(app, "POST", path, size=FIFTY_MB, declare_length=False)
        cap = rule_for("POST", path).max_bytes
        assert fed.pulled <= cap + CHUNK, (path, fed.pulled)
        if path == "/auth/logout":  # never reads a body: answers (sign-out) with the rest unread
            assert fed.status == 204, (path, fed.status)
        else:
            assert fed.status in (401, 403, 413), (path, fed.status, fed.body[:200])
    assert cases_stored(hc) == 0


def test_staff_routes_check_credentials_before_the_body(hc: Container) -> None:
    app = create_app(hc)
    for path in ("/api/v1/cases", "/api/v1/cases/X1/verdict", "/console/cases/X1/verdict"):
        for headers, status in (
            ({}, 401),
            ({"Authorization": "Bearer not-a-token"}, 401),
            ({"Authorization": f"Bearer {VALIDATOR_TOKEN}"}, 413),  # a known token: read up to the cap, then 413
        ):
            form = {"Content-Type": "application/x-www-form-urlencoded"} if path.startswith("/console") else {}
            fed = feed(app, "POST", path, size=FIFTY_MB, declare_length=False, headers={**headers, **form})
            assert fed.status == status, (path, headers, fed.status)
            assert fed.pulled == 0 if status == 401 else fed.pulled <= 64 * 1024 + CHUNK
            if status == 401:
                assert fed.headers["www-authenticate"] == "Bearer"
    # a console session counts as a credential (its role is still checked by the route)
    codec = SessionCodec(hc.settings)
    fingerprint = token_fingerprint(codec.secret, VALIDATOR_TOKEN)
    cookie = codec.dump_console(ConsoleSession("validator-1", "validator", fingerprint))
    fed = feed(
        app, "POST", "/console/cases/X1/verdict", size=FIFTY_MB, declare_length=False,
        headers={"Cookie": f"{CONSOLE_COOKIE}={cookie}", "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert fed.status == 413 and fed.pulled <= 64 * 1024 + CHUNK


def test_staff_routes_still_work_with_small_bodies(http: TestClient, hc: Container) -> None:
    case = {"case_id": "OK-1", "category": "street_lamp", "description": "路灯\n不亮", "lat": 36.0, "lon": 103.8}
    assert http.post("/api/v1/cases", json=case, headers=auth()).status_code == 201
    r = http.post("/api/v1/cases/OK-1/verdict", json={"verdict": "valid"}, headers=auth(INTAKE_TOKEN))
    assert r.status_code == 403  # a known token of the wrong role: the route's own check answers
    assert http.post("/api/v1/cases/OK-1/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200


def test_the_intake_webhook_refuses_an_unsigned_body_unread(hc: Container) -> None:
    app = create_app(hc)
    fed = feed(app, "POST", "/intake/v1/events", size=FIFTY_MB, declare_length=False)
    assert (fed.status, fed.pulled) == (401, 0) and json.loads(fed.body)["error"] == "missing_signature"
    ts = str(int(hc.clock.now().timestamp()))
    signed = {"X-Timestamp": ts, "X-Signature": "sha256=" + "0" * 64}
    fed = feed(app, "POST", "/intake/v1/events", size=FIFTY_MB, declare_length=False, headers=signed)
    assert fed.status == 413 and fed.pulled <= 5 * 1024 * 1024 + CHUNK  # signed-looking: read up to 5 MiB only


# -- Open311: the key before the form ------------------------------------------------------------------------------


def open311(http: TestClient, data: dict[str, str] | bytes | str, query: str = "", **kw: Any) -> Any:
    if isinstance(data, dict):
        return http.post(f"/open311/v2/requests.json{query}", data=data, **kw)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **kw.pop("headers", {})}
    return http.post(f"/open311/v2/requests.json{query}", content=data, headers=headers, **kw)


def test_open311_checks_a_query_key_before_reading_the_body(hc: Container) -> None:
    app = create_app(hc)
    for declare in (True, False):
        size = 60 * 1024 if declare else FIFTY_MB  # under the cap when declared: only the key can refuse it
        fed = feed(app, "POST", "/open311/v2/requests.json", size=size, declare_length=declare, query="api_key=nope")
        assert (fed.status, fed.pulled) == (403, 0), (declare, fed.status, fed.pulled)
        assert json.loads(fed.body)[0]["description"] == "invalid api_key"


def test_open311_refuses_a_form_without_its_key_before_parsing_any_field(http: TestClient, hc: Container) -> None:
    # fields that would each be a 400 (unknown, twice, not UTF-8, a control character): the key is checked first
    for body in (
        b"service_code=debris&lat=1&long=2&color=red",
        b"service_code=debris&service_code=debris",
        b"description=%FF%FE&lat=%01",
        b"api_key=nope&description=%01",
        b"&".join([b"f%d=%s" % (i, b"v" * 30) for i in range(900)]),
    ):
        r = open311(http, body)
        assert r.status_code == 403, (body[:60], r.text)
    assert cases_stored(hc) == 0


def test_open311_accepts_the_key_in_the_query_or_the_form_but_not_both(http: TestClient, hc: Container) -> None:
    form = {"service_code": "debris", "lat": "36.06", "long": "103.83"}
    assert open311(http, form, f"?api_key={OPEN311_KEY}").status_code == 201
    assert open311(http, {**form, "api_key": OPEN311_KEY}).status_code == 201
    both = open311(http, {**form, "api_key": OPEN311_KEY}, f"?api_key={OPEN311_KEY}")
    assert both.status_code == 400 and "both" in both.json()[0]["description"]
    twice = open311(http, f"api_key={OPEN311_KEY}&api_key={OPEN311_KEY}&service_code=debris&lat=1&long=2")
    assert twice.status_code == 400 and "more than once" in twice.json()[0]["description"]
    multipart = http.post(
        "/open311/v2/requests.json", data={**form, "api_key": OPEN311_KEY}, files={"media": ("a.txt", b"x")}
    )
    assert multipart.status_code == 201  # multipart is parsed (within the 64 KiB cap) before its key is checked
    assert cases_stored(hc) == 3


# -- clean outputs: control characters refused at every edge, escaped in the XML feed ----------------------------


def test_text_problem_names_controls_surrogates_and_line_breaks() -> None:
    assert text_problem("路灯 不亮 ok") is None
    assert text_problem("two\nlines", multiline=True) is None and text_problem("tab\there", multiline=True) is None
    assert "single line" in (text_problem("two\nlines") or "")
    assert "NUL" in (text_problem("a\x00b", multiline=True) or "")
    assert "U+0001" in (text_problem("a\x01b", multiline=True) or "")
    assert "surrogate" in (text_problem("a\ud800b") or "")
    assert text_problem("\x7f\u200b\ufeff😀") is None  # DEL, zero-width and astral characters are text


@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=30), st.booleans())
def test_text_is_refused_exactly_when_it_holds_a_non_text_character(text: str, multiline: bool) -> None:
    allowed = "\t\n\r" if multiline else ""
    bad = [ch for ch in text if (ord(ch) < 0x20 and ch not in allowed) or 0xD800 <= ord(ch) <= 0xDFFF]
    assert (text_problem(text, multiline=multiline) is None) == (not bad)


@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=60))
def test_any_stored_text_renders_as_well_formed_xml(text: str) -> None:
    root = ET.Element("r")
    root.text = xml_text(text)
    parsed = ET.fromstring(ET.tostring(root, encoding="utf-8"))
    assert len(parsed.text or "") <= len(text)  # each unrepresentable character became one U+FFFD


API_CASE = {
    "case_id": "CC-1",
    "category": "street_lamp",
    "description": "路灯不亮",
    "lat": 36.06,
    "lon": 103.83,
    "address": "东岗西路 1 号",
    "district": "城关区",
    "photos": ["https://img.example/1.jpg"],
    "reporter": {"openid": "oCtrl", "name": "张三明", "phone": "13812341234", "district": "城关区"},
}
API_TEXT_FIELDS = [
    ("case_id",),
    ("category",),
    ("description",),
    ("address",),
    ("district",),
    ("photos", 0),
    ("reporter", "openid"),
    ("reporter", "name"),
    ("reporter", "phone"),
    ("reporter", "district"),
]


def with_value(doc: dict[str, Any], where: tuple[Any, ...], value: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(doc))
    target = copy
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return copy


def test_api_bodies_refuse_control_characters_in_every_text_field(http: TestClient, hc: Container) -> None:
    for where in API_TEXT_FIELDS:
        for ch in ("\x01", "\x1f", "\x0b", "\n"):
            if ch == "\n" and where == ("description",):
                continue  # a description may span lines
            r = http.post("/api/v1/cases", json=with_value(API_CASE, where, f"a{ch}b"), headers=auth())
            assert r.status_code == 422, (where, repr(ch), r.text)
    assert cases_stored(hc) == 0
    assert http.post("/api/v1/cases", json=API_CASE, headers=auth()).status_code == 201
    for body in ({"verdict": "invalid", "reason": "a\x02b"}, {"verdict": "duplicate", "duplicate_of": "X\x01"}):
        assert http.post("/api/v1/cases/CC-1/verdict", json=body, headers=auth()).status_code == 422, body
    assert http.post("/api/v1/cases/CC-1/void", json={"reason": "x\x07"}, headers=auth()).status_code == 422
    ok = http.post(
        "/api/v1/cases/CC-1/verdict", json={"verdict": "invalid", "reason": "不是\n城管问题"}, headers=auth()
    )
    assert ok.status_code == 200


INTAKE_REPORT = {
    "event_id": "ev-1",
    "type": "report.submitted",
    "occurred_at": "2026-11-25T09:30:00+08:00",
    "case_id": "IN-1",
    "category": "street_lamp",
    "description": "路灯不亮",
    "location": {"lat": 36.06, "lon": 103.83, "coord_system": "gcj02", "address": "东岗西路 1 号"},
    "district": "城关区",
    "photos": ["https://img.example/1.jpg"],
    "reporter": {"openid": "oIntake", "name": "张三明", "phone": "13812341234"},
}
INTAKE_STATUS = {
    "event_id": "ev-2",
    "type": "case.status_changed",
    "occurred_at": "2026-11-25T09:40:00+08:00",
    "case_id": "IN-1",
    "status": "dispatched",
    "department": "市政所",
    "note": "已派遣",
}
INTAKE_TEXT_FIELDS = [
    (INTAKE_REPORT, ("event_id",)),
    (INTAKE_REPORT, ("case_id",)),
    (INTAKE_REPORT, ("category",)),
    (INTAKE_REPORT, ("description",)),
    (INTAKE_REPORT, ("district",)),
    (INTAKE_REPORT, ("photos", 0)),
    (INTAKE_REPORT, ("location", "address")),
    (INTAKE_REPORT, ("reporter", "openid")),
    (INTAKE_REPORT, ("reporter", "name")),
    (INTAKE_REPORT, ("reporter", "phone")),
    (INTAKE_STATUS, ("department",)),
    (INTAKE_STATUS, ("note",)),
]


def intake(http: TestClient, c: Container, *events: dict[str, Any]) -> Any:
    body = json.dumps({"events": list(events)}).encode()
    ts = str(int(c.clock.now().timestamp()))
    headers = {"X-Timestamp": ts, "X-Signature": hmac_signature(INTAKE_SECRET, ts, body)}
    return http.post("/intake/v1/events", content=body, headers={**headers, "Content-Type": "application/json"})


def test_the_intake_webhook_refuses_control_characters_in_every_text_field(http: TestClient, hc: Container) -> None:
    for n, (event, where) in enumerate(INTAKE_TEXT_FIELDS):
        bad = with_value({**event, "event_id": f"ev-bad-{n}"}, where, "a\x01b")
        if where == ("event_id",):
            bad["event_id"] = "ev\x01bad"
        r = intake(http, hc, bad)
        assert r.status_code in (400, 422), (where, r.status_code, r.text)
        assert r.json()["results"][0]["result"] in ("rejected", "failed"), (where, r.text)  # never applied
        reason = r.json()["results"][0]["detail"]
        assert "control characters" in reason or "printable ASCII" in reason, (where, r.text)
    assert cases_stored(hc) == 0
    multiline = with_value(INTAKE_REPORT, ("description",), "路灯\n不亮\t(夜间)")
    assert intake(http, hc, multiline).status_code == 200
    assert cases_stored(hc) == 1


OPEN311_FORM = {
    "api_key": OPEN311_KEY,
    "service_code": "debris",
    "lat": "36.06",
    "long": "103.83",
    "address_string": "东岗西路 1 号",
    "email": "a@b.cn",
    "device_id": "oOpen311",
    "first_name": "明",
    "last_name": "张",
    "phone": "13812341234",
    "description": "乱堆物料",
    "media_url": "https://img.example/1.jpg",
}


def test_open311_posts_refuse_control_characters_in_every_field(http: TestClient, hc: Container) -> None:
    for name in [n for n in OPEN311_FORM if n != "api_key"] + ["account_id", "jurisdiction_id", "address_id"]:
        for ch in ("\x01", "\x1b", "\r"):
            if ch == "\r" and name == "description":
                continue
            r = open311(http, {**OPEN311_FORM, name: f"a{ch}b"})
            assert r.status_code == 400, (name, repr(ch), r.text)
            assert "control characters" in r.json()[0]["description"], (name, r.text)
    assert cases_stored(hc) == 0
    assert open311(http, {**OPEN311_FORM, "description": "乱堆\r\n物料"}).status_code == 201


def test_the_xml_feed_parses_whatever_text_a_case_holds(http: TestClient, hc: Container) -> None:
    # cases stored before the edges refused control characters (or by a path that does not check): all escaped
    nasty = "a\x01b\x0b\x1f\ud800c\ufffe"
    actor = Actor("legacy-import", "intake")
    with hc.uow() as uow:
        report = ReportCase(
            case_id="LEGACY-1",
            category="street_lamp",
            reported_at=hc.clock.now(),
            reporter=Reporter(openid="oLegacy", name="张三明"),
            description=nasty.replace("\ud800", ""),  # PostgreSQL cannot store a surrogate at all
            lat=36.06,
            lon=103.83,
            address="东岗\x02西路",
        )
        hc.flows.report(uow, report, actor)
        hc.flows.verdict(uow, GiveVerdict("LEGACY-1", "valid"), actor)
        change = ChangeStatus("LEGACY-1", "dispatched", hc.clock.now(), department="市政\x03所", note="已\x04派遣")
        hc.flows.change_status(uow, change, actor)
    for query in ("", "?service_request_id=LEGACY-1"):
        r = http.get(f"/open311/v2/requests.xml{query}")
        assert r.status_code == 200
        root = ET.fromstring(r.content)  # well-formed: this raised ParseError before
        request = root.find("request")
        assert request is not None
        assert request.findtext("description") == "a\ufffdb\ufffd\ufffdc\ufffd"
        assert request.findtext("address") == "东岗\ufffd西路"
        assert "\ufffd" in (request.findtext("status_notes") or "")
    one = http.get("/open311/v2/requests/LEGACY-1.xml")
    assert one.status_code == 200 and ET.fromstring(one.content).find("request") is not None


def test_after_every_hostile_post_the_xml_feed_still_parses(http: TestClient, hc: Container) -> None:
    for name in ("description", "address_string", "first_name"):
        open311(http, {**OPEN311_FORM, name: "x\x01y"})
    http.post("/api/v1/cases", json=with_value(API_CASE, ("description",), "x\x08y"), headers=auth())
    intake(http, hc, with_value(INTAKE_REPORT, ("description",), "x\x0cy"))
    r = http.get("/open311/v2/requests.xml")
    assert r.status_code == 200 and ET.fromstring(r.content).tag == "service_requests"


# -- WeChat: plain mode refused under safe mode, replays refused -------------------------------------------------


TEXT = (
    "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content>"
    "<MsgId>1234567890123456</MsgId></xml>"
)


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def wechat_query(c: Container, nonce: str) -> dict[str, str]:
    ts = str(int(c.clock.now().timestamp()))
    return {"signature": sign(WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}


def wechat(client: TestClient, params: dict[str, str], body: str) -> Any:
    return client.post("/wechat/callback", params=params, content=body.encode(), headers={"Content-Type": "text/xml"})


def test_a_replayed_signed_url_with_another_body_is_refused(http: TestClient, hc: Container) -> None:
    q = wechat_query(hc, "n-replay-1")
    assert wechat(http, q, TEXT.format(openid="oAlice")).status_code == 200
    again = wechat(http, q, TEXT.format(openid="oAlice"))  # WeChat's retry: the same URL and body
    assert again.status_code == 200
    stolen = wechat(http, q, TEXT.format(openid="oMallory"))  # the same signed URL, another citizen's message
    assert stolen.status_code == 403 and stolen.json()["error"] == "replayed"
    # another worker process sees it too (the cache is in Redis)
    with TestClient(create_app(bootstrap(hc.settings, clock=hc.clock, engine=hc.engine, redis_client=hc.redis))) as w2:
        assert wechat(w2, q, TEXT.format(openid="oMallory")).status_code == 403
        assert wechat(w2, wechat_query(hc, "n-replay-2"), TEXT.format(openid="oMallory")).status_code == 200


def test_replays_are_refused_while_redis_is_down(hc: Container) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, decode_responses=True, retry=Retry(NoBackoff(), 0))
    down = bootstrap(hc.settings, clock=hc.clock, engine=hc.engine, redis_client=dead)
    with TestClient(create_app(down)) as http:
        q = wechat_query(hc, "n-down-1")
        assert wechat(http, q, TEXT.format(openid="oAlice")).status_code == 200
        assert wechat(http, q, TEXT.format(openid="oMallory")).status_code == 403  # the process's own cache
    assert down.redis_breaker.snapshot().failures >= 1  # Redis was tried through the shared breaker


def test_the_local_replay_cache_is_bounded_and_forgets_after_the_window() -> None:
    now = [0.0]
    cache = LocalReplayCache(capacity=3, now=lambda: now[0])
    assert all(cache.admit(k, "d", 10) for k in ("a", "b", "c", "d"))  # "a" was dropped to make room
    assert cache.admit("a", "other", 10) and not cache.admit("d", "other", 10)
    now[0] = 11.0
    assert cache.admit("d", "other", 10)  # its window is over


def test_plain_messages_are_refused_once_safe_mode_is_configured(hc: Container) -> None:
    s = hc.settings.model_copy(update={"wechat_app_id": APP_ID, "wechat_aes_key": SecretStr(AES_KEY)})
    with TestClient(create_app(bootstrap(s, clock=hc.clock, engine=hc.engine, redis_client=hc.redis))) as safe:
        q = wechat_query(hc, "n-plain-1")
        r = wechat(safe, q, TEXT.format(openid="oAlice"))
        assert r.status_code == 403 and r.json()["error"] == "plain_refused"
        envelope = WeChatCrypto(WECHAT_TOKEN, AES_KEY, APP_ID).encrypt_message(
            TEXT.format(openid="oAlice"), "n-safe-1", q["timestamp"]
        )
        encrypted = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", envelope)
        signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", envelope)
        assert encrypted and signature
        params = {**wechat_query(hc, "n-safe-1"), "encrypt_type": "aes", "msg_signature": signature.group(1)}
        body = f"<xml><ToUserName>toUser</ToUserName><Encrypt><![CDATA[{encrypted.group(1)}]]></Encrypt></xml>"
        assert wechat(safe, params, body).status_code == 200
        assert wechat(safe, params, body).status_code == 200  # WeChat's retry of the same message


# -- sign-out from another site ----------------------------------------------------------------------------------


def test_a_cross_origin_sign_out_is_refused(http: TestClient) -> None:
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain
        {"Referer": "https://evil.example/page"},
    ):
        r = http.post("/auth/logout", headers=headers, data={"x": "1"}, follow_redirects=False)
        assert r.status_code == 403 and r.json()["error"] == "cross_site", headers
        assert "set-cookie" not in r.headers, headers
    for headers in (
        {"Origin": "http://testserver"},
        {"Origin": "http://127.0.0.1:8000"},  # public_base_url
        {"Sec-Fetch-Site": "same-origin"},
        {"Referer": "http://testserver/me"},
        {},  # no browser at all
    ):
        r = http.post("/auth/logout", headers=headers, data={"x": "1"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/me", headers


# -- security headers ----------------------------------------------------------------------------------------------


def assert_secured(r: Any, what: str) -> None:
    assert r.headers.get("x-frame-options") == "DENY", what
    assert r.headers.get("x-content-type-options") == "nosniff", what
    assert r.headers.get("referrer-policy") == "same-origin", what
    csp = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, what


def test_security_headers_on_pages_api_and_errors(http: TestClient, hc: Container) -> None:
    low = bootstrap(hostile_settings(rate_limit_per_ip=1), clock=hc.clock, engine=hc.engine, redis_client=hc.redis)
    responses = {
        "page": http.get("/leaderboard"),
        "sign-in page": http.get("/me"),
        "console sign-in": http.get("/console/login"),
        "static": http.get("/static/web/app.css"),
        "api": http.get("/api/v1/leaderboards/weekly"),
        "open311 xml": http.get("/open311/v2/requests.xml"),
        "401": http.get("/api/v1/cases"),
        "404": http.get("/api/v1/cases/NOPE", headers=auth()),
        "422": http.post("/api/v1/cases", json={}, headers=auth()),
        "413": http.post("/auth/console/login", content=b"x" * (17 * 1024)),
        "401 before the body": http.post("/api/v1/cases", content=b"{}"),
        "wechat 403": http.post("/wechat/callback", content=b"<xml/>"),
        "redirect": http.get("/", follow_redirects=False),
    }
    with TestClient(create_app(low)) as limited:
        limited.get("/api/v1/leaderboards/all-time")
        responses["429"] = limited.get("/api/v1/leaderboards/all-time")
    for what, r in responses.items():
        assert_secured(r, f"{what}: {r.status_code}")
    assert responses["429"].status_code == 429 and responses["413"].status_code == 413
    assert "script-src 'self' 'unsafe-hashes'" in responses["page"].headers["content-security-policy"]
    docs = http.get("/docs")
    assert_secured(docs, "docs")
    # the docs' assets are served by the app itself (rewards/web/docs.py): its own policy allows nothing outside
    assert "cdn.jsdelivr.net" not in docs.headers["content-security-policy"]


def test_every_inline_script_of_the_templates_is_allowed_by_its_hash() -> None:
    handlers = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        handlers += re.findall(r'\son[a-z]+="([^"]*)"', text)
        handlers += re.findall(r"\son[a-z]+='([^']*)'", text)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"{template.name}: an inline <script>"
        assert "javascript:" not in text, template.name
    assert handlers, "the board's district picker is an inline handler"
    for handler in handlers:
        digest = base64.b64encode(hashlib.sha256(handler.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in INLINE_HANDLER_HASHES, handler
        assert f"'sha256-{digest}'" in PAGE_CSP


# -- the access log ------------------------------------------------------------------------------------------------


def test_access_log_targets_are_redacted() -> None:
    cases = {
        "/auth/wechat/callback?code=0a1B2c3D&state=abcdef0123": "/auth/wechat/callback?code=***&state=***",
        "/wechat/callback?signature=f218&timestamp=1410685589&nonce=461056294&openid=oAbc&encrypt_type=aes"
        "&msg_signature=77ab": "/wechat/callback?signature=***&timestamp=1410685589&nonce=***&openid=***"
        "&encrypt_type=aes&msg_signature=***",
        "/wechat/callback?echostr=5837397520665436492": "/wechat/callback?echostr=***",
        "/open311/v2/requests.json?api_key=k1&x=1": "/open311/v2/requests.json?api_key=***&x=1",
        "/auth/dev-login?openid=demo-openid-00001&next=/me": "/auth/dev-login?openid=***&next=/me",
        "/leaderboard?week=2026-W48": "/leaderboard?week=2026-W48",
    }
    for target, expected in cases.items():
        assert redact_target(target) == expected
    masked = redact_target("/api/v1/citizens/oWxSecretOpenid123/points?limit=5")
    assert (
        "oWxSecretOpenid123" not in masked
        and masked.startswith("/api/v1/citizens/h-")
        and masked.endswith("/points?limit=5")
    )
    assert masked == redact_target("/api/v1/citizens/oWxSecretOpenid123/points?limit=5")  # stable: lines link up


def test_the_access_log_filter_rewrites_uvicorn_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/citizens/oSecret/standing?code=abc", "1.1", 200), None,
    )  # fmt: skip
    assert RedactAccessLog().filter(record)
    line = record.getMessage()
    assert "oSecret" not in line and "code=abc" not in line and line.endswith('HTTP/1.1" 200')


# -- settings errors never echo a secret ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"api_tokens": {"tok-S3CR3T-4f2a": {"name": "x", "role": "validatr"}}},
        {"api_tokens": {"tok-S3CR3T-4f2a": {"role": "validator"}}},
        {"api_tokens": {"tok-S3CR3T-4f2a": "validator"}},
        {"open311_api_keys": "tok-S3CR3T-4f2a"},
        {"open311_api_keys": [{"k": "tok-S3CR3T-4f2a"}]},
        {"wechat_aes_key": "tok-S3CR3T-4f2a"},
        {"environment": "production", "intake_secret": "change-me-tok-S3CR3T-4f2a"},
    ],
)
def test_settings_errors_never_echo_a_secret(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    shown = "".join(traceback.format_exception(caught.value))  # what a crashing worker would print
    assert "S3CR3T" not in shown and "REWARDS_" in str(caught.value)


def test_an_unparsable_json_setting_is_named_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDS_API_TOKENS", '{"tok-S3CR3T-4f2a": {"name": "x", "role": "validator"')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    shown = "".join(traceback.format_exception(caught.value))
    assert "S3CR3T" not in shown and "REWARDS_API_TOKENS is not valid JSON" in str(caught.value)


def test_admin_token_still_opens_staff_routes(http: TestClient) -> None:
    assert http.get("/api/v1/cases", headers=auth(ADMIN_TOKEN)).status_code == 200
