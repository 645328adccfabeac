"""Hostile values for the inputs the OpenAPI schema does not describe (so schemathesis cannot reach them): the
pages' query strings, the console's queries and forms, Open311's query and form fields, the console sign-in body.

Real PostgreSQL and Redis. Every answer is below 500, and a 4xx says why (a JSON error with a reason, Open311's
error list, or a page). Values: NUL and other control characters, astral and zero-width characters, long text,
huge and negative numbers, dates out of every range, and (in JSON bodies) lone UTF-16 surrogates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ReportCase, Reporter
from rewards.http.auth import Principal
from rewards.http.session import CITIZEN_COOKIE, CitizenSession, SessionCodec
from rewards.web.console import csrf_token
from tests.conftest import ADMIN_TOKEN, START, MakeContainer, test_settings

OPEN311_KEY = "test-open311-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

HOSTILE = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31",
    "0001-01-01",
    "2026-W99",
    "2026-W48",
    "-1",
    "1e309",
    "nan",
    str(2**63),
    str(-(2**70)),
    "99999999999999999999",
    "\x00",
    "a\x00b",
    "\u202e",
    "\u200b",
    "😀" * 100,
    "x" * 5000,
    "open,closed,",
    ",",
    "",
    " ",
    "HX-1",
    "street_lamp",
    "//evil.example/",
    "<script>alert(1)</script>",
]
values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),  # anything but lone surrogates
    st.text(st.sampled_from("0123456789-+:TZ.,W \x00\x7f"), max_size=30),  # dates, weeks, ids, half-right
)
# (method, path, where the parameters go, their names); {case_id} and {citizen_id} point at a seeded case and citizen
UNDECLARED: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("GET", "/me", "query", ("offset",)),
    ("GET", "/leaderboard", "query", ("week", "offset", "view")),
    ("GET", "/leaderboard/all-time", "query", ("offset",)),
    ("GET", "/leaderboard/districts/{value}", "query", ("week", "offset")),
    ("GET", "/weeks", "query", ("x",)),
    ("GET", "/console", "query", ("offset", "flash", "error", "district", "category")),
    ("GET", "/console/cases", "query", ("case_id", "flash", "error")),
    ("GET", "/console/citizens", "query", ("q", "flash", "error")),
    ("GET", "/console/citizens/{citizen_id}", "query", ("flash", "error")),
    ("GET", "/console/weeks", "query", ("flash", "error")),
    ("POST", "/console/cases/{case_id}/verdict", "form", ("verdict", "reason", "duplicate_of", "back_to")),
    ("POST", "/console/cases/{case_id}/void", "form", ("reason",)),
    ("POST", "/console/citizens/{citizen_id}/ban", "form", ("reason", "banned")),
    ("POST", "/console/weeks/{value}/retry", "form", ("x",)),
    ("POST", "/weeks/{value}/objections", "form", ("rank", "reason", "csrf")),
    ("GET", "/console/review", "query", ("flash", "error")),
    ("GET", "/console/review/claims", "query", ("code", "week", "flash", "error")),
    ("POST", "/console/review/claims/redeem", "form", ("code", "week")),
    ("POST", "/console/review/objections/1/reject", "form", ("reason",)),
    ("POST", "/console/review/objections/1/uphold", "form", ("action", "reason", "case_id")),
    ("GET", "/console/review/payouts/{value}", "query", ("format",)),
    ("GET", "/open311/v2/requests.json", "query", ("service_request_id", "service_code", "start_date", "end_date")),
    ("GET", "/open311/v2/requests.xml", "query", ("status", "start_date", "end_date", "jurisdiction_id", "extra")),
    ("GET", "/open311/v2/requests/{value}.json", "query", ("jurisdiction_id",)),
    ("GET", "/open311/v2/services/{value}.xml", "query", ("jurisdiction_id",)),
    ("POST", "/open311/v2/requests.json", "form", ("service_code", "lat", "long", "address_string", "description")),
    ("POST", "/open311/v2/requests.xml", "form", ("device_id", "email", "phone", "first_name", "media_url")),
    ("POST", "/auth/console/login", "form", ("token",)),
    ("POST", "/auth/console/login", "json", ("token",)),
    ("GET", "/auth/wechat/login", "query", ("next",)),
    ("GET", "/auth/wechat/callback", "query", ("code", "state")),
]


@pytest.fixture
def hostile_http(pg_engine: Engine, make_container: MakeContainer) -> Iterator[tuple[TestClient, Container]]:
    s = test_settings(
        rate_limit_per_ip=10**9,
        rate_limit_per_citizen=10**9,
        rate_limit_sign_in_per_ip=10**9,
        wechat_app_id="wxundeclared00001",
        wechat_app_secret="undeclared-secret",
        wechat_sns_api_base="http://127.0.0.1:9/sns/",
    )
    c = make_container(s, engine=pg_engine)
    with c.uow() as uow:
        who = Reporter("oHostile", name="张三明", phone="13812341234", verified=True)
        c.flows.report(
            uow, ReportCase("HX-1", "street_lamp", START, who, lat=36.06, lon=103.83), Actor("seed", "console")
        )
    with TestClient(create_app(c)) as http:
        yield http, c


def reason(response: Any) -> str:
    """What a 4xx answer says about why (empty when it says nothing)."""
    media = response.headers.get("content-type", "")
    if "html" in media or "xml" in media:
        return response.text
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        detail = body.get("detail")
        return detail if isinstance(detail, str) else json.dumps(detail) if detail else ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("description", ""))
    return ""


def send(http: TestClient, c: Container, route: tuple[str, str, str, tuple[str, ...]], data: dict[str, str]) -> Any:
    method, path, where, _ = route
    url = path.format(case_id="HX-1", citizen_id="1", value=quote(data.pop("__path__", "x"), safe=""))
    headers = dict(ADMIN) if path.startswith("/console") else {}
    kw: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if where == "query":
        kw["params"] = data
    elif where == "json":
        kw["content"] = json.dumps(data).encode()  # \\u escapes: lone surrogates travel too
        headers["Content-Type"] = "application/json"
    else:
        if path.startswith("/console"):
            data.setdefault("csrf", csrf_token(c.http.codec.secret, Principal("admin-1", "admin")))
        if path.startswith("/open311"):
            data.setdefault("api_key", OPEN311_KEY)
        kw["data"] = data
    return http.request(method, url, **kw)


@pytest.mark.parametrize("route", UNDECLARED, ids=lambda r: f"{r[0]} {r[1]} {r[2]}")
def test_every_hostile_value_in_every_undeclared_input(
    hostile_http: tuple[TestClient, Container], route: tuple[str, str, str, tuple[str, ...]]
) -> None:
    http, c = hostile_http
    problems = []
    for value in HOSTILE:  # in every parameter at once, then in each alone (one refusal can hide another)
        for names in [route[3], *((name,) for name in route[3])]:
            sent = dict.fromkeys(names, value) | {"__path__": value}
            r = send(http, c, route, dict(sent))
            if r.status_code >= 500 or (r.status_code >= 400 and not reason(r).strip()):
                problems.append((names, value[:40], r.status_code, r.text[:200]))
    if route[2] == "json":  # a lone surrogate only travels as a JSON escape
        r = send(http, c, route, {"token": "\ud800"})
        if r.status_code >= 500 or not reason(r).strip():
            problems.append((("token",), "\\ud800", r.status_code, r.text[:200]))
    assert problems == []


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(route=st.sampled_from(UNDECLARED), data=st.data())
@example(route=UNDECLARED[1], data=None).via("a week of NUL")
def test_undeclared_inputs_get_a_reason_never_a_crash(
    hostile_http: tuple[TestClient, Container], route: tuple[str, str, str, tuple[str, ...]], data: Any
) -> None:
    http, c = hostile_http
    if data is None:
        sent = {"week": "\x00", "offset": str(2**63)}
    else:
        names = data.draw(st.lists(st.sampled_from(route[3]), unique=True, max_size=len(route[3])))
        sent = {name: data.draw(values) for name in names}
        if "{value}" in route[1]:
            sent["__path__"] = data.draw(values)
        if route[2] == "json" and data.draw(st.booleans()):
            sent["token"] = data.draw(st.text(st.characters(categories=("Cs", "Lo")), min_size=1, max_size=3))
        if data.draw(st.booleans()):
            http.cookies.set(CITIZEN_COOKIE, SessionCodec(c.settings).dump_citizen(CitizenSession("oHostile")))
        else:
            http.cookies.clear()
    r = send(http, c, route, dict(sent))
    assert r.status_code < 500, (route[:2], sent, r.status_code, r.text[:300])
    if 400 <= r.status_code < 500:
        assert reason(r).strip(), (route[:2], sent, r.status_code, r.text[:300])
