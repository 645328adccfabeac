"""Faults on real services, injected by a loopback proxy that drops connections: Redis down during a stream of
verdicts, PostgreSQL 'restarted' mid-stream."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.clock import FixedClock
from rewards.db import make_engine
from rewards.health import CircuitBreaker
from rewards.leaderboard.check import check
from rewards.leaderboard.rebuild import rebuild
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import REDIS_URL, MakeContainer, auth, flush_prefix, wipe
from tests.fakes.tcp_proxy import TcpProxy


def case_body(i: int, openid: str) -> dict[str, object]:
    return {
        "case_id": f"F-{i}",
        "category": "street_lamp",
        "reporter": {"openid": openid, "name": "赵六", "verified": True},
    }


@pytest.fixture
def redis_proxy(redis_server: redis.Redis) -> Iterator[TcpProxy]:
    url = make_url(REDIS_URL.replace("redis://", "postgresql://"))  # reuse URL parsing for host/port
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 6379)
    yield proxy
    proxy.close()


def flaky_redis(proxy: TcpProxy) -> redis.Redis:
    db = int(REDIS_URL.rsplit("/", 1)[-1] or 0)
    return redis.Redis(
        host="127.0.0.1",
        port=proxy.port,
        db=db,
        decode_responses=True,
        socket_timeout=1,
        socket_connect_timeout=0.5,
    )


def ledger_count(c: Container) -> int:
    with c.read() as s:
        return int(s.scalar(select(func.count(LedgerEntry.id))) or 0)


def wait_out_the_breaker(breaker: CircuitBreaker) -> None:
    """Wait until the breaker lets a probe through again (at most its open time after the last failure)."""
    deadline = time.monotonic() + breaker.open_seconds + 1
    while breaker.down and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not breaker.down


def test_redis_down_during_verdicts_loses_nothing_and_boards_converge(
    pg_engine: Engine, redis_proxy: TcpProxy, clock: FixedClock, make_container: MakeContainer
) -> None:
    c = make_container(engine=pg_engine, redis_client=flaky_redis(redis_proxy))
    http = TestClient(create_app(c))
    for i in range(12):
        assert http.post("/api/v1/cases", json=case_body(i, f"o{i % 3}"), headers=auth()).status_code == 201
    for i in range(4):
        clock.advance(minutes=1)
        assert http.post(f"/api/v1/cases/F-{i}/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200
    redis_proxy.cut()  # Redis goes away mid-stream
    for i in range(4, 10):
        clock.advance(minutes=1)
        r = http.post(f"/api/v1/cases/F-{i}/verdict", json={"verdict": "valid"}, headers=auth())
        assert r.status_code == 200, r.text  # the verdict and its award are committed all the same
    assert ledger_count(c) == 10
    assert c.projector.behind()  # the failed board updates marked the boards behind: nothing waits in memory
    standing = http.get("/api/v1/citizens/o1/standing", headers=auth())
    assert standing.status_code == 200, standing.text
    body = standing.json()
    assert body["stale"] is True and body["weekly"]["points"] == 3 and body["weekly"]["rank"] in (1, 2, 3)
    assert http.get("/api/v1/leaderboards/weekly?week=2026-W48").status_code == 503  # a clear retry-later
    redis_proxy.restore()
    clock.advance(minutes=1)
    assert http.post("/api/v1/cases/F-10/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200
    wait_out_the_breaker(c.redis_breaker)  # after failures every caller skips Redis for a few seconds (circuit open)
    status = c.projector.catch_up()  # what the projector thread of every process does on its own
    assert status.ok and status.lag_rows == 0 and not c.projector.behind()
    assert check(c.db, c.boards).clean
    assert http.get("/api/v1/citizens/o1/standing", headers=auth()).json()["stale"] is False


def test_flushed_redis_is_repaired_by_rebuild(pg_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(engine=pg_engine)
    http = TestClient(create_app(c))
    for i in range(5):
        http.post("/api/v1/cases", json=case_body(i, f"o{i}"), headers=auth())
        http.post(f"/api/v1/cases/F-{i}/verdict", json={"verdict": "valid"}, headers=auth())
    flush_prefix(c.redis, c.settings.leaderboard_key_prefix)  # Redis lost everything
    assert not check(c.db, c.boards).clean
    rebuild(c.db, c.boards)
    assert check(c.db, c.boards).clean


def test_postgres_restart_mid_stream_fails_cleanly_and_retries_award_once(
    pg_url: str, make_container: MakeContainer
) -> None:
    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    wipe(engine)
    c = make_container(engine=engine)
    http = TestClient(create_app(c), raise_server_exceptions=False)
    try:
        for i in range(6):
            assert http.post("/api/v1/cases", json=case_body(i, "o-pg"), headers=auth()).status_code == 201
        for i in range(3):
            assert (
                http.post(f"/api/v1/cases/F-{i}/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200
            )
        proxy.cut()  # the database restarts: every connection drops and new ones are refused
        failed = []
        for i in range(3, 6):
            r = http.post(f"/api/v1/cases/F-{i}/verdict", json={"verdict": "valid"}, headers=auth())
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "unavailable"
            failed.append(i)
        proxy.restore()
        for i in [*failed, 0, 1, 2]:  # the client retries everything, including verdicts that had succeeded
            r = http.post(f"/api/v1/cases/F-{i}/verdict", json={"verdict": "valid"}, headers=auth())
            assert r.status_code == 200, r.text
        assert ledger_count(c) == 6  # one award per case: no duplicates from the retries
        assert http.get("/api/v1/citizens/o-pg/points", headers=auth()).json()["total"] == 6
    finally:
        proxy.close()
        engine.dispose()
