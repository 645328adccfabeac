"""Satisfaction ratings, the pure rules: who may rate what until when, the WeChat command, the rate, the award."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.cases.lifecycle import CLOSED, RESOLVED, STATUSES
from rewards.config import load_settings
from rewards.engagement import rating_rules as rules
from rewards.errors import BadRequest, Conflict, DomainError, Forbidden, Invalid
from rewards.program import Program
from rewards.scoring.model import RULE_RATING_AWARD, AwardDecision, NoAward
from rewards.scoring.rules import award_on_rating
from rewards.scoring.service import rule_settings

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def expected_refusal(own: bool, rated: bool, status: str, since: datetime, now: datetime, days: int) -> str | None:
    """The refusal a brute-force reading of the rules gives (None: the rating is accepted)."""
    if not own:
        return "not_your_case"
    if rated:
        return "already_rated"
    if status not in ("resolved", "closed"):
        return "not_rateable_yet"
    if not (since <= now < since + timedelta(days=days)):
        return "rating_window_closed"
    return None


@given(
    own=st.booleans(),
    rated=st.booleans(),
    status=st.sampled_from(STATUSES),
    offset_minutes=st.integers(-3 * 24 * 60, 40 * 24 * 60),
    days=st.integers(1, 30),
)
def test_check_rateable_matches_the_rules(own: bool, rated: bool, status: str, offset_minutes: int, days: int) -> None:
    now = T0 + timedelta(minutes=offset_minutes)
    want = expected_refusal(own, rated, status, T0, now, days)
    if want is None:
        rules.check_rateable(own=own, already_rated=rated, status=status, status_at=T0, now=now, window_days=days)
        assert rules.rateable_now(status, T0, now, days)
        return
    with pytest.raises(DomainError) as caught:
        rules.check_rateable(own=own, already_rated=rated, status=status, status_at=T0, now=now, window_days=days)
    assert caught.value.code == want and 400 <= caught.value.status < 500 and caught.value.message
    assert rules.refusal_text(want) != rules.refusal_text("some_other_code")  # a Chinese reason of its own
    if own and not rated:
        assert not rules.rateable_now(status, T0, now, days)


def test_window_edges_and_statuses() -> None:
    for status in (RESOLVED, CLOSED):
        assert rules.rateable_now(status, T0, T0 + timedelta(days=7) - timedelta(seconds=1), 7)
        assert not rules.rateable_now(status, T0, T0 + timedelta(days=7), 7)
    with pytest.raises(Forbidden):
        rules.check_rateable(own=False, already_rated=True, status="reported", status_at=T0, now=T0, window_days=7)
    with pytest.raises(Conflict, match="already"):
        rules.check_rateable(own=True, already_rated=True, status="reported", status_at=T0, now=T0, window_days=7)


@given(level=st.sampled_from(rules.LEVELS), by_label=st.booleans(), pad=st.sampled_from(["", " ", "\u3000"]))
def test_levels_parse_from_code_or_label(level: str, by_label: bool, pad: str) -> None:
    text = rules.LEVEL_LABELS[level] if by_label else level
    assert rules.parse_level(pad + text + pad) == level


@given(
    st.text(max_size=12).filter(
        lambda s: s.strip() not in rules.LEVELS and s.strip() not in ("满意", "基本满意", "不满意")
    )
)
def test_anything_else_is_not_a_level(text: str) -> None:
    with pytest.raises(Invalid) as caught:
        rules.parse_level(text)
    assert caught.value.code == "invalid_rating"


@given(st.text(max_size=260))
def test_comments_are_kept_trimmed_or_refused(text: str) -> None:
    try:
        kept = rules.clean_comment(text, 200)
    except Invalid as exc:
        assert exc.code in ("comment_too_long", "bad_comment")
        assert len(text.strip()) > 200 or exc.code == "bad_comment"
        return
    assert kept == (text.strip() or None)
    assert kept is None or len(kept) <= 200


case_ids = st.from_regex(r"[A-Za-z0-9-]{1,64}", fullmatch=True)
comments = st.none() | st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=40
)


@given(
    case_id=case_ids, level=st.sampled_from(rules.LEVELS), comment=comments, sep=st.sampled_from([" ", "\u3000", "  "])
)
def test_the_wechat_command_round_trips(case_id: str, level: str, comment: str | None, sep: str) -> None:
    text = sep.join(["评价", case_id, rules.LEVEL_LABELS[level]] + ([comment] if comment else []))
    assert rules.parse_wechat_rating(text) == rules.RatingCommand(case_id, level, comment)


@pytest.mark.parametrize("text", ["评价", "评价 LZ1", "评价 LZ1 很好", "评价  满意", "评价 " + "X" * 65 + " 满意"])
def test_a_malformed_wechat_command_gets_the_usage(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        rules.parse_wechat_rating(text)
    assert caught.value.code == "bad_rating_command" and "评价 案件号 满意" in rules.refusal_text("bad_rating_command")


@pytest.mark.parametrize("text", ["排名", "积分", "你好", "", "我要评价"])
def test_other_messages_are_not_ratings(text: str) -> None:
    assert rules.parse_wechat_rating(text) is None


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_the_rate_is_satisfied_and_basic_over_all(a: int, b: int, c: int) -> None:
    rate = rules.satisfaction_rate(a, b, c)
    if a + b + c == 0:
        assert rate is None
    else:
        assert rate is not None and rate * (a + b + c) == pytest.approx(a + b)


def test_only_unsatisfied_with_a_comment_is_a_follow_up() -> None:
    assert rules.is_followup(rules.UNSATISFIED, "还没修")
    assert not rules.is_followup(rules.UNSATISFIED, None)
    assert not rules.is_followup(rules.BASIC, "一般")


# --- the optional award: a ledger rule like any other --------------------------------------------------------


@given(points=st.integers(0, 10), cap=st.integers(1, 5), today=st.integers(0, 8))
def test_the_award_is_never_given_when_off_and_capped_per_day(points: int, cap: int, today: int) -> None:
    settings = rule_settings(load_settings(rating_award_points=points, rating_award_daily_cap=cap))
    decision = award_on_rating(9, "LZ9", 3, settings, today)
    if points == 0 or today >= cap:
        assert isinstance(decision, NoAward)
    else:
        assert decision == AwardDecision(9, 3, RULE_RATING_AWARD, points, "评价举报 LZ9 的处置结果")


@given(points=st.integers(0, 10), cap=st.integers(1, 5))
def test_the_rules_text_states_the_award_exactly_when_it_is_enforced(points: int, cap: int) -> None:
    settings = load_settings(rating_award_points=points, rating_award_daily_cap=cap)
    program = Program(rule_settings(settings), settings.prize_table, settings.timezone)
    page = "\n".join(f"{line.title} {line.text}" for line in program.lines())
    article = program.summary()
    earns = isinstance(award_on_rating(1, "LZ1", 1, program.rules, 0), AwardDecision)
    assert earns == (points > 0)
    for text in (page, article):
        assert (f"每件可得 {points} 分" in text) == earns
        assert (f"每天最多 {cap} 次评价奖励" in text) == earns
    assert ("评价不影响积分和排名" in page) == (not earns)
    if earns:  # the cap the text states is the one enforced
        assert isinstance(award_on_rating(1, "LZ1", 1, program.rules, cap - 1), AwardDecision)
        assert isinstance(award_on_rating(1, "LZ1", 1, program.rules, cap), NoAward)
