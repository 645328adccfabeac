"""Security, table-driven over the app's own route list (real PostgreSQL and Redis).

Default deny: every route the app serves is probed. A route must either be on the explicit PUBLIC list (with
the reason it may be public), or refuse a request without credentials, with a wrong credential and with a
credential of the wrong role, and accept the right one. A new route that nobody protected fails this test.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from intake_adapter.auth import signature as hmac_signature
from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.http.session import CITIZEN_COOKIE, CitizenSession, SessionCodec
from tests.conftest import ADMIN_TOKEN, INTAKE_TOKEN, VALIDATOR_TOKEN, MakeContainer, test_settings

PUBLISHER_TOKEN = "test-publisher-token"
WECHAT_TOKEN = "test-wechat-token"
OPEN311_KEY = "test-open311-key"
TOKEN_OF_ROLE = {"validator": VALIDATOR_TOKEN, "intake": INTAKE_TOKEN, "publisher": PUBLISHER_TOKEN}

# Routes anyone may call, and why. Everything else must refuse strangers.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/"): "redirects to 我的",
    ("GET", "/me"): "shows the sign-in page to a stranger, only the session's own data otherwise",
    ("GET", "/leaderboard"): "public board, masked names",
    ("GET", "/leaderboard/all-time"): "public board, masked names",
    ("GET", "/leaderboard/districts/{district}"): "public board, masked names",
    ("GET", "/weeks"): "past announcements",
    ("GET", "/weeks/{week}"): "a published announcement",
    ("GET", "/rules"): "the program's rules",
    ("GET", "/weeks/{week}/versions/{number}"): "a sealed version of a published list, masked names",
    ("POST", "/weeks/{week}/objections"): "401 unless a signed-in citizen with the form token (test_review_edges)",
    ("POST", "/me/ratings/{case_id}"): "401 unless a signed-in citizen; rates their own report (test_ratings_http)",
    ("GET", "/api/v1/review/weeks/{week}"): "公示 status and the current list version, masked names",
    ("GET", "/api/v1/review/weeks/{week}/versions"): "sealed list versions, masked names",
    ("GET", "/api/v1/review/weeks/{week}/versions/{number}"): "a sealed list version, masked names",
    ("GET", "/stats"): "the public city-management record: aggregates only (test_stats_pages scans it)",
    ("GET", "/api/v1/stats"): "the public record's trend: aggregates only",
    ("GET", "/api/v1/stats/weeks/{week}"): "the public record of a week: aggregates only",
    ("GET", "/api/v1/stats/months/{month}"): "the public record of a month: aggregates only",
    ("GET", "/api/v1/leaderboards/weekly"): "public board API, masked names",
    ("GET", "/api/v1/leaderboards/all-time"): "public board API, masked names",
    ("GET", "/api/v1/leaderboards/districts/{district}/weekly"): "public board API, masked names",
    ("GET", "/open311/v2/discovery.{fmt}"): "Open311 GETs are public by the spec (no reporter data)",
    ("GET", "/open311/v2/services.{fmt}"): "Open311 GETs are public by the spec",
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): "Open311 GETs are public by the spec",
    ("GET", "/open311/v2/requests.{fmt}"): "Open311 GETs are public by the spec (no reporter data)",
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): "Open311 GETs are public by the spec",
    ("GET", "/auth/wechat/login"): "starts WeChat sign-in",
    ("GET", "/auth/wechat/callback"): "finishes WeChat sign-in: state bound to the browser, code checked by WeChat",
    ("POST", "/api/v1/auth/wxa"): "the mini program's sign-in: its wx.login code is checked by WeChat (code2Session)",
    ("GET", "/auth/dev-login"): "404 unless development with REWARDS_DEV_LOGIN (tests/e2e/test_dev_login.py)",
    ("POST", "/auth/logout"): "clears the caller's own cookies",
    ("GET", "/auth/session"): "tells a browser who it is signed in as (its own data)",
    ("GET", "/console/login"): "the console's sign-in form",
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/favicon.ico"): "the site icon",
    ("GET", "/readyz"): "readiness probe: names of the checks and why one fails, no hosts or errors",
    ("GET", "/metrics"): "bearer REWARDS_METRICS_TOKEN or loopback only (tests/integration/test_observability.py)",
    ("GET", "/openapi.json"): "API description",
    ("GET", "/docs"): "API description",
    ("GET", "/docs/oauth2-redirect"): "API description",
    ("GET", "/redoc"): "API description",
}
# Public routes that may skip the per-IP limit: static, trivial or limited inside the handler.
UNLIMITED = {
    ("GET", "/healthz"),
    ("GET", "/favicon.ico"),  # a static file
    ("GET", "/readyz"),  # probed by load balancers; answers from bounded checks
    ("GET", "/metrics"),  # scraped by Prometheus; refused unless loopback or the metrics token
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/console/login"),  # a static form; the sign-in POST it leads to is limited
    ("GET", "/auth/session"),  # reads the caller's cookie, nothing else
    ("POST", "/auth/logout"),  # clears the caller's cookies, nothing else
}
# Staff routes by path prefix and the role they need (admin holds every role).
STAFF_PREFIXES = (
    ("/console/review/payouts", "admin"),  # real names and phones for finance (first match wins)
    ("/api/v1/cases", "validator"),
    ("/console", "validator"),
    ("/api/v1/weeks", "publisher"),
)
OWN_DATA = re.compile(r"^/api/v1/citizens/\{openid\}/")  # the citizen's own session, or a validator
SIGNED = {
    ("POST", "/intake/v1/events"): "hmac",
    ("GET", "/wechat/callback"): "wechat",
    ("POST", "/wechat/callback"): "wechat",
    ("POST", "/open311/v2/requests.{fmt}"): "api_key",
    ("POST", "/auth/console/login"): "sign_in",
}
PATH_VALUES = {"fmt": "json", "citizen_id": "1", "week": "2026-W47", "openid": "oOwner"}


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, with the names of its dependencies."""

    method: str
    path: str
    dependencies: frozenset[str]

    def url(self) -> str:
        """The path with every parameter filled in."""
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "X1"), self.path)


def dependency_names(route: Any) -> frozenset[str]:
    """Every dependency a route runs, transitively, by function name."""
    names: set[str] = set()
    stack = [route.dependant] if getattr(route, "dependant", None) is not None else []
    while stack:
        dep = stack.pop()
        for sub in dep.dependencies:
            names.add(getattr(sub.call, "__name__", ""))
            stack.append(sub)
    return frozenset(names)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app serves, from its own route list (included routers flattened)."""
    try:
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # FastAPI before included routers became lazy: app.routes is already flat
        routes = list(app.routes)
    found = []
    for route in routes:
        original = getattr(route, "original_route", route)
        methods = getattr(route, "methods", None) or set()
        if not methods:  # mounts: /static/web serves files only
            continue
        deps = dependency_names(route) if isinstance(original, APIRoute) else frozenset()
        for method in sorted(methods - {"HEAD"}):
            found.append(Endpoint(method, route.path, deps))
    return found


def classify(e: Endpoint) -> str:
    """public | staff:<role> | own | hmac | wechat | api_key | sign_in | unclassified."""
    key = (e.method, e.path)
    if key in SIGNED:
        return SIGNED[key]
    if key in PUBLIC:
        return "public"
    if OWN_DATA.match(e.path):
        return "own"
    for prefix, role in STAFF_PREFIXES:
        if e.path == prefix or e.path.startswith(prefix + "/"):
            return f"staff:{role}"
    return "unclassified"


# -- the app under test ------------------------------------------------------------------------------------------


def security_settings(**overrides: Any) -> Any:
    tokens = {
        VALIDATOR_TOKEN: {"name": "validator-1", "role": "validator"},
        INTAKE_TOKEN: {"name": "city-case-system", "role": "intake"},
        ADMIN_TOKEN: {"name": "admin-1", "role": "admin"},
        PUBLISHER_TOKEN: {"name": "publisher-1", "role": "publisher"},
    }
    values: dict[str, Any] = {
        "api_tokens": tokens,
        "wechat_token": WECHAT_TOKEN,
        "rate_limit_per_ip": 10**6,
        "rate_limit_sign_in_per_ip": 10**6,
    }
    values.update(overrides)
    return test_settings(**values)


@pytest.fixture
def sec(pg_engine: Engine, make_container: MakeContainer) -> Container:
    return make_container(security_settings(), engine=pg_engine)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def citizen_cookie(c: Container, openid: str) -> dict[str, str]:
    return {CITIZEN_COOKIE: SessionCodec(c.settings).dump_citizen(CitizenSession(openid))}


def call(http: TestClient, e: Endpoint, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    http.cookies.clear()
    cookies = kw.pop("cookies", None)
    if cookies:
        for name, value in cookies.items():
            http.cookies.set(name, value)
    h = {"Accept": "application/json", **(headers or {})}
    if e.method in ("POST", "PUT", "PATCH", "DELETE") and "content" not in kw:
        kw["json"] = {}
    return http.request(e.method, e.url(), headers=h, follow_redirects=False, **kw)


def wechat_query(c: Container, good: bool) -> dict[str, str]:
    ts = str(int(c.clock.now().timestamp()))
    sig = hashlib.sha1("".join(sorted([WECHAT_TOKEN, ts, "n1"])).encode()).hexdigest()
    return {"timestamp": ts, "nonce": "n1", "signature": sig if good else "0" * 40, "echostr": "e"}


def probe(http: TestClient, c: Container, e: Endpoint) -> list[str]:
    """Return what is wrong with one endpoint's access control (empty: nothing)."""
    kind = classify(e)
    problems: list[str] = []

    def expect(label: str, response: Any, allowed: set[int]) -> None:
        if response.status_code not in allowed:
            problems.append(f"{e.method} {e.path} [{kind}] {label}: {response.status_code} {response.text[:120]!r}")

    def let_in(label: str, response: Any, refused: set[int]) -> None:
        if response.status_code in refused or response.status_code >= 500:
            problems.append(f"{e.method} {e.path} [{kind}] {label} was refused: {response.status_code}")

    if kind == "unclassified":
        return [f"{e.method} {e.path}: unclassified route: protect it (staff prefix, own data) or list it in PUBLIC"]
    if kind == "public":
        return problems
    if kind.startswith("staff:"):
        role = kind.split(":", 1)[1]
        expect("without credentials", call(http, e), {401})
        expect("with a wrong token", call(http, e, bearer("not-a-token")), {401})
        for other, token in TOKEN_OF_ROLE.items():
            if other != role:
                expect(f"with the {other} role", call(http, e, bearer(token)), {403})
        expect("with a citizen's session", call(http, e, cookies=citizen_cookie(c, "oOwner")), {401})
        let_in("the right role", call(http, e, bearer(TOKEN_OF_ROLE.get(role, ADMIN_TOKEN))), {401, 403})
        let_in("admin", call(http, e, bearer(ADMIN_TOKEN)), {401, 403})
    elif kind == "own":
        expect("without credentials", call(http, e), {401})
        expect("with a wrong token", call(http, e, bearer("not-a-token")), {401})
        expect("with the intake role", call(http, e, bearer(INTAKE_TOKEN)), {403})
        expect("with the publisher role", call(http, e, bearer(PUBLISHER_TOKEN)), {403})
        expect("as another citizen", call(http, e, cookies=citizen_cookie(c, "oSomeoneElse")), {403})
        let_in("the citizen themself", call(http, e, cookies=citizen_cookie(c, "oOwner")), {401, 403})
        let_in("a validator", call(http, e, bearer(VALIDATOR_TOKEN)), {401, 403})
    elif kind == "hmac":
        body = b'{"events": []}'
        ts = str(int(c.clock.now().timestamp()))
        expect("without a signature", call(http, e, content=body), {401})
        expect("with an admin token only", call(http, e, bearer(ADMIN_TOKEN), content=body), {401})
        wrong = {"X-Timestamp": ts, "X-Signature": hmac_signature("wrong-secret", ts, body)}
        expect("with a wrong signature", call(http, e, wrong, content=body), {401})
        secret = c.settings.intake_secret.get_secret_value()
        right = {"X-Timestamp": ts, "X-Signature": hmac_signature(secret, ts, body)}
        let_in("a signed request", call(http, e, right, content=body), {401, 403})
    elif kind == "wechat":
        expect("without a signature", call(http, e, content=b"<xml/>"), {403})
        expect("with an admin token only", call(http, e, bearer(ADMIN_TOKEN), content=b"<xml/>"), {403})
        bad = call(http, e, params=wechat_query(c, good=False), content=b"<xml/>")
        expect("with a wrong signature", bad, {403})
        let_in("a signed request", call(http, e, params=wechat_query(c, good=True), content=b"<xml/>"), {401, 403})
    elif kind == "api_key":
        form = {"service_code": "street_lamp", "lat": "36.06", "long": "103.83"}
        expect("without an api_key", call(http, e, data=form), {403})
        expect("with an admin token only", call(http, e, bearer(ADMIN_TOKEN), data=form), {403})
        expect("with a wrong api_key", call(http, e, data={**form, "api_key": "not-a-key"}), {403})
        let_in("the right api_key", call(http, e, data={**form, "api_key": OPEN311_KEY}), {401, 403})
    elif kind == "sign_in":
        expect("without a token", call(http, e), {401})
        expect("with a wrong token", call(http, e, bearer("not-a-token")), {401})
        expect("with a machine role (intake)", call(http, e, bearer(INTAKE_TOKEN)), {401})
        expect("with a machine role (publisher)", call(http, e, bearer(PUBLISHER_TOKEN)), {401})
        let_in("a validator", call(http, e, bearer(VALIDATOR_TOKEN)), {401, 403})
    return problems


def violations(app: FastAPI, c: Container) -> list[str]:
    """Probe every endpoint of the app; return every access-control problem found."""
    with TestClient(app) as http:
        return [p for e in endpoints(app) for p in probe(http, c, e)]


# -- tests -------------------------------------------------------------------------------------------------------


def test_every_route_refuses_missing_wrong_and_wrong_role_credentials(sec: Container) -> None:
    app = create_app(sec)
    found = endpoints(app)
    kinds = {classify(e) for e in found}
    assert {"staff:validator", "staff:publisher", "own", "hmac", "wechat", "api_key", "public"} <= kinds
    assert len(found) >= 45  # the route list really is the app's (included routers flattened)
    assert violations(app, sec) == []


def test_a_new_route_without_auth_fails_the_table(sec: Container) -> None:
    app = create_app(sec)

    def leak() -> dict[str, str]:
        return {"all": "the data"}

    app.add_api_route("/api/v1/cases/{case_id}/export", leak, methods=["GET"])  # under a staff prefix
    app.add_api_route("/api/v1/citizens/{openid}/phone", leak, methods=["GET"])  # own data, unguarded
    app.add_api_route("/api/v1/secrets", leak, methods=["GET"])  # nobody classified it
    found = violations(app, sec)
    assert any(v.startswith("GET /api/v1/cases/{case_id}/export [staff:validator] without credentials") for v in found)
    assert any(v.startswith("GET /api/v1/citizens/{openid}/phone [own] without credentials") for v in found)
    assert any(v.startswith("GET /api/v1/secrets: unclassified route") for v in found)


def test_public_routes_are_rate_limited(sec: Container) -> None:
    unlimited = [
        f"{e.method} {e.path}"
        for e in endpoints(create_app(sec))
        if classify(e) == "public"
        and (e.method, e.path) not in UNLIMITED
        and not any(name.startswith("rate_limited_") for name in e.dependencies)
    ]
    assert unlimited == []


@pytest.fixture
def low_limits(pg_engine: Engine, make_container: MakeContainer) -> Container:
    s = security_settings(rate_limit_per_ip=3, rate_limit_per_citizen=2, rate_limit_window_seconds=60)
    return make_container(s, engine=pg_engine)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/leaderboards/weekly", "/api/v1/leaderboards/districts/城关区/weekly", "/open311/v2/requests.json"],
)
def test_public_apis_answer_429_with_retry_after_per_ip_and_per_citizen(low_limits: Container, path: str) -> None:
    app = create_app(low_limits)
    with TestClient(app, client=("10.9.0.1", 1000)) as one, TestClient(app, client=("10.9.0.2", 1000)) as two:
        for _ in range(3):
            assert one.get(path).status_code == 200
        refused = one.get(path)
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # another IP has its own budget, but a signed-in citizen has one across networks
        two.cookies.set(CITIZEN_COOKIE, SessionCodec(low_limits.settings).dump_citizen(CitizenSession("oBusy")))
        assert [two.get(path).status_code for _ in range(3)] == [200, 200, 429]
        low_limits.clock.advance(seconds=60)  # type: ignore[attr-defined]
        assert one.get(path).status_code == 200  # a new window
