"""Hostile intake payloads, correctly signed, on real PostgreSQL/SQLite and Redis: a 4xx with a reason or a 200,
never a 5xx, never a partial write.

Payloads are valid events with hostile mutations (wrong types, huge strings, any unicode including NUL and lone
surrogates, negative and out-of-range coordinates, far-future and out-of-range timestamps, missing and unknown
fields), whole batches of them, and hostile bodies (non-JSON, NaN, deep nesting, wrong shapes). Per request:

* the status is < 500; a 4xx names its reason (the body's {error, detail}, or each failed event's);
* an event that did not apply changes nothing: if no event of the request applied, the cases, citizens, ledger
  and case history are exactly as before (row counts and the ledger's sum); the inbox may keep a failed event
  (by design, with its reason) but never a rejected one;
* every applied event is in the inbox as applied, every failed one as failed with its reason.
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from intake_adapter.auth import signature
from intake_adapter.models import InboxEvent
from intake_adapter.routes import MAX_BODY_BYTES
from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.models import Case, CaseHistory, Citizen
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START

SECRET = "test-intake-secret"
EXAMPLES = int(os.environ.get("INTAKE_FUZZ_EXAMPLES", "120"))
CASE_POOL = [f"FZ-{i}" for i in range(6)]  # few ids, so status events often find their case
_ids = itertools.count(1)

# -- strategies ------------------------------------------------------------------------------------------------

any_unicode = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # NUL, surrogates, controls
huge_text = st.integers(1_000, 300_000).flatmap(lambda n: st.sampled_from(["字" * n, "a" * n, "\x00" * n, "😀" * n]))
instants = st.sampled_from(
    [
        "2999-01-01T00:00:00+08:00",  # far future
        "2026-11-25T10:30:00+08:00",  # 30 minutes after the clock: beyond the replay window
        "9999-12-31T23:59:59-14:00",  # beyond datetime's range once in UTC
        "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
        "0001-01-01T00:00:00Z",
        "2026-11-25T09:00:00",  # no offset
        "2026-11-25",
        "2026-02-30T00:00:00+08:00",
        "not a date",
        "",
        "1970-01-01T00:00:00+00:00",
        "2026-11-25T09:59:59.999999+08:00",
    ]
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-90.0, -180.0, -90.0000001, -180.0000001, 0.0, -0.0, 1e308, -1e308, 5e-324]),
)
# short text that fits every length limit but carries NUL, controls, zero-width and astral characters
sneaky_text = st.text(st.sampled_from("a字 \x00\x01\x1f\x7f\u200b\ufeff\u2028😀\\\"'<&"), min_size=1, max_size=12)
leaves = st.one_of(st.none(), st.booleans(), numbers, sneaky_text, sneaky_text, any_unicode, huge_text, instants)
hostile = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_unicode, inner, max_size=4), max_leaves=8
)

FIELDS = {
    "report.submitted": [
        ("event_id",),
        ("occurred_at",),
        ("case_id",),
        ("category",),
        ("description",),
        ("district",),
        ("photos",),
        ("location",),
        ("location", "lat"),
        ("location", "lon"),
        ("location", "coord_system"),
        ("location", "address"),
        ("reporter",),
        ("reporter", "openid"),
        ("reporter", "name"),
        ("reporter", "phone"),
        ("reporter", "verified"),
        ("type",),
        ("unknown_field",),
    ],
    "case.status_changed": [
        ("event_id",),
        ("occurred_at",),
        ("case_id",),
        ("status",),
        ("verdict",),
        ("duplicate_of",),
        ("department",),
        ("note",),
        ("type",),
        ("unknown_field",),
    ],
}


def occurred(minutes: int) -> str:
    return (START - timedelta(minutes=minutes)).isoformat()


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed event of either type, with a fresh event id."""
    case_id = draw(st.sampled_from(CASE_POOL))
    at = occurred(draw(st.integers(0, 240)))
    if draw(st.booleans()):
        event: dict[str, Any] = {
            "event_id": f"fz-{next(_ids)}",
            "type": "report.submitted",
            "occurred_at": at,
            "case_id": case_id,
            "category": draw(st.sampled_from(["street_lamp", "manhole_cover"])),
            "description": "井盖缺失",
            "location": {"lat": 36.06, "lon": 103.83, "coord_system": "gcj02", "address": "东岗西路 1 号"},
            "district": "城关区",
            "photos": ["https://img.example/1.jpg"],
            "reporter": {"openid": f"oFz{case_id}", "name": "张三明", "phone": "13812341234", "verified": True},
        }
        return event
    status = draw(st.sampled_from(["filed", "refused", "dispatched", "processing", "resolved", "closed", "voided"]))
    event = {"event_id": f"fz-{next(_ids)}", "type": "case.status_changed", "occurred_at": at, "case_id": case_id}
    event["status"] = status
    if status == "voided":
        event["note"] = "摆拍"
    return event


@st.composite
def hostile_event(draw: st.DrawFn) -> Any:
    """A valid event with one or two hostile mutations (a value replaced, a field dropped), or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(hostile)  # not even an object, sometimes
    event = draw(valid_event())
    for _ in range(draw(st.integers(1, 2))):
        kind = event.get("type")
        path = draw(st.sampled_from(FIELDS[kind] if isinstance(kind, str) and kind in FIELDS else [("type",)]))
        target = event
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                break
            target = target[key]
        else:
            how = draw(st.integers(0, 9))
            if how == 0:
                target.pop(path[-1], None)
            elif how < 5:  # a string that fits the field's limits: the event may well apply, and be stored
                target[path[-1]] = draw(sneaky_text)
            else:
                target[path[-1]] = draw(hostile)
    return event


@st.composite
def body(draw: st.DrawFn) -> bytes:
    """A request body: one event, a batch, or something that is not a valid body at all."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(
            st.sampled_from(
                [
                    b"",
                    b"{",
                    b"null",
                    b"[]",
                    b'{"events": {}}',
                    b'{"events": [], "x": 1}',
                    b'{"event_id": "n", "lat": NaN}',
                    b'{"events": [{"event_id": "inf", "x": Infinity}]}',
                    b'{"events": [{"event_id": "big", "x": 1e999}]}',
                    b"[" * 100_000 + b"]" * 100_000,
                    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                    b"\xff\xfe\x00garbage",
                    b'{"event_id": "\\ud800", "type": "report.submitted"}',
                    b'{"events": [' + b",".join([b'{"event_id": "same"}'] * 3) + b"]}",
                ]
            )
        )
    if kind < 4:
        payload: Any = draw(hostile_event())
    else:
        payload = {"events": draw(st.lists(st.one_of(hostile_event(), valid_event()), min_size=1, max_size=6))}
    ascii_only = draw(st.booleans())
    try:
        return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates can only travel as \\u escapes
        return json.dumps(payload, ensure_ascii=True).encode("utf-8")


# -- the property ----------------------------------------------------------------------------------------------


def state(c: Container) -> dict[str, int]:
    """Row counts of everything an event may write, and the ledger's sum."""
    with c.read() as s:
        counts = {
            m.__name__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Case, Citizen, CaseHistory, LedgerEntry)
        }
        counts["points"] = int(s.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0))) or 0)
        counts["inbox"] = int(s.scalar(select(func.count()).select_from(InboxEvent)) or 0)
        return counts


def inbox_rows(c: Container, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    with c.read() as s:
        rows = s.execute(
            select(InboxEvent.event_id, InboxEvent.status, InboxEvent.error).where(InboxEvent.event_id.in_(ids))
        )
        return {eid: (status, error) for eid, status, error in rows}


def send(http: TestClient, c: Container, raw: bytes) -> Any:
    ts = str(int(c.clock.now().timestamp()))
    headers = {"X-Timestamp": ts, "X-Signature": signature(SECRET, ts, raw), "Content-Type": "application/json"}
    return http.post("/intake/v1/events", content=raw, headers=headers)


@pytest.fixture
def http(container: Container) -> Any:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(raw=body())
def test_hostile_payloads_get_a_reason_and_never_a_partial_write(
    http: TestClient, container: Container, raw: bytes
) -> None:
    before = state(container)
    r = send(http, container, raw)
    assert r.status_code < 500, (r.status_code, r.text[:500], raw[:300])
    after = state(container)
    data = r.json()
    results: list[dict[str, Any]] = data.get("results", []) if isinstance(data, dict) else []
    if r.status_code >= 400 and not results:
        assert isinstance(data.get("error"), str) and data.get("detail"), data  # refused whole: why, and nothing kept
        assert after == before
        return
    applied = [x for x in results + data.get("also_applied", []) if x["result"] == "applied"]
    event(f"status {r.status_code}")
    event(f"nul {b'u0000' in raw} applied {bool(applied)}")
    for x in results:
        event(f"result {x['result']} {x.get('error', '')}")
    for x in results:
        assert x["result"] in ("applied", "duplicate", "failed", "rejected"), x
        if x["result"] in ("failed", "rejected"):
            assert x.get("error") and x.get("detail"), x  # each refusal says why
    if r.status_code >= 400:
        assert any(x["result"] in ("failed", "rejected") for x in results)
    if not applied:
        moved = {k: (before[k], after[k]) for k in before if k != "inbox" and before[k] != after[k]}
        assert not moved, f"nothing applied but {moved} changed: {r.text[:500]}"
    kept = inbox_rows(container, [x["event_id"] for x in results if x["result"] in ("applied", "failed")])
    for x in results:
        if x["result"] == "applied":
            assert kept[x["event_id"]][0] == "applied"
        elif x["result"] == "failed" and x["error"] != "event_id_reused":  # a reused id leaves the applied one be
            status, error = kept[x["event_id"]]
            assert status == "failed" and error, (x, status, error)


def test_an_oversized_body_is_413_and_nothing_is_kept(http: TestClient, container: Container) -> None:
    event = {"event_id": "huge", "type": "report.submitted", "occurred_at": occurred(1), "case_id": "FZ-0"}
    event["description"] = "字" * (MAX_BODY_BYTES // 3 + 10)  # three UTF-8 bytes each: just over the limit
    raw = json.dumps(event, ensure_ascii=False).encode()
    before = state(container)
    r = send(http, container, raw)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert state(container) == before
