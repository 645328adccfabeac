"""The ranking rule: points desc, reached (to the second) asc, citizen id asc; strict ranks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.leaderboard.ranking import Standing, rank, reach_second, totals_from_entries

BASE = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def at(second: float) -> datetime:
    """An instant `second` seconds after a fixed base."""
    return BASE + timedelta(seconds=second)


def test_reach_is_judged_to_the_second() -> None:
    early, late = Standing(2, 5, at(1.1)), Standing(1, 5, at(1.9))
    assert rank([early, late]) == [late, early]  # same second: lower id first
    assert rank([Standing(1, 5, at(2.0)), early])[0] == early  # an earlier second wins
    assert reach_second(at(1.999999)) == at(1)


def test_zero_and_negative_totals_are_not_ranked() -> None:
    assert rank([Standing(1, 0, at(0)), Standing(2, -3, at(0)), Standing(3, 1, at(0))]) == [Standing(3, 1, at(0))]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(-3, 3), st.integers(0, 20)), max_size=40))
def test_totals_sum_points_and_reached_is_the_latest_entry(lines: list[tuple[int, int, int]]) -> None:
    entries = [(cid, pts, at(s)) for cid, pts, s in lines]
    totals = {s.citizen_id: s for s in totals_from_entries(entries)}
    for cid in {c for c, _, _ in lines}:
        mine = [(p, t) for c, p, t in entries if c == cid]
        assert totals[cid].points == sum(p for p, _ in mine)
        assert totals[cid].reached_at == max(t for _, t in mine)
    ranked = rank(totals.values())
    keys = [(-s.points, reach_second(s.reached_at), s.citizen_id) for s in ranked]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # strict
