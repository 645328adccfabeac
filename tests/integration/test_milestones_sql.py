"""Milestones on real PostgreSQL and SQLite: random histories (valid, invalid, pending and voided cases, a daily
award limit, several districts, weeks closed into sealed prize lists) run through the real flows; every citizen's
milestones read from SQL equal a brute-force model of the definitions; reading and announcing milestones never
changes a standing, a snapshot or the ledger; a mention is recorded once, even under concurrent replies."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import Citizen
from rewards.cases.service import find_citizen
from rewards.clock import FixedClock, IsoWeek, local_day, week_of
from rewards.engagement.milestones import MilestoneNotice
from rewards.leaderboard.weeks import load_closed_week
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import MakeContainer, test_settings, wipe

ACTOR = Actor("validator-1", "console")
FIRST = IsoWeek(2026, 44)
WEEKS = 4
BASE = test_settings()
MONDAY = FIRST.start(BASE.tz) + timedelta(hours=1)  # 09:00 on the Monday of 2026-W44, program time
AFTER = FIRST.start(BASE.tz) + timedelta(days=7 * WEEKS, hours=2)  # the weeks are over: close them
POINTS = {"street_lamp": 1, "manhole_cover": 2}
DISTRICTS = ("城关区", "七里河区", None)
TIERS = [
    {"first": 1, "last": 1, "name": "一等奖", "value": 500},
    {"first": 2, "last": 2, "name": "二等奖", "value": 200},
]
OVERRIDES: dict[str, Any] = {
    "prize_tiers": TIERS,
    "daily_award_limit": 2,
    "milestone_valid_reports": [1, 2, 3, 5],
    "milestone_streak_weeks": 2,
}
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass(frozen=True)
class Who:
    """A citizen of the example: index i is openid o<i>."""

    district: str | None
    verified: bool


@dataclass(frozen=True)
class Report:
    """One report: who (None: anonymous), when (a distinct slot), category, verdict, and whether it is voided."""

    who: int | None
    slot: int
    category: str
    verdict: str | None
    void_after_hours: int | None


citizens_st = st.lists(st.builds(Who, st.sampled_from(DISTRICTS), st.booleans()), min_size=1, max_size=4)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Who], list[Report]]:
    people = draw(citizens_st)
    slots = draw(st.lists(st.integers(0, WEEKS * 7 * 12 - 1), unique=True, min_size=8, max_size=24))
    reports = []
    for slot in sorted(slots):
        verdict = draw(st.sampled_from(["valid", "valid", "valid", "invalid", None]))
        voided = draw(st.none() | st.none() | st.integers(1, 200)) if verdict == "valid" else None
        who = None if draw(st.integers(0, 9)) == 0 else draw(st.integers(0, len(people) - 1))  # None: anonymous
        reports.append(Report(who, slot, draw(st.sampled_from(list(POINTS))), verdict, voided))
    return people, reports


def when(slot: int) -> datetime:
    """Slot n: day n // 12 of the weeks, hour 07:00 + n % 12 (program time), distinct per slot."""
    return MONDAY + timedelta(days=slot // 12, hours=slot % 12 - 2)


@pytest.fixture
def world(db_engine: Engine, make_container: MakeContainer) -> Callable[[], Container]:
    """A fresh container per example: an emptied database, a private Redis key prefix, its own clock."""
    examples = itertools.count()

    def make() -> Container:
        wipe(db_engine)
        s = test_settings(leaderboard_key_prefix=f"{BASE.leaderboard_key_prefix}ms{next(examples)}", **OVERRIDES)
        return make_container(s, engine=db_engine, clock=FixedClock(MONDAY))

    return make


def run(c: Container, people: list[Who], reports: list[Report]) -> list[str]:
    """Carry the history out through the real flows, in time order, then close every finished week (returned)."""
    clock: FixedClock = c.clock  # type: ignore[assignment]
    events: list[tuple[datetime, int, Callable[[Any], object]]] = []
    for n, r in enumerate(reports):
        at, case_id = when(r.slot), f"LZ{n:04d}"
        reporter = None
        if r.who is not None:
            p = people[r.who]
            reporter = Reporter(f"o{r.who}", name=f"市民{r.who}", district=p.district, verified=p.verified)
        report = ReportCase(case_id, r.category, at, reporter=reporter)
        events.append((at, 0, lambda uow, report=report: c.flows.report(uow, report, ACTOR)))
        if r.verdict is not None:
            verdict = GiveVerdict(case_id, r.verdict, reason="核查")
            events.append((at + timedelta(minutes=5), 1, lambda uow, v=verdict: c.flows.verdict(uow, v, ACTOR)))
        if r.void_after_hours is not None:
            void = VoidCase(case_id, "摆拍")
            t = at + timedelta(minutes=5, hours=r.void_after_hours)
            events.append((t, 2, lambda uow, v=void: c.flows.void(uow, v, ACTOR)))
    for at, _, do in sorted(events, key=lambda e: (e[0], e[1])):
        clock.set(at)
        with c.uow() as uow:
            do(uow)
    clock.set(max(AFTER, max((e[0] for e in events), default=AFTER) + timedelta(days=8)))
    week, closed = FIRST, []
    while week < week_of(clock.now(), c.settings.tz):
        c.closer.close(week)
        closed.append(str(week))
        week = week.next()
    return closed


def model(people: list[Who], reports: list[Report], closed: list[str]) -> dict[int, dict[str, list[tuple[str, Any]]]]:
    """The definitions, brute force from the history itself: person index -> milestone key -> evidence."""
    tz = BASE.tz
    awards_on: dict[tuple[int, Any], int] = defaultdict(int)
    valid: dict[int, list[tuple[datetime, str, str]]] = defaultdict(list)
    lines: list[tuple[int, int, datetime]] = []  # (person, points, at)
    for n, r in enumerate(reports):
        if r.verdict != "valid" or r.who is None:
            continue
        at = when(r.slot) + timedelta(minutes=5)
        day = (r.who, local_day(at, tz))
        if awards_on[day] >= 2:
            continue  # the daily limit: filed as valid, earns nothing, never counts
        awards_on[day] += 1
        lines.append((r.who, POINTS[r.category], at))
        if r.void_after_hours is not None:
            lines.append((r.who, -POINTS[r.category], at + timedelta(hours=r.void_after_hours)))
        else:
            valid[r.who].append((at, f"LZ{n:04d}", str(week_of(at, tz))))
    week_pts: dict[tuple[str, int], int] = defaultdict(int)
    week_at: dict[tuple[str, int], datetime] = {}
    for who, pts, at in lines:
        key = (str(week_of(at, tz)), who)
        week_pts[key] += pts
        week_at[key] = max(week_at.get(key, at), at)

    def ranked(week: str, members: list[int]) -> list[int]:
        # the board's rule; the citizen id is the order of first report (ids are handed out in that order)
        first_seen = {who: i for i, who in enumerate(dict.fromkeys(r.who for r in reports if r.who is not None))}
        scored = [m for m in members if week_pts.get((week, m), 0) > 0]
        return sorted(
            scored, key=lambda m: (-week_pts[(week, m)], week_at[(week, m)].replace(microsecond=0), first_seen[m])
        )

    seen = {r.who for r in reports if r.who is not None}
    out: dict[int, dict[str, list[tuple[str, Any]]]] = {who: {} for who in seen}
    on_list: dict[int, list[str]] = defaultdict(list)
    for week in closed:
        for who in ranked(week, [p for p in seen if people[p].verified])[:2]:
            on_list[who].append(week)
        for district in DISTRICTS[:2]:
            top = ranked(week, [p for p in seen if people[p].district == district])
            if top:
                out[top[0]].setdefault("district_top", []).append((week, None))
    for who in seen:
        got = out[who]
        for n in (1, 2, 3, 5):
            if len(valid[who]) >= n:
                at, case_id, week = sorted(valid[who])[n - 1]
                got[f"valid_{n}"] = [(week, case_id)]
        weeks = on_list[who]
        if weeks:
            got["prize_first"] = [(weeks[0], None)]
        for a, b in itertools.pairwise(weeks):
            if IsoWeek.parse(a).next() == IsoWeek.parse(b):
                got["prize_streak_2"] = [(a, None), (b, None)]
                break
    return out


def state(c: Container, people: list[Who]) -> tuple[object, ...]:
    """Everything milestones must never change: standings, sealed lists, the ledger."""
    with c.read() as session:
        ledger = session.execute(select(func.count(LedgerEntry.id), func.sum(LedgerEntry.points))).one()
        lists = [load_closed_week(session, str(FIRST.next() if i else FIRST)) for i in range(2)]
    standings = []
    for i in range(len(people)):
        with c.read() as session:
            known = find_citizen(session, f"o{i}") is not None
        standings.append(c.leaderboard.standing(f"o{i}").model_dump() if known else None)
    return tuple(ledger), [(w.checksum, w.snapshot) for w in lists if w], standings


@PROPERTY
@given(history=histories())
def test_milestones_shown_iff_their_definition_holds_over_the_ledger(
    world: Callable[[], Container], history: tuple[list[Who], list[Report]]
) -> None:
    people, reports = history
    c = world()
    closed = run(c, people, reports)
    want = model(people, reports, closed)
    for key in sorted({k.rsplit("_", 1)[0] if k[-1].isdigit() else k for m in want.values() for k in m}):
        event(f"reached {key}")  # --hypothesis-show-statistics: the histories do reach every kind
    before = state(c, people)
    for who, expected in want.items():
        with c.read() as session:
            citizen = find_citizen(session, f"o{who}")
            assert citizen is not None
            got = c.milestones.progress(session, citizen)
        assert {r.key: [(e.week, e.case_id) for e in r.evidence] for r in got.reached} == expected, who
        announced = c.milestones.announce(f"o{who}", "m1")
        assert [r.key for r in announced] == [r.key for r in got.reached]
        assert c.milestones.announce(f"o{who}", "m2") == []  # mentioned once: a later reply is silent
    assert state(c, people) == before  # milestones never change points, ranks or prizes


def test_a_void_takes_a_milestone_away_but_not_its_notice(container: Container) -> None:
    c = container
    clock: FixedClock = c.clock  # type: ignore[assignment]
    me = Reporter("o-me", name="张三", district="城关区", verified=True)
    with c.uow() as uow:
        c.flows.report(uow, ReportCase("A1", "street_lamp", clock.now(), reporter=me), ACTOR)
        c.flows.verdict(uow, GiveVerdict("A1", "valid"), ACTOR)
    assert [r.key for r in c.milestones.announce("o-me", "k1")] == ["valid_1"]
    clock.advance(hours=1)
    with c.uow() as uow:
        c.flows.void(uow, VoidCase("A1", "摆拍"), ACTOR)
    with c.read() as session:
        citizen = find_citizen(session, "o-me")
        assert citizen is not None
        assert c.milestones.progress(session, citizen).reached == ()
        assert session.scalar(select(func.count(MilestoneNotice.id))) == 1
    clock.advance(hours=1)
    with c.uow() as uow:
        c.flows.report(uow, ReportCase("A2", "street_lamp", clock.now(), reporter=me), ACTOR)
        c.flows.verdict(uow, GiveVerdict("A2", "valid"), ACTOR)
    assert c.milestones.announce("o-me", "k2") == []  # reached again: already mentioned once
    assert c.milestones.announce("o-unknown", "k3") == []


def test_a_retry_of_the_same_message_mentions_the_same_news(container: Container) -> None:
    c = container
    me = Reporter("o-me", verified=True)
    with c.uow() as uow:
        c.flows.report(uow, ReportCase("B1", "street_lamp", c.clock.now(), reporter=me), ACTOR)
        c.flows.verdict(uow, GiveVerdict("B1", "valid"), ACTOR)
    first = [r.key for r in c.milestones.announce("o-me", "same-message")]
    assert first == ["valid_1"] == [r.key for r in c.milestones.announce("o-me", "same-message")]
    assert c.milestones.announce("o-me", "another-message") == []


def test_concurrent_replies_mention_a_milestone_once(pg_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(engine=pg_engine)
    me = Reporter("o-me", verified=True)
    with c.uow() as uow:
        c.flows.report(uow, ReportCase("C1", "manhole_cover", c.clock.now(), reporter=me), ACTOR)
        c.flows.verdict(uow, GiveVerdict("C1", "valid"), ACTOR)
    barrier = threading.Barrier(8)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def reply(n: int) -> None:
        try:
            barrier.wait()
            results.append([r.key for r in c.milestones.announce("o-me", f"message-{n}")])
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=reply, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [[]] * 7 + [["valid_1"]]
    with c.read() as session:
        citizen_id = session.scalar(select(Citizen.id).where(Citizen.openid == "o-me"))
        rows = session.scalars(select(MilestoneNotice).where(MilestoneNotice.citizen_id == citizen_id)).all()
    assert [r.milestone for r in rows] == ["valid_1"]
