"""Limits before work against the real server: `rewards serve` in a subprocess on loopback, real sockets.

Every POST route gets an unauthenticated 50 MB body, once with a Content-Length and once chunked, streamed 64 KiB
at a time until the server answers; the server process's resident memory is sampled all along. Also: the
header-read timeout, the header size limit, --limit-concurrency, the redacted access log and the headers.
Figures are printed (run with -s to see them); memory growth is asserted, times never are.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
import redis
from sqlalchemy import Engine

from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.clock import FixedClock
from rewards.config import Settings
from tests.conftest import REDIS_URL, START, VALIDATOR_TOKEN, flush_prefix, test_settings
from tests.fakes.processes import RewardsService
from tests.integration.test_security_routes import endpoints

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 64 * 1024
MAX_RSS_GROWTH = 50 * 1024 * 1024
HEADER_TIMEOUT_S = 1
CONCURRENCY = 8
WAIT_S = 30.0  # how long a client waits for the server before calling it stuck (generous: a shared 2-CPU box)


@pytest.fixture(scope="module")
def limits_settings() -> Settings:
    return test_settings(wechat_token="test-wechat-token", dev_login=True)


@pytest.fixture(scope="module")
def served(
    pg_url: str, redis_server: redis.Redis, limits_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RewardsService]:
    """One `rewards serve` for the module (each start costs seconds); the tests only read and refuse."""
    s = limits_settings
    flush_prefix(redis_server, s.leaderboard_key_prefix)
    env = {
        "REWARDS_DATABASE_URL": pg_url,
        "REWARDS_REDIS_URL": REDIS_URL,
        "REWARDS_LEADERBOARD_KEY_PREFIX": s.leaderboard_key_prefix,
        "REWARDS_API_TOKENS": json.dumps({t: {"name": v.name, "role": v.role} for t, v in s.api_tokens.items()}),
        "REWARDS_OPEN311_API_KEYS": json.dumps(s.open311_api_keys),
        "REWARDS_INTAKE_SECRET": s.intake_secret.get_secret_value(),
        "REWARDS_SESSION_SECRET": s.session_secret.get_secret_value(),
        "REWARDS_WECHAT_TOKEN": "test-wechat-token",
        "REWARDS_DEV_LOGIN": "true",
        "REWARDS_RATE_LIMIT_PER_IP": "1000000",
        "REWARDS_RATE_LIMIT_SIGN_IN_PER_IP": "1000000",
        "REWARDS_SERVER_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
        "REWARDS_SERVER_LIMIT_CONCURRENCY": str(CONCURRENCY),
    }
    service = RewardsService(env, tmp_path_factory.mktemp("serve") / "serve.log", via_cli=True)
    try:
        yield service
    finally:
        service.stop()
        flush_prefix(redis_server, s.leaderboard_key_prefix)


def post_paths(pg_engine: Engine, redis_server: redis.Redis, settings: Settings) -> list[str]:
    """Every POST path of the app (from its own route list), parameters filled in."""
    app = create_app(bootstrap(settings, clock=FixedClock(START), engine=pg_engine, redis_client=redis_server))
    return sorted({e.url() for e in endpoints(app) if e.method == "POST"})


# -- a raw HTTP/1.1 client that streams a body until the server answers -------------------------------------------


def stream(port: int, path: str, *, size: int, chunked: bool, headers: dict[str, str] | None = None) -> tuple[int, int]:
    """POST `size` bytes to `path`, 64 KiB at a time, stopping when the server answers; return (status, bytes sent).

    Status 0: the server closed the connection without an answer.
    """
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    body = b"x" * CHUNK
    frame = (b"%x\r\n" % CHUNK + body + b"\r\n") if chunked else body
    pending, sent, answer = memoryview(head.encode()), 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.setblocking(False)
        while b"\r\n" not in answer:
            writing = bool(pending) or sent < size
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], WAIT_S)
            if not readable and not writable:
                raise AssertionError(f"{path}: the server neither read nor answered for {WAIT_S} s")
            if readable:
                try:
                    got = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not got:
                    break
                answer += got
                continue
            if not pending:
                last = sent + CHUNK >= size
                pending = memoryview(frame + (b"0\r\n\r\n" if chunked and last else b""))
                sent += CHUNK
            try:
                pending = pending[sock.send(pending) :]
            except (BrokenPipeError, ConnectionResetError):
                sock.setblocking(True)
                with contextlib.suppress(OSError):
                    answer += sock.recv(65536)
                break
    status_line = answer.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else 0), sent


class RssPeak:
    """Samples a process's resident memory in a thread; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# -- the tests ---------------------------------------------------------------------------------------------------


def test_unauthenticated_50_mb_bodies_on_every_post_route(
    served: RewardsService, pg_engine: Engine, redis_server: redis.Redis, limits_settings: Settings
) -> None:
    assert served.proc is not None
    paths = post_paths(pg_engine, redis_server, limits_settings)
    assert len(paths) >= 10
    for path in paths:  # warm-up: every route once with a small body, so lazy imports are not counted
        stream(served.port, path, size=CHUNK, chunked=False)
    process = psutil.Process(served.proc.pid)
    baseline = process.memory_info().rss
    rows = []
    with RssPeak(served.proc.pid) as rss:
        for path in paths:
            for chunked in (False, True):
                status, sent = stream(served.port, path, size=FIFTY_MB, chunked=chunked)
                rows.append((path, "chunked" if chunked else "Content-Length", status, sent))
    print(f"\nserver RSS: baseline {baseline / 2**20:.1f} MiB, peak {rss.peak / 2**20:.1f} MiB")
    print(f"{'route':40} {'body':15} {'status':>6} {'sent before the answer':>24}")
    for path, how, status, sent in rows:
        print(f"{path:40} {how:15} {status:>6} {sent / 2**20:>20.1f} MiB")
    for path, how, status, sent in rows:
        allowed = {401, 403, 413} | ({204} if path == "/auth/logout" and how == "chunked" else set())
        assert status in allowed, (path, how, status)
        assert sent < FIFTY_MB, (path, how, "the server read the whole body before answering")
    assert rss.peak - baseline < MAX_RSS_GROWTH, f"RSS grew by {(rss.peak - baseline) / 2**20:.1f} MiB"


def test_a_known_token_is_still_capped_and_the_open311_key_comes_first(served: RewardsService) -> None:
    assert served.proc is not None
    process = psutil.Process(served.proc.pid)
    stream(served.port, "/api/v1/cases/X1/verdict", size=CHUNK, chunked=False)  # warm-up
    baseline = process.memory_info().rss
    with RssPeak(served.proc.pid) as rss:
        bearer = {"Authorization": f"Bearer {VALIDATOR_TOKEN}"}
        assert stream(served.port, "/api/v1/cases/X1/verdict", size=FIFTY_MB, chunked=True, headers=bearer)[0] == 413
        # Open311: a wrong key in the query is refused before the body; a form is capped at 64 KiB
        assert stream(served.port, "/open311/v2/requests.json?api_key=nope", size=FIFTY_MB, chunked=True)[0] == 403
        assert stream(served.port, "/open311/v2/requests.json", size=FIFTY_MB, chunked=True)[0] == 413
    assert rss.peak - baseline < MAX_RSS_GROWTH
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    garbage = "&".join(f"f{i}={'v' * 40}" for i in range(900))[: 60 * 1024]  # under the cap, no key, unknown fields
    r = httpx.post(f"{served.base_url}/open311/v2/requests.json", content=garbage, headers=form, timeout=WAIT_S)
    assert r.status_code == 403 and r.json()[0]["description"] == "api_key was not provided"


def test_a_connection_that_never_finishes_its_request_head_is_closed(served: RewardsService) -> None:
    def closed_by_server(sock: socket.socket, trickle: bytes) -> tuple[bool, bytes]:
        deadline = time.monotonic() + WAIT_S
        received = b""
        for byte in [trickle[i : i + 1] for i in range(len(trickle))] + [b""] * 10_000:
            if time.monotonic() > deadline:
                return False, received
            with contextlib.suppress(OSError):
                if byte:
                    sock.sendall(byte)
            readable, _, _ = select.select([sock], [], [], HEADER_TIMEOUT_S / 4)
            if readable:
                try:
                    got = sock.recv(4096)
                except ConnectionResetError:
                    return True, received
                if not got:
                    return True, received
                received += got
        return False, received

    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port)) as idle:
        closed, answer = closed_by_server(idle, b"")
    idle_s = time.monotonic() - started
    assert closed and answer == b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port)) as slow:  # a byte every quarter timeout
        closed, answer = closed_by_server(slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200)
    slow_s = time.monotonic() - started
    assert closed and answer == b""
    print(
        f"\nheader timeout {HEADER_TIMEOUT_S} s: idle connection closed after {idle_s:.2f} s, slow one {slow_s:.2f} s"
    )
    with socket.create_connection(("127.0.0.1", served.port)) as kept:  # a keep-alive client is unaffected
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")


def test_oversized_headers_and_too_many_connections_are_refused(served: RewardsService) -> None:
    # a request head still incomplete past server_max_header_bytes (16 KiB) is refused: its buffer is bounded
    with socket.create_connection(("127.0.0.1", served.port), timeout=WAIT_S) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (20 * 1024))
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(CONCURRENCY)]
    try:
        assert httpx.get(f"{served.base_url}/healthz", timeout=WAIT_S).status_code == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while httpx.get(f"{served.base_url}/healthz", timeout=WAIT_S).status_code != 200:
        assert time.monotonic() < deadline, "the server never recovered from the idle connections"
        time.sleep(0.05)


def test_the_access_log_holds_no_secret_and_no_openid(served: RewardsService) -> None:
    base = served.base_url
    secrets = ["oauthCODE7f3a", "stateSECRET91", "sigSECRET0042", "nonceSECRET77", "echoSECRET55", "oOPENIDsecret1"]
    calls = [
        f"/auth/wechat/callback?code={secrets[0]}&state={secrets[1]}",
        f"/wechat/callback?signature={secrets[2]}&timestamp=1&nonce={secrets[3]}&echostr={secrets[4]}",
        f"/api/v1/citizens/{secrets[5]}/points",
        f"/auth/dev-login?openid={secrets[5]}",
        f"/open311/v2/requests.json?api_key={secrets[2]}",
    ]
    for call in calls:
        httpx.get(base + call, timeout=WAIT_S, follow_redirects=False)
    deadline = time.monotonic() + WAIT_S
    while "/auth/dev-login" not in served.log_tail(100_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = served.log_tail(100_000)
    assert "/api/v1/citizens/h-" in log and "code=***" in log and "nonce=***" in log
    leaked = [s for s in secrets if s in log]
    assert leaked == [], leaked


def test_live_responses_carry_the_security_headers(served: RewardsService) -> None:
    for path in ("/leaderboard", "/api/v1/leaderboards/weekly", "/api/v1/cases", "/nope"):
        r = httpx.get(served.base_url + path, timeout=WAIT_S)
        headers: Any = r.headers
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "server" not in headers, path  # uvicorn's banner is off


# -- in a real browser: the CSP blocks nothing the pages use, a cross-site sign-out form is refused -------------


@pytest.mark.browser
def test_the_pages_run_under_their_csp_and_a_foreign_sign_out_form_fails(browser, site) -> None:  # type: ignore[no-untyped-def]
    c, url = site
    with c.uow() as uow:
        reporter = Reporter(openid="o-csp", name="张三明", district="城关区", verified=True)
        report = ReportCase("CSP-1", "street_lamp", c.clock.now(), reporter, "路灯不亮", district="城关区")
        c.flows.report(uow, report, Actor("validator-1", "console"))
        c.flows.verdict(uow, GiveVerdict("CSP-1", "valid"), Actor("validator-1", "console"))
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    for path in ("/me", "/leaderboard", "/leaderboard/all-time", "/rules", "/weeks", "/console/login"):
        page.goto(url + path)
    page.goto(f"{url}/leaderboard")
    with page.expect_navigation():
        page.select_option("select", "城关区")  # the inline handler, allowed by its hash
    assert "/leaderboard/districts/" in page.url
    assert violations == []
    page.goto(f"{url}/auth/dev-login?openid=o-csp&next=/me")
    assert page.inner_text("#all-points") == "1"
    # another site's form posting to our sign-out: refused, the session survives
    page.goto("about:blank")
    page.set_content(f'<form method="post" action="{url}/auth/logout"><button id="go">x</button></form>')
    with page.expect_navigation() as refused:
        page.click("#go")
    assert refused.value is not None and refused.value.status == 403
    page.goto(f"{url}/me")
    assert page.inner_text("#all-points") == "1"
    with page.expect_navigation():
        page.click("text=退出登录")  # our own form: signed out
    assert "微信授权登录" in page.content()
