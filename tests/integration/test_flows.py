"""The foundation flows on real PostgreSQL and SQLite: awards, replays, duplicates, voids, limits."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, SetBan, VoidCase
from rewards.cases.models import AuditEntry, CaseHistory
from rewards.clock import FixedClock
from rewards.errors import Conflict, Invalid, NotFound
from rewards.scoring.ledger import LedgerEntry, total_for_citizen
from tests.conftest import START, MakeContainer, test_settings, wipe
from tests.fakes.sinks import RecordingSink

ACTOR = Actor("validator-1", "console")


def report(c: Container, case_id: str, openid: str | None = "o1", category: str = "street_lamp") -> None:
    reporter = Reporter(openid=openid, name="张三明", verified=True) if openid else None
    with c.uow() as uow:
        c.flows.report(
            uow,
            ReportCase(case_id=case_id, category=category, reported_at=c.clock.now(), reporter=reporter),
            ACTOR,
        )


def verdict(c: Container, case_id: str, v: str = "valid", dup: str | None = None) -> None:
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict(case_id, v, duplicate_of=dup), ACTOR)


def void(c: Container, case_id: str) -> None:
    with c.uow() as uow:
        c.flows.void(uow, VoidCase(case_id, "摆拍"), ACTOR)


def ledger(c: Container) -> list[tuple[int, str, int]]:
    with c.read() as s:
        return [tuple(r) for r in s.execute(select(LedgerEntry.case_pk, LedgerEntry.rule, LedgerEntry.points)).all()]


def total(c: Container, citizen_id: int = 1) -> int:
    with c.read() as s:
        return total_for_citizen(s, citizen_id)


def test_valid_verdict_awards_once_and_replay_is_a_no_op(container: Container) -> None:
    report(container, "C1")
    verdict(container, "C1")
    verdict(container, "C1")
    report(container, "C1")  # replayed report too
    assert ledger(container) == [(1, "valid_report", 1)]
    assert total(container) == 1


def test_invalid_and_duplicate_earn_nothing(container: Container) -> None:
    report(container, "C1", openid="o1")
    container.clock.advance(minutes=1)  # type: ignore[attr-defined]
    report(container, "C2", openid="o2")
    report(container, "C3", openid="o3")
    verdict(container, "C1")
    verdict(container, "C2", "duplicate", dup="C1")
    verdict(container, "C3", "invalid")
    assert ledger(container) == [(1, "valid_report", 1)]


def test_only_the_first_reporter_earns(container: Container) -> None:
    report(container, "C1", openid="o1")
    container.clock.advance(minutes=1)  # type: ignore[attr-defined]
    report(container, "C2", openid="o2")
    with pytest.raises(Conflict, match="only the first reporter earns"):
        verdict(container, "C1", "duplicate", dup="C2")
    with pytest.raises(Invalid):
        verdict(container, "C1", "duplicate", dup="C1")
    with pytest.raises(Invalid):
        verdict(container, "C1", "duplicate")
    with pytest.raises(NotFound):
        verdict(container, "C1", "duplicate", dup="NOPE")


def test_same_citizen_reporting_twice_earns_once(container: Container) -> None:
    report(container, "C1")
    container.clock.advance(minutes=1)  # type: ignore[attr-defined]
    report(container, "C2")
    verdict(container, "C1")
    verdict(container, "C2", "duplicate", dup="C1")
    assert total(container) == 1


def test_conflicting_verdict_is_409_and_changes_nothing(container: Container) -> None:
    report(container, "C1")
    verdict(container, "C1", "invalid")
    with pytest.raises(Conflict):
        verdict(container, "C1", "valid")
    assert ledger(container) == []


def test_void_reverses_with_an_entry_dated_now_and_replays_are_no_ops(container: Container) -> None:
    clock: FixedClock = container.clock  # type: ignore[assignment]
    report(container, "C1", category="manhole_cover")
    verdict(container, "C1")
    clock.advance(days=8)  # next week
    void(container, "C1")
    void(container, "C1")
    with container.read() as s:
        rows = s.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        assert [(r.rule, r.points) for r in rows] == [("valid_report", 2), ("void_reversal", -2)]
        assert rows[0].week == "2026-W48" and rows[1].week == "2026-W49"
        assert rows[1].created_at == clock.now()
    assert total(container) == 0


def test_void_needs_a_filed_case(container: Container) -> None:
    report(container, "C1")
    with pytest.raises(Conflict, match="illegal transition"):
        void(container, "C1")
    verdict(container, "C1", "invalid")
    with pytest.raises(Conflict):
        void(container, "C1")


def test_anonymous_report_is_accepted_and_earns_nothing(container: Container) -> None:
    report(container, "C1", openid=None)
    verdict(container, "C1")
    assert ledger(container) == []
    with container.read() as s:
        from rewards.cases.service import get_case

        assert get_case(s, "C1").award_note == "匿名举报不计积分"


def test_history_keeps_every_accepted_step_and_late_events(container: Container) -> None:
    clock: FixedClock = container.clock  # type: ignore[assignment]
    report(container, "C1")
    verdict(container, "C1")
    t_dispatch = clock.advance(hours=1)
    t_process = clock.advance(hours=1)
    with container.uow() as uow:
        container.flows.change_status(uow, ChangeStatus("C1", lc.DISPATCHED, t_dispatch, department="城管局"), ACTOR)
        container.flows.change_status(uow, ChangeStatus("C1", lc.PROCESSING, t_process), ACTOR)
    with container.uow() as uow:  # an older event arrives late: recorded, not applied
        _, applied = container.flows.change_status(uow, ChangeStatus("C1", lc.DISPATCHED, t_dispatch), ACTOR)
        assert not applied
    with pytest.raises(Conflict), container.uow() as uow:
        container.flows.change_status(uow, ChangeStatus("C1", lc.CLOSED, clock.advance(hours=1)), ACTOR)
    with container.read() as s:
        from rewards.cases.service import get_case

        case = get_case(s, "C1")
        assert case.status == lc.PROCESSING
        assert [(h.status, h.applied) for h in case.history] == [
            ("reported", True),
            ("filed", True),
            ("dispatched", True),
            ("dispatched", False),
            ("processing", True),
        ]
        assert case.department == "城管局"
        assert s.scalar(select(func.count(AuditEntry.id))) == 1


def test_daily_limit_when_switched_on(db_engine: Engine, clock: FixedClock, make_container: MakeContainer) -> None:
    c = make_container(test_settings(daily_award_limit=2), engine=db_engine, sink=RecordingSink())
    for i in range(4):
        report(c, f"C{i}")
        clock.advance(minutes=1)
        verdict(c, f"C{i}")
    assert total(c) == 2
    clock.advance(days=1)
    report(c, "C9")
    verdict(c, "C9")
    assert total(c) == 3


def test_after_commit_only(db_engine: Engine, make_container: MakeContainer) -> None:
    """A transaction that fails after scoring hands nothing to the boards and writes nothing."""
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    report(c, "C1")
    with pytest.raises(RuntimeError), c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict("C1", "valid"), ACTOR)
        raise RuntimeError("crash before commit")
    assert sink.entries == [] and ledger(c) == []
    verdict(c, "C1")
    assert len(sink.entries) == 1 and sink.entries[0].points == 1


def test_ban_is_audited_and_tells_the_boards(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    report(c, "C1")
    for banned in (True, True, False):
        with c.uow() as uow:
            c.flows.set_banned(uow, SetBan("o1", banned, "刷分"), ACTOR)
    assert sink.eligibility == [(1, False), (1, True)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(6))), voids=st.sets(st.integers(0, 5)))
def test_totals_do_not_depend_on_event_order(
    db_engine: Engine, make_container: MakeContainer, order: list[int], voids: set[int]
) -> None:
    wipe(db_engine)
    c = make_container(engine=db_engine, clock=FixedClock(START), sink=RecordingSink())  # a fresh clock per example
    for i in range(6):
        report(c, f"C{i}", openid=f"o{i % 2}", category="manhole_cover" if i % 3 == 0 else "street_lamp")
        c.clock.advance(minutes=1)  # type: ignore[attr-defined]
    for i in order:
        verdict(c, f"C{i}")
        if i in voids:
            void(c, f"C{i}")
    expected = {0: 0, 1: 0}
    for i in range(6):
        if i not in voids:
            expected[i % 2] += 2 if i % 3 == 0 else 1
    with c.read() as s:
        from rewards.cases.service import get_citizen

        got = {k: total_for_citizen(s, get_citizen(s, f"o{k}").id) for k in (0, 1)}
    assert got == expected


def test_the_same_verdict_from_eight_workers_awards_once(pg_engine: Engine, make_container: MakeContainer) -> None:
    sink = RecordingSink()
    c = make_container(engine=pg_engine, sink=sink)
    report(c, "C1")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            verdict(c, "C1")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger(c) == [(1, "valid_report", 1)]
    assert len(sink.entries) == 1
    assert errors == []  # the case row is locked: the others wait, then see the verdict and do nothing
    with c.read() as s:
        assert s.scalar(select(func.count(CaseHistory.id)).where(CaseHistory.status == "filed")) == 1


def test_first_reports_of_one_new_citizen_at_once_create_one_citizen(
    pg_engine: Engine, make_container: MakeContainer
) -> None:
    c = make_container(engine=pg_engine, sink=RecordingSink())
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            report(c, f"C{i}", openid="o-new")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with c.read() as s:
        from rewards.cases.models import Case, Citizen

        assert s.scalar(select(func.count(Citizen.id))) == 1
        assert s.scalar(select(func.count(Case.id))) == 8


def test_verification_and_district_changes_reach_the_boards(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = RecordingSink()
    c = make_container(engine=db_engine, sink=sink)
    with c.uow() as uow:
        c.flows.report(
            uow, ReportCase("C1", "street_lamp", START, Reporter("o1", verified=False), district="城关区"), ACTOR
        )
    with c.uow() as uow:  # the same citizen, now verified and moved: both reach the boards after commit
        c.flows.report(
            uow, ReportCase("C2", "street_lamp", START, Reporter("o1", verified=True, district="安宁区")), ACTOR
        )
    with c.uow() as uow:  # nothing changed: nothing to tell
        c.flows.report(uow, ReportCase("C3", "street_lamp", START, Reporter("o1", verified=True)), ACTOR)
    assert sink.eligibility == [(1, True)]
    assert sink.districts == [(1, "安宁区")]
