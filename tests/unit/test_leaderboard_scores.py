"""The score encoding: exact, order-preserving (ascending score then member = the ranking rule), refusing overflow."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.leaderboard import keys, scores
from rewards.leaderboard.ranking import REACH_RESOLUTION, Standing, rank, rank_key, reach_second, totals_from_entries

LAST = scores.instant_of(scores.MAX_TICK).replace(tzinfo=None, microsecond=999_999)
INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=LAST, timezones=st.just(UTC))
POINTS = st.integers(1, scores.MAX_POINTS)
STANDINGS = st.builds(Standing, st.integers(1, 10**6), POINTS, INSTANTS)


def redis_order(s: Standing) -> tuple[float, str]:
    """How Redis orders a member with ascending ZRANGE: by the double score, then by the member bytes."""
    return (float(scores.encode(s.points, scores.tick_of(s.reached_at))), keys.member(s.citizen_id))


def test_documented_limits() -> None:
    assert scores.MAX_POINTS == 2**21 - 1 == 2_097_151
    assert scores.MAX_POINTS * 2**32 + scores.MAX_TICK == 2**53 - 1
    assert scores.instant_of(scores.MAX_TICK).year == 2156


@settings(max_examples=500, deadline=None)
@given(POINTS, st.integers(0, scores.MAX_TICK))
def test_round_trip_is_exact_as_a_double(points: int, tick: int) -> None:
    score = scores.encode(points, tick)
    assert float(score) == score  # representable exactly
    assert scores.decode(float(score)) == (points, tick)
    assert scores.decode(float(repr(float(score)))) == (points, tick)  # as Redis prints it back


@settings(max_examples=500, deadline=None)
@given(st.lists(STANDINGS, min_size=2, max_size=30, unique_by=lambda s: s.citizen_id))
def test_redis_order_is_the_ranking_rule(standings: list[Standing]) -> None:
    assert sorted(standings, key=redis_order) == sorted(standings, key=rank_key) == rank(standings)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 50), st.integers(0, 5), st.lists(st.integers(1, 10**6), min_size=2, max_size=8, unique=True))
def test_ties_on_points_and_second_fall_to_the_lower_id(points: int, second: int, ids: list[int]) -> None:
    base = datetime(2026, 11, 25, 2, 0, second, tzinfo=UTC)
    # different microseconds inside one second: the same reach tick at the rule's 1 s resolution
    standings = [Standing(cid, points, base + timedelta(microseconds=(cid * 7919) % 999_999)) for cid in ids]
    assert [s.citizen_id for s in sorted(standings, key=redis_order)] == sorted(ids)
    assert [s.citizen_id for s in rank(standings)] == sorted(ids)


@pytest.mark.parametrize("points", [scores.MAX_POINTS + 1, 2**40])
def test_totals_beyond_the_exact_range_are_refused(points: int) -> None:
    with pytest.raises(scores.ScoreOverflow, match="exceed"):
        scores.encode(points, 0)


@pytest.mark.parametrize(
    "instant",
    [datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC), scores.instant_of(scores.MAX_TICK) + timedelta(seconds=1)],
)
def test_instants_outside_the_range_are_refused(instant: datetime) -> None:
    with pytest.raises(scores.ScoreOverflow, match="outside"):
        scores.tick_of(instant)


def test_edges_of_the_range_are_accepted() -> None:
    assert scores.tick_of(scores.EPOCH) == 0
    assert scores.tick_of(scores.instant_of(scores.MAX_TICK) + timedelta(microseconds=999_999)) == scores.MAX_TICK
    assert scores.decode(scores.encode(scores.MAX_POINTS, 0)) == (scores.MAX_POINTS, 0)


def test_non_scores_are_refused() -> None:
    for bad in (0.5, -1.0, 0, float(-(2**53) - 2)):
        with pytest.raises(scores.ScoreOverflow):
            scores.decode(bad)


LINES = st.lists(
    st.builds(
        scores.Line,
        st.integers(1, 40),
        st.integers(-5, 5).filter(bool),
        st.sampled_from(["2026-W52", "2026-W53", "2027-W01"]),
        st.datetimes(min_value=datetime(2026, 12, 20), max_value=datetime(2027, 1, 10), timezones=st.just(UTC)),
    ),
    max_size=25,
    unique_by=lambda line: line.entry_id,
)


@settings(max_examples=300, deadline=None)
@given(LINES, st.randoms(use_true_random=False), st.booleans(), st.sampled_from(["", "城关区"]))
def test_fold_ignores_order_and_replays(lines: list[scores.Line], rnd: random.Random, eligible: bool, d: str) -> None:
    shuffled = lines + rnd.sample(lines, len(lines) // 2)  # replays
    rnd.shuffle(shuffled)
    assert scores.fold(shuffled, d, eligible) == scores.fold(lines, d, eligible)


@settings(max_examples=300, deadline=None)
@given(LINES, st.booleans(), st.sampled_from(["", "城关区"]))
def test_placements_follow_the_ranking_definition(lines: list[scores.Line], eligible: bool, d: str) -> None:
    summary = scores.fold(lines, d, eligible)
    placed = scores.placements(summary)
    for scope in {line.week for line in lines} | ({"at"} if lines else set()):
        in_scope = [(7, line.points, line.created_at) for line in lines if scope in ("at", line.week)]
        (standing,) = totals_from_entries(in_scope)
        names = keys.boards_of(scope, d, eligible)
        if standing.points > 0:
            want = scores.encode(standing.points, scores.tick_of(standing.reached_at))
            assert all(placed[n] == want for n in names)
        else:
            assert not any(n in placed for n in names)
    assert scores.summary_from_fields(scores.summary_fields(summary)) == summary


@given(
    st.datetimes(min_value=datetime(2019, 12, 30), max_value=datetime(2156, 2, 8)),
    st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-11, minutes=-30))]),
)
def test_tick_of_is_whole_utc_seconds_since_the_epoch(naive: datetime, zone: tzinfo | None) -> None:
    """The award path's cheap tick equals the reference: the instant truncated to its UTC second, minus EPOCH."""
    instant = naive if zone is None else naive.replace(tzinfo=zone)
    reference = (reach_second(instant) - scores.EPOCH) // REACH_RESOLUTION
    if 0 <= reference <= scores.MAX_TICK:
        assert scores.tick_of(instant) == reference
    else:
        with pytest.raises(scores.ScoreOverflow):
            scores.tick_of(instant)
