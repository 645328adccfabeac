"""The signed intake webhook on real PostgreSQL/SQLite and Redis: signatures, inbox, replays, order, batches."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from intake_adapter.auth import signature
from intake_adapter.models import InboxEvent
from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ReportCase
from rewards.cases.models import Case, CaseHistory
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, VALIDATOR_TOKEN, auth

SECRET = "test-intake-secret"
T0 = START - timedelta(hours=6)


def at(minutes: float) -> str:
    """An occurred_at, minutes after T0 (six hours before the test clock), in Beijing time."""
    return (T0 + timedelta(minutes=minutes)).astimezone().isoformat()


def submitted(case_id: str = "C1", minutes: float = 0, **over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"{case_id}-submitted",
        "type": "report.submitted",
        "occurred_at": at(minutes),
        "case_id": case_id,
        "category": "manhole_cover",  # 2 points
        "description": "井盖缺失",
        "location": {"lat": 31.2304, "lon": 121.4737, "coord_system": "gcj02", "address": "人民大道 200 号"},
        "district": "黄浦区",
        "photos": ["https://img.example/1.jpg"],
        "reporter": {"openid": "o-zhang", "name": "张三明", "phone": "13812341234", "verified": True},
    }
    event.update(over)
    return event


def changed(case_id: str, status: str, minutes: float, **over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"{case_id}-{status}-{minutes}",
        "type": "case.status_changed",
        "occurred_at": at(minutes),
        "case_id": case_id,
        "status": status,
    }
    event.update(over)
    return event


def lifecycle(case_id: str = "C1") -> list[dict[str, Any]]:
    """A case's whole life, in time order."""
    return [
        submitted(case_id),
        changed(case_id, "filed", 10, department="指挥中心"),
        changed(case_id, "dispatched", 20, department="市政所"),
        changed(case_id, "processing", 30),
        changed(case_id, "resolved", 40, note="已补装井盖"),
        changed(case_id, "closed", 50),
    ]


def signed(container: Container, body: bytes, *, secret: str = SECRET, skew: int = 0) -> dict[str, str]:
    ts = str(int(container.clock.now().timestamp()) + skew)
    return {"X-Timestamp": ts, "X-Signature": signature(secret, ts, body), "Content-Type": "application/json"}


def post(client: Any, container: Container, *events: dict[str, Any], **kw: Any) -> Any:
    body = json.dumps({"events": list(events)}, ensure_ascii=False).encode()
    return client.post("/intake/v1/events", content=body, headers=signed(container, body, **kw))


def case_row(c: Container, case_id: str) -> Case:
    with c.read() as s:
        case = s.scalar(select(Case).where(Case.case_id == case_id))
        assert case is not None
        return case


def ledger(c: Container) -> list[tuple[str, int]]:
    with c.read() as s:
        return [(r.rule, r.points) for r in s.scalars(select(LedgerEntry).order_by(LedgerEntry.id))]


def inbox(c: Container) -> dict[str, tuple[str, str | None]]:
    with c.read() as s:
        return {r.event_id: (r.status, r.error) for r in s.scalars(select(InboxEvent))}


def count(c: Container, model: Any) -> int:
    with c.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_bad_or_missing_signature_is_401_and_changes_nothing(client: Any, container: Container) -> None:
    body = json.dumps({"events": [submitted()]}).encode()
    good = signed(container, body)
    attempts = [
        {**good, "X-Signature": signature("wrong-secret", good["X-Timestamp"], body)},
        {**good, "X-Signature": signature(SECRET, good["X-Timestamp"], body + b" ")},
        {k: v for k, v in good.items() if k != "X-Signature"},
        {k: v for k, v in good.items() if k != "X-Timestamp"},
    ]
    for headers in attempts:
        r = client.post("/intake/v1/events", content=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"] in ("bad_signature", "missing_signature", "missing_timestamp")
    assert count(container, InboxEvent) == 0 and count(container, Case) == 0


def test_stale_timestamp_is_401(client: Any, container: Container) -> None:
    for skew in (-301, 301):
        r = post(client, container, submitted(), skew=skew)
        assert r.status_code == 401 and r.json()["error"] == "stale_timestamp"
    assert count(container, InboxEvent) == 0
    assert post(client, container, submitted(), skew=-300).status_code == 200


def test_filed_from_the_city_awards_points_like_the_console(client: Any, container: Container) -> None:
    r = post(client, container, submitted(), changed("C1", "filed", 10, department="指挥中心"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["applied"], body["failed"]) == (2, 2, 0)
    assert [x["effect"] for x in body["results"]] == ["created", "moved"]
    assert ledger(container) == [("valid_report", 2)]
    points = client.get("/api/v1/citizens/o-zhang/points", headers=auth(VALIDATOR_TOKEN)).json()
    assert points["total"] == 2
    case = case_row(container, "C1")
    assert (case.status, case.verdict, case.department) == ("filed", "valid", "指挥中心")


def test_replayed_events_are_no_ops(client: Any, container: Container) -> None:
    events = lifecycle()
    assert post(client, container, *events).status_code == 200
    history = count(container, CaseHistory)
    again = post(client, container, *events)
    assert again.status_code == 200
    assert {x["result"] for x in again.json()["results"]} == {"duplicate"}
    assert count(container, CaseHistory) == history and ledger(container) == [("valid_report", 2)]
    # the same event id with other content is refused, and nothing changes
    altered = {**events[-1], "note": "改过"}
    r = post(client, container, altered)
    assert r.status_code == 409 and r.json()["results"][0]["error"] == "event_id_reused"
    assert count(container, CaseHistory) == history


def test_out_of_order_events_never_move_a_case_backwards(client: Any, container: Container) -> None:
    events = lifecycle()
    # the newest first: everything before the report fails (unknown case), then falls into place
    results = [post(client, container, e) for e in reversed(events)]
    assert [r.status_code for r in results[:-1]] == [404] * 5
    last = results[-1].json()
    assert last["results"][0]["result"] == "applied"
    assert {x["event_id"] for x in last["also_applied"]} == {e["event_id"] for e in events[1:]}
    case = case_row(container, "C1")
    assert case.status == "closed" and ledger(container) == [("valid_report", 2)]
    assert all(status == "applied" for status, _ in inbox(container).values())
    # an old step arriving after the close is recorded for the timeline but moves nothing
    late = changed("C1", "processing", 35, note="补充记录")
    r = post(client, container, late)
    assert r.status_code == 200 and r.json()["results"][0]["effect"] == "recorded"
    case = case_row(container, "C1")
    assert case.status == "closed"
    steps = [(h.status, h.applied) for h in case.history]
    assert steps[-1] == ("closed", True) and ("processing", False) in steps
    assert [h.occurred_at for h in case.history] == sorted(h.occurred_at for h in case.history)


def test_batch_with_one_bad_event_applies_the_good_ones_and_keeps_the_bad_one(
    client: Any, container: Container
) -> None:
    bad = submitted("C2", 5, category="flying_saucer")
    r = post(client, container, submitted(), changed("C1", "filed", 10), bad, changed("C1", "dispatched", 20))
    assert r.status_code == 422
    body = r.json()
    assert [x["result"] for x in body["results"]] == ["applied", "applied", "failed", "applied"]
    failed = body["results"][2]
    assert failed["event_id"] == "C2-submitted" and failed["error"] == "unknown_category"
    assert "flying_saucer" in failed["detail"]
    assert case_row(container, "C1").status == "dispatched"
    status, error = inbox(container)["C2-submitted"]
    assert status == "failed" and error is not None and "unknown_category" in error


def test_unknown_codes_are_422_with_the_reason_and_kept(client: Any, container: Container) -> None:
    post(client, container, submitted())
    cases = [
        ({**changed("C1", "filed", 10), "type": "case.renamed"}, "does not match any of the expected tags"),
        (changed("C1", "archived", 10), "status"),
        (submitted("C3", location={"lat": 31.2, "lon": 121.4, "coord_system": "bd09"}), "coord_system"),
    ]
    for event, reason in cases:
        r = post(client, container, event)
        assert r.status_code == 422, r.text
        result = r.json()["results"][0]
        assert result["error"] == "unknown_code" and reason in result["detail"]
        assert inbox(container)[event["event_id"]][0] == "failed"
    assert case_row(container, "C1").status == "reported"


def test_illegal_transition_is_409_and_kept(client: Any, container: Container) -> None:
    post(client, container, submitted(), changed("C1", "filed", 10))
    r = post(client, container, changed("C1", "closed", 20))
    assert r.status_code == 409 and r.json()["results"][0]["error"] == "illegal_transition"
    assert inbox(container)["C1-closed-20"][0] == "failed"
    # a corrected re-send under the same id replaces the kept version and applies
    fixed = changed("C1", "dispatched", 20, event_id="C1-closed-20")
    assert post(client, container, fixed).status_code == 200
    assert case_row(container, "C1").status == "dispatched"
    with container.read() as s:
        row = s.scalar(select(InboxEvent).where(InboxEvent.event_id == "C1-closed-20"))
        assert row is not None and json.loads(row.payload)["status"] == "dispatched" and row.attempts == 2


def test_void_reverses_points_and_later_steps_are_only_recorded(client: Any, container: Container) -> None:
    post(client, container, submitted(), changed("C1", "filed", 10))
    r = post(client, container, changed("C1", "voided", 15, note="摆拍"), changed("C1", "dispatched", 20))
    assert r.status_code == 200
    assert [x["effect"] for x in r.json()["results"]] == ["moved", "recorded"]
    assert case_row(container, "C1").status == "voided"
    assert ledger(container) == [("valid_report", 2), ("void_reversal", -2)]


def test_duplicate_verdict_from_the_city(client: Any, container: Container) -> None:
    second = submitted("C2", 5, event_id="C2-submitted", reporter={"openid": "o-li", "name": "李四"})
    dup = changed("C2", "refused", 12, verdict="duplicate", duplicate_of="C1", note="与 C1 重复")
    r = post(client, container, submitted(), second, changed("C1", "filed", 10), dup)
    assert r.status_code == 200, r.text
    c2 = case_row(container, "C2")
    assert (c2.status, c2.verdict, c2.duplicate_of) == ("refused", "duplicate", "C1")
    assert ledger(container) == [("valid_report", 2)]


def test_events_from_the_future_and_without_ids(client: Any, container: Container) -> None:
    future = submitted("C9", minutes=6 * 60 + 10)  # ten minutes after the server's clock
    nameless = {k: v for k, v in submitted("C8").items() if k != "event_id"}
    r = post(client, container, future, nameless)
    assert r.status_code == 422
    first, second = r.json()["results"]
    assert first["error"] == "future_event" and second["result"] == "rejected"
    assert second["error"] == "missing_event_id"
    assert set(inbox(container)) == {"C9-submitted"}  # nothing to keep an id-less event under


def test_repeated_event_id_in_a_batch_and_malformed_bodies(client: Any, container: Container) -> None:
    r = post(client, container, submitted(), submitted())
    assert r.status_code == 422 and r.json()["results"][1]["error"] == "repeated_event_id"
    assert r.json()["results"][0]["result"] == "applied"
    for body in (b"{not json", b"[]", b'{"events": []}'):
        r = client.post("/intake/v1/events", content=body, headers=signed(container, body))
        assert r.status_code in (400, 422) and r.json()["detail"]


def test_replay_applies_failures_once_their_cause_is_gone(client: Any, container: Container) -> None:
    # C2 is a duplicate of C1, which the city sends late: the auto-retry only covers C2's own events
    second = submitted("C2", 5, reporter={"openid": "o-li", "name": "李四"})
    dup = changed("C2", "refused", 12, verdict="duplicate", duplicate_of="C1")
    assert post(client, container, second, dup).status_code == 404
    post(client, container, submitted(), changed("C1", "filed", 10))
    assert inbox(container)[dup["event_id"]][0] == "failed"
    summary = IntakeService.of(container).replay()
    assert [x.event_id for x in summary.applied] == [dup["event_id"]] and summary.still_failing == []
    assert case_row(container, "C2").verdict == "duplicate"
    again = IntakeService.of(container).replay()
    assert again.attempted == 0 and again.applied == []


def test_replay_order_is_occurred_at(container: Container) -> None:
    svc = IntakeService.of(container)
    # everything arrives before the report: all fail, then one replay applies them oldest first
    events = lifecycle()
    for event in reversed(events[1:]):
        assert svc.receive([event]).status_code == 404
    with container.uow() as uow:  # the report arrives through another channel (the console)
        container.flows.report(
            uow,
            ReportCase("C1", "manhole_cover", datetime.fromisoformat(events[0]["occurred_at"])),
            Actor("validator-1", "console"),
        )
    summary = svc.replay()
    assert [x.event_id for x in summary.applied] == [e["event_id"] for e in events[1:]]
    assert case_row(container, "C1").status == "closed"


def test_concurrent_deliveries_apply_each_event_once(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL's row locks (SQLite serialises whole transactions)")
    # the same two cases, by one new citizen, delivered by four senders at once
    events = [*lifecycle("C1"), submitted("C2", 1), changed("C2", "filed", 11)]
    # then late steps (recorded in the timeline only: applying one twice would record it twice)
    late = [changed("C1", "processing", 35, note="补录"), changed("C1", "resolved", 45, note="补录")]
    errors: list[BaseException] = []

    def send(batch: list[dict[str, Any]], start: threading.Barrier) -> None:
        try:
            start.wait()
            IntakeService.of(container).receive(batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    for batch in (events, late):
        start = threading.Barrier(4)
        threads = [threading.Thread(target=send, args=(batch, start)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    events += late
    assert {status for status, _ in inbox(container).values()} == {"applied"}
    assert ledger(container) == [("valid_report", 2), ("valid_report", 2)]
    with container.read() as s:
        steps = s.execute(select(CaseHistory.event_id, func.count()).group_by(CaseHistory.event_id)).all()
    assert len(steps) == len(events) and all(n == 1 for _, n in steps)
