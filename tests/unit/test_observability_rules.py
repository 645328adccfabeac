"""Properties of the observability rules: the projector's readiness, request ids, JSON log lines, route labels."""

from __future__ import annotations

import json
import logging
import re
import sys

from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from rewards.leaderboard.projector import ProjectorStatus
from rewards.logs import JsonFormatter, RequestIdFilter, bind_request_id, sane_request_id, unbind_request_id
from rewards.observability.readiness import LagBounds, judge_projector
from rewards.observability.requests import UNMATCHED, route_template

statuses = st.builds(
    ProjectorStatus,
    passes=st.integers(0, 10**6),
    ok=st.booleans(),
    dirty=st.booleans(),
    lag_rows=st.integers(0, 10**6),
    lag_seconds=st.floats(0, 10**6, allow_nan=False),
    last_ok_at=st.none() | st.floats(0, 10**6, allow_nan=False),
)
bounds = st.builds(LagBounds, max_lag_rows=st.integers(0, 10**6), max_lag_seconds=st.floats(0.001, 10**6))


@given(statuses, st.floats(0, 2 * 10**6, allow_nan=False), bounds)
def test_the_projector_is_ready_exactly_when_its_last_pass_succeeded_recently_within_the_bounds(
    status: ProjectorStatus, now: float, b: LagBounds
) -> None:
    check = judge_projector(status, now, b)
    since = None if status.last_ok_at is None else round(max(0.0, now - status.last_ok_at), 3)
    expected = (
        since is not None
        and status.ok
        and since <= b.max_lag_seconds
        and status.lag_rows <= b.max_lag_rows
        and status.lag_seconds <= b.max_lag_seconds
    )
    assert check.ok == expected
    assert (check.reason is None) == check.ok
    assert check.facts["lag_rows"] == status.lag_rows and check.facts["last_pass_ok"] == status.ok
    json.dumps(check.body())  # the /readyz body is JSON


@given(st.text(max_size=300))
def test_only_short_plain_request_ids_are_kept(incoming: str) -> None:
    kept = sane_request_id(incoming)
    plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:=/+-]{0,127}", incoming) is not None
    assert kept == (incoming if plain else None)
    if kept is not None:  # nothing that could break a text log line or a header
        assert not any(ch.isspace() or ord(ch) < 32 or ch in "\"'<>;,\\" for ch in kept)


@given(st.text(), st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:=/+-]{0,20}", fullmatch=True))
def test_a_json_line_is_one_line_that_gives_back_the_message_and_the_request_id(
    message: str, request_id: str | None
) -> None:
    record = logging.LogRecord("rewards.x", logging.WARNING, __file__, 1, "%s", (message,), None)
    token = bind_request_id(request_id) if request_id is not None else None
    try:
        RequestIdFilter().filter(record)
    finally:
        if token is not None:
            unbind_request_id(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line and line.isascii()
    entry = json.loads(line)
    assert entry["message"] == message and entry["level"] == "WARNING" and entry["logger"] == "rewards.x"
    assert entry.get("request_id") == request_id


def test_an_exception_stays_inside_the_json_line() -> None:
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        record = logging.LogRecord("rewards.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: line one\nline two" in json.loads(line)["exception"]


segments = st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)


@given(st.lists(segments, min_size=1, max_size=4), segments)
def test_a_route_label_is_a_template_or_unmatched_never_the_path(prefix: list[str], secret: str) -> None:
    template = "/" + "/".join(prefix) + "/{openid}/points"
    routes = [Route(template, lambda: None), Mount("/static/web", routes=[])]
    path = "/" + "/".join(prefix) + f"/o{secret}/points"
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    assert route_template(scope, scope, routes) == template
    other = {**scope, "path": f"/elsewhere/o{secret}"}
    assert route_template(other, other, routes) == UNMATCHED
    files = {**scope, "path": f"/static/web/o{secret}.css"}
    assert route_template(files, files, routes) == "/static/web/{path}"
