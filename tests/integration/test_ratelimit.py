"""Rate limits on real Redis: 429 with Retry-After, separate buckets per IP and per citizen, fail-open."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.clock import FixedClock
from rewards.config import Settings
from rewards.errors import TooManyRequests
from rewards.health import CircuitBreaker
from rewards.http.ratelimit import Limit, RateLimiter, counter_key, public_rate_limit, window_at
from rewards.http.session import CITIZEN_COOKIE, CitizenSession, SessionCodec
from tests.conftest import START, MakeContainer, flush_prefix, test_settings


def dead_redis() -> redis.Redis:
    """A Redis nobody listens on (no retries: redis-py's default backoff spends seconds per call)."""
    return redis.Redis(host="127.0.0.1", port=1, decode_responses=True, retry=Retry(NoBackoff(), 0))


@pytest.fixture
def limited(redis_server: redis.Redis) -> Iterator[tuple[RateLimiter, FixedClock, Settings]]:
    s = test_settings(rate_limit_window_seconds=60)
    clock = FixedClock(START)
    flush_prefix(redis_server, s.leaderboard_key_prefix)
    yield RateLimiter(redis_server, s, clock, CircuitBreaker("redis")), clock, s
    flush_prefix(redis_server, s.leaderboard_key_prefix)


def test_limit_then_429_with_retry_after_until_the_window_ends(
    limited: tuple[RateLimiter, FixedClock, Settings], redis_server: redis.Redis
) -> None:
    limiter, clock, s = limited
    clock.set(START + timedelta(seconds=15 - START.timestamp() % 60))  # 15 s into a window
    for _ in range(3):
        limiter.hit("t", [Limit("ip", "10.0.0.1", 3)])
    with pytest.raises(TooManyRequests) as refused:
        limiter.hit("t", [Limit("ip", "10.0.0.1", 3)])
    assert refused.value.retry_after == 45 and refused.value.status == 429
    key = counter_key(s.leaderboard_key_prefix, "t", "ip", "10.0.0.1", window_at(clock.now().timestamp(), 60).index)
    assert redis_server.get(key) == "4" and 0 < redis_server.ttl(key) <= 46  # the counter dies with its window
    limiter.hit("t", [Limit("ip", "10.0.0.2", 3)])  # another IP has its own bucket
    limiter.hit("other", [Limit("ip", "10.0.0.1", 3)])  # another bucket too
    clock.advance(seconds=45)
    limiter.hit("t", [Limit("ip", "10.0.0.1", 3)])  # a new window


def test_every_limit_of_a_request_counts(limited: tuple[RateLimiter, FixedClock, Settings]) -> None:
    limiter, _, _ = limited
    limiter.hit("t", [Limit("ip", "10.0.0.1", 10), Limit("citizen", "oA", 2)])
    limiter.hit("t", [Limit("ip", "10.0.0.2", 10), Limit("citizen", "oA", 2)])  # the citizen moved networks
    with pytest.raises(TooManyRequests):
        limiter.hit("t", [Limit("ip", "10.0.0.3", 10), Limit("citizen", "oA", 2)])
    limiter.hit("t", [Limit("ip", "10.0.0.1", 10), Limit("citizen", "oB", 2)])  # same IP, another citizen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0, 0, 0, 1, 7, 30, 59, 60, 61])), max_size=40),
    limit=st.integers(1, 4),
)
def test_matches_a_model_of_fixed_windows(
    limited: tuple[RateLimiter, FixedClock, Settings], steps: list[tuple[int, int]], limit: int
) -> None:
    limiter, clock, _ = limited
    bucket = uuid.uuid4().hex[:8]  # fresh counters per example
    clock.set(START)
    counts: dict[tuple[int, int], int] = {}
    for who, wait in steps:
        clock.advance(seconds=wait)
        window = window_at(clock.now().timestamp(), 60)
        counts[(who, window.index)] = counts.get((who, window.index), 0) + 1
        allowed = counts[(who, window.index)] <= limit
        try:
            limiter.hit(bucket, [Limit("ip", f"10.0.0.{who}", limit)])
            assert allowed
        except TooManyRequests as exc:
            assert not allowed and exc.retry_after == window.retry_after


def test_fails_open_when_redis_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(dead_redis(), test_settings(), FixedClock(START), CircuitBreaker("redis"))
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        limiter.hit("t", [Limit("ip", "10.0.0.1", 1)])  # never raises
    assert limiter.breaker.down  # the breaker opened after its threshold of failures
    # then skipped for a while, not tried (nor logged) per request
    assert caplog.text.count("rate limiter unavailable") == limiter.breaker.failures_to_open


def _app(container: Container) -> FastAPI:
    """The real app plus a probe route guarded the way public pages and APIs are."""
    app = create_app(container)

    def public() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_api_route("/public", public, dependencies=[Depends(public_rate_limit)])
    return app


def citizen_cookie(s: Settings, openid: str) -> str:
    return SessionCodec(s).dump_citizen(CitizenSession(openid))


@pytest.fixture
def settings_(redis_server: redis.Redis) -> Settings:
    return test_settings(rate_limit_per_ip=6, rate_limit_per_citizen=2, rate_limit_sign_in_per_ip=2)


def test_public_dependency_over_http(container: Container, make_container: MakeContainer, settings_: Settings) -> None:
    c = make_container(settings_, engine=container.engine)
    app = _app(c)
    with TestClient(app, client=("10.1.0.1", 5000)) as one, TestClient(app, client=("10.1.0.2", 5000)) as two:
        for _ in range(6):
            assert one.get("/public").status_code == 200
        r = one.get("/public")
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert two.get("/public").status_code == 200  # another IP
        two.cookies.set(CITIZEN_COOKIE, citizen_cookie(settings_, "oA"))
        assert two.get("/public").status_code == 200
        assert two.get("/public").status_code == 200
        assert two.get("/public").status_code == 429  # the citizen's own limit (2)
        two.cookies.set(CITIZEN_COOKIE, citizen_cookie(settings_, "oB"))
        assert two.get("/public").status_code == 200  # same IP (5th hit of 6), another citizen


def test_sign_in_and_callback_routes_are_limited(
    container: Container, make_container: MakeContainer, settings_: Settings
) -> None:
    c = make_container(settings_, engine=container.engine)
    with TestClient(create_app(c), client=("10.2.0.1", 5000)) as http:
        for _ in range(2):
            assert http.post("/auth/console/login", headers={"Authorization": "Bearer guess"}).status_code == 401
        r = http.post("/auth/console/login", headers={"Authorization": "Bearer guess"})
        assert r.status_code == 429 and "Retry-After" in r.headers
        assert http.get("/auth/dev-login", params={"openid": "x"}).status_code == 429  # same sign-in bucket
        for _ in range(2):
            assert http.get("/wechat/callback", params={"signature": "0" * 40}).status_code == 403
        assert http.get("/wechat/callback", params={"signature": "0" * 40}).status_code == 429  # guessing


def test_the_app_fails_open_without_redis(container: Container, make_container: MakeContainer) -> None:
    s = test_settings(rate_limit_sign_in_per_ip=1, dev_login=True)
    down = make_container(s, engine=container.engine, redis_client=dead_redis())
    with TestClient(create_app(down)) as http:
        for _ in range(3):
            r = http.get("/auth/dev-login", params={"openid": "oDev"}, follow_redirects=False)
            assert r.status_code == 303


def test_a_noisy_citizen_is_told_to_slow_down_in_wechat(
    container: Container, make_container: MakeContainer, settings_: Any
) -> None:
    import hashlib

    s = settings_.model_copy(update={"wechat_token": SecretStr("tok")})
    c = make_container(s, engine=container.engine)
    ts = str(int(container.clock.now().timestamp()))
    q = {
        "signature": hashlib.sha1("".join(sorted(["tok", ts, "n"])).encode()).hexdigest(),
        "timestamp": ts,
        "nonce": "n",
    }
    xml = (
        "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oNoisy]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[排名]]></Content></xml>"
    )
    with TestClient(create_app(c)) as http:
        answers = [http.post("/wechat/callback", params=q, content=xml.encode()).text for _ in range(3)]
    assert "您暂未上榜" in answers[0] and "您暂未上榜" in answers[1]
    assert "操作太频繁，请稍后再试。" in answers[2]
