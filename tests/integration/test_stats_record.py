"""The public record's SQL aggregates equal the figures recomputed by brute force from random case histories.

Random histories are played through the real flows (reports, verdicts, dispatches with and without deadlines,
resolutions sent back, closings, voids, late events kept for the record) plus ratings, on PostgreSQL and SQLite;
the brute force reads the rows back and counts in Python, following the definitions of rewards.stats.figures.
Sealing: a period is computed live until it has ended and settled, then stored once and never recomputed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import Case, CaseHistory
from rewards.clock import FixedClock, IsoWeek
from rewards.engagement.ratings import CaseRating
from rewards.scoring.ledger import LedgerEntry
from rewards.stats import queries
from rewards.stats.figures import CITY, Counts
from rewards.stats.models import StatsFigures
from rewards.stats.periods import Period, month_period, week_period
from tests.conftest import START, MakeContainer, test_settings, wipe
from tests.fakes.sinks import RecordingSink

CITY_SYSTEM = Actor("city-case-system", "intake")
VALIDATOR = Actor("validator-1", "console")
DISTRICTS = ("城关区", "七里河区", None)
DEPARTMENTS = ("城关区城管局", "市水务集团", None)
BEGIN = START - timedelta(days=15)  # 2026-W46 .. W48, inside November and a little of October
LEVELS = ("satisfied", "basic", "unsatisfied")


@dataclass(frozen=True)
class Plan:
    """One case's life: who, where, when, and how far it gets (offsets in minutes)."""

    reporter: int | None
    district: str | None
    department: str | None
    at: int  # minutes after BEGIN
    verdict: str  # valid | invalid | none
    steps: int  # 0..4: dispatched, resolved, sent back + resolved, closed
    gaps: tuple[int, int, int, int, int]
    deadline: int | None  # minutes after dispatch
    void: bool
    late: bool  # a dispatch event arrives again, older than the case's status (kept, not applied)
    rating: str | None


plans = st.builds(
    Plan,
    reporter=st.one_of(st.none(), st.integers(0, 4)),
    district=st.sampled_from(DISTRICTS),
    department=st.sampled_from(DEPARTMENTS),
    at=st.integers(0, 21 * 24 * 60),
    verdict=st.sampled_from(("valid", "valid", "invalid", "none")),
    steps=st.integers(0, 4),
    gaps=st.tuples(*(st.integers(1, 5 * 24 * 60) for _ in range(5))),
    deadline=st.one_of(st.none(), st.integers(60, 4 * 24 * 60)),
    void=st.booleans(),
    late=st.booleans(),
    rating=st.one_of(st.none(), st.sampled_from(LEVELS)),
)


def play(c: Container, clock: FixedClock, cases: list[Plan]) -> None:
    """Carry out every plan through the flows, in time order (each event at its instant)."""
    events: list[tuple[datetime, int, Any, Actor]] = []
    for i, p in enumerate(cases):
        cid = f"S{i}"
        t = BEGIN + timedelta(minutes=p.at)
        who = None if p.reporter is None else Reporter(openid=f"o{p.reporter}", verified=True)
        report = ReportCase(cid, "street_lamp", t, who, district=p.district)
        events.append((t, 0, report, CITY_SYSTEM))
        if p.verdict == "none":
            continue
        t += timedelta(minutes=p.gaps[0])
        events.append((t, 1, GiveVerdict(cid, p.verdict, occurred_at=t), VALIDATOR))
        if p.verdict != "valid":
            continue
        chain = [(lc.DISPATCHED, p.department), (lc.RESOLVED, None), (lc.PROCESSING, None), (lc.RESOLVED, None)]
        chain += [(lc.CLOSED, None)]
        plan_steps = {0: [], 1: chain[:1], 2: chain[:2], 3: chain[:4], 4: chain}[p.steps]
        dispatched_at = None
        for k, (status, department) in enumerate(plan_steps):
            t += timedelta(minutes=p.gaps[min(k + 1, 4)])
            deadline = None
            if status == lc.DISPATCHED:
                dispatched_at = t
                deadline = t + timedelta(minutes=p.deadline) if p.deadline is not None else None
            events.append((t, 2 + k, ChangeStatus(cid, status, t, department, None, deadline), CITY_SYSTEM))
        if p.late and dispatched_at is not None and plan_steps[1:]:
            late_at = t + timedelta(minutes=1)  # recorded after the case moved on, occurred before: not applied
            events.append((late_at, 8, ChangeStatus(cid, lc.DISPATCHED, dispatched_at, "迟到的部门"), CITY_SYSTEM))
        if p.void:
            t += timedelta(minutes=30)
            events.append((t, 9, VoidCase(cid, "摆拍", t), VALIDATOR))
    events.sort(key=lambda e: (e[0], e[1]))
    for at, _, command, actor in events:
        clock.set(at)
        with c.uow() as uow:
            c.flows.handle(uow, command, actor)
    with c.uow() as uow:  # ratings of resolved or closed cases, a few hours after that step
        for i, p in enumerate(cases):
            if p.rating is None:
                continue
            case = uow.session.scalar(select(Case).where(Case.case_id == f"S{i}"))
            assert case is not None
            if case.status not in (lc.RESOLVED, lc.CLOSED) or case.reporter_id is None:
                continue
            uow.session.add(
                CaseRating(
                    case_pk=case.id,
                    citizen_id=case.reporter_id,
                    level=p.rating,
                    channel="api",
                    district=case.district,
                    department=case.department,
                    case_status=case.status,
                    rated_at=case.status_at + timedelta(hours=3),
                )
            )


def brute_force(c: Container, period: Period) -> dict[queries.Key, Counts]:
    """The figures of a period, counted row by row in Python from what the database holds."""
    with c.read() as s:
        cases = {x.id: x for x in s.scalars(select(Case))}
        steps = list(s.scalars(select(CaseHistory)))
        ledger = list(s.scalars(select(LedgerEntry)))
        ratings = list(s.scalars(select(CaseRating)))

    def inside(t: datetime) -> bool:
        return period.start <= t < period.end

    def scopes(case: Case) -> list[queries.Key]:
        out: list[queries.Key] = [("city", CITY)]
        if case.district is not None:
            out.append(("district", case.district))
        if case.department is not None:
            out.append(("department", case.department))
        return out

    n: dict[queries.Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    to_filing: dict[queries.Key, list[float]] = defaultdict(list)
    to_closing: dict[queries.Key, list[float]] = defaultdict(list)
    active: dict[queries.Key, set[int]] = defaultdict(set)
    filed_in, closed_in = set(), set()
    for h in steps:
        if not h.applied or not inside(h.occurred_at):
            continue
        case = cases[h.case_pk]
        for key in scopes(case):
            if h.status == lc.REPORTED:
                n[key]["received"] += 1
                if case.reporter_id is not None:
                    active[key].add(case.reporter_id)
            elif h.status == lc.FILED:
                n[key]["filed"] += 1
                to_filing[key].append((h.occurred_at - case.reported_at).total_seconds())
            elif h.status == lc.REFUSED:
                n[key]["refused"] += 1
            elif h.status == lc.DISPATCHED:
                n[key]["dispatched"] += 1
            elif h.status == lc.CLOSED:
                n[key]["closed"] += 1
                to_closing[key].append((h.occurred_at - case.reported_at).total_seconds())
                if case.deadline_at is not None:
                    n[key]["closed_with_deadline"] += 1
                    n[key]["closed_on_time"] += h.occurred_at <= case.deadline_at
        if h.status == lc.FILED:
            filed_in.add(h.case_pk)
        if h.status == lc.CLOSED:
            closed_in.add(h.case_pk)
    for pk in filed_in & closed_in:
        for key in scopes(cases[pk]):
            n[key]["filed_and_closed"] += 1
    first: dict[int, Case] = {}
    for case in sorted(cases.values(), key=lambda x: (x.reported_at, x.id)):
        if case.reporter_id is not None:
            first.setdefault(case.reporter_id, case)
    for case in first.values():
        if inside(case.reported_at):
            for key in scopes(case):
                n[key]["first_time_reporters"] += 1
    for e in ledger:
        if inside(e.created_at):
            for key in scopes(cases[e.case_pk]):
                n[key]["points"] += e.points
    for r in ratings:
        if inside(r.rated_at):
            keys: list[queries.Key] = [("city", CITY)]
            keys += [("district", r.district)] if r.district is not None else []
            keys += [("department", r.department)] if r.department is not None else []
            for key in keys:
                n[key]["rated"] += 1
                n[key]["satisfied"] += r.level in ("satisfied", "basic")
    out: dict[queries.Key, Counts] = {}
    for key in set(n) | set(active):
        out[key] = Counts(
            **dict(n[key]),
            active_reporters=len(active[key]),
            median_filing_seconds=statistics.median(to_filing[key]) if to_filing[key] else None,
            median_closing_seconds=statistics.median(to_closing[key]) if to_closing[key] else None,
        )
    return out


def comparable(found: dict[queries.Key, Counts]) -> dict[queries.Key, Counts]:
    """Drop scopes with nothing in them; round medians to the millisecond (SQLite computes them in days)."""

    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        k: Counts(
            **{
                **vars(c),
                "median_filing_seconds": rounded(c.median_filing_seconds),
                "median_closing_seconds": rounded(c.median_closing_seconds),
            }
        )
        for k, c in found.items()
        if c != Counts()
    }


def periods(c: Container) -> list[Period]:
    tz = c.settings.tz
    weeks = [week_period(IsoWeek(2026, w), tz) for w in (46, 47, 48, 49)]
    return [*weeks, month_period(2026, 11, tz), month_period(2026, 12, tz)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(plans, min_size=0, max_size=14))
def test_sql_figures_equal_the_brute_force_count(
    db_engine: Engine, make_container: MakeContainer, cases: list[Plan]
) -> None:
    wipe(db_engine)
    clock = FixedClock(BEGIN)
    c = make_container(engine=db_engine, clock=clock, sink=RecordingSink())
    play(c, clock, cases)
    for period in periods(c):
        with c.read() as s:
            got = queries.compute(s, period, since=queries.first_activity(s))
        assert comparable(got) == comparable(brute_force(c, period)), period.key
        assert got[("city", CITY)] is not None  # the city is always there, even empty


def test_a_period_is_live_until_it_settles_then_sealed_once(db_engine: Engine, make_container: MakeContainer) -> None:
    clock = FixedClock(BEGIN)
    c = make_container(engine=db_engine, clock=clock, sink=RecordingSink())
    plan = Plan(1, "城关区", "市水务集团", 60, "valid", 4, (30, 60, 60, 60, 60), 600, False, False, "basic")
    play(c, clock, [plan])
    week = week_period(IsoWeek(2026, 46), c.settings.tz)
    clock.set(week.end + timedelta(hours=1))  # ended, not settled (24 h by default): live, nothing stored
    first = c.stats.record(week)
    assert not first.sealed and not first.live and first.city.counts.received == 1
    with c.read() as s:
        assert s.scalar(select(func.count(StatsFigures.id))) == 0
    clock.set(week.end + timedelta(hours=25))
    sealed = c.stats.record(week)
    assert sealed.city == first.city and sealed.districts == first.districts
    assert [f.scope for f in sealed.departments] == ["市水务集团"]
    with c.read() as s:
        stored = s.scalar(select(func.count(StatsFigures.id)))
    assert stored == 3  # city, one district, one department
    again = c.stats.record(week)
    assert again.sealed and again.city == sealed.city
    # a step that happened in the sealed week but arrives now changes nothing there: the record was sealed
    with c.uow() as uow:
        late = ReportCase("LATE", "street_lamp", week.start + timedelta(hours=2), None, district="城关区")
        c.flows.handle(uow, late, CITY_SYSTEM)
    assert c.stats.record(week).city.counts.received == 1
    with c.read() as s:
        assert s.scalar(select(func.count(StatsFigures.id))) == stored
    this_week = c.stats.record(c.stats.period())
    assert this_week.live is False or this_week.sealed is False


def test_an_open_period_is_recomputed_at_most_once_per_live_interval(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    clock = FixedClock(START)
    c = make_container(test_settings(stats_live_seconds=60), engine=db_engine, clock=clock, sink=RecordingSink())
    week = c.stats.period()

    def report(case_id: str) -> None:
        with c.uow() as uow:
            c.flows.handle(uow, ReportCase(case_id, "street_lamp", clock.now(), None, district="西固区"), CITY_SYSTEM)

    report("L1")
    assert c.stats.record(week).city.counts.received == 1
    report("L2")
    assert c.stats.record(week).city.counts.received == 1  # the figures of a minute ago
    clock.advance(seconds=60)
    assert c.stats.record(week).city.counts.received == 2
    fresh = make_container(test_settings(stats_live_seconds=0), engine=db_engine, clock=clock, sink=RecordingSink())
    report("L3")
    assert fresh.stats.record(week).city.counts.received == 3  # 0: every request recomputes
    with fresh.read() as s:
        assert s.scalar(select(func.count(StatsFigures.id))) == 0  # an open week is never stored


def test_a_deadline_from_the_case_system_reaches_the_case_and_the_on_time_rate(
    db_engine: Engine, make_container: MakeContainer
) -> None:
    """The intake event's optional `deadline` (dispatch) becomes cases.deadline_at; without one, none is set."""
    from intake_adapter.schemas import parse_event  # the intake edge's own parser, as the webhook uses it
    from intake_adapter.translate import translate_status  # the pure mapping onto the command

    clock = FixedClock(START)
    c = make_container(engine=db_engine, clock=clock, sink=RecordingSink())
    for cid in ("D1", "D2"):
        with c.uow() as uow:
            c.flows.handle(uow, ReportCase(cid, "street_lamp", START, None, district="安宁区"), CITY_SYSTEM)
            c.flows.handle(uow, GiveVerdict(cid, "valid", occurred_at=START + timedelta(hours=1)), VALIDATOR)
    base = {"type": "case.status_changed", "status": "dispatched", "department": "安宁区市政所"}
    with_deadline = parse_event(
        base
        | {"event_id": "e1", "case_id": "D1", "occurred_at": "2026-11-25T12:00:00+08:00"}
        | {"deadline": "2026-11-26T12:00:00+08:00"}
    )
    without = parse_event(base | {"event_id": "e2", "case_id": "D2", "occurred_at": "2026-11-25T12:00:00+08:00"})
    for event in (with_deadline, without):
        with c.uow() as uow:
            c.flows.handle(uow, translate_status(event), CITY_SYSTEM)  # type: ignore[arg-type]
    for cid in ("D1", "D2"):
        for status, hours in ((lc.RESOLVED, 30), (lc.CLOSED, 40)):  # closed after D1's deadline
            with c.uow() as uow:
                c.flows.handle(uow, ChangeStatus(cid, status, START + timedelta(hours=hours)), CITY_SYSTEM)
    with c.read() as s:
        deadlines = dict(s.execute(select(Case.case_id, Case.deadline_at)).all())
    assert deadlines == {"D1": START + timedelta(hours=26), "D2": None}
    city = c.stats.record(c.stats.period()).city
    assert (city.counts.closed, city.counts.closed_with_deadline, city.counts.closed_on_time) == (2, 1, 0)
    assert city.on_time_rate == 0.0


def test_a_deadline_on_a_verdict_or_void_is_refused_with_a_reason() -> None:
    from intake_adapter.schemas import parse_event  # the intake edge's own parser
    from rewards.errors import Invalid

    for status in ("filed", "refused", "voided"):
        event = {"type": "case.status_changed", "event_id": "e", "case_id": "C1", "status": status, "note": "x"}
        event |= {"occurred_at": "2026-11-25T12:00:00+08:00", "deadline": "2026-11-26T12:00:00+08:00"}
        try:
            parse_event(event)
        except Invalid as exc:
            assert exc.status == 422 and "deadline" in exc.message
        else:
            raise AssertionError(f"a deadline with {status} was accepted")
