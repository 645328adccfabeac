"""Redis boards on the real server equal a brute-force ranking of the ledger: random awards and reversals, ties,
replays, any apply order, eligibility/district moves, week boundaries at year ends."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards.clock import week_of
from rewards.leaderboard import keys, scores
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.ranking import Standing, rank, reach_second, totals_from_entries
from rewards.redis_client import make_redis
from rewards.scoring.model import EntryFacts
from tests.conftest import flush_prefix, test_settings

TZ = ZoneInfo("Asia/Shanghai")
# Two seconds before a week boundary in Shanghai, at each interesting year end:
ANCHORS = [
    datetime(2024, 12, 29, 15, 59, 58, tzinfo=UTC),  # Sun 2024-12-29 23:59:58 (2024-W52) -> Mon = 2025-W01
    datetime(2026, 12, 31, 15, 59, 58, tzinfo=UTC),  # Thu 2026-12-31 -> Fri 2027-01-01, both 2026-W53
    datetime(2027, 1, 3, 15, 59, 58, tzinfo=UTC),  # Sun 2027-01-03 (2026-W53) -> Mon = 2027-W01
]
DISTRICTS = ["城关区", "七里河区", None]
TIERS = [{"first": 1, "last": 1, "name": "一", "value": 30}, {"first": 2, "last": 3, "name": "二", "value": 20}]
TIERS += [{"first": 4, "last": 6, "name": "三", "value": 10}]
_run = itertools.count()


@dataclass(frozen=True)
class Profile:
    district: str | None
    eligible: bool


@pytest.fixture
def fresh(redis_server: redis.Redis) -> Iterator[object]:
    """A factory of Boards under a private prefix per call; every prefix is cleaned up afterwards."""
    made: list[str] = []

    def make(client: redis.Redis | None = None, tiers: list[dict[str, object]] | None = TIERS) -> Boards:
        s = test_settings(prize_tiers=tiers) if tiers is not None else test_settings()
        prefix = f"{s.leaderboard_key_prefix}-b{next(_run)}"
        made.append(prefix)
        return Boards(client or redis_server, s.model_copy(update={"leaderboard_key_prefix": prefix}))

    yield make
    for prefix in made:
        flush_prefix(redis_server, prefix)


@pytest.fixture
def embedded(tmp_path: Path) -> redis.Redis:
    """The embedded redis-server a deployment without REWARDS_REDIS_URL runs, under a private data dir."""
    return make_redis(test_settings(redis_url=None, data_dir=tmp_path / "var"))


@st.composite
def ledgers(
    draw: st.DrawFn, citizens: tuple[int, int] = (1, 9), lines: tuple[int, int] = (0, 30), everyone: bool = False
) -> tuple[list[EntryFacts], dict[int, Profile]]:
    """Awards (small points, instants on a half-second grid near a year-end week boundary: ties) and reversals.

    With `everyone`, the first award of each citizen comes first (a crowd bigger than the prize list)."""
    anchor = draw(st.sampled_from(ANCHORS))
    n_citizens = draw(st.integers(*citizens))
    eligible = st.sampled_from([True, True, True, False])  # most citizens are verified and not banned
    finals = {c: Profile(draw(st.sampled_from(DISTRICTS)), draw(eligible)) for c in range(1, n_citizens + 1)}
    consistent = draw(st.booleans())  # False: entries carry stale profiles, fixed by set_eligible/set_district
    entries: list[EntryFacts] = []
    reversed_ids: set[int] = set()
    for i in range(draw(st.integers(*lines))):
        crowd = everyone and i < n_citizens
        cid = i + 1 if crowd else draw(st.integers(1, n_citizens))
        at = anchor + timedelta(seconds=draw(st.integers(0, 3 if crowd else 10)) / 2)  # crowd: the first week
        profile = finals[cid] if consistent else Profile(draw(st.sampled_from(DISTRICTS)), draw(eligible))
        open_awards = [e for e in entries if e.points > 0 and e.entry_id not in reversed_ids]
        if open_awards and not crowd and draw(st.integers(0, 3)) == 0:  # a void: the award's points back, dated now
            target = draw(st.sampled_from(open_awards))
            reversed_ids.add(target.entry_id)
            cid, points, at = target.citizen_id, -target.points, max(at, target.created_at)
        else:
            points = draw(st.integers(1, 3))
        entries.append(
            EntryFacts(len(entries) + 1, cid, profile.district, points, str(week_of(at, TZ)), at, profile.eligible)
        )
    return entries, finals


def expected_boards(entries: list[EntryFacts], finals: dict[int, Profile]) -> dict[str, list[Standing]]:
    """Brute force: rank every scope's totals, then split by the citizens' final profile."""
    out: dict[str, list[Standing]] = {}
    scopes = {"at": entries, **{e.week: [x for x in entries if x.week == e.week] for e in entries}}
    for scope, lines in scopes.items():
        ranked = rank(totals_from_entries((e.citizen_id, e.points, e.created_at) for e in lines))
        if scope == "at":
            out["at"] = ranked
            continue
        out[keys.weekly(scope)] = ranked
        out[keys.weekly_eligible(scope)] = [s for s in ranked if finals[s.citizen_id].eligible]
        for d in {finals[s.citizen_id].district for s in ranked} - {None}:
            out[keys.district_weekly(scope, d)] = [s for s in ranked if finals[s.citizen_id].district == d]
    return {name: board for name, board in out.items() if board}


def redis_boards(boards: Boards) -> dict[str, list[tuple[int, int, int]]]:
    gen = boards.generation(fresh=True)
    out = {}
    for name in boards.redis.hkeys(keys.registry_key(boards.prefix, gen)):
        rows = boards.redis.zrange(keys.board_key(boards.prefix, gen, name), 0, -1, withscores=True)
        if rows:
            out[name] = [(keys.citizen_of(m), *scores.decode(s)) for m, s in rows]
    return out


def apply_shuffled(boards: Boards, entries: list[EntryFacts], rnd: random.Random) -> None:
    """Apply in a random order, in random batches, with replays (after-commit effects may run in any order)."""
    stream = entries + rnd.sample(entries, len(entries) // 3)
    rnd.shuffle(stream)
    while stream:
        size = rnd.randint(1, 5)
        boards.apply(stream[:size])
        stream = stream[size:]


def assert_equal_to_model(boards: Boards, entries: list[EntryFacts], finals: dict[int, Profile]) -> None:
    want = expected_boards(entries, finals)
    got = redis_boards(boards)
    assert {n: [(s.citizen_id, s.points, scores.tick_of(s.reached_at)) for s in b] for n, b in want.items()} == got
    table = boards.settings.prize_table
    band_of = {r: t for t in boards.settings.prize_tiers for r in range(t.first, t.last + 1)}  # the model's tiers
    places = max(band_of)
    assert table.places == places
    for name, board in want.items():
        parsed = keys.parse_name(name)
        if parsed.kind != "w":
            continue
        eligible = [s.citizen_id for s in want.get(keys.weekly_eligible(parsed.week), [])]
        page = boards.page(name, 0, 200)
        assert [r.citizen_id for r in page.rows] == [s.citizen_id for s in board]
        for row in page.rows:
            prize = eligible.index(row.citizen_id) + 1 if row.citizen_id in eligible else None
            assert (row.prize_rank, row.eligible) == (prize, finals[row.citizen_id].eligible)
            assert table.tier_for(row.prize_rank) == (band_of.get(prize) if prize is not None else None)
        top = [s.citizen_id for s in want.get(keys.weekly_eligible(parsed.week), [])[:places]]
        assert [r.citizen_id for r in page.rows if r.prize_rank is not None and r.prize_rank <= places] == top
        assert [r.citizen_id for r in page.rows if table.tier_for(r.prize_rank)] == top


def final_summaries_match(boards: Boards, entries: list[EntryFacts], finals: dict[int, Profile]) -> None:
    gen = boards.generation()
    for cid, profile in finals.items():
        lines = [scores.Line(e.entry_id, e.points, e.week, e.created_at) for e in entries if e.citizen_id == cid]
        got = boards.redis.hgetall(keys.summary_key(boards.prefix, gen, cid))
        if not lines:
            assert got == {}
            continue
        assert scores.summary_from_fields(got) == scores.fold(lines, profile.district, profile.eligible)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledgers(), st.randoms(use_true_random=False))
def test_redis_ranks_equal_a_brute_force_ranking(fresh, ledger, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    entries, finals = ledger
    boards: Boards = fresh()
    apply_shuffled(boards, entries, rnd)
    for cid, profile in finals.items():  # the lead calls these after a profile change commits
        boards.set_district(cid, profile.district)
        boards.set_eligible(cid, profile.eligible)
        boards.set_eligible(cid, profile.eligible)  # idempotent
    assert_equal_to_model(boards, entries, finals)
    final_summaries_match(boards, entries, finals)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledgers(citizens=(100, 140), lines=(150, 300), everyone=True), st.randoms(use_true_random=False))
def test_top_80_and_tiers_of_a_crowd_equal_the_model(fresh, ledger, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    """Default tiers (1 | 2-5 | 6-20 | 21-80) over 100-140 citizens: the prize cut falls inside ties."""
    entries, finals = ledger
    boards: Boards = fresh(tiers=None)
    apply_shuffled(boards, entries, rnd)
    for cid, profile in finals.items():
        boards.set_district(cid, profile.district)
        boards.set_eligible(cid, profile.eligible)
    assert_equal_to_model(boards, entries, finals)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledgers(), st.randoms(use_true_random=False))
def test_embedded_redis_agrees_with_the_model(fresh, embedded, ledger, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    """The embedded redis-server (no REWARDS_REDIS_URL) runs the same scripts to the same result."""
    entries, finals = ledger
    boards: Boards = fresh(embedded)
    apply_shuffled(boards, entries, rnd)
    for cid, profile in finals.items():
        boards.set_district(cid, profile.district)
        boards.set_eligible(cid, profile.eligible)
    assert_equal_to_model(boards, entries, finals)


def entry(entry_id: int, cid: int, points: int, at: datetime, **kw: object) -> EntryFacts:
    values: dict[str, object] = {"district": "城关区", "eligible": True, **kw}
    return EntryFacts(entry_id, cid, values["district"], points, str(week_of(at, TZ)), at, values["eligible"])  # type: ignore[arg-type]


T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_overflow_is_refused_loudly_and_writes_nothing(fresh) -> None:  # type: ignore[no-untyped-def]
    boards: Boards = fresh()
    boards.apply([entry(1, 7, scores.MAX_POINTS, T0)])
    before = boards.redis.hgetall(keys.summary_key(boards.prefix, 0, 7))
    with pytest.raises(scores.ScoreOverflow, match="2097151"):
        boards.apply([entry(2, 7, 1, T0 + timedelta(seconds=1))])
    assert boards.redis.hgetall(keys.summary_key(boards.prefix, 0, 7)) == before
    page = boards.page("at", 0, 10)
    assert [(r.citizen_id, r.points) for r in page.rows] == [(7, scores.MAX_POINTS)]
    with pytest.raises(scores.ScoreOverflow, match="outside"):
        boards.apply([entry(3, 8, 1, datetime(2019, 12, 31, tzinfo=UTC))])
    assert not boards.redis.exists(keys.summary_key(boards.prefix, 0, 8))


def test_a_total_back_to_zero_leaves_the_board_and_a_negative_week_is_kept(fresh) -> None:  # type: ignore[no-untyped-def]
    boards: Boards = fresh()
    week2 = T0 + timedelta(days=7)
    boards.apply([entry(1, 5, 2, T0), entry(2, 6, 1, T0)])
    boards.apply([entry(3, 5, -2, week2)])  # voided a week later: all-time 0, next week -2
    assert [r.citizen_id for r in boards.page("at", 0, 10).rows] == [6]
    assert [r.citizen_id for r in boards.page(keys.weekly(str(week_of(T0, TZ))), 0, 10).rows] == [5, 6]
    raw = boards.standing(5, str(week_of(week2, TZ)), 80)
    assert raw.weekly.rank is None and raw.week_points == -2 and raw.all_time_points == 0


def test_concurrent_appliers_apply_each_entry_once(fresh) -> None:  # type: ignore[no-untyped-def]
    boards: Boards = fresh()
    entries = [entry(i, 1 + i % 4, 1 + i % 3, T0 + timedelta(seconds=i % 7)) for i in range(1, 61)]

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        apply_shuffled(Boards(boards.redis, boards.settings), entries, rnd)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    finals = {c: Profile("城关区", True) for c in range(1, 5)}
    assert_equal_to_model(boards, entries, finals)


def test_writers_follow_a_generation_swap(fresh) -> None:  # type: ignore[no-untyped-def]
    boards: Boards = fresh()
    boards.apply([entry(1, 5, 1, T0)])
    assert boards.generation() == 0
    boards.redis.set(keys.gen_key(boards.prefix), 7)  # as a rebuild's swap does
    boards.apply([entry(2, 6, 1, T0)])  # cached generation 0 is refused by the script, retried on 7
    assert boards.redis.zrange(keys.board_key(boards.prefix, 7, "at"), 0, -1) == [keys.member(6)]
    assert boards.page("at", 0, 10).rows[0].citizen_id == 6


def test_lua_builds_the_key_names_of_keys_py(fresh) -> None:  # type: ignore[no-untyped-def]
    boards: Boards = fresh()
    e = entry(1, 42, 3, T0, district="城:关{区}")
    boards.apply([e])
    gen, p = boards.generation(), boards.prefix
    names = [*keys.boards_of(e.week, "城:关{区}", True), "at"]
    assert sorted(boards.redis.hkeys(keys.registry_key(p, gen))) == sorted(names)
    for name in names:
        assert boards.redis.zscore(keys.board_key(p, gen, name), keys.member(42)) == scores.encode(
            3, scores.tick_of(T0)
        )
    assert reach_second(T0) == scores.instant_of(scores.tick_of(T0))


def test_moves_follow_the_latest_profile(fresh) -> None:  # type: ignore[no-untyped-def]
    boards: Boards = fresh()
    w = str(week_of(T0, TZ))
    boards.apply([entry(1, 5, 2, T0, district="城关区", eligible=True)])
    boards.apply([replace(entry(2, 5, 1, T0), district="七里河区", eligible=False)])
    assert boards.redis.zcard(keys.board_key(boards.prefix, 0, keys.district_weekly(w, "城关区"))) == 0
    assert boards.page(keys.district_weekly(w, "七里河区"), 0, 5).rows[0].points == 3
    assert boards.page(keys.weekly_eligible(w), 0, 5).rows == []
    boards.set_eligible(5, True)
    assert [r.prize_rank for r in boards.page(keys.weekly(w), 0, 5).rows] == [1]
    boards.set_eligible(404, True)  # no summary: nothing to move, no error
