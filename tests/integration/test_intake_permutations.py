"""Property: any arrival order of a case's events, then `intake replay`, ends in one final state and one ledger."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cases.models import Case
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START

T0 = START - timedelta(days=1)
_ids = itertools.count()


def event_set(case_id: str, sent_back: bool, closed: bool, voided: bool, skip_processing: bool) -> list[dict[str, Any]]:
    """A case's events in time order: submitted, filed, dispatched, [processing], resolved, [sent back, resolved],
    [closed], [voided]."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("filed", {"department": "指挥中心"}),
        ("dispatched", {"department": "市政所"}),
    ]
    if not skip_processing:
        steps.append(("processing", {}))
    steps.append(("resolved", {"note": "已处置"}))
    if sent_back:
        steps += [("sent_back", {"note": "复核未通过"}), ("resolved", {"note": "再次处置"})]
    if closed:
        steps.append(("closed", {}))
    if voided:
        steps.append(("voided", {"note": "摆拍"}))
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{case_id}-0",
            "type": "report.submitted",
            "occurred_at": T0.isoformat(),
            "case_id": case_id,
            "category": "manhole_cover",
            "location": {"lat": 31.23, "lon": 121.47, "coord_system": "gcj02"},
            "reporter": {"openid": f"o-{case_id}", "name": "王小明", "verified": True},
        }
    ]
    for n, (status, extra) in enumerate(steps, start=1):
        events.append(
            {
                "event_id": f"{case_id}-{n}",
                "type": "case.status_changed",
                "occurred_at": (T0 + timedelta(minutes=10 * n)).isoformat(),
                "case_id": case_id,
                "status": status,
                **extra,
            }
        )
    return events


def deliver(c: Container, events: list[dict[str, Any]], cuts: list[int]) -> None:
    """Send the events as batches split at the cut points, then replay until nothing more applies."""
    svc = IntakeService.of(c)
    bounds = sorted({0, len(events), *(x % (len(events) + 1) for x in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            svc.receive(events[lo:hi])
    svc.replay()


def final_state(c: Container, case_id: str) -> tuple[tuple[object, ...], list[tuple[str, int]]]:
    with c.read() as s:
        case = s.scalar(select(Case).where(Case.case_id == case_id))
        assert case is not None
        state = (case.status, case.verdict, case.duplicate_of, case.status_at)
        lines = s.execute(select(LedgerEntry.rule, LedgerEntry.points).where(LedgerEntry.case_pk == case.id)).all()
        return state, sorted((rule, points) for rule, points in lines)


def expected(events: list[dict[str, Any]]) -> tuple[str, list[tuple[str, int]]]:
    """The simple model: a void wins; otherwise the newest step decides (sent back means processing again)."""
    statuses = [e["status"] for e in events[1:]]
    if "voided" in statuses:
        return "voided", [("valid_report", 2), ("void_reversal", -2)]
    last = statuses[-1]
    return ("processing" if last == "sent_back" else last), [("valid_report", 2)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    data=st.data(),
)
def test_any_arrival_order_ends_in_the_same_state_and_ledger(
    container: Container, flags: tuple[bool, bool, bool, bool], data: st.DataObject
) -> None:
    n = next(_ids)
    in_order, shuffled = f"P{n}a", f"P{n}b"
    baseline = event_set(in_order, *flags)
    deliver(container, baseline, [])
    events = event_set(shuffled, *flags)
    order = data.draw(st.permutations(events), label="arrival order")
    cuts = data.draw(st.lists(st.integers(0, len(events)), max_size=len(events)), label="batch cuts")
    deliver(container, order, cuts or list(range(len(events))))  # no cuts drawn: one event per request
    state_a, ledger_a = final_state(container, in_order)
    state_b, ledger_b = final_state(container, shuffled)
    assert state_b == state_a
    assert ledger_b == ledger_a
    status, lines = expected(baseline)
    assert state_a[0] == status and ledger_a == lines
