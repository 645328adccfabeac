"""Schemathesis against the service's own OpenAPI schema: every operation, no 500s, no response off its schema.

Runs in-process (ASGI) on real PostgreSQL and Redis with a seeded program (cases in every state, citizens, a
closed and published week). Every request carries an admin token; the intake webhook and the WeChat callback are
signed as their senders sign them, so the fuzzer gets past authentication and reaches the handlers. Half of the
generated path parameters are swapped for seeded ids (a known case, citizen, week, district, category) so the
fuzzer also exercises the handlers' found-it paths, not only their 404s.

Checks: no 5xx, every documented response matches its declared schema, every 4xx gives a reason.
Examples per operation: FUZZ_EXAMPLES (default 25), positive and negative generation modes mixed; then the
coverage phase's deterministic boundary cases (every parameter's limits, each constraint just broken).
(schemathesis.pytest.from_fixture does not run under pytest 9, so the operations are parametrized here.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from intake_adapter.auth import signature
from rewards.app import create_app
from rewards.bootstrap import Container, bootstrap
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.clock import FixedClock, IsoWeek
from rewards.db import make_engine
from rewards.publish.outbox import OutboxPublisher
from rewards.web.wechat import wechat_signature
from tests.conftest import ADMIN_TOKEN, START, flush_prefix, test_settings, wipe

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
WECHAT_TOKEN = "fuzz-wechat-token"
INTAKE_SECRET = "test-intake-secret"
ACTOR = Actor("fuzz-seed", "console")
KNOWN: dict[str, list[str]] = {  # seeded values for path parameters of these names
    "case_id": ["W48-0", "W48-1", "W48-2", "W48-3", "W48-4", "W47-0"],
    "service_request_id": ["W48-0", "W48-3", "W47-1"],
    "openid": ["oFuzzA", "oFuzzC", "oFuzz1"],
    "week": ["2026-W47", "2026-W48", "2026-W01", "2020-W53"],
    "district": ["城关区", "七里河区"],
    "service_code": ["street_lamp", "manhole_cover"],
    "fmt": ["json", "xml"],
}


def reason_of(response: Any) -> str | None:
    """The reason a 4xx answer gives: our {error, detail}, FastAPI's, or Open311's error list."""
    media = response.headers.get("content-type", [""])[0]
    if "xml" in media or "html" in media:
        return response.content.decode("utf-8", "replace")  # Open311 XML errors, pages: any non-empty body
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("detail"), str):
        return body["detail"]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]  # Starlette's own HTTPException (a body that cannot be parsed at all)
    if isinstance(body, dict) and isinstance(body.get("detail"), list) and body["detail"]:
        return "; ".join(str(item.get("msg")) for item in body["detail"])
    if isinstance(body, list) and body and isinstance(body[0], dict) and "description" in body[0]:
        return str(body[0]["description"])  # Open311's [{"code", "description"}]
    return None


@schemathesis.check
def client_errors_give_a_reason(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer says why, in one of the service's error shapes."""
    if 400 <= response.status_code < 500:
        reason = reason_of(response)
        assert reason and reason.strip(), f"{response.status_code} without a reason: {response.content[:300]!r}"
    return None


CHECKS = [not_a_server_error, response_schema_conformance, client_errors_give_a_reason]


def seed(c: Container) -> None:
    """A small program: last week closed and published; this week's cases in every state."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    clock.set(START - timedelta(days=7))
    for i, (openid, name) in enumerate((("oFuzzA", "张三明"), ("oFuzzB", "李四"), ("oFuzzC", None))):
        with c.uow() as uow:
            who = Reporter(openid, name=name, phone="13812341234", verified=i != 2, district="城关区")
            c.flows.report(uow, ReportCase(f"W47-{i}", "street_lamp", clock.now(), who, lat=36.06, lon=103.83), ACTOR)
            c.flows.verdict(uow, GiveVerdict(f"W47-{i}", "valid"), ACTOR)
        clock.advance(minutes=5)
    clock.set(START)
    c.closer.close(IsoWeek.parse("2026-W47"))
    c.publishing.publish("2026-W47")
    for i, status in enumerate(("reported", "filed", "refused", "voided", "reported")):
        case_id = f"W48-{i}"
        with c.uow() as uow:
            who = Reporter(f"oFuzz{i}", name="王五", verified=True, district="七里河区") if i != 4 else None
            report = ReportCase(case_id, "manhole_cover", clock.now(), who, lat=36.06 + i / 1e4, lon=103.83)
            c.flows.report(uow, report, ACTOR)
            if status in ("filed", "voided"):
                c.flows.verdict(uow, GiveVerdict(case_id, "valid"), ACTOR)
            if status == "voided":
                c.flows.void(uow, VoidCase(case_id, "摆拍"), ACTOR)
            if status == "refused":
                c.flows.verdict(uow, GiveVerdict(case_id, "invalid"), ACTOR)
        clock.advance(minutes=1)
    clock.set(START)


@pytest.fixture(scope="module")
def api_schema(pg_url: str, redis_server: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The schema of one seeded app on real PostgreSQL and Redis, shared by every operation (state accumulates)."""
    s = test_settings(
        wechat_token=WECHAT_TOKEN,
        outbox_dir=tmp_path_factory.mktemp("outbox"),
        rate_limit_per_ip=10**9,  # the fuzzer is one very busy client; the limits have their own tests
        rate_limit_per_citizen=10**9,
        rate_limit_sign_in_per_ip=10**9,
        open311_jurisdiction_id="lanzhou",
        # sign-in configured, so /auth/wechat/* reach their checks; nothing listens where a code would be exchanged
        wechat_app_id="wxfuzz0000000001",
        wechat_app_secret="fuzz-app-secret",
        wechat_sns_api_base="http://127.0.0.1:9/sns/",
    )
    engine = make_engine(pg_url)
    wipe(engine)
    flush_prefix(redis_server, s.leaderboard_key_prefix)
    outbox = OutboxPublisher(s.outbox_dir)  # publish to files, never to WeChat
    # bootstrap itself, not make_container: one seeded app serves the whole module, longer than a test's factory
    c = bootstrap(
        s, clock=FixedClock(START), engine=engine, redis_client=redis_server, publisher=outbox, sleep=lambda _: None
    )
    seed(c)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(c))
    flush_prefix(redis_server, s.leaderboard_key_prefix)
    engine.dispose()


def with_known_ids(drawn: tuple[Any, bool, int]) -> Any:
    """Swap the case's path parameters for seeded values (when the coin says so)."""
    case, swap, pick = drawn
    if swap and isinstance(case.path_parameters, dict):
        for name in case.path_parameters:
            if name in KNOWN:
                case.path_parameters[name] = KNOWN[name][pick % len(KNOWN[name])]
    return case


def signed_headers(case: Any) -> dict[str, str]:
    """Credentials for the request: the admin token, and the senders' signatures where a route checks them."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    now = str(int(START.timestamp()))
    if case.path == "/intake/v1/events" and case.body is None:  # no body is declared: the empty one is signed
        headers.update({"X-Timestamp": now, "X-Signature": signature(INTAKE_SECRET, now, b"")})
    if case.path == "/wechat/callback" and isinstance(case.query, dict) and case.query.get("signature"):
        nonce = str(case.query.get("nonce") or "n")
        case.query.update(timestamp=now, nonce=nonce, signature=wechat_signature(WECHAT_TOKEN, now, nonce))
    return headers


def operations() -> list[tuple[str, str]]:
    """Every (method, path) of the app's OpenAPI document, read from an app on throwaway embedded stores."""
    app = create_app(bootstrap(test_settings(database_url="sqlite://")))  # at collection: no fixture exists yet
    return [(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops]


@pytest.mark.parametrize(("method", "path"), operations(), ids=lambda v: str(v))
def test_no_server_errors_and_responses_match_the_schema(api_schema: Any, method: str, path: str) -> None:
    operation = api_schema.find_operation_by_path(method, path)
    assert operation is not None
    generated = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    strategy = st.tuples(generated, st.booleans(), st.integers(0, 100)).map(with_known_ids)

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        headers = signed_headers(case)
        case.call_and_validate(headers=headers, checks=CHECKS, max_redirects=0)  # a redirect is the answer

    fuzz()


@pytest.mark.parametrize(("method", "path"), operations(), ids=lambda v: str(v))
def test_boundary_values_of_every_parameter(api_schema: Any, method: str, path: str) -> None:
    """Schemathesis' coverage phase: each parameter's boundaries and each constraint just broken, deterministically."""
    operation = api_schema.find_operation_by_path(method, path)
    assert operation is not None
    config = api_schema.config.generation_for(operation=operation)
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    failures = []
    for n, case in enumerate(
        api_schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config)
    ):
        if n >= 20 * EXAMPLES:
            break
        try:
            case.call_and_validate(headers=signed_headers(case), checks=CHECKS, max_redirects=0)
        except Exception as exc:  # collected: every distinct failure is reported at once
            failures.append(f"{case.as_curl_command()}\n{exc}")
    assert failures == [], "\n\n".join(failures[:5])
