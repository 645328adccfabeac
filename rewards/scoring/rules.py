"""Scoring rules (pure): what a filed or voided case is worth, and who may hold a prize; time and counts passed in."""

from __future__ import annotations

from collections.abc import Iterable

from rewards.scoring.model import (
    RULE_RATING_AWARD,
    RULE_VALID_REPORT,
    RULE_VOID_REVERSAL,
    AwardDecision,
    CaseFacts,
    NoAward,
    RuleSettings,
)

ANONYMOUS = "匿名举报不计积分"
SNAPSHOT_USER = "未授权的快照用户不计积分"
ZERO_CATEGORY = "该类别不计积分"
DAILY_LIMIT = "已达到每日计分上限"
RATING_AWARD_OFF = "评价不计积分"
RATING_DAILY_CAP = "已达到每日评价奖励上限"


def is_eligible(verified: bool, banned: bool) -> bool:
    """A prize needs a verified (real-name) citizen who is not banned."""
    return verified and not banned


def points_for_category(category: str, settings: RuleSettings) -> int:
    """Return the points a valid case of this category earns (unknown categories earn nothing)."""
    return max(0, settings.category_points.get(category, 0))


def award_on_filing(case: CaseFacts, settings: RuleSettings, awards_today: int) -> AwardDecision | NoAward:
    """Decide the award for a case the command center filed as valid; there is no cap on totals."""
    reporter = case.reporter
    if reporter is None:
        return NoAward(ANONYMOUS)
    if reporter.snapshot_user:
        return NoAward(SNAPSHOT_USER)
    points = points_for_category(case.category, settings)
    if points == 0:
        return NoAward(ZERO_CATEGORY)
    if settings.daily_award_limit is not None and awards_today >= settings.daily_award_limit:
        return NoAward(DAILY_LIMIT)
    return AwardDecision(
        case_pk=case.case_pk,
        citizen_id=reporter.citizen_id,
        rule=RULE_VALID_REPORT,
        points=points,
        reason=f"有效举报 {case.case_id}",
    )


def award_on_rating(
    case_pk: int, case_id: str, citizen_id: int, settings: RuleSettings, rating_awards_today: int
) -> AwardDecision | NoAward:
    """Decide the optional award for rating a handled report: off at 0 points, else capped per citizen per day."""
    if settings.rating_award_points <= 0:
        return NoAward(RATING_AWARD_OFF)
    if rating_awards_today >= settings.rating_award_daily_cap:
        return NoAward(RATING_DAILY_CAP)
    return AwardDecision(
        case_pk=case_pk,
        citizen_id=citizen_id,
        rule=RULE_RATING_AWARD,
        points=settings.rating_award_points,
        reason=f"评价举报 {case_id} 的处置结果",
    )


def reversal_on_void(case_pk: int, case_id: str, entries: Iterable[tuple[int, str, int]]) -> AwardDecision | None:
    """Return the entry that nets a voided case's (citizen_id, rule, points) lines to zero, or None."""
    lines = list(entries)
    if any(rule == RULE_VOID_REVERSAL for _, rule, _ in lines):
        return None
    nets: dict[int, int] = {}
    for holder, _, points in lines:
        nets[holder] = nets.get(holder, 0) + points
    # after an administrator's merge the case's points sit with the citizen they moved to (scoring/citizen_links.py)
    owing = [(holder, points) for holder, points in nets.items() if points != 0]
    if not owing:
        return None
    citizen_id, net = owing[-1]
    return AwardDecision(
        case_pk=case_pk,
        citizen_id=citizen_id,
        rule=RULE_VOID_REVERSAL,
        points=-net,
        reason=f"举报 {case_id} 被撤销，积分收回",
    )
