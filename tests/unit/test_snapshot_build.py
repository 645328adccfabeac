"""The weekly snapshot (pure) against a brute-force model: ranks, min(places, eligible) winners, monotone tiers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.leaderboard.ranking import Standing
from rewards.leaderboard.snapshot import (
    BOARD_DIFFERS,
    BOARD_MATCH,
    BOARD_UNAVAILABLE,
    Entrant,
    Snapshot,
    SnapshotRow,
    build_snapshot,
    canonical_bytes,
    checksum,
    compare_with_board,
)
from rewards.masking import mask_name
from rewards.prizes import PrizeTable, PrizeTier

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
DEFAULT_TIERS = [PrizeTier(1, 1, "一等奖", 500), PrizeTier(2, 5, "二等奖", 200), PrizeTier(6, 20, "三等奖", 100),
                 PrizeTier(21, 80, "参与奖", 50)]  # fmt: skip
DEFAULT_PRIZES = PrizeTable(DEFAULT_TIERS)


@st.composite
def tier_tables(draw: st.DrawFn) -> list[PrizeTier]:
    """Contiguous bands from rank 1 whose prizes never increase with rank."""
    widths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=5))
    values = sorted(draw(st.lists(st.integers(0, 1000), min_size=len(widths), max_size=len(widths))), reverse=True)
    tiers, first = [], 1
    for i, (width, value) in enumerate(zip(widths, values, strict=True)):
        tiers.append(PrizeTier(first, first + width - 1, f"T{i}", value))
        first += width
    return tiers


@st.composite
def weeks(draw: st.DrawFn) -> tuple[list[Standing], dict[int, Entrant]]:
    """Citizens with totals (ties on points and on reach time are likely) and eligibility."""
    n = draw(st.integers(0, 120))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    standings, entrants = [], {}
    for cid in ids:
        points = draw(st.integers(-3, 8))
        reached = T0 + timedelta(minutes=draw(st.integers(0, 20)))
        standings.append(Standing(cid, points, reached))
        name = draw(st.one_of(st.none(), st.text(min_size=1, max_size=6)))
        entrants[cid] = Entrant(cid, name, draw(st.booleans()))
    return standings, entrants


def beats(a: Standing, b: Standing) -> bool:
    """The ranking rule stated directly: more points, else reached first, else lower id."""
    if a.points != b.points:
        return a.points > b.points
    if a.reached_at != b.reached_at:
        return a.reached_at < b.reached_at
    return a.citizen_id < b.citizen_id


def model(standings: list[Standing], entrants: dict[int, Entrant], tiers: list[PrizeTier]) -> list[tuple]:
    """Brute force: rank = 1 + how many eligible scorers beat you; winners are ranks within the last band."""
    pool = [s for s in standings if entrants[s.citizen_id].eligible and s.points > 0]
    places = max(t.last for t in tiers)
    out = []
    for s in pool:
        r = 1 + sum(beats(o, s) for o in pool if o is not s)
        if r <= places:
            tier = next(t for t in tiers if t.first <= r <= t.last)
            out.append((r, s.citizen_id, s.points, tier.name, tier.value))
    return sorted(out)


@settings(max_examples=300, deadline=None)
@given(weeks(), tier_tables())
def test_snapshot_equals_the_brute_force_model(week: tuple, tiers: list[PrizeTier]) -> None:
    standings, entrants = week
    snap = build_snapshot("2026-W48", standings, entrants, PrizeTable(tiers))
    got = [(r.rank, r.citizen_id, r.points, r.tier, r.prize) for r in snap.rows]
    assert got == model(standings, entrants, tiers)
    eligible = sum(1 for s in standings if entrants[s.citizen_id].eligible and s.points > 0)
    assert len(snap.rows) == min(max(t.last for t in tiers), eligible)
    assert snap.participants == eligible
    assert [r.rank for r in snap.rows] == list(range(1, len(snap.rows) + 1))  # strict ranks
    assert all(a.prize >= b.prize for a, b in zip(snap.rows, snap.rows[1:], strict=False))  # monotone tiers
    assert all(r.display_name == mask_name(entrants[r.citizen_id].name) for r in snap.rows)
    assert all(entrants[r.citizen_id].eligible for r in snap.rows)


@settings(max_examples=200, deadline=None)
@given(weeks(), st.randoms(use_true_random=False))
def test_canonical_bytes_do_not_depend_on_input_order(week: tuple, rnd: random.Random) -> None:
    standings, entrants = week
    first = build_snapshot("2026-W48", standings, entrants, DEFAULT_PRIZES)
    shuffled = standings[:]
    rnd.shuffle(shuffled)
    tiers = PrizeTable(DEFAULT_TIERS[::-1])  # the same table, given worst band first
    second = build_snapshot("2026-W48", shuffled, dict(reversed(list(entrants.items()))), tiers)
    assert canonical_bytes(first) == canonical_bytes(second)
    assert checksum(first) == checksum(second)
    doc = json.loads(canonical_bytes(first))
    assert [row[0] for row in doc["rows"]] == [r.rank for r in first.rows]


def test_exactly_eighty_winners_among_many_and_tiers_by_band() -> None:
    standings = [Standing(i, 100 - i % 7, T0 + timedelta(seconds=i)) for i in range(1, 201)]
    entrants = {i: Entrant(i, f"市民{i}号", i % 10 != 0) for i in range(1, 201)}
    snap = build_snapshot("2026-W48", standings, entrants, DEFAULT_PRIZES)
    assert len(snap.rows) == 80
    assert snap.participants == 180
    assert [r.tier for r in snap.rows[:6]] == ["一等奖", "二等奖", "二等奖", "二等奖", "二等奖", "三等奖"]
    assert snap.rows[-1].tier == "参与奖" and snap.rows[-1].prize == 50
    assert all(r.citizen_id % 10 != 0 for r in snap.rows)


def test_equal_points_go_to_whoever_reached_them_first_then_lower_id() -> None:
    standings = [Standing(5, 3, T0 + timedelta(hours=2)), Standing(9, 3, T0 + timedelta(hours=1)),
                 Standing(2, 3, T0 + timedelta(hours=2)), Standing(7, 4, T0 + timedelta(hours=9))]  # fmt: skip
    entrants = {i: Entrant(i, "张三丰", True) for i in (2, 5, 7, 9)}
    snap = build_snapshot("2026-W48", standings, entrants, DEFAULT_PRIZES)
    assert [r.citizen_id for r in snap.rows] == [7, 9, 2, 5]
    assert snap.rows[0].display_name == "张*丰"


def test_board_comparison() -> None:
    rows = tuple(SnapshotRow(i, 10 + i, "张*", 10 - i, T0, "x", 1) for i in range(1, 4))
    assert compare_with_board(rows, [(11, 9), (12, 8), (13, 7)]) == (BOARD_MATCH, [])
    status, diffs = compare_with_board(rows, [(11, 9), (13, 7)])
    assert status == BOARD_DIFFERS
    assert diffs[0] == {"rank": 2, "ledger": [12, 8], "board": [13, 7]}
    assert diffs[1] == {"rank": 3, "ledger": [13, 7], "board": None}
    assert compare_with_board(rows, None) == (BOARD_UNAVAILABLE, [])


def test_an_empty_week_has_no_winners() -> None:
    snap = build_snapshot("2026-W48", [], {}, DEFAULT_PRIZES)
    assert snap == Snapshot("2026-W48", tuple(DEFAULT_TIERS), 0, ())
    assert json.loads(canonical_bytes(snap))["rows"] == []
