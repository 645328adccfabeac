"""Anti-gaming rules as properties of the real service: PostgreSQL ledger, real Redis boards, the real flows.

* a banned citizen never holds a prize rank: not on any board's prize list, not in their standing, not in the
  weekly snapshot of close-week, however bans, unbans and awards interleave;
* a voided case's points are gone from every board (weekly, all-time, district) the way the ledger says:
  a void in the award's week leaves nothing that week, a later void lands in its own week; `rewards check` is
  clean afterwards;
* a citizen who reports the same problem twice earns once (and only the first reporter of a problem earns),
  whatever order the command center gives its verdicts in;
* the optional daily limit (off by default) is respected exactly: with it off every award counts, with it on
  exactly the first `limit` awards of each local day count.

Each example runs on an emptied database and its own Redis key prefix, against a simple model.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, SetBan, VoidCase
from rewards.cases.models import Citizen
from rewards.clock import FixedClock, IsoWeek, week_of
from rewards.errors import Conflict
from rewards.leaderboard import keys
from rewards.leaderboard.check import check
from rewards.leaderboard.ledger_standing import BANNED
from rewards.leaderboard.service import MAX_LIMIT
from rewards.scoring.ledger import total_for_citizen
from tests.conftest import MakeContainer, test_settings, wipe

ACTOR = Actor("validator-1", "console")
W47 = IsoWeek.parse("2026-W47")
TZ_SETTINGS = test_settings()
MONDAY = W47.start(TZ_SETTINGS.tz) + timedelta(hours=8)  # 08:00 on the Monday of 2026-W47, program time
AFTER = MONDAY + timedelta(days=14)  # when the weeks are closed and checked
POINTS = {"street_lamp": 1, "manhole_cover": 2}
DISTRICTS = ("城关区", "七里河区")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
_examples = itertools.count()


@pytest.fixture
def world(pg_engine: Engine, make_container: MakeContainer) -> Callable[..., Container]:
    """Builds a fresh container per example: an emptied database, a new Redis key prefix under this run's and its
    own clock."""
    base = TZ_SETTINGS.leaderboard_key_prefix

    def make(**overrides: Any) -> Container:
        wipe(pg_engine)
        s = test_settings(leaderboard_key_prefix=f"{base}ag{next(_examples)}", **overrides)
        return make_container(s, engine=pg_engine, clock=FixedClock(MONDAY))

    return make


@dataclass
class Program:
    """A running example: the container; citizen i is openid o<i>, in district DISTRICTS[i % 2]."""

    c: Container
    cases: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def clock(self) -> FixedClock:
        """The example's clock."""
        clock: FixedClock = self.c.clock  # type: ignore[assignment]
        return clock

    def report(
        self, who: int, category: str = "street_lamp", verified: bool = True, at: tuple[float, float] = (36.06, 103.83)
    ) -> str:
        """A citizen reports a problem now; return its case id."""
        case_id = f"AG-{next(self.cases)}"
        reporter = Reporter(f"o{who}", name=f"市民{who}号", verified=verified, district=DISTRICTS[who % 2])
        report = ReportCase(
            case_id, category, self.clock.now(), reporter, lat=at[0], lon=at[1], district=DISTRICTS[who % 2]
        )
        with self.c.uow() as uow:
            self.c.flows.report(uow, report, ACTOR)
        return case_id

    def verdict(self, case_id: str, verdict: str = "valid", duplicate_of: str | None = None) -> None:
        with self.c.uow() as uow:
            self.c.flows.verdict(uow, GiveVerdict(case_id, verdict, duplicate_of=duplicate_of), ACTOR)

    def award(self, who: int, category: str = "street_lamp", verified: bool = True) -> str:
        case_id = self.report(who, category, verified)
        self.verdict(case_id)
        return case_id

    def void(self, case_id: str) -> None:
        with self.c.uow() as uow:
            self.c.flows.void(uow, VoidCase(case_id, "摆拍"), ACTOR)

    def ban(self, who: int, banned: bool) -> None:
        with self.c.uow() as uow:
            self.c.flows.set_banned(uow, SetBan(f"o{who}", banned, "刷分" if banned else "申诉通过"), ACTOR)

    def ids(self) -> dict[str, int]:
        """Citizen id by openid."""
        with self.c.read() as s:
            return {o: i for o, i in s.execute(select(Citizen.openid, Citizen.id))}


def board_points(c: Container, kind: str, week: str | None = None, district: str | None = None) -> dict[str, int]:
    """openid -> points on a board (every row)."""
    ids = {v: k for k, v in Program(c).ids().items()}
    raw = c.boards.page(_board_name(kind, week, district), 0, 10_000)
    return {ids[r.citizen_id]: r.points for r in raw.rows}


def _board_name(kind: str, week: str | None, district: str | None) -> str:
    if kind == "all-time":
        return keys.ALL_TIME
    assert week is not None
    return keys.district_weekly(week, district) if district else keys.weekly(week)


def openid_of(c: Container, citizen_id: int) -> str:
    with c.read() as s:
        return str(s.scalar(select(Citizen.openid).where(Citizen.id == citizen_id)))


# -- a banned citizen never holds a prize rank ---------------------------------------------------------------------

steps_ban = st.lists(
    st.one_of(
        st.tuples(st.just("award"), st.integers(0, 5), st.sampled_from(sorted(POINTS))),
        st.tuples(st.just("ban"), st.integers(0, 5), st.booleans()),
    ),
    min_size=1,
    max_size=24,
)


@PROPERTY
@given(
    steps=steps_ban,
    final_bans=st.sets(st.integers(0, 5), max_size=3),
    unverified=st.sets(st.integers(0, 5), max_size=2),
    last_place=st.integers(1, 4),
)
def test_a_banned_citizen_never_holds_a_prize_rank(
    world: Any, steps: list[tuple[Any, ...]], final_bans: set[int], unverified: set[int], last_place: int
) -> None:
    tiers = [{"first": 1, "last": 1, "name": "一等奖", "value": 500}]
    if last_place > 1:
        tiers.append({"first": 2, "last": last_place, "name": "二等奖", "value": 100})
    c = world(prize_tiers=tiers)
    p = Program(c)
    known: set[int] = set()
    for step in [*steps, *(("ban", who, True) for who in sorted(final_bans))]:
        p.clock.advance(minutes=37)
        if step[0] == "award":
            p.award(step[1], step[2], verified=step[1] not in unverified)
            known.add(step[1])
        elif step[1] in known:
            p.ban(step[1], step[2])
    with c.read() as s:
        people = {
            cid: (o, v and not b, b)
            for cid, o, v, b in s.execute(select(Citizen.id, Citizen.openid, Citizen.verified, Citizen.banned))
        }
    banned = {o for o, _, b in people.values() if b}
    week = str(W47)
    for kind, district in (("weekly", None), *(("district-weekly", d) for d in DISTRICTS)):
        raw = c.boards.page(_board_name(kind, week, district), 0, 1000).rows
        for row in raw:  # the board's own idea of eligibility must be the database's
            openid, eligible, _ = people[row.citizen_id]
            assert row.eligible == eligible and (row.prize_rank is None) == (not eligible), (openid, row)
        page = c.leaderboard.page(kind, week=W47, district=district, limit=MAX_LIMIT)
        ranks = [r.prize_rank for r in page.rows if r.prize_rank is not None]
        assert all(r.eligible for r in page.rows if r.prize_rank is not None or r.tier is not None)
        if kind == "weekly":  # city-wide prize ranks: 1..n over the eligible, in board order
            assert ranks == list(range(1, len(ranks) + 1))
    for openid in {f"o{i}" for i in known}:
        standing = c.leaderboard.standing(openid, week=W47)
        if openid in banned:
            assert standing.prize_rank is None and standing.tier is None and standing.points_to_prize is None
            assert standing.eligibility_note == BANNED
    # the week closes: the snapshot holds eligible citizens only, and agrees with the eligible board
    p.clock.set(AFTER)
    closed = c.closer.close(W47)
    winners = [people[row.citizen_id] for row in closed.snapshot.rows]
    assert all(eligible for _, eligible, _ in winners)
    on_board = sum(1 for o, eligible, _ in people.values() if eligible and int(o[1:]) in known)
    assert len(winners) == min(last_place, on_board)
    assert closed.board_status == "match", closed.board_diff


# -- a voided case's points are gone from every board --------------------------------------------------------------

steps_void = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.sampled_from(sorted(POINTS)),
        st.integers(0, 3 * 24 * 60),
        st.one_of(st.none(), st.integers(0, 10 * 24 * 60)),
    ),
    min_size=1,
    max_size=14,
)


@PROPERTY
@given(awards=steps_void)
def test_a_voided_cases_points_are_gone_from_every_board(
    world: Any, awards: list[tuple[int, str, int, int | None]]
) -> None:
    c = world()
    p = Program(c)
    tz = c.settings.tz
    # (minute, action, payload) in time order: awards at their minute, voids `delay` minutes later
    timeline: list[tuple[int, int, str, Any]] = []
    for i, (_, _, minute, delay) in enumerate(awards):
        timeline.append((minute, 0, "award", i))
        if delay is not None:
            timeline.append((minute + delay, 1, "void", i))
    model: dict[tuple[str, str | None], int] = defaultdict(int)  # (openid, week or None for all-time) -> points
    case_of: dict[int, str] = {}
    for minute, _, action, i in sorted(timeline):
        who, category, *_ = awards[i]
        p.clock.set(MONDAY + timedelta(minutes=minute))
        week = str(week_of(p.clock.now(), tz))
        points = POINTS[category] if action == "award" else -POINTS[category]
        if action == "award":
            case_of[i] = p.award(who, category)
        else:
            p.void(case_of[i])
            p.void(case_of[i])  # a replayed void changes nothing
        model[(f"o{who}", week)] += points
        model[(f"o{who}", None)] += points
    weeks = {w for _, w in model if w is not None}
    for week in weeks:
        expected = {o: pts for (o, w), pts in model.items() if w == week and pts > 0}
        assert board_points(c, "weekly", week) == expected
        for d in DISTRICTS:
            in_district = {o: pts for o, pts in expected.items() if DISTRICTS[int(o[1:]) % 2] == d}
            assert board_points(c, "district-weekly", week, d) == in_district
    all_time = {o: pts for (o, w), pts in model.items() if w is None and pts > 0}
    assert board_points(c, "all-time") == all_time
    # every citizen's total is the points of their cases that were not voided
    kept: dict[str, int] = defaultdict(int)
    for who, category, _, delay in awards:
        kept[f"o{who}"] += POINTS[category] if delay is None else 0
    ids = p.ids()
    with c.read() as s:
        assert {o: total_for_citizen(s, ids[o]) for o in kept} == dict(kept)
    assert {o: pts for o, pts in kept.items() if pts > 0} == all_time
    report = check(c.db, c.boards)
    assert report.clean, report.differences


# -- the same problem reported twice earns once -------------------------------------------------------------------


@PROPERTY
@given(
    reports=st.lists(st.integers(0, 3), min_size=1, max_size=7),  # who reports the same problem, in time order
    order=st.randoms(use_true_random=False),
    other=st.booleans(),
)
def test_the_same_problem_reported_again_earns_once(world: Any, reports: list[int], order: Any, other: bool) -> None:
    c = world()
    p = Program(c)
    case_ids = []
    for n, who in enumerate(reports):
        p.clock.advance(minutes=5)
        case_ids.append(p.report(who, "manhole_cover", at=(36.06 + n * 1e-5, 103.83)))  # the same well, metres apart
    first, later = case_ids[0], case_ids[1:]
    if other:  # the first reporter also reports a different problem, which counts on its own
        p.clock.advance(minutes=5)
        p.verdict(p.report(reports[0], "street_lamp", at=(36.5, 103.5)))
    verdicts = [(first, "valid", None)] + [(cid, "duplicate", first) for cid in later]
    order.shuffle(verdicts)
    for case_id, verdict, dup in verdicts:
        p.clock.advance(minutes=1)
        p.verdict(case_id, verdict, dup)
    for case_id, verdict, dup in verdicts:  # replayed verdicts change nothing
        p.verdict(case_id, verdict, dup)
    for cid in later:  # naming a later report as the original is refused
        with pytest.raises(Conflict):
            p.verdict(first, "duplicate", cid)
    expected = {f"o{who}": 0 for who in reports}
    expected[f"o{reports[0]}"] = POINTS["manhole_cover"] + (POINTS["street_lamp"] if other else 0)
    ids = p.ids()
    with c.read() as s:
        assert {o: total_for_citizen(s, ids[o]) for o in expected} == expected
    assert board_points(c, "all-time") == {o: pts for o, pts in expected.items() if pts > 0}
    assert board_points(c, "weekly", str(W47)) == {o: pts for o, pts in expected.items() if pts > 0}


# -- the optional daily limit --------------------------------------------------------------------------------------


@PROPERTY
@given(
    limit=st.one_of(st.none(), st.integers(1, 3)),
    awards=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3 * 24 * 60 - 1)), min_size=1, max_size=16),
)
def test_the_daily_limit_is_respected_exactly_when_on(
    world: Any, limit: int | None, awards: list[tuple[int, int]]
) -> None:
    c = world(daily_award_limit=limit)
    p = Program(c)
    tz = c.settings.tz
    earned: dict[tuple[str, Any], int] = defaultdict(int)  # (openid, local day) -> awards that counted
    expected: dict[str, int] = defaultdict(int)
    for who, minute in sorted(awards, key=lambda a: a[1]):
        p.clock.set(MONDAY - timedelta(hours=8) + timedelta(minutes=minute))  # from local midnight, across days
        day = p.clock.now().astimezone(tz).date()
        p.award(who, "manhole_cover")
        if limit is None or earned[(f"o{who}", day)] < limit:
            earned[(f"o{who}", day)] += 1
            expected[f"o{who}"] += POINTS["manhole_cover"]
        else:
            expected[f"o{who}"] += 0
    if limit is None:  # off by default: no cap at all
        assert sum(expected.values()) == POINTS["manhole_cover"] * len(awards)
    ids = p.ids()
    with c.read() as s:
        assert {o: total_for_citizen(s, ids[o]) for o in expected} == dict(expected)
    assert board_points(c, "all-time") == {o: pts for o, pts in expected.items() if pts > 0}
    assert all(n <= (limit or n) for n in earned.values())
