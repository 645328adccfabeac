"""Milestone rules (pure): a milestone is reached iff its definition holds, with the evidence that earned it; the
thresholds are Settings that move what is decided and what /rules says together; the WeChat mention names only
what is new."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.clock import IsoWeek, week_of
from rewards.config import Settings, load_settings
from rewards.engagement.milestone_rules import (
    MILESTONE_SETTINGS,
    CaseLedger,
    History,
    Line,
    ListWeek,
    MilestoneRules,
    TopWeek,
    first_run,
    mention_text,
    news,
    progress,
    reached,
    tops_district,
)
from rewards.engagement.milestones import milestone_rules
from rewards.errors import ConfigError
from rewards.leaderboard.ranking import Standing
from rewards.scoring.model import RULE_VALID_REPORT, RULE_VOID_REVERSAL

T0 = datetime(2026, 9, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai, 2026-W37
TZ = load_settings().tz
FIRST_WEEK = IsoWeek(2026, 37)


def week_at(n: int) -> str:
    week = FIRST_WEEK
    for _ in range(n):
        week = week.next()
    return str(week)


@st.composite
def case_ledgers(draw: st.DrawFn) -> tuple[CaseLedger, ...]:
    """Cases as the ledger leaves them: valid / invalid / duplicate / pending, awarded or not, voided or not."""
    count = draw(st.integers(0, 40))
    cases = []
    entry = 0
    for i in range(count):
        verdict = draw(st.sampled_from(["valid", "valid", "valid", "invalid", "duplicate", None]))
        lines: list[Line] = []
        awarded = verdict == "valid" and draw(st.booleans() | st.just(True))
        if awarded:
            entry += 1
            at = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 70)))
            points = draw(st.integers(1, 3))
            lines.append(Line(entry, RULE_VALID_REPORT, points, at, str(week_of(at, TZ))))
            if draw(st.integers(0, 4)) == 0:  # voided later: a reversal netting the case to zero, dated then
                entry += 1
                later = at + timedelta(hours=draw(st.integers(1, 400)))
                lines.append(Line(entry, RULE_VOID_REVERSAL, -points, later, str(week_of(later, TZ))))
        cases.append(CaseLedger(f"LZ{i:04d}", verdict, tuple(lines)))
    return tuple(cases)


histories = st.builds(
    History,
    cases=case_ledgers(),
    list_weeks=st.lists(st.integers(0, 15), unique=True, max_size=12).map(
        lambda ns: tuple(ListWeek(week_at(n), (n % 7) + 1, "三等奖") for n in ns)
    ),
    top_weeks=st.lists(st.integers(0, 15), unique=True, max_size=6).map(
        lambda ns: tuple(TopWeek(week_at(n), "城关区", n + 1) for n in ns)
    ),
)
rule_sets = st.builds(
    MilestoneRules,
    valid_reports=st.lists(st.integers(1, 30), min_size=1, max_size=5, unique=True).map(lambda x: tuple(sorted(x))),
    streak_weeks=st.integers(2, 6),
)


def oracle(rules: MilestoneRules, h: History) -> dict[str, list[tuple[str, str | None]]]:
    """Brute force from the definitions: milestone key -> [(week, case id or None)] of its evidence."""
    valid = []
    for case in h.cases:
        awards = [x for x in case.lines if x.rule == RULE_VALID_REPORT and x.points > 0]
        if case.verdict == "valid" and awards and sum(x.points for x in case.lines) > 0:
            valid.append((awards[0].created_at, awards[0].entry_id, awards[0].week, case.case_id))
    valid.sort()
    out: dict[str, list[tuple[str, str | None]]] = {}
    for n in rules.valid_reports:
        if len(valid) >= n:
            out[f"valid_{n}"] = [(valid[n - 1][2], valid[n - 1][3])]
    weeks = sorted(w.week for w in h.list_weeks)
    if weeks:
        out["prize_first"] = [(weeks[0], None)]
    k = rules.streak_weeks
    for w in weeks:
        run = [IsoWeek.parse(w)]
        while len(run) < k:
            run.append(run[-1].next())
        if all(str(x) in weeks for x in run):
            out[f"prize_streak_{k}"] = [(str(x), None) for x in run]
            break
    if h.top_weeks:
        out["district_top"] = [(t.week, None) for t in sorted(h.top_weeks, key=lambda t: t.week)]
    return out


@given(rules=rule_sets, history=histories)
def test_a_milestone_is_reached_iff_its_definition_holds(rules: MilestoneRules, history: History) -> None:
    got = {r.key: [(e.week, e.case_id) for e in r.evidence] for r in reached(rules, history)}
    assert got == oracle(rules, history)
    names = {m.key: m.name for m in rules.catalogue()}
    assert all(r.milestone.name == names[r.key] for r in reached(rules, history))


@given(rules=rule_sets, history=histories)
def test_progress_counts_valid_reports_and_names_the_next_goal(rules: MilestoneRules, history: History) -> None:
    p = progress(rules, history)
    count = sum(1 for key in oracle(MilestoneRules(tuple(range(1, 200)), 2), history) if key.startswith("valid_"))
    assert p.valid_count == count
    ahead = [n for n in rules.valid_reports if n > count]
    assert p.next_missing == (ahead[0] - count if ahead else None)
    assert set(p.open_names) | {r.milestone.name for r in p.reached} == {m.name for m in rules.catalogue()}


def test_a_voided_case_no_longer_counts_and_the_nth_case_moves() -> None:
    at = [T0 + timedelta(hours=h) for h in range(3)]
    cases = [CaseLedger(f"C{i}", "valid", (Line(i, RULE_VALID_REPORT, 1, at[i], "2026-W37"),)) for i in range(3)]
    rules = MilestoneRules((1, 2, 3), 2)
    assert [r.key for r in reached(rules, History(tuple(cases)))] == ["valid_1", "valid_2", "valid_3"]
    voided = CaseLedger("C0", "valid", (*cases[0].lines, Line(9, RULE_VOID_REVERSAL, -1, at[2], "2026-W37")))
    after = reached(rules, History((voided, cases[1], cases[2])))
    assert [(r.key, r.evidence[0].case_id) for r in after] == [("valid_1", "C1"), ("valid_2", "C2")]
    # valid but never awarded (anonymous, daily limit, a category worth 0) never counted
    assert reached(rules, History((CaseLedger("C9", "valid", ()),))) == []


@given(weeks=st.lists(st.integers(0, 60), unique=True, max_size=20), length=st.integers(2, 6))
def test_first_run_is_the_earliest_run_of_consecutive_iso_weeks(weeks: list[int], length: int) -> None:
    # weeks 0..60 from 2026-W37 cross the year end (2026 has 53 ISO weeks)
    labels = [week_at(n) for n in weeks]
    starts = sorted(n for n in weeks if all(n + d in weeks for d in range(length)))
    expected = tuple(week_at(starts[0] + d) for d in range(length)) if starts else None
    assert first_run(labels, length) == expected


@given(
    rows=st.lists(
        st.tuples(st.integers(1, 8), st.integers(-2, 6), st.integers(0, 5), st.integers(0, 999)),
        unique_by=lambda r: r[0],
        max_size=8,
    ),
)
def test_the_district_top_follows_the_boards_ranking_rule(rows: list[tuple[int, int, int, int]]) -> None:
    standings = [Standing(cid, pts, T0 + timedelta(seconds=s, microseconds=us)) for cid, pts, s, us in rows]
    positive = [s for s in standings if s.points > 0]
    best = min(positive, key=lambda s: (-s.points, s.reached_at.replace(microsecond=0), s.citizen_id), default=None)
    for cid, *_ in rows:
        assert tops_district(standings, cid) == (best is not None and best.citizen_id == cid)


CHANGES: dict[str, Callable[[], dict[str, object]]] = {
    "milestone_valid_reports": lambda: {"milestone_valid_reports": [1, 3, 20]},
    "milestone_streak_weeks": lambda: {"milestone_streak_weeks": 2},
}
SAMPLE = History(
    cases=tuple(
        CaseLedger(f"C{i}", "valid", (Line(i, RULE_VALID_REPORT, 1, T0 + timedelta(hours=i), "2026-W37"),))
        for i in range(4)
    ),
    list_weeks=(ListWeek("2026-W37", 3, "三等奖"), ListWeek("2026-W38", 9, "参与奖")),
)


def told(settings: Settings) -> str:
    return "\n".join(f"{line.title} {line.text}" for line in milestone_rules(settings).lines())


def test_every_milestone_setting_is_walked() -> None:
    assert set(CHANGES) == set(MILESTONE_SETTINGS) and set(MILESTONE_SETTINGS) <= set(Settings.model_fields)


@pytest.mark.parametrize("name", MILESTONE_SETTINGS)
def test_a_milestone_setting_changes_what_is_reached_and_what_rules_say(name: str) -> None:
    before, after = load_settings(), load_settings(**CHANGES[name]())
    decided = [[r.key for r in reached(milestone_rules(s), SAMPLE)] for s in (before, after)]
    assert decided[0] != decided[1]
    assert told(before) != told(after)


@given(rules=rule_sets)
def test_the_rules_text_states_every_threshold_it_enforces(rules: MilestoneRules) -> None:
    text = "\n".join(f"{line.title} {line.text}" for line in rules.lines())
    for n in rules.valid_reports:
        assert ("首次有效举报" if n == 1 else f"累计 {n} 件有效举报") in text
    assert f"连续 {rules.streak_weeks} 周" in text and "不改变积分、排名和奖励" in text


@pytest.mark.parametrize(
    "overrides",
    [
        {"milestone_valid_reports": [10, 1]},
        {"milestone_valid_reports": [0, 5]},
        {"milestone_valid_reports": [5, 5]},
        {"milestone_streak_weeks": 1},
    ],
)
def test_bad_milestone_settings_are_refused_with_the_setting_named(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(overrides)).upper()):
        load_settings(**overrides)


def test_the_mention_names_only_what_is_new() -> None:
    rules = MilestoneRules((1, 2, 3), 2)
    got = reached(rules, SAMPLE)
    assert [r.key for r in news(got, ["valid_1", "prize_first"])] == ["valid_2", "valid_3", "prize_streak_2"]
    assert news(got, [r.key for r in got]) == [] and mention_text([]) == ""
    text = mention_text(news(got, ["valid_1", "valid_2", "prize_first"]))
    assert text == "\n【新里程碑】恭喜您达成“累计 3 件有效举报”、“连续 2 周获奖”！在“我的”页面可查看详情。"
