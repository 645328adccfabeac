"""Set-based intake on real PostgreSQL and SQLite: one transaction per batch, and a bad event never takes the good
ones down (the optimistic pass is rolled back whole and run again with a SAVEPOINT per event)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select

from intake_adapter.models import InboxEvent
from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cases.models import Case, CaseHistory, Citizen
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, MakeContainer
from tests.fakes.sinks import RecordingSink
from tests.integration.test_intake_webhook import changed, submitted

# a batch of 100 (50 reports by known citizens + their 50 `filed`), second batch on a warm pool: BEGIN, the multi-row
# inbox INSERT, COMMIT; BEGIN, the inbox rows locked, the cases locked, the citizens; PostgreSQL: the 50 new cases'
# ids from the sequence in one SELECT, then at the batch's end its cases (filed: the verdicts' changes are in the
# INSERT), its ledger lines (one INSERT … RETURNING, its history and audit rows as CTEs of it), the inbox outcomes;
# COMMIT. SQLite (no sequence, no DML in CTEs): per report an INSERT of the case (to learn its id), per verdict its
# UPDATE, then the history and audit rows (one executemany each) and the ledger lines in one statement at the end
BATCH_OF_100_STATEMENTS = {
    "postgresql": 2 + 1 + 3 + 1 + 1 + 1 + 1 + 2,
    "sqlite": 2 + 1 + 3 + 50 + 50 + 1 + 1 + 2 + 2,
}
_ids = itertools.count()


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def sql(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(main_statement(" ".join(statement.split()))[:80])

    def tx(name: str) -> Any:
        return lambda *_: seen.append(name)

    hooks = [("before_cursor_execute", sql), ("begin", tx("BEGIN")), ("commit", tx("COMMIT"))]
    for name, fn in hooks:
        event.listen(engine, name, fn)
    try:
        yield seen
    finally:
        for name, fn in hooks:
            event.remove(engine, name, fn)


def main_statement(sql: str) -> str:
    """A statement with data-modifying CTEs as `WITH … <its main statement>` (what it inserts or updates last)."""
    if not sql.startswith("WITH "):
        return sql
    depth = 0
    for n, char in enumerate(sql):
        depth += (char == "(") - (char == ")")
        if char == ")" and depth == 0 and not sql[n + 1 :].lstrip().startswith(","):
            return f"WITH … {sql[n + 1 :].lstrip()}"
    return sql


def reports_and_verdicts(tag: str, n: int, citizens: int = 10) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in range(n):
        reporter = {"openid": f"o-{k % citizens}", "name": "张三明", "verified": True}
        out.append(submitted(f"{tag}{k}", k, reporter=reporter))
        out.append(changed(f"{tag}{k}", "filed", k + 0.5))
    return out


def results(outcome: Any) -> list[tuple[str | None, str]]:
    return [(r.event_id, r.result) for r in outcome.results]


def test_a_batch_of_100_is_one_transaction_with_the_pinned_statements(container: Container, db_engine: Engine) -> None:
    svc = IntakeService.of(container)
    assert all(r.result == "applied" for r in svc.receive(reports_and_verdicts("W", 50)).results)  # citizens known
    with statements(db_engine) as seen:
        outcome = svc.receive(reports_and_verdicts("X", 50))
    assert [r.result for r in outcome.results] == ["applied"] * 100
    assert seen.count("COMMIT") == 2  # the inbox, then the whole batch applied
    assert not any("SAVEPOINT" in s for s in seen)  # nothing failed: no SAVEPOINT at all
    assert len(seen) == BATCH_OF_100_STATEMENTS[db_engine.dialect.name], "\n".join(seen)
    with container.read() as s:
        assert len(s.scalars(select(LedgerEntry)).all()) == 100
        assert len(s.scalars(select(CaseHistory)).all()) == 200


def test_bad_events_that_fail_after_writing_are_rolled_back_alone(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    svc = IntakeService.of(c)
    svc.receive([submitted("T1", 0), changed("T1", "refused", 1, verdict="invalid")])
    batch = [
        submitted("G1", 2),
        changed("G1", "filed", 3),
        # a verdict that contradicts the stored one: the case was locked and read, then 409
        changed("T1", "filed", 4),
        # the reporter's name is written, then the case id turns out to be taken by another citizen: 409
        submitted("T1", 5, event_id="T1-again", reporter={"openid": "o-li", "name": "李四"}),
        submitted("G2", 6),
        changed("G2", "filed", 7),
        changed("NOPE", "dispatched", 8),  # unknown case: 404
    ]
    with statements(db_engine) as seen:
        outcome = svc.receive(batch)
    assert results(outcome) == [
        ("G1-submitted", "applied"),
        ("G1-filed-3", "applied"),
        ("T1-filed-4", "failed"),
        ("T1-again", "failed"),
        ("G2-submitted", "applied"),
        ("G2-filed-7", "applied"),
        ("NOPE-dispatched-8", "failed"),
    ]
    assert [r.error for r in outcome.results if r.result == "failed"] == [
        "verdict_already_given",
        "case_id_taken",
        "unknown_case",
    ]
    assert any("SAVEPOINT" in s for s in seen)  # the careful pass ran
    with c.read() as s:
        assert s.scalar(select(Citizen).where(Citizen.openid == "o-li")) is None  # rolled back with its event
        statuses = {r.event_id: r.status for r in s.scalars(select(InboxEvent))}
        assert {k: v for k, v in statuses.items() if v != "applied"} == {
            "T1-filed-4": "failed",
            "T1-again": "failed",
            "NOPE-dispatched-8": "failed",
        }
        assert s.scalar(select(InboxEvent.attempts).where(InboxEvent.event_id == "G1-filed-3")) == 1
        lines = s.execute(select(LedgerEntry.id, LedgerEntry.case_pk)).all()
        case_pks: dict[str, int] = {cid: pk for cid, pk in s.execute(select(Case.case_id, Case.id))}
    assert sorted(pk for _, pk in lines) == sorted([case_pks["G1"], case_pks["G2"]])
    # the boards heard of exactly the committed awards, once each (none of the rolled-back pass's)
    assert sorted(e.entry_id for e in sink.entries) == sorted(entry_id for entry_id, _ in lines)


def test_a_later_event_in_the_batch_unblocks_an_earlier_failure(container: Container) -> None:
    """The retry of a case's failed events after one of its events applies works inside the batch, as before."""
    svc = IntakeService.of(container)
    early = changed("L1", "filed", 10)
    first = svc.receive([early])
    assert results(first) == [(early["event_id"], "failed")]
    outcome = svc.receive([submitted("L1", 0), changed("L1", "dispatched", 20)])
    assert results(outcome) == [("L1-submitted", "applied"), ("L1-dispatched-20", "applied")]
    assert [(r.event_id, r.result) for r in outcome.also_applied] == [(early["event_id"], "applied")]
    with container.read() as s:
        case = s.scalar(select(Case).where(Case.case_id == "L1"))
        assert case is not None and case.status == "dispatched"


EVENT_KINDS = st.sampled_from(["report", "filed", "refused", "dispatched", "resolved", "bad_category", "unknown"])


def build(tag: str, plan: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """Events from a drawn plan of (case number, kind, minute)."""
    out: list[dict[str, Any]] = []
    for n, (case, kind, minute) in enumerate(plan):
        cid = f"{tag}-{case}"
        over = {"event_id": f"{cid}-{kind}-{n}"}
        if kind == "report":
            out.append(submitted(cid, minute, **over))
        elif kind == "bad_category":
            out.append(submitted(cid, minute, category="flying_saucer", **over))
        elif kind == "unknown":
            out.append(changed(f"{tag}-none", "dispatched", minute, **over))
        elif kind == "refused":
            out.append(changed(cid, "refused", minute, verdict="invalid", **over))
        else:
            out.append(changed(cid, kind, minute, **over))
    return out


def state(c: Container, tag: str) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, int]], dict[str, str]]:
    with c.read() as s:
        cases = s.execute(
            select(Case.case_id, Case.status, Case.verdict).where(Case.case_id.like(f"{tag}-%")).order_by(Case.case_id)
        ).all()
        ledger = s.execute(
            select(Case.case_id, LedgerEntry.points).join(Case, Case.id == LedgerEntry.case_pk)
            .where(Case.case_id.like(f"{tag}-%"))
        ).all()  # fmt: skip
        inbox = s.execute(select(InboxEvent.event_id, InboxEvent.status).where(InboxEvent.case_id.like(f"{tag}-%")))
        return (
            [(a.removeprefix(tag), b, v) for a, b, v in cases],
            sorted((a.removeprefix(tag), p) for a, p in ledger),
            {e.removeprefix(tag): st_ for e, st_ in inbox},
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.lists(st.tuples(st.integers(0, 3), EVENT_KINDS, st.integers(0, 60)), min_size=1, max_size=14),
)
def test_one_batch_ends_like_the_same_events_one_request_each(container: Container, plan: Any) -> None:
    """Property: a batch (one transaction, optimistic then careful) leaves the cases, the ledger and the inbox exactly
    as the same events sent one request each, in the order the batch applies them (occurred_at, then arrival)."""
    n = next(_ids)
    svc = IntakeService.of(container)
    a, b = f"A{n}", f"B{n}"
    batch = svc.receive(build(a, plan))
    assert len(batch.results) == len(plan)
    singles = build(b, plan)
    order = sorted(range(len(singles)), key=lambda i: (singles[i]["occurred_at"], i))
    for i in order:
        svc.receive([singles[i]])
    assert state(container, a) == state(container, b)


def test_events_are_not_applied_in_the_future_nor_twice(container: Container) -> None:
    svc = IntakeService.of(container)
    future = submitted("F1", 0, occurred_at=(START + timedelta(days=2)).isoformat())
    batch = [submitted("F2", 0), future, changed("F2", "filed", 1)]
    assert [r.result for r in svc.receive(batch).results] == ["applied", "failed", "applied"]
    again = svc.receive(batch[::2])
    assert [r.result for r in again.results] == ["duplicate", "duplicate"]
    with container.read() as s:
        assert len(s.scalars(select(LedgerEntry)).all()) == 1


def test_a_reporter_id_the_database_cannot_hold_fails_its_event_alone(container: Container) -> None:
    # the batch loads its reporters before validating the events: a NUL in one openid must not fail that SELECT
    svc = IntakeService.of(container)
    bad = submitted("NUL1", 0, reporter={"openid": "\x00", "name": "张三明"})
    outcome = svc.receive([bad, submitted("OK1", 1), changed("OK1", "filed", 2)])
    assert results(outcome) == [("NUL1-submitted", "failed"), ("OK1-submitted", "applied"), ("OK1-filed-2", "applied")]
    assert outcome.results[0].error == "invalid_event"
    with container.read() as s:
        row = s.scalars(select(InboxEvent).where(InboxEvent.event_id == "NUL1-submitted")).one()
        assert row.status == "failed" and row.error
