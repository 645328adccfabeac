"""The apply script's lean path on a real Redis: exact scores at the edge of the range, the high-water mark and the
registry kept as maxima whatever the apply order, a district with spaces in the packed entry, replies."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from rewards.clock import week_of
from rewards.leaderboard import keys, scores
from rewards.leaderboard.boards import UNPROFILED, Boards
from rewards.scoring.model import EntryFacts
from tests.conftest import flush_prefix, test_settings

_run = itertools.count()
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def boards(redis_server: redis.Redis) -> Iterator[Boards]:
    s = test_settings()
    prefix = f"{s.leaderboard_key_prefix}-as{next(_run)}"
    yield Boards(redis_server, s.model_copy(update={"leaderboard_key_prefix": prefix}))
    flush_prefix(redis_server, prefix)


def entry(entry_id: int, cid: int, points: int, at: datetime, district: str | None = "城关区") -> EntryFacts:
    return EntryFacts(entry_id, cid, district, points, str(week_of(at, UTC)), at, True)


def test_the_largest_score_magnitude_is_exact(boards: Boards) -> None:
    """MAX_POINTS reached at the epoch: |score| = 2^53 - 1, formatted in Lua without rounding."""
    e = entry(1, 3, scores.MAX_POINTS, scores.EPOCH)
    boards.apply([e])
    for name in ["at", keys.weekly(e.week), keys.weekly_eligible(e.week), keys.district_weekly(e.week, "城关区")]:
        got = boards.redis.zscore(keys.board_key(boards.prefix, 0, name), keys.member(3))
        assert got == scores.encode(scores.MAX_POINTS, 0) == -scores.MAX_MAGNITUDE


def test_high_water_mark_and_registry_are_maxima_in_any_order(boards: Boards) -> None:
    p = boards.prefix
    late = T0 + timedelta(seconds=30)
    boards.apply([entry(10, 1, 2, late)])
    boards.apply([entry(9, 2, 1, T0)])  # an older entry applied after: the mark and the ticks stay
    assert boards.high_water() == 10
    registry = boards.redis.hgetall(keys.registry_key(p, 0))
    assert registry["at"] == str(scores.tick_of(late))
    boards.apply([entry(100, 2, 1, late + timedelta(seconds=1))])
    assert boards.high_water() == 100
    assert boards.redis.hget(keys.registry_key(p, 0), "at") == str(scores.tick_of(late + timedelta(seconds=1)))
    boards.apply([entry(99, 4, 1, T0)])  # same number of digits, smaller
    assert boards.high_water() == 100


def test_a_district_with_spaces_and_no_district(boards: Boards) -> None:
    e = entry(1, 5, 2, T0, district="城 关 区 ")
    boards.apply([e, entry(2, 6, 1, T0, district=None)])
    name = keys.district_weekly(e.week, "城 关 区 ")
    assert boards.redis.zrange(keys.board_key(boards.prefix, 0, name), 0, -1) == [keys.member(5)]
    summary = boards.redis.hgetall(keys.summary_key(boards.prefix, 0, 6))
    assert summary["d"] == "" and summary["p:at"] == "1"
    assert sorted(boards.redis.hkeys(keys.registry_key(boards.prefix, 0))) == sorted(
        ["at", keys.weekly(e.week), keys.weekly_eligible(e.week), name]
    )


def test_replies_and_a_replay_write_nothing(boards: Boards) -> None:
    e = entry(7, 8, 3, T0)
    assert boards._run([boards._apply_call(e)]) == [UNPROFILED]  # no profile in the summary yet
    before = boards.redis.hgetall(keys.summary_key(boards.prefix, 0, 8))
    assert boards._run([boards._apply_call(e)]) == [0]
    assert boards.redis.hgetall(keys.summary_key(boards.prefix, 0, 8)) == before
    boards.redis.hset(keys.summary_key(boards.prefix, 0, 8), "b", "0")  # as a profile write does
    assert boards._run([boards._apply_call(entry(8, 8, 1, T0))]) == [1]
    assert boards.redis.hget(keys.summary_key(boards.prefix, 0, 8), "p:at") == "4"


def test_a_voided_total_leaves_every_board(boards: Boards) -> None:
    e = entry(1, 9, 2, T0)
    boards.apply([e])
    boards.apply([entry(2, 9, -2, T0 + timedelta(seconds=1))])
    for name in ["at", keys.weekly(e.week), keys.weekly_eligible(e.week), keys.district_weekly(e.week, "城关区")]:
        assert boards.redis.zscore(keys.board_key(boards.prefix, 0, name), keys.member(9)) is None
