"""Prize tiers: sound tables only (refused at start-up otherwise), rank -> tier, points still needed for a prize."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.config import load_settings
from rewards.errors import ConfigError
from rewards.leaderboard.ranking import Standing, rank
from rewards.leaderboard.tiers import points_to_enter, prize_places, tier_index, validate_tiers
from tests.unit.test_leaderboard_ranking import at

TIER = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(0, 6))


def sound(tiers: list[tuple[int, int, int]]) -> bool:
    """Model: bands start at 1, follow each other without gap or overlap, and never pay a better rank less."""
    if not tiers:
        return False
    expected, value = 1, None
    for first, last, v in sorted(tiers):
        if first != expected or last < first or (value is not None and v > value):
            return False
        expected, value = last + 1, v
    return True


@settings(max_examples=1000, deadline=None)
@given(st.lists(TIER, max_size=5))
def test_validate_accepts_exactly_the_sound_tables(tiers: list[tuple[int, int, int]]) -> None:
    try:
        validate_tiers(tiers)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == sound(tiers)


@st.composite
def sound_tables(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    widths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=6))
    values = sorted(draw(st.lists(st.integers(0, 1000), min_size=len(widths), max_size=len(widths))), reverse=True)
    out, first = [], 1
    for width, value in zip(widths, values, strict=True):
        out.append((first, first + width - 1, value))
        first += width
    return draw(st.permutations(out))


@settings(max_examples=300, deadline=None)
@given(sound_tables(), st.integers(1, 200))
def test_tier_of_a_rank_is_its_band_and_better_ranks_never_get_less(tiers: list[tuple[int, int, int]], r: int) -> None:
    validate_tiers(tiers)
    ordered = sorted(tiers)
    places = prize_places(tiers)
    index = tier_index(r, tiers)
    if r > places:
        assert index is None
        return
    assert index is not None
    first, last, value = ordered[index]
    assert first <= r <= last
    better = tier_index(max(1, r - 1), tiers)
    assert better is not None and ordered[better][2] >= value


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
    ],
)
def test_unsound_tables_are_refused_with_a_reason(tiers: list[tuple[int, int, int]], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_tiers(tiers)


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
    tiers = [(t.first, t.last, t.value) for t in load_settings().prize_tiers]
    assert prize_places(tiers) == 80
    assert [tier_index(r, tiers) for r in (1, 2, 5, 6, 20, 21, 80, 81)] == [0, 1, 1, 2, 2, 3, 3, None]


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
