"""The rebuild's second pass: placements come back per scope in descending score order (what lets Redis insert
each member next to the one before), none lost or repeated, and the board registry is what the per-citizen
writes gave (each board's latest tick, boards in the order they were first placed on)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rewards.leaderboard import keys, scores
from rewards.leaderboard.rebuild import Placements, by_score

DISTRICTS = ["", "城关区", "七里河区"]
SCOPES = [keys.ALL_TIME, "2026-W01", "2027-W01"]

placement_st = st.tuples(
    st.sampled_from(SCOPES),
    st.sampled_from(DISTRICTS),
    st.booleans(),
    st.integers(1, scores.MAX_POINTS),
    st.integers(0, scores.MAX_TICK),
    st.integers(1, keys.MAX_CITIZEN_ID),
)


@given(st.lists(st.tuples(st.integers(1, 2**53 - 1), st.integers(1, keys.MAX_CITIZEN_ID)), max_size=300))
def test_by_score_is_a_stable_descending_permutation(placed: list[tuple[int, int]]) -> None:
    magnitudes = [magnitude for magnitude, _ in placed]
    citizens = [cid for _, cid in placed]
    groups = [i % 7 for i in range(len(placed))]
    got = list(by_score(magnitudes, citizens, groups))
    want = sorted(((-m, c, g) for m, c, g in zip(magnitudes, citizens, groups, strict=True)), key=lambda p: -p[0])
    assert got == want  # sorted() is stable: equal scores keep the order they were placed in


@given(st.lists(placement_st, max_size=200))
def test_placements_keep_every_placement_and_the_registry(placed: list[tuple[str, str, bool, int, int, int]]) -> None:
    placements = Placements()
    registry: dict[str, int] = {}
    boards: dict[str, list[tuple[int, int]]] = {}
    for scope, district, eligible, points, tick, cid in placed:
        score = scores.encode(points, tick)
        placements.add((scope, district, eligible), score, cid, tick)
        for name in keys.boards_of(scope, district, eligible):  # what the per-citizen writes did
            registry[name] = max(registry.get(name, -1), tick)
            boards.setdefault(name, []).append((score, cid))
    assert list(placements.registry().items()) == list(registry.items())
    written: dict[str, list[tuple[int, int]]] = {}
    for scope, arrays in placements.scopes.items():
        last = None
        for score, cid, gid in by_score(*arrays):
            group = placements.groups[gid]
            assert group[0] == scope
            assert last is None or score <= last
            last = score
            for name in keys.boards_of(*group):
                written.setdefault(name, []).append((score, cid))
    assert {n: sorted(p) for n, p in written.items()} == {n: sorted(p) for n, p in boards.items()}
