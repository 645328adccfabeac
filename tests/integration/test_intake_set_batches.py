"""Set-based intake batches on real PostgreSQL (and SQLite where it applies): a batch's new cases take their ids
from the sequence in one statement and are inserted in one flush at its end, its ledger lines are written in one
INSERT … ON CONFLICT DO NOTHING RETURNING after them, and nothing a batch did one event at a time changes: the
daily award limit counts the batch's own awards, a void reverses a line of its own batch, a bad event fails alone,
and two batches creating the same case at once both end well."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, insert, select

from intake_adapter.models import InboxEvent
from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cases.models import Case, CaseHistory
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.rules import DAILY_LIMIT
from tests.conftest import START, MakeContainer, test_settings
from tests.fakes.sinks import RecordingSink
from tests.integration.test_intake_bulk_batch import results, statements
from tests.integration.test_intake_webhook import changed, submitted

_ids = itertools.count()


def reporter(openid: str) -> dict[str, Any]:
    return {"openid": openid, "name": "张三明", "verified": True}


def ledger_of(c: Container, prefix: str) -> list[tuple[str, str, int]]:
    """(case id, rule, points) of the cases whose id starts with `prefix`, in ledger order."""
    with c.read() as s:
        rows = s.execute(
            select(Case.case_id, LedgerEntry.rule, LedgerEntry.points)
            .join(Case, Case.id == LedgerEntry.case_pk)
            .where(Case.case_id.like(f"{prefix}%"))
            .order_by(LedgerEntry.id)
        ).all()
    return [(cid, rule, points) for cid, rule, points in rows]


# -- ids reserved per batch ----------------------------------------------------------------------------------------


def test_a_batch_of_reports_reserves_its_case_ids_in_one_statement(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    c = make_container(engine=db_engine)
    svc = IntakeService.of(c)
    # new citizens among them: their INSERTs must not flush the cases pending before them one at a time
    reports = [submitted(f"R{k}", k, reporter=reporter(f"o-r{k % 7}")) for k in range(30)]
    filed = [changed(f"R{k}", "filed", 40 + k) for k in range(0, 30, 2)]
    with statements(db_engine) as seen:
        outcome = svc.receive(reports + filed)
    assert [r.result for r in outcome.results] == ["applied"] * 45
    case_inserts = [s for s in seen if s.startswith("INSERT INTO cases")]
    if db_engine.dialect.name == "postgresql":
        assert len([s for s in seen if s.startswith("SELECT nextval(pg_get_serial_sequence")]) == 1, "\n".join(seen)
        assert len(case_inserts) == 1, "\n".join(seen)  # every new case in one executemany, none per report
        assert not any(s.startswith("UPDATE cases") for s in seen)  # the verdicts' changes went into the INSERT
    else:  # SQLite has no sequence: each report inserts its case at once to learn its id (the old path)
        assert len(case_inserts) == 30
    ledger_inserts = [s for s in seen if s.removeprefix("WITH … ").startswith("INSERT INTO ledger_entries")]
    assert len(ledger_inserts) == 1, "\n".join(seen)
    with c.read() as s:
        cases = {cid: pk for cid, pk in s.execute(select(Case.case_id, Case.id).where(Case.case_id.like("R%")))}
        history = s.execute(select(CaseHistory.case_pk, CaseHistory.status)).all()
    assert len(cases) == 30 and len(set(cases.values())) == 30
    # every history row points at its own case (the reserved id given to the case is the one its rows carry)
    assert sorted(pk for pk, st_ in history if st_ == "reported") == sorted(cases.values())
    assert sorted(pk for pk, st_ in history if st_ == "filed") == sorted(cases[f"R{k}"] for k in range(0, 30, 2))
    assert [(cid, p) for cid, _, p in ledger_of(c, "R")] == [(f"R{k}", 2) for k in range(0, 30, 2)]
    # the first new case of the batch has the lowest id, as inserting them one by one gave
    assert [cid for cid, _ in sorted(cases.items(), key=lambda kv: kv[1])] == [f"R{k}" for k in range(30)]
    # a replay changes nothing
    again = svc.receive(reports + filed)
    assert {r.result for r in again.results} == {"duplicate"}
    assert len(ledger_of(c, "R")) == 15


def test_a_batch_whose_reports_all_exist_reserves_nothing(pg_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(engine=pg_engine)
    svc = IntakeService.of(c)
    svc.receive([submitted("E1", 0)])
    with statements(pg_engine) as seen:
        outcome = svc.receive([submitted("E1", 0, event_id="E1-resent"), changed("E1", "filed", 1)])
    assert [(r.result, r.effect) for r in outcome.results] == [("applied", "unchanged"), ("applied", "moved")]
    assert not any("nextval" in s for s in seen)


# -- the ledger written at the batch's end ---------------------------------------------------------------------------


def test_the_daily_limit_counts_the_batch_own_awards(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = RecordingSink()
    c = make_container(test_settings(daily_award_limit=3), engine=db_engine, sink=sink)
    svc = IntakeService.of(c)
    earlier = svc.receive([submitted("D0", 0, reporter=reporter("o-d")), changed("D0", "filed", 1)])
    assert [r.result for r in earlier.results] == ["applied", "applied"]  # today's first award, committed
    batch: list[dict[str, Any]] = []
    for k in range(1, 6):
        batch += [submitted(f"D{k}", 2 * k, reporter=reporter("o-d")), changed(f"D{k}", "filed", 2 * k + 1)]
    batch.append(submitted("X1", 20, reporter=reporter("o-x")))  # another citizen: a count of its own
    batch.append(changed("X1", "filed", 21))
    outcome = svc.receive(batch)
    assert {r.result for r in outcome.results} == {"applied"}
    assert ledger_of(c, "D") == [(f"D{k}", "valid_report", 2) for k in range(3)]
    assert ledger_of(c, "X") == [("X1", "valid_report", 2)]
    with c.read() as s:
        notes = dict(s.execute(select(Case.case_id, Case.award_note).where(Case.case_id.like("D%"))).all())
    assert notes == {"D0": None, "D1": None, "D2": None, "D3": DAILY_LIMIT, "D4": DAILY_LIMIT, "D5": DAILY_LIMIT}
    assert len(sink.entries) == 4  # the committed awards, each once


def test_a_case_reported_filed_and_voided_in_one_batch_is_reversed(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    svc = IntakeService.of(c)
    batch = [
        submitted("V1", 0),
        changed("V1", "filed", 1),
        submitted("V2", 2),
        changed("V2", "filed", 3),
        changed("V1", "voided", 4, note="虚假举报"),
    ]
    with statements(db_engine) as seen:
        outcome = svc.receive(batch)
    assert [r.result for r in outcome.results] == ["applied"] * 5
    assert not any("SAVEPOINT" in s for s in seen)  # the optimistic pass: the void read the batch's queued line
    assert ledger_of(c, "V") == [("V1", "valid_report", 2), ("V2", "valid_report", 2), ("V1", "void_reversal", -2)]
    with c.read() as s:
        assert s.scalar(select(Case.status).where(Case.case_id == "V1")) == "voided"
        ids = s.scalars(select(LedgerEntry.id).order_by(LedgerEntry.id)).all()
    assert sorted(e.entry_id for e in sink.entries) == list(ids)
    assert sum(e.points for e in sink.entries) == 2
    again = svc.receive(batch)
    assert {r.result for r in again.results} == {"duplicate"}
    assert len(ledger_of(c, "V")) == 3 and len(sink.entries) == 3


def test_only_the_lines_inserted_reach_the_boards(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    svc = IntakeService.of(c)
    svc.receive([submitted("K1", 0), submitted("K2", 1)])
    with c.db.uow() as uow:  # a line already there for K1 (as a concurrent writer would have left it)
        case = uow.session.scalars(select(Case).where(Case.case_id == "K1")).one()
        values = {"citizen_id": case.reporter_id, "case_pk": case.id, "rule": "valid_report", "points": 5}
        uow.session.execute(insert(LedgerEntry).values(week="2026-W48", reason="x", created_at=START, **values))
    outcome = svc.receive([changed("K1", "filed", 2), changed("K2", "filed", 3)])
    assert [r.result for r in outcome.results] == ["applied", "applied"]
    assert ledger_of(c, "K") == [("K1", "valid_report", 5), ("K2", "valid_report", 2)]
    assert [e.points for e in sink.entries] == [2]  # K1's line conflicted: nothing new to apply


# -- a bad event fails alone -----------------------------------------------------------------------------------------


def test_a_bad_event_in_the_middle_fails_alone_and_nothing_is_lost(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    svc = IntakeService.of(c)
    svc.receive([submitted("B0", 0), changed("B0", "refused", 1, verdict="invalid")])
    good = [e for k in range(1, 6) for e in (submitted(f"B{k}", 2 * k), changed(f"B{k}", "filed", 2 * k + 1))]
    bad = changed("B0", "filed", 6.5)  # B0 was refused: 409 after the optimistic pass touched SQL
    batch = [*good[:6], bad, *good[6:]]
    outcome = svc.receive(batch)
    assert results(outcome) == [(e["event_id"], "failed" if e is bad else "applied") for e in batch]
    assert ledger_of(c, "B") == [(f"B{k}", "valid_report", 2) for k in range(1, 6)]
    with c.read() as s:
        inbox = dict(s.execute(select(InboxEvent.event_id, InboxEvent.status)).all())
        history = s.scalar(select(CaseHistory.id).where(CaseHistory.event_id == bad["event_id"]))
    assert inbox[bad["event_id"]] == "failed" and history is None
    assert all(inbox[e["event_id"]] == "applied" for e in good)
    assert len(sink.entries) == 5
    again = svc.receive(batch)
    assert [r.result for r in again.results] == ["failed" if e is bad else "duplicate" for e in batch]
    assert len(ledger_of(c, "B")) == 5 and len(sink.entries) == 5


# -- two batches creating the same case at once ------------------------------------------------------------------


def test_two_batches_creating_the_same_case_at_once(pg_engine: Engine, make_container: MakeContainer) -> None:
    """Batch A inserts case Z at its end and, before it commits, batch B (which did not see Z) inserts Z too and
    waits on A's unique key; A commits, B's INSERT fails, B runs again with SAVEPOINTs and finds A's case."""
    sink = RecordingSink()
    c = make_container(engine=pg_engine, sink=sink)
    svc = IntakeService.of(c)
    svc.receive([submitted("Y0", 0)])  # the reporter exists: neither batch waits on the other's new citizen
    a_inserted, b_inserting = threading.Event(), threading.Event()

    def on_sql(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO cases"):
            {"A": a_inserted, "B": b_inserting}.get(threading.current_thread().name, threading.Event()).set()

    def on_commit(conn: Any) -> None:
        if threading.current_thread().name == "A" and a_inserted.is_set() and not b_inserting.is_set():
            assert b_inserting.wait(10)
            time.sleep(0.3)  # B's INSERT reaches the server and waits on A's row

    out: dict[str, Any] = {}
    batch_a = [submitted("Z1", 0), changed("Z1", "filed", 1), submitted("ZA", 2)]
    batch_b = [submitted("Z1", 0, event_id="Z1-again"), changed("Z1", "filed", 1, event_id="Z1-filed-b")]
    batch_b.append(submitted("ZB", 3))

    def run(name: str, batch: list[dict[str, Any]]) -> None:
        out[name] = svc.receive(batch)

    event.listen(pg_engine, "before_cursor_execute", on_sql)
    event.listen(pg_engine, "commit", on_commit)
    try:
        a = threading.Thread(target=run, args=("A", batch_a), name="A")
        a.start()
        assert a_inserted.wait(10)
        b = threading.Thread(target=run, args=("B", batch_b), name="B")
        b.start()
        a.join(20)
        b.join(20)
    finally:
        event.remove(pg_engine, "before_cursor_execute", on_sql)
        event.remove(pg_engine, "commit", on_commit)
    assert b_inserting.is_set()
    assert [(r.result, r.effect) for r in out["A"].results] == [("applied", "created"), ("applied", "moved"),
                                                              ("applied", "created")]  # fmt: skip
    # B found A's case: the report is a replay, the verdict the same verdict again; its other case is created
    assert [(r.result, r.effect) for r in out["B"].results] == [("applied", "unchanged"), ("applied", "unchanged"),
                                                              ("applied", "created")]  # fmt: skip
    assert ledger_of(c, "Z") == [("Z1", "valid_report", 2)]
    assert len(sink.entries) == 1
    with c.read() as s:
        assert sorted(s.scalars(select(Case.case_id).where(Case.case_id.like("Z%")))) == ["Z1", "ZA", "ZB"]


# -- property: one set-based batch ends like the same events one request each ----------------------------------------

# each case's events as the case system may send them (some out of order, some refused), interleaved across cases
STORIES = st.sampled_from(
    [
        ("report",),
        ("report", "filed"),
        ("report", "filed"),
        ("report", "filed", "voided"),
        ("report", "filed", "dispatched", "voided"),
        ("report", "refused"),
        ("report", "refused", "voided"),
        ("filed", "report"),
        ("report", "dispatched", "filed"),
        ("bad_category", "report", "filed"),
        ("report", "filed", "filed"),
    ]
)


@st.composite
def plans(draw: st.DrawFn) -> list[tuple[int, int, str]]:
    """(case number, citizen number, kind): a few cases' stories by two citizens, interleaved."""
    stories = draw(st.lists(st.tuples(st.integers(0, 1), STORIES), min_size=1, max_size=6))
    queues = [[(case, citizen, kind) for kind in story] for case, (citizen, story) in enumerate(stories)]
    plan: list[tuple[int, int, str]] = []
    while any(queues):
        i = draw(st.sampled_from([k for k, q in enumerate(queues) if q]))
        plan.append(queues[i].pop(0))
    return plan


def events_of(tag: str, plan: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """Events from a drawn plan of (case number, citizen number, kind); minutes follow the plan's order."""
    out: list[dict[str, Any]] = []
    for n, (case, citizen, kind) in enumerate(plan):
        cid, over = f"{tag}-{case}", {"event_id": f"{tag}-{case}-{kind}-{n}"}
        if kind in ("report", "bad_category"):
            category = {"category": "flying_saucer"} if kind == "bad_category" else {}
            out.append(submitted(cid, n, reporter=reporter(f"o-{tag}-{citizen}"), **category, **over))
        elif kind == "refused":
            out.append(changed(cid, "refused", n, verdict="invalid", **over))
        elif kind == "voided":
            out.append(changed(cid, "voided", n, note="虚假举报", **over))
        else:
            out.append(changed(cid, kind, n, **over))
    return out


def outcome_of(c: Container, tag: str) -> tuple[list[Any], list[tuple[str, str, int]]]:
    with c.read() as s:
        cases = s.execute(
            select(Case.case_id, Case.status, Case.verdict, Case.award_note)
            .where(Case.case_id.like(f"{tag}-%"))
            .order_by(Case.case_id)
        ).all()
    return (
        [(cid.removeprefix(tag), *rest) for cid, *rest in cases],
        sorted((cid.removeprefix(tag), rule, points) for cid, rule, points in ledger_of(c, f"{tag}-")),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans(), limit=st.integers(1, 3))
def test_a_set_based_batch_ends_like_one_event_a_request(
    db_engine: Engine, make_container: MakeContainer, plan: Any, limit: int
) -> None:
    """Property: with a daily award limit, one batch (ids reserved, ledger lines queued and written at its end, read
    back by the limit and by voids; the careful pass when an event fails) leaves the same cases, award notes and
    ledger lines as the same events sent one request each (each line committed before the next event reads it)."""
    n = next(_ids)
    c = make_container(test_settings(daily_award_limit=limit), engine=db_engine)
    svc = IntakeService.of(c)
    a, b = f"SA{n}", f"SB{n}"
    svc.receive(events_of(a, plan))
    for one in events_of(b, plan):  # minutes follow the plan: the batch applies its events in this order too
        svc.receive([one])
    assert outcome_of(c, a) == outcome_of(c, b)


@pytest.mark.parametrize("n", [1, 2])
def test_reserving_more_ids_than_used_leaves_only_gaps(
    pg_engine: Engine, make_container: MakeContainer, n: int
) -> None:
    # a report that fails (unknown category) had an id reserved for it: the id is skipped, nothing else changes
    c = make_container(engine=pg_engine)
    svc = IntakeService.of(c)
    batch = [submitted(f"G{k}", k, category="flying_saucer" if k == n else "manhole_cover") for k in range(4)]
    outcome = svc.receive(batch)
    assert [r.result for r in outcome.results] == ["failed" if k == n else "applied" for k in range(4)]
    with c.read() as s:
        assert sorted(s.scalars(select(Case.case_id))) == [f"G{k}" for k in range(4) if k != n]


# -- metrics: a case inserted by the batch's one INSERT still counts its verdict, once -------------------------------


def test_verdicts_of_a_set_based_batch_are_counted_once(pg_engine: Engine, make_container: MakeContainer) -> None:
    from tests.integration.test_observability import METRICS_TOKEN, client_for, scrape, value

    c = make_container(test_settings(metrics_token=METRICS_TOKEN), engine=pg_engine)
    svc = IntakeService.of(c)
    svc.receive([submitted("M0", 0)])  # an existing case: its verdict is an UPDATE by the batch's flush
    batch = [
        submitted("M1", 1),
        changed("M1", "filed", 2),  # a new case inserted filed
        submitted("M2", 3),
        changed("M2", "refused", 4, verdict="invalid"),
        submitted("M3", 5),  # a new case without a verdict
        changed("M0", "filed", 6),
    ]
    with client_for(c) as http:  # the app installs the metrics' session listeners
        assert {r.result for r in svc.receive(batch).results} == {"applied"}
        assert {r.result for r in svc.receive(batch).results} == {"duplicate"}  # a replay counts nothing
        text = scrape(http)
    assert value(text, "rewards_verdicts_total", verdict="valid") == 2
    assert value(text, "rewards_verdicts_total", verdict="invalid") == 1
    assert value(text, "rewards_intake_events_total", result="applied") == 6
