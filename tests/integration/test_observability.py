"""Observability on real PostgreSQL/SQLite and Redis: /readyz, /metrics, request ids and JSON logs.

- /readyz: 200 once the projector has caught up; 503 naming Redis when Redis is dead (then the breaker's state,
  without waiting), naming the projector when its last pass failed or it stalled, naming the database when the
  database hangs (answered by the deadline, one probe thread however often it is asked);
- /metrics: every family after a verdict, an intake event and a publication; route labels are templates and no
  openid appears anywhere; a token or a loopback client is required;
- request ids: a sane X-Request-ID comes back, anything else is replaced; every log line of the request carries it,
  in JSON and in text; an unhandled error answers a JSON 500 with the id;
- `rewards serve --workers 2`: /metrics adds up both workers' counters (multiprocess mode), whichever worker answers;
  its JSON log lines parse and the access lines carry the request id.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from intake_adapter.auth import signature
from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.clock import IsoWeek
from rewards.db import make_engine
from rewards.leaderboard import keys
from rewards.locks import Lease
from rewards.logs import JsonFormatter, RequestIdFilter, TextFormatter
from rewards.redis_client import make_redis
from tests.conftest import (
    REDIS_URL,
    RUN_ID,
    START,
    VALIDATOR_TOKEN,
    MakeContainer,
    auth,
    flush_prefix,
    test_settings,
)
from tests.fakes import processes
from tests.fakes.live import free_port
from tests.fakes.processes import RewardsService

METRICS_TOKEN = "test-metrics-token-0123456789"
OPENID = "oObsCitizen4711"  # must never appear in /metrics
LOOPBACK = ("127.0.0.1", 50000)


def client_for(c: Container, *, loopback: bool = False) -> TestClient:
    return TestClient(create_app(c), client=LOOPBACK if loopback else ("testclient", 50000))


def scrape(http: TestClient, token: str = METRICS_TOKEN) -> str:
    r = http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition (parsed by prometheus-client's own parser: the text is well-formed)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


# -- /readyz ---------------------------------------------------------------------------------------------------


def test_readyz_is_ready_once_the_projector_has_caught_up(container: Container) -> None:
    with client_for(container) as http:
        before = http.get("/readyz")
        assert before.status_code == 503  # no pass yet: the boards may be empty or behind
        assert before.json()["not_ready"] == ["projector"]
        assert container.projector.catch_up().ok
        r = http.get("/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ready" and body["not_ready"] == []
        assert set(body["checks"]) == {"database", "redis", "projector"}
        assert body["checks"]["redis"]["breaker"] == "closed"
        assert body["checks"]["projector"]["lag_rows"] == 0
        assert http.get("/healthz").json() == {"status": "ok"}  # liveness stays trivial


def dead_redis() -> redis.Redis:
    """A client as production builds it (short timeouts, one quick retry), for a port nobody listens on."""
    return make_redis(test_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))


def test_readyz_names_a_dead_redis_then_reports_the_open_breaker_without_waiting(
    pg_engine: Engine, make_container: MakeContainer
) -> None:
    dead = dead_redis()
    c = make_container(test_settings(redis_breaker_open_seconds=60), engine=pg_engine, redis_client=dead)
    with client_for(c) as http:
        r = http.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert "redis" in body["not_ready"] and "database" not in body["not_ready"]
        assert "did not answer: ConnectionError" in body["checks"]["redis"]["reason"]
        answers = [http.get("/readyz").json()["checks"]["redis"] for _ in range(c.settings.redis_breaker_failures)]
        assert answers[-1]["breaker"] == "open"
        assert "circuit breaker is open" in answers[-1]["reason"]
        started = time.perf_counter()
        assert http.get("/readyz").status_code == 503
        print(f"/readyz with the breaker open: {(time.perf_counter() - started) * 1000:.1f} ms")
        assert "127.0.0.1" not in r.text and str(dead.connection_pool.connection_kwargs["port"]) not in r.text


def test_readyz_names_the_projector_when_its_last_pass_failed(pg_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(engine=pg_engine)
    with client_for(c) as http:
        assert c.projector.catch_up().ok
        assert http.get("/readyz").status_code == 200
        # Redis restarted empty while a rebuild runs elsewhere: the pass cannot rebuild the boards
        flush_prefix(c.redis, c.settings.leaderboard_key_prefix)
        lease = Lease(c.redis, keys.lock_key(c.settings.leaderboard_key_prefix), 60)
        assert lease.acquire()
        try:
            assert not c.projector.catch_up().ok
            r = http.get("/readyz")
        finally:
            lease.release()
        assert r.status_code == 503
        assert r.json()["not_ready"] == ["projector"]  # the database and Redis answer
        assert r.json()["checks"]["projector"]["reason"] == "the projector's last pass failed"
        assert c.projector.catch_up().ok
        assert http.get("/readyz").status_code == 200


def test_readyz_names_a_stalled_projector(pg_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(test_settings(ready_max_lag_seconds=0.05), engine=pg_engine)
    with client_for(c) as http:
        assert c.projector.catch_up().ok
        time.sleep(0.2)  # no pass since: the thread died or hangs
        r = http.get("/readyz")
        assert r.status_code == 503
        assert r.json()["not_ready"] == ["projector"]
        assert r.json()["checks"]["projector"]["reason"].startswith("no projector pass has succeeded for")


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel does) and never answers: a hung database."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()  # the waiting connections are reset: the probe thread ends


def test_readyz_answers_by_its_deadline_while_the_database_hangs(
    black_hole: int, make_container: MakeContainer
) -> None:
    hung = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{black_hole}/test")
    c = make_container(test_settings(ready_timeout_seconds=0.3), engine=hung)
    with client_for(c) as http:
        times = []
        for _ in range(4):
            started = time.perf_counter()
            r = http.get("/readyz")
            times.append(time.perf_counter() - started)
            assert r.status_code == 503
            assert "database" in r.json()["not_ready"]
            assert r.json()["checks"]["database"]["reason"].startswith("database did not answer: no answer after")
        probes = [t for t in threading.enumerate() if t.name == "probe-database"]
        assert len(probes) == 1  # every later probe joined the one still waiting
        print("/readyz with a hung database: " + ", ".join(f"{t * 1000:.0f} ms" for t in times) + " (deadline 300 ms)")
    hung.dispose()


# -- /metrics --------------------------------------------------------------------------------------------------

SECRET = "test-intake-secret"


def event_submitted(case_id: str) -> dict[str, Any]:
    return {
        "event_id": f"{case_id}-submitted",
        "type": "report.submitted",
        "occurred_at": START.isoformat(),
        "case_id": case_id,
        "category": "manhole_cover",
        "description": "井盖缺失",
        "location": {"lat": 31.2304, "lon": 121.4737, "coord_system": "gcj02", "address": "人民大道 200 号"},
        "district": "黄浦区",
        "reporter": {"openid": OPENID, "name": "张三明", "verified": True},
    }


def post_events(http: TestClient, c: Container, *events: dict[str, Any]) -> Any:
    body = json.dumps({"events": list(events)}, ensure_ascii=False).encode()
    ts = str(int(c.clock.now().timestamp()))
    headers = {"X-Timestamp": ts, "X-Signature": signature(SECRET, ts, body), "Content-Type": "application/json"}
    return http.post("/intake/v1/events", content=body, headers=headers)


@pytest.fixture
def observed(pg_engine: Engine, make_container: MakeContainer, tmp_path: Path) -> Container:
    return make_container(test_settings(metrics_token=METRICS_TOKEN, outbox_dir=tmp_path / "outbox"), engine=pg_engine)


def test_metrics_expose_every_family_with_templates_and_no_openid(observed: Container) -> None:
    c = observed
    with client_for(c) as http:
        assert post_events(http, c, event_submitted("OBS-1"), event_submitted("OBS-2")).status_code == 200
        r = http.post("/api/v1/cases/OBS-1/verdict", json={"verdict": "valid"}, headers=auth(VALIDATOR_TOKEN))
        assert r.status_code == 200, r.text
        r = http.post("/api/v1/cases/OBS-2/verdict", json={"verdict": "invalid"}, headers=auth(VALIDATOR_TOKEN))
        assert r.status_code == 200, r.text
        again = http.post("/api/v1/cases/OBS-1/verdict", json={"verdict": "valid"}, headers=auth(VALIDATOR_TOKEN))
        assert again.status_code == 200  # a replay changes nothing, and counts nothing
        assert http.get(f"/api/v1/citizens/{OPENID}/points", headers=auth(VALIDATOR_TOKEN)).status_code == 200
        assert http.get(f"/nowhere/{OPENID}").status_code == 404
        c.clock.advance(days=7)  # type: ignore[attr-defined]
        c.closer.close(IsoWeek.from_text("2026-W48"))
        c.publishing.publish("2026-W48")
        c.projector.catch_up()
        text = scrape(http)

    assert OPENID not in text and "OBS-1" not in text
    assert value(text, "rewards_verdicts_total", verdict="valid") == 1
    assert value(text, "rewards_verdicts_total", verdict="invalid") == 1
    assert value(text, "rewards_verdicts_total", verdict="duplicate") == 0
    assert value(text, "rewards_intake_events_total", result="applied") == 2
    assert value(text, "rewards_intake_events_total", result="failed") == 0
    assert value(text, "rewards_intake_unapplied_events", status="failed") == 0
    assert value(text, "rewards_publication_state", week="2026-W48", kind="notice", state="published") == 1
    assert value(text, "rewards_publication_state", week="2026-W48", kind="notice", state="failed") == 0
    assert value(text, "rewards_projector_lag_rows") == 0
    assert value(text, "rewards_projector_lag_seconds") is not None
    assert value(text, "rewards_projector_last_pass_ok") == 1
    assert value(text, "rewards_redis_breaker_state", breaker="redis") == 0
    assert value(text, "rewards_redis_breaker_opened_total", breaker="redis") == 0
    assert value(text, "rewards_metrics_database_ok") == 1
    verdict_route = {"method": "POST", "route": "/api/v1/cases/{case_id}/verdict"}
    assert value(text, "rewards_http_requests_total", **verdict_route, status="200") == 3
    assert value(text, "rewards_http_request_duration_seconds_count", **verdict_route) == 3
    points = {"method": "GET", "route": "/api/v1/citizens/{openid}/points", "status": "200"}
    assert value(text, "rewards_http_requests_total", **points) == 1
    assert value(text, "rewards_http_requests_total", method="GET", route="unmatched", status="404") == 1
    routes = {dict(labels).get("route") for (_, labels) in samples(text)} - {None}
    assert all(r == "unmatched" or r.startswith("/") for r in routes)
    assert not any(re.search(r"OBS-|oObs", r or "") for r in routes)


def test_failed_intake_events_and_breaker_openings_are_counted(
    pg_engine: Engine, make_container: MakeContainer
) -> None:
    dead = dead_redis()
    c = make_container(test_settings(metrics_token=METRICS_TOKEN), engine=pg_engine)
    slow_probe = test_settings(metrics_token=METRICS_TOKEN, redis_breaker_open_seconds=60)
    broken = make_container(slow_probe, engine=pg_engine, redis_client=dead)
    with client_for(c) as http:
        filed_before_report = {
            "event_id": "OBS-9-filed",
            "type": "case.status_changed",
            "occurred_at": START.isoformat(),
            "case_id": "OBS-9",
            "status": "filed",
        }
        assert post_events(http, c, filed_before_report).status_code != 200  # the case is unknown: kept as failed
        text = scrape(http)
        assert value(text, "rewards_intake_events_total", result="failed") == 1
        assert value(text, "rewards_intake_unapplied_events", status="failed") == 1
    with client_for(broken) as http:
        for _ in range(broken.settings.redis_breaker_failures):
            http.get("/readyz")
        text = scrape(http)
        assert value(text, "rewards_redis_breaker_state", breaker="redis") == 2
        assert value(text, "rewards_redis_breaker_opened_total", breaker="redis") == 1


def test_metrics_need_the_token_or_a_loopback_client(container: Container, observed: Container) -> None:
    with client_for(observed) as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert "rewards_http_requests_total" in scrape(http)
    with client_for(observed, loopback=True) as http:
        assert http.get("/metrics").status_code == 401  # a token, once set, is needed from anywhere
    with client_for(container) as http:  # no token set
        r = http.get("/metrics")
        assert r.status_code == 403 and "loopback" in r.json()["detail"]
    with client_for(container, loopback=True) as http:
        assert http.get("/metrics").status_code == 200


# -- request ids and logs --------------------------------------------------------------------------------------


def with_logging_routes(app: FastAPI) -> FastAPI:
    log = logging.getLogger("rewards.test_observability")

    def sync_route() -> dict[str, str]:
        log.warning("sync route says hello")
        return {"ok": "sync"}

    async def async_route() -> dict[str, str]:
        log.warning("async route says hello")
        return {"ok": "async"}

    def failing_route() -> dict[str, str]:
        raise RuntimeError("boom")

    app.add_api_route("/test/log-sync", sync_route, methods=["GET"])
    app.add_api_route("/test/log-async", async_route, methods=["GET"])
    app.add_api_route("/test/fail", failing_route, methods=["GET"])
    return app


@pytest.fixture
def captured_json() -> Iterator[io.StringIO]:
    """Every log record of the test, as the JSON format writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_every_log_line_of_a_request_carries_its_id(container: Container, captured_json: io.StringIO) -> None:
    with TestClient(with_logging_routes(create_app(container))) as http:
        sync = http.get("/test/log-sync")
        chosen = http.get("/test/log-async", headers={"X-Request-ID": "lb-7f3a.2:x"})
    lines = [json.loads(line) for line in captured_json.getvalue().splitlines()]
    ours = {entry["message"]: entry for entry in lines}
    assert ours["sync route says hello"]["request_id"] == sync.headers["x-request-id"]
    assert ours["async route says hello"]["request_id"] == chosen.headers["x-request-id"] == "lb-7f3a.2:x"
    assert {"time", "level", "logger", "message", "pid"} <= set(ours["sync route says hello"])
    assert ours["sync route says hello"]["level"] == "WARNING"
    assert ours["sync route says hello"]["logger"] == "rewards.test_observability"


@pytest.mark.parametrize(
    "incoming", [None, "", "has space", "a\nb", "x" * 129, "-leading-dash", "ünïcode", "a;b", "<script>"]
)
def test_an_absent_or_odd_request_id_is_replaced(container: Container, incoming: str | None) -> None:
    with client_for(container) as http:
        headers = {"X-Request-ID": incoming.encode("utf-8")} if incoming is not None else {}
        returned = http.get("/healthz", headers=headers).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", returned)


@pytest.mark.parametrize(
    "incoming", ["abc", "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c", "Root=1-67891233-abcdef", "x" * 128]
)
def test_a_sane_request_id_comes_back_unchanged(container: Container, incoming: str) -> None:
    with client_for(container) as http:
        r = http.get("/readyz", headers={"X-Request-ID": incoming})
        assert r.headers["x-request-id"] == incoming
        assert http.get("/api/v1/cases/NOPE", headers={"X-Request-ID": incoming}).headers["x-request-id"] == incoming


def test_an_unhandled_error_answers_json_500_with_the_request_id(container: Container) -> None:
    with TestClient(with_logging_routes(create_app(container)), raise_server_exceptions=False) as http:
        r = http.get("/test/fail", headers={"X-Request-ID": "trace-500"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "trace-500"
    assert r.json() == {"error": "internal_error", "detail": "an unexpected error occurred (request id trace-500)"}


def test_text_lines_carry_the_request_id_too() -> None:
    record = logging.LogRecord("rewards.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    plain = TextFormatter().format(record)
    record.request_id = "req-1"
    tagged = TextFormatter().format(record)
    assert plain.endswith(" INFO rewards.x: hello world")
    assert tagged.endswith(" INFO rewards.x [req-1]: hello world")


# -- `rewards serve --workers 2` -------------------------------------------------------------------------------


@pytest.fixture
def two_workers(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RewardsService]:
    # each spawned worker imports the whole service before it answers: on a busy machine that alone takes > 10 s
    monkeypatch.setattr(processes, "STARTUP_SECONDS", 120.0)
    prefix = f"t{RUN_ID}obs"
    env = {
        "REWARDS_DATABASE_URL": pg_url,
        "REWARDS_REDIS_URL": REDIS_URL,
        "REWARDS_LEADERBOARD_KEY_PREFIX": prefix,
        "REWARDS_DATA_DIR": str(tmp_path / "var"),
        "REWARDS_OUTBOX_DIR": str(tmp_path / "outbox"),
        "REWARDS_LOG_FORMAT": "json",
        "REWARDS_METRICS_TOKEN": METRICS_TOKEN,
        "REWARDS_API_TOKENS": json.dumps({VALIDATOR_TOKEN: {"name": "validator-1", "role": "validator"}}),
        "REWARDS_RATE_LIMIT_PER_IP": str(10**9),
    }
    service = RewardsService(env, tmp_path / "service.log", workers=2, via_cli=True)
    yield service
    service.stop()
    flush_prefix(redis.Redis.from_url(REDIS_URL), prefix)


def access_lines(log: Path) -> list[dict[str, Any]]:
    entries = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["logger"] == "uvicorn.access":
                entries.append(entry)
    return entries


def test_two_workers_add_up_on_every_scrape_and_log_json(two_workers: RewardsService) -> None:
    base = two_workers.base_url
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}

    def healthz_count() -> float | None:
        text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        assert OPENID not in text
        return value(text, "rewards_http_requests_total", **healthz)

    before = healthz_count() or 0  # the start-up wait asked /healthz too
    asked, pids = 0, set()
    while len(pids) < 2 and asked < 400:  # until both workers have answered (the kernel spreads the connections)
        for _ in range(20):
            r = httpx.get(f"{base}/healthz", headers={"X-Request-ID": f"mp-{asked}"})
            assert r.status_code == 200 and r.headers["x-request-id"] == f"mp-{asked}"
            asked += 1
        time.sleep(0.2)  # the access lines reach the log
        pids = {e["pid"] for e in access_lines(two_workers.log) if e["message"].endswith('/healthz HTTP/1.1" 200')}
    assert len(pids) == 2, f"one worker answered all {asked} requests"
    unknown = httpx.get(f"{base}/api/v1/citizens/{OPENID}/points", headers=auth(VALIDATOR_TOKEN))
    assert unknown.status_code == 404  # an openid in the path: in neither the labels nor the access log

    counts = [healthz_count() for _ in range(6)]  # whichever worker answers, the counter is the sum of both
    assert counts == [before + asked] * 6
    print(f"{asked} /healthz requests over 2 worker processes; 6 scrapes all counted {before:.0f} + {asked}")

    entries = access_lines(two_workers.log)
    assert {e["request_id"] for e in entries} >= {f"mp-{i}" for i in range(asked)}
    assert not any(OPENID in e["message"] for e in entries)  # the access-log redaction still applies
