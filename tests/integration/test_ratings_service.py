"""Satisfaction ratings on real PostgreSQL/SQLite and Redis: the service, the figures, the optional award.

Properties compare the service with brute force over random histories: which ratings are accepted (and why the
others are refused, with nothing written), the counts and rates `satisfaction_counts` returns, and the award
rule when an operator turns it on (once per case, capped per day) or leaves it off (never).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import AuditEntry, Case, Citizen
from rewards.clock import FixedClock
from rewards.engagement import rating_rules as rules
from rewards.engagement.ratings import CaseRating, satisfaction_by, satisfaction_counts
from rewards.errors import DomainError
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import RULE_RATING_AWARD, NoAward
from tests.conftest import START, MakeContainer, test_settings, wipe

CITY = Actor("city-case-system", "intake")
SHANGHAI = timedelta(hours=8)
FUNCTION_FIXTURES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=15)


def handled_case(
    c: Container,
    case_id: str,
    openid: str,
    *,
    final: str = "resolved",
    district: str = "城关区",
    department: str = "市政所",
) -> None:
    """Report, file, dispatch and resolve (or close) a case through the flows, ending a minute ago."""
    now = c.clock.now()
    with c.uow() as uow:
        report = ReportCase(case_id, "street_lamp", now - timedelta(hours=3), Reporter(openid), district=district)
        c.flows.report(uow, report, CITY)
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict(case_id, "valid", occurred_at=now - timedelta(hours=2)), CITY)
    steps = ["dispatched", "resolved"] + (["closed"] if final == "closed" else [])
    for i, status in enumerate(steps):
        with c.uow() as uow:
            when = now - timedelta(minutes=len(steps) - i)
            c.flows.change_status(uow, ChangeStatus(case_id, status, when, department=department), CITY)


def written(c: Container) -> tuple[int, int, int]:
    """Rows that a rating could write: ratings, ledger lines, audit lines."""
    with c.read() as s:
        return (
            s.scalar(select(func.count(CaseRating.id))) or 0,
            s.scalar(select(func.count(LedgerEntry.id))) or 0,
            s.scalar(select(func.count(AuditEntry.id))) or 0,
        )


def test_a_rating_is_recorded_once_with_the_case_facts(container: Container) -> None:
    c = container
    handled_case(c, "LZ1", "o-zhang", final="closed", district="七里河区", department="环卫处")
    result = c.ratings.rate("o-zhang", "LZ1", "不满意", "  垃圾仍未清走  ", rules.CHANNEL_API)
    assert (result.level, result.label, result.comment, result.followup, result.points) == (
        "unsatisfied",
        "不满意",
        "垃圾仍未清走",
        True,
        0,
    )
    with c.read() as s:
        row = s.scalars(select(CaseRating)).one()
        assert (row.district, row.department, row.case_status, row.channel) == ("七里河区", "环卫处", "closed", "api")
        ledger = s.scalars(select(LedgerEntry.rule)).all()
    assert ledger == ["valid_report"]  # the rating itself earns nothing while the award is off
    before = written(c)
    with pytest.raises(DomainError) as twice:
        c.ratings.rate("o-zhang", "LZ1", "满意", None, rules.CHANNEL_ME)
    assert (twice.value.status, twice.value.code) == (409, "already_rated")
    assert written(c) == before


@pytest.mark.parametrize(
    ("case_id", "openid", "level", "comment", "move", "status", "code"),
    [
        ("LZ1", "o-li", "满意", None, 0, 403, "not_your_case"),
        ("LZ1", "o-nobody", "满意", None, 0, 403, "not_your_case"),
        ("LZ2", "o-zhang", "满意", None, 0, 409, "not_rateable_yet"),
        ("LZ1", "o-zhang", "满意", None, 7 * 24 * 60, 409, "rating_window_closed"),
        ("LZ-NONE", "o-zhang", "满意", None, 0, 404, "unknown_case"),
        ("LZ1", "o-zhang", "很好", None, 0, 422, "invalid_rating"),
        ("LZ1", "o-zhang", "不满意", "太" * 201, 0, 422, "comment_too_long"),
    ],
)
def test_refusals_have_a_reason_and_write_nothing(
    container: Container,
    clock: FixedClock,
    case_id: str,
    openid: str,
    level: str,
    comment: str | None,
    move: int,
    status: int,
    code: str,
) -> None:
    c = container
    handled_case(c, "LZ1", "o-zhang")
    handled_case(c, "LI1", "o-li")
    with c.uow() as uow:  # filed and dispatched, not resolved yet
        c.flows.report(uow, ReportCase("LZ2", "street_lamp", clock.now(), Reporter("o-zhang")), CITY)
        c.flows.verdict(uow, GiveVerdict("LZ2", "valid"), CITY)
    clock.advance(minutes=move)
    before = written(c)
    with pytest.raises(DomainError) as refused:
        c.ratings.rate(openid, case_id, level, comment, rules.CHANNEL_API)
    assert (refused.value.status, refused.value.code) == (status, code) and refused.value.message
    assert written(c) == before


def test_a_case_sent_back_and_resolved_again_opens_a_new_window(container: Container, clock: FixedClock) -> None:
    c = container
    handled_case(c, "LZ1", "o-zhang")
    clock.advance(days=6)
    with c.uow() as uow:
        c.flows.change_status(uow, ChangeStatus("LZ1", "processing", clock.now()), CITY)
    with pytest.raises(DomainError, match="resolved or closed"):
        c.ratings.rate("o-zhang", "LZ1", "满意", None, rules.CHANNEL_ME)
    clock.advance(days=1)
    with c.uow() as uow:
        c.flows.change_status(uow, ChangeStatus("LZ1", "resolved", clock.now()), CITY)
    clock.advance(days=6)  # 13 days after the first resolution, 6 after the second
    assert c.ratings.rate("o-zhang", "LZ1", "基本满意", None, rules.CHANNEL_ME).level == "basic"


# --- the figures: brute force over random histories ----------------------------------------------------------

DISTRICTS = ("城关区", "七里河区", None)
DEPARTMENTS = ("市政所", "环卫处", None)


@dataclass(frozen=True)
class Seeded:
    """A case as the property seeds it."""

    case_id: str
    reporter: int
    status: str
    status_at: datetime
    district: str | None
    department: str | None


def seed(c: Container, cases: list[Seeded], citizens: int) -> None:
    """Citizens and cases written directly (the property is about ratings, not the case flows)."""
    with c.uow() as uow:
        s = uow.session
        ids = []
        for n in range(citizens):
            citizen = Citizen(openid=f"o-{n}", created_at=START, updated_at=START)
            s.add(citizen)
            s.flush()
            ids.append(citizen.id)
        for case in cases:
            s.add(
                Case(
                    case_id=case.case_id,
                    reporter_id=ids[case.reporter],
                    category="street_lamp",
                    status=case.status,
                    status_at=case.status_at,
                    verdict="valid",
                    district=case.district,
                    department=case.department,
                    reported_at=START - timedelta(days=30),
                    updated_at=case.status_at,
                )
            )


seeded_cases = st.lists(
    st.tuples(
        st.integers(0, 2),  # reporter
        st.sampled_from(["resolved", "closed", "processing", "dispatched"]),
        st.integers(0, 20 * 24),  # hours after START the case entered its status
        st.sampled_from(DISTRICTS),
        st.sampled_from(DEPARTMENTS),
    ),
    min_size=1,
    max_size=8,
)
attempts = st.lists(
    st.tuples(
        st.integers(0, 7),  # which case (modulo)
        st.integers(0, 2),  # who rates
        st.sampled_from(rules.LEVELS),
        st.booleans(),  # with a comment
        st.integers(0, 30 * 24),  # hours after START
    ),
    max_size=14,
)


@FUNCTION_FIXTURES
@given(
    cases=seeded_cases,
    tries=attempts,
    window=st.tuples(st.integers(0, 30 * 24), st.integers(0, 30 * 24)),
    district=st.sampled_from(DISTRICTS),
    department=st.sampled_from(DEPARTMENTS),
)
def test_counts_and_rates_equal_brute_force(
    db_engine: Engine,
    make_container: MakeContainer,
    cases: list[tuple[int, str, int, str | None, str | None]],
    tries: list[tuple[int, int, str, bool, int]],
    window: tuple[int, int],
    district: str | None,
    department: str | None,
) -> None:
    wipe(db_engine)
    clock = FixedClock(START)
    c = make_container(engine=db_engine, clock=clock)
    seeded = [
        Seeded(f"C{i}", who, status, START + timedelta(hours=h), d, dep)
        for i, (who, status, h, d, dep) in enumerate(cases)
    ]
    seed(c, seeded, 3)
    accepted: list[tuple[Seeded, str, datetime]] = []
    rated: set[str] = set()
    for which, who, level, commented, hours in sorted(tries, key=lambda t: t[4]):
        case = seeded[which % len(seeded)]
        clock.set(START + timedelta(hours=hours))
        now = clock.now()
        # the model: the same order of checks the rules state
        if who != case.reporter:
            want = "not_your_case"
        elif case.case_id in rated:
            want = "already_rated"
        elif case.status not in ("resolved", "closed"):
            want = "not_rateable_yet"
        elif not case.status_at <= now < case.status_at + timedelta(days=7):
            want = "rating_window_closed"
        else:
            want = None
        comment = "处理不及时" if commented else None
        try:
            c.ratings.rate(f"o-{who}", case.case_id, level, comment, rules.CHANNEL_API)
        except DomainError as exc:
            assert exc.code == want
            continue
        assert want is None
        rated.add(case.case_id)
        accepted.append((case, level, now))
    since = START + timedelta(hours=min(window))
    until = START + timedelta(hours=max(window))
    brute = Counter(
        level
        for case, level, at in accepted
        if since <= at < until
        and (district is None or case.district == district)
        and (department is None or case.department == department)
    )
    with c.read() as s:
        got = satisfaction_counts(s, since=since, until=until, district=district, department=department)
        per_district = satisfaction_by(s, since=since, until=until, by="district")
        everything = satisfaction_counts(s, since=START, until=START + timedelta(days=60))
    assert tuple(got) == (brute["satisfied"], brute["basic"], brute["unsatisfied"])
    total = sum(brute.values())
    assert got.total == total
    assert got.rate == (None if total == 0 else (brute["satisfied"] + brute["basic"]) / total)
    for key, counts in per_district.items():
        in_key = Counter(level for case, level, at in accepted if since <= at < until and case.district == key)
        assert tuple(counts) == (in_key["satisfied"], in_key["basic"], in_key["unsatisfied"])
    assert sum(counts.total for counts in per_district.values()) == sum(
        1 for _, _, at in accepted if since <= at < until
    )
    assert everything.total == len(accepted)


# --- the optional award -------------------------------------------------------------------------------------


def local_day(at: datetime) -> object:
    return (at.astimezone(UTC) + SHANGHAI).date()


@FUNCTION_FIXTURES
@given(
    on=st.booleans(),
    hours=st.lists(st.integers(0, 72), min_size=1, max_size=8),
)
def test_the_award_is_once_per_case_capped_per_day_and_never_when_off(
    db_engine: Engine, make_container: MakeContainer, on: bool, hours: list[int]
) -> None:
    wipe(db_engine)
    points, cap = (3, 2) if on else (0, 2)
    clock = FixedClock(START)
    c = make_container(
        test_settings(rating_award_points=points, rating_award_daily_cap=cap), engine=db_engine, clock=clock
    )
    seeded = [Seeded(f"A{i}", 0, "resolved", START, None, None) for i in range(len(hours))]
    seed(c, seeded, 1)
    given_on: list[datetime] = []
    per_day: Counter[object] = Counter()
    for case, h in zip(seeded, sorted(hours), strict=True):
        clock.set(START + timedelta(hours=h))
        result = c.ratings.rate("o-0", case.case_id, "满意", None, rules.CHANNEL_ME)
        day = local_day(clock.now())
        earns = on and per_day[day] < cap
        assert result.points == (points if earns else 0)
        if earns:
            per_day[day] += 1
            given_on.append(clock.now())
        assert (result.award_note is not None) == (on and not earns)
    with c.read() as s:
        lines = s.execute(
            select(LedgerEntry.case_pk, LedgerEntry.points, LedgerEntry.reason).where(
                LedgerEntry.rule == RULE_RATING_AWARD
            )
        ).all()
        total = s.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0)))
    assert len(lines) == len(given_on) and all(p == points for _, p, _ in lines)
    assert len({pk for pk, _, _ in lines}) == len(lines)  # one line per case
    assert all(reason.startswith("评价举报 A") for _, _, reason in lines)  # explained in "my points"
    assert total == points * len(given_on)
    if not on:
        assert lines == []
    # idempotent: asking the ledger again for a case already awarded writes nothing
    if lines:
        with c.uow() as uow:
            case = uow.session.get(Case, lines[0][0])
            assert case is not None
            again = c.scoring.award_rating(uow, case, case.reporter_id or 0)
        assert again is None or isinstance(again, NoAward)
        with c.read() as s:
            assert s.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.rule == RULE_RATING_AWARD)) == len(
                lines
            )


def test_the_award_counts_apart_from_the_daily_report_limit_and_is_reversed_with_a_void(
    db_engine: Engine, make_container: MakeContainer, clock: FixedClock
) -> None:
    c = make_container(
        test_settings(rating_award_points=2, rating_award_daily_cap=5, daily_award_limit=2), engine=db_engine
    )
    handled_case(c, "LZ1", "o-zhang")
    assert c.ratings.rate("o-zhang", "LZ1", "满意", None, rules.CHANNEL_WECHAT).points == 2
    clock.advance(minutes=5)
    handled_case(c, "LZ2", "o-zhang")  # same day: the limit of 2 counts valid reports only, not the rating award
    handled_case(c, "LZ3", "o-zhang")  # the third valid report of the day is over the limit
    with c.read() as s:
        rules_written = s.scalars(select(LedgerEntry.rule).order_by(LedgerEntry.id)).all()
    assert rules_written == ["valid_report", "rating_award", "valid_report"]
    with c.uow() as uow:
        c.flows.void(uow, VoidCase("LZ1", "摆拍", clock.now()), CITY)
    with c.read() as s:
        case_pk = s.scalar(select(Case.id).where(Case.case_id == "LZ1"))
        net = s.scalar(select(func.sum(LedgerEntry.points)).where(LedgerEntry.case_pk == case_pk))
    assert net == 0
