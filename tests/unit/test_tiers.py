"""The prize table (rewards.prizes): sound tables only, rank -> tier, a higher rank never a smaller prize, entry."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.config import load_settings
from rewards.errors import ConfigError
from rewards.leaderboard.ranking import Standing, rank
from rewards.prizes import PrizeTable, PrizeTier, points_to_enter, validate_tiers
from tests.unit.test_leaderboard_ranking import at

NAMES = st.sampled_from(["一等奖", "二等奖", "参与奖", "T", "", " ", "\u3000"])
TIER = st.builds(PrizeTier, st.integers(0, 12), st.integers(0, 12), NAMES, st.integers(-2, 6))


def sound(tiers: list[PrizeTier]) -> bool:
    """Model: named, non-negative bands that start at 1, follow each other without gap or overlap, and never pay
    a better rank less."""
    if not tiers:
        return False
    expected, value = 1, None
    for t in sorted(tiers, key=lambda t: (t.first, t.last)):
        if not t.name.strip() or t.value < 0:
            return False
        if t.first != expected or t.last < t.first or (value is not None and t.value > value):
            return False
        expected, value = t.last + 1, t.value
    return True


@st.composite
def sound_tables(draw: st.DrawFn) -> list[PrizeTier]:
    """Sound tables in any order: contiguous bands from rank 1 whose prizes never increase with rank."""
    widths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=6))
    values = sorted(draw(st.lists(st.integers(0, 1000), min_size=len(widths), max_size=len(widths))), reverse=True)
    out, first = [], 1
    for i, (width, value) in enumerate(zip(widths, values, strict=True)):
        out.append(PrizeTier(first, first + width - 1, f"T{i}", value))
        first += width
    return draw(st.permutations(out))


# --- validation ---------------------------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(st.lists(TIER, max_size=5))
def test_validate_accepts_exactly_the_sound_tables(tiers: list[PrizeTier]) -> None:
    try:
        validate_tiers(tiers)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == sound(tiers)
    try:
        PrizeTable(tiers)
        built = True
    except ValueError:
        built = False
    assert built == accepted  # a PrizeTable is a validated table: there is no unsound one


@pytest.mark.parametrize(
    ("tiers", "reason"),
    [
        ([], "at least one"),
        ([(2, 5, 10)], "gap"),
        ([(1, 1, 10), (3, 5, 5)], "gap"),
        ([(1, 3, 10), (3, 5, 5)], "overlaps"),
        ([(1, 5, 10), (2, 3, 5)], "overlaps"),
        ([(1, 1, 10), (2, 5, 50)], "more than a better rank"),
        ([(1, 1, 10), (3, 2, 5)], "first rank after last"),
        ([(1, 1, -1)], "must not be negative"),
    ],
)
def test_unsound_tables_are_refused_with_a_reason(tiers: list[tuple[int, int, int]], reason: str) -> None:
    table = [PrizeTier(first, last, f"t{first}", value) for first, last, value in tiers]
    with pytest.raises(ValueError, match=reason):
        validate_tiers(table)
    with pytest.raises(ValueError, match=reason):
        PrizeTable(table)


@pytest.mark.parametrize("name", ["", "  ", "\u3000"])
def test_a_tier_needs_a_name(name: str) -> None:
    with pytest.raises(ValueError, match="a name is required"):
        PrizeTable([PrizeTier(1, 1, "一等奖", 10), PrizeTier(2, 5, name, 5)])


@settings(max_examples=300, deadline=None)
@given(sound_tables())
def test_a_table_holds_its_tiers_best_first_whatever_the_input_order(tiers: list[PrizeTier]) -> None:
    table = PrizeTable(tiers)
    assert sorted(table.tiers, key=lambda t: t.first) == list(table.tiers)
    assert set(table.tiers) == set(tiers) and len(table.tiers) == len(tiers)
    assert table == PrizeTable(reversed(tiers))
    assert validate_tiers(tiers) == table.tiers
    with pytest.raises(FrozenInstanceError):
        table.tiers = ()  # type: ignore[misc]


# --- places, tier_for, prize_for ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sound_tables())
def test_places_are_the_ranks_the_bands_cover(tiers: list[PrizeTier]) -> None:
    table = PrizeTable(tiers)
    assert table.places == sum(t.last - t.first + 1 for t in tiers) == max(t.last for t in tiers)
    assert table.tier_for(table.places) is not None
    assert table.tier_for(table.places + 1) is None


@settings(max_examples=300, deadline=None)
@given(sound_tables(), st.integers(-3, 200))
def test_tier_of_a_rank_is_the_one_band_that_holds_it(tiers: list[PrizeTier], r: int) -> None:
    table = PrizeTable(tiers)
    holding = [t for t in tiers if t.first <= r <= t.last]
    assert len(holding) <= 1
    tier = table.tier_for(r)
    if 1 <= r <= table.places:
        assert holding == [tier]
        assert table.prize_for(r) == tier.value
    else:
        assert tier is None and holding == []
        assert table.prize_for(r) == 0
    assert table.tier_for(None) is None and table.prize_for(None) == 0


@settings(max_examples=500, deadline=None)
@given(sound_tables(), st.integers(1, 200), st.integers(1, 200))
def test_a_higher_rank_never_gets_a_smaller_prize(tiers: list[PrizeTier], a: int, b: int) -> None:
    table = PrizeTable(tiers)
    better, worse = min(a, b), max(a, b)
    assert table.prize_for(better) >= table.prize_for(worse)
    if table.tier_for(worse) is not None:  # a rank inside the table: every better rank wins too
        assert table.tier_for(better) is not None


def test_bands_read_as_citizens_read_them() -> None:
    assert PrizeTier(1, 1, "一等奖", 500).band() == "第 1 名"
    assert PrizeTier(2, 5, "二等奖", 200).band() == "第 2–5 名"


# --- settings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tiers",
    [
        [[1, 1, 500], [3, 80, 50]],  # gap: rank 2
        [[1, 5, 500], [5, 80, 50]],  # overlap: rank 5
        [[1, 1, 50], [2, 80, 500]],  # a better rank paid less
    ],
)
def test_start_up_refuses_an_unsound_tier_table(monkeypatch: pytest.MonkeyPatch, tiers: list[list[int]]) -> None:
    value = json.dumps([{"first": f, "last": la, "name": f"t{f}", "value": v} for f, la, v in tiers])
    monkeypatch.setenv("REWARDS_PRIZE_TIERS", value)
    with pytest.raises(ConfigError, match="REWARDS_PRIZE_TIERS"):
        load_settings()


def test_default_tiers_are_the_program_top_80() -> None:
    s = load_settings()
    table = s.prize_table
    assert table == PrizeTable(s.prize_tiers)
    assert table.places == 80
    tiers = table.tiers
    expected = [tiers[0], tiers[1], tiers[1], tiers[2], tiers[2], tiers[3], tiers[3], None]
    assert [table.tier_for(r) for r in (1, 2, 5, 6, 20, 21, 80, 81)] == expected


# --- points to enter ----------------------------------------------------------------------------------------

OTHERS = st.lists(st.tuples(st.integers(1, 6), st.integers(0, 4)), max_size=12)  # (points, second) of others


@settings(max_examples=1000, deadline=None)
@given(OTHERS, st.integers(-4, 8), st.integers(0, 4), st.integers(1, 6))
def test_points_to_enter_is_the_least_that_wins_a_prize_place(
    others: list[tuple[int, int]], own: int, own_second: int, places: int
) -> None:
    """Brute force: add k points (a later award, so ties are lost) until the citizen ranks within the places."""
    me = 1000
    board = [Standing(i + 1, p, at(s)) for i, (p, s) in enumerate(others)]
    current = rank([*board, Standing(me, own, at(own_second))])
    ids = [s.citizen_id for s in current]
    prize_rank = ids.index(me) + 1 if me in ids else None
    last = current[places - 1].points if len(current) >= places else None
    needed = points_to_enter(own, prize_rank, len(current), places, last)

    def wins(k: int) -> bool:
        later = rank([*board, Standing(me, own + k, at(60))])
        return me in [s.citizen_id for s in later[:places]]

    if prize_rank is not None and prize_rank <= places:
        assert needed == 0
    else:
        assert needed >= 1 and wins(needed) and not wins(needed - 1)
