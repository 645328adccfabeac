"""Milestones (pure): which milestones a citizen's history reaches, with the cases or weeks that earned each.

A milestone is derived, never stored: given a citizen's cases with their ledger lines, the closed weeks in which
they were on the prize list and the closed weeks in which they topped their district's weekly board, `reached`
decides every milestone and its evidence. Nothing here changes a point, a rank or a prize.

Definitions (the thresholds and the streak length come from Settings through `MilestoneRules`):

* a **valid report** is a case with the verdict ``valid`` whose ledger lines award it points (a
  ``valid_report`` line) and whose lines still net above zero: a voided case (reversed to zero) no longer
  counts, so a milestone can disappear; a valid case that earned nothing (anonymous, the daily limit, a
  category worth 0) never counted. Valid reports are ordered by when they were awarded (then by ledger entry).
* **N valid reports** holds when the citizen has at least N valid reports; its evidence is the N-th one.
* **first time on the prize list** holds when the citizen is a row of a sealed weekly snapshot; the evidence is
  the earliest such week.
* **K weeks in a row on the prize list** holds when K consecutive ISO weeks each have the citizen on their
  sealed prize list; the evidence is the first such run of K weeks.
* **top of a district in a week** holds when, in a closed week, the citizen ranked first (ranking rule of
  rewards.leaderboard.ranking) among the citizens of their district; the evidence is every such week.

The same `MilestoneRules` object decides milestones, names them (Chinese, here only) and writes the /rules text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rewards.clock import IsoWeek
from rewards.leaderboard.ranking import Standing, rank
from rewards.program import RuleLine
from rewards.scoring.model import RULE_VALID_REPORT

VALID = "valid"
PRIZE_FIRST = "prize_first"
PRIZE_STREAK = "prize_streak"
DISTRICT_TOP = "district_top"
KINDS = (VALID, PRIZE_FIRST, PRIZE_STREAK, DISTRICT_TOP)
# Every Settings field that shapes milestones (tests/unit/test_milestones_rules.py walks each of them)
MILESTONE_SETTINGS = ("milestone_valid_reports", "milestone_streak_weeks")


@dataclass(frozen=True)
class Milestone:
    """One milestone as the rules define it: a stable key (what a notice records), its kind, name and meaning."""

    key: str
    kind: str
    threshold: int
    name: str
    meaning: str


@dataclass(frozen=True)
class MilestoneRules:
    """The milestone thresholds: valid-report counts and the prize-list streak length (from Settings)."""

    valid_reports: tuple[int, ...] = (1, 10, 50, 100, 500)
    streak_weeks: int = 4

    def __post_init__(self) -> None:
        counts = list(self.valid_reports)
        if any(n < 1 for n in counts) or counts != sorted(set(counts)):
            raise ValueError(f"valid-report thresholds must be distinct, positive and ascending: {counts}")
        if self.streak_weeks < 2:
            raise ValueError(f"a streak needs at least 2 weeks: {self.streak_weeks}")

    def catalogue(self) -> list[Milestone]:
        """Every milestone, in the order /me and /rules list them."""
        found = [
            Milestone(
                f"{VALID}_{n}",
                VALID,
                n,
                "首次有效举报" if n == 1 else f"累计 {n} 件有效举报",
                "第一件举报经立案确认有效并计分" if n == 1 else f"累计 {n} 件举报经立案确认有效并计分",
            )
            for n in self.valid_reports
        ]
        k = self.streak_weeks
        return [
            *found,
            Milestone(PRIZE_FIRST, PRIZE_FIRST, 1, "首次登上周获奖名单", "第一次进入已结算的周获奖名单"),
            Milestone(
                f"{PRIZE_STREAK}_{k}", PRIZE_STREAK, k, f"连续 {k} 周获奖", f"连续 {k} 周都进入已结算的周获奖名单"
            ),
            Milestone(DISTRICT_TOP, DISTRICT_TOP, 1, "区县周榜第一", "在已结算的某一周，本区县周积分排名第一"),
        ]

    def lines(self) -> list[RuleLine]:
        """The milestone rules as the /rules page states them, from these same thresholds."""
        names = "；".join(f"{m.name}（{m.meaning}）" for m in self.catalogue())
        return [
            RuleLine("成长里程碑", f"{names}。"),
            RuleLine(
                "里程碑说明",
                "里程碑按积分账本和已结算的周榜自动计算，只用于展示，不改变积分、排名和奖励；"
                "举报被撤销后不再计入，相应里程碑可能随之取消。",
            ),
        ]


@dataclass(frozen=True)
class Line:
    """One ledger line of a case: its entry id, rule, signed points, when it was written and its week."""

    entry_id: int
    rule: str
    points: int
    created_at: datetime
    week: str


@dataclass(frozen=True)
class CaseLedger:
    """A citizen's case with its verdict and ledger lines (any order)."""

    case_id: str
    verdict: str | None
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class ValidReport:
    """A case that counts as a valid report: its id, when it was awarded and the week the award counted toward."""

    case_id: str
    awarded_at: datetime
    week: str
    entry_id: int


@dataclass(frozen=True)
class ListWeek:
    """A closed week whose sealed prize list holds the citizen: the week, strict prize rank and tier."""

    week: str
    rank: int
    tier: str


@dataclass(frozen=True)
class TopWeek:
    """A closed week in which the citizen topped their district's weekly board."""

    week: str
    district: str
    points: int


@dataclass(frozen=True)
class Evidence:
    """Why a milestone holds: a case (id, award time) or a week (with what happened that week)."""

    week: str
    detail: str
    case_id: str | None = None
    at: datetime | None = None

    @property
    def week_label(self) -> str:
        """The week as citizens read it (2026年第48周)."""
        return IsoWeek.parse(self.week).label()


@dataclass(frozen=True)
class Reached:
    """A milestone that holds, with the evidence that earned it."""

    milestone: Milestone
    evidence: tuple[Evidence, ...]

    @property
    def key(self) -> str:
        """The milestone's stable key."""
        return self.milestone.key


@dataclass(frozen=True)
class History:
    """What milestones are decided from, for one citizen."""

    cases: tuple[CaseLedger, ...] = ()
    list_weeks: tuple[ListWeek, ...] = ()
    top_weeks: tuple[TopWeek, ...] = ()


@dataclass(frozen=True)
class Progress:
    """Milestones reached, and the next valid-report threshold with how many reports are still needed."""

    reached: tuple[Reached, ...]
    valid_count: int
    next_name: str | None = None
    next_missing: int | None = None
    open_names: tuple[str, ...] = field(default_factory=tuple)


def counts_as_valid(case: CaseLedger) -> bool:
    """A case counts when its verdict is valid, it was awarded points, and its ledger still nets above zero."""
    awarded = any(line.rule == RULE_VALID_REPORT and line.points > 0 for line in case.lines)
    return case.verdict == "valid" and awarded and sum(line.points for line in case.lines) > 0


def valid_reports(cases: Iterable[CaseLedger]) -> list[ValidReport]:
    """The citizen's valid reports in the order they were awarded (then by ledger entry)."""
    found = []
    for case in cases:
        if not counts_as_valid(case):
            continue
        award = min((x for x in case.lines if x.rule == RULE_VALID_REPORT), key=lambda x: (x.created_at, x.entry_id))
        found.append(ValidReport(case.case_id, award.created_at, award.week, award.entry_id))
    return sorted(found, key=lambda r: (r.awarded_at, r.entry_id))


def first_run(weeks: Iterable[str], length: int) -> tuple[str, ...] | None:
    """The first run of `length` consecutive ISO weeks among `weeks`, or None."""
    ordered = sorted({IsoWeek.parse(w) for w in weeks})
    run: list[IsoWeek] = []
    for week in ordered:
        run = [*run, week] if run and run[-1].next() == week else [week]
        if len(run) == length:
            return tuple(str(w) for w in run)
    return None


def tops_district(standings: Iterable[Standing], citizen_id: int) -> bool:
    """True when the citizen ranks first among these standings (one district, one week) by the board's rule."""
    ranked = rank(standings)
    return bool(ranked) and ranked[0].citizen_id == citizen_id


def reached(rules: MilestoneRules, history: History) -> list[Reached]:
    """Every milestone that holds over this history, with its evidence, in catalogue order."""
    valid = valid_reports(history.cases)
    list_weeks = sorted(history.list_weeks, key=lambda w: w.week)
    out: list[Reached] = []
    for m in rules.catalogue():
        evidence: tuple[Evidence, ...] = ()
        if m.kind == VALID and len(valid) >= m.threshold:
            r = valid[m.threshold - 1]
            evidence = (Evidence(r.week, f"第 {m.threshold} 件有效举报", r.case_id, r.awarded_at),)
        elif m.kind == PRIZE_FIRST and list_weeks:
            w = list_weeks[0]
            evidence = (Evidence(w.week, f"获奖名单第 {w.rank} 名（{w.tier}）"),)
        elif m.kind == PRIZE_STREAK:
            run = first_run((w.week for w in list_weeks), m.threshold)
            by_week = {w.week: w for w in list_weeks}
            if run is not None:
                evidence = tuple(Evidence(w, f"获奖名单第 {by_week[w].rank} 名（{by_week[w].tier}）") for w in run)
        elif m.kind == DISTRICT_TOP:
            evidence = tuple(
                Evidence(t.week, f"{t.district}周榜第一（{t.points} 分）")
                for t in sorted(history.top_weeks, key=lambda t: t.week)
            )
        if evidence:
            out.append(Reached(m, evidence))
    return out


def progress(rules: MilestoneRules, history: History) -> Progress:
    """The milestones reached and the way to the next valid-report threshold (for /me)."""
    got = reached(rules, history)
    count = len(valid_reports(history.cases))
    ahead = [n for n in rules.valid_reports if n > count]
    keys = {r.key for r in got}
    open_names = tuple(m.name for m in rules.catalogue() if m.key not in keys)
    if not ahead:
        return Progress(tuple(got), count, open_names=open_names)
    goal = next(m for m in rules.catalogue() if m.kind == VALID and m.threshold == ahead[0])
    return Progress(tuple(got), count, goal.name, ahead[0] - count, open_names)


def news(got: Sequence[Reached], mentioned: Iterable[str]) -> list[Reached]:
    """The reached milestones not mentioned to the citizen before."""
    seen = set(mentioned)
    return [r for r in got if r.key not in seen]


def mention_text(new: Sequence[Reached]) -> str:
    """The line the WeChat rank reply adds for newly reached milestones ("" when there are none)."""
    if not new:
        return ""
    names = "、".join(f"“{r.milestone.name}”" for r in new)
    return f"\n【新里程碑】恭喜您达成{names}！在“我的”页面可查看详情。"
