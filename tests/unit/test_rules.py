"""Properties of the pure scoring rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.scoring.model import (
    RULE_VALID_REPORT,
    RULE_VOID_REVERSAL,
    AwardDecision,
    CaseFacts,
    CategoryRule,
    CitizenFacts,
    NoAward,
    RuleSettings,
)
from rewards.scoring.rules import (
    ANONYMOUS,
    DAILY_LIMIT,
    SNAPSHOT_USER,
    ZERO_CATEGORY,
    award_on_filing,
    points_for_category,
    reversal_on_void,
)

T0 = datetime(2026, 11, 25, tzinfo=UTC)
categories = st.dictionaries(st.sampled_from(["lamp", "bin", "ad", "road", "zero"]), st.integers(0, 5), min_size=1)
citizens = st.builds(CitizenFacts, st.integers(1, 10_000), st.booleans(), st.booleans(), st.booleans())


def rules_of(table: dict[str, int], daily_award_limit: int | None = None) -> RuleSettings:
    """The rule settings of a category -> points table."""
    categories = tuple(CategoryRule(code, code, "group", points) for code, points in table.items())
    return RuleSettings(categories, daily_award_limit=daily_award_limit)


def case(category: str, reporter: CitizenFacts | None, pk: int = 1) -> CaseFacts:
    return CaseFacts(pk, f"C{pk}", category, reporter, T0)


@given(categories, st.sampled_from(["lamp", "bin", "ad", "road", "zero", "unknown"]), citizens, st.integers(0, 50))
def test_award_is_category_points_or_nothing_never_negative(table, category, reporter, today) -> None:
    rules = rules_of(table)
    decision = award_on_filing(case(category, reporter), rules, today)
    if isinstance(decision, AwardDecision):
        assert decision.points == table[category] > 0
        assert decision.rule == RULE_VALID_REPORT
        assert decision.citizen_id == reporter.citizen_id
    else:
        assert reporter.snapshot_user or points_for_category(category, rules) == 0


@given(categories, st.sampled_from(["lamp", "bin", "ad", "road", "zero"]), st.integers(0, 50))
def test_anonymous_reports_earn_nothing(table, category, today) -> None:
    assert award_on_filing(case(category, None), rules_of(table), today) == NoAward(ANONYMOUS)


def test_there_is_no_switch_that_lets_anonymous_reports_earn() -> None:
    with pytest.raises(TypeError, match="anonymous_earns"):
        RuleSettings((CategoryRule("lamp", "路灯", "市政", 1),), anonymous_earns=True)  # type: ignore[call-arg]


@given(citizens)
def test_snapshot_users_earn_nothing(reporter) -> None:
    reporter = CitizenFacts(reporter.citizen_id, reporter.verified, reporter.banned, snapshot_user=True)
    assert award_on_filing(case("lamp", reporter), rules_of({"lamp": 1}), 0) == NoAward(SNAPSHOT_USER)


def test_zero_point_category_earns_nothing() -> None:
    reporter = CitizenFacts(1, True, False)
    assert award_on_filing(case("zero", reporter), rules_of({"zero": 0}), 0) == NoAward(ZERO_CATEGORY)


@given(st.integers(1, 20), st.integers(0, 40))
def test_daily_limit_is_respected_exactly_when_switched_on(limit, today) -> None:
    reporter = CitizenFacts(1, True, False)
    on = award_on_filing(case("lamp", reporter), rules_of({"lamp": 1}, daily_award_limit=limit), today)
    off = award_on_filing(case("lamp", reporter), rules_of({"lamp": 1}), today)
    assert isinstance(off, AwardDecision)  # off by default: no cap, however many today
    assert (on == NoAward(DAILY_LIMIT)) == (today >= limit)


@given(st.integers(1, 5000), st.integers(1, 7))
def test_no_cap_total_grows_with_every_valid_case(n_cases, points) -> None:
    reporter = CitizenFacts(7, True, False)
    rules = rules_of({"lamp": points})
    total = 0
    for pk in range(1, min(n_cases, 300) + 1):
        decision = award_on_filing(case("lamp", reporter, pk), rules, awards_today=pk - 1)
        assert isinstance(decision, AwardDecision)
        total += decision.points
    assert total == points * min(n_cases, 300)


@given(st.lists(st.integers(-5, 5), max_size=4))
def test_reversal_nets_a_case_to_zero_once(points) -> None:
    lines = [(3, f"r{i}", p) for i, p in enumerate(points)]
    reversal = reversal_on_void(9, "C9", lines)
    net = sum(points)
    if net == 0:
        assert reversal is None
    else:
        assert reversal is not None
        assert reversal.rule == RULE_VOID_REVERSAL
        assert net + reversal.points == 0
        again = reversal_on_void(9, "C9", [*lines, (3, reversal.rule, reversal.points)])
        assert again is None  # replaying a void writes nothing more


@given(st.integers(1, 5))
def test_award_then_void_nets_zero(points) -> None:
    reporter = CitizenFacts(2, True, False)
    award = award_on_filing(case("lamp", reporter), rules_of({"lamp": points}), 0)
    assert isinstance(award, AwardDecision)
    reversal = reversal_on_void(1, "C1", [(award.citizen_id, award.rule, award.points)])
    assert reversal is not None
    assert reversal.points < 0  # only reversals are negative
    assert award.points + reversal.points == 0
    assert reversal.citizen_id == award.citizen_id
