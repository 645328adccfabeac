"""Properties of the pure list derivation (rewards.review.derive): the entry drops out, everyone below moves up, the
next eligible citizen enters; versions are deterministic, sealed by canonical bytes, and their changes add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hypothesis.strategies as st
from hypothesis import given, settings

from rewards.prizes import PrizeTable, PrizeTier
from rewards.review import derive as d

T0 = datetime(2026, 11, 16, tzinfo=UTC)
TIERS = (PrizeTier(1, 1, "一等奖", 500), PrizeTier(2, 4, "二等奖", 200), PrizeTier(5, 8, "三等奖", 50))


@st.composite
def pools(draw: st.DrawFn) -> d.Pool:
    n = draw(st.integers(0, 20))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    points = sorted(draw(st.lists(st.integers(1, 500), min_size=n, max_size=n)), reverse=True)
    names = draw(st.lists(st.text(min_size=1, max_size=4), min_size=n, max_size=n))
    candidates = tuple(
        d.Candidate(cid, name, pts, T0 + timedelta(seconds=i))
        for i, (cid, pts, name) in enumerate(zip(ids, points, names, strict=True))
    )
    return d.Pool("2026-W47", TIERS, n, candidates)


@st.composite
def pool_and_removals(draw: st.DrawFn) -> tuple[d.Pool, list[d.Removal]]:
    pool = draw(pools())
    ids = [c.citizen_id for c in pool.candidates]
    chosen = draw(st.lists(st.sampled_from(ids), unique=True, max_size=len(ids))) if ids else []
    actions = draw(st.lists(st.sampled_from(["void_case", "disqualify"]), min_size=len(chosen), max_size=len(chosen)))
    return pool, [d.Removal(i + 1, cid, a) for i, (cid, a) in enumerate(zip(chosen, actions, strict=True))]


@settings(max_examples=300)
@given(pool_and_removals())
def test_each_version_is_the_pool_minus_the_removed_ranked_with_the_tiers(data: tuple[d.Pool, list[d.Removal]]) -> None:
    pool, removals = data
    table = PrizeTable(pool.tiers)
    versions = d.derive(pool, removals)
    assert [v.number for v in versions] == list(range(1, len(removals) + 2))
    for k, version in enumerate(versions):
        gone = {r.citizen_id for r in removals[:k]}
        expected = [c.citizen_id for c in pool.candidates if c.citizen_id not in gone][: table.places]
        assert [r.citizen_id for r in version.rows] == expected
        assert [r.rank for r in version.rows] == list(range(1, len(expected) + 1))
        for row in version.rows:
            tier = table.tier_for(row.rank)
            assert tier is not None and (row.tier, row.prize) == (tier.name, tier.value)
        assert version.decisions == tuple(r.decision_id for r in removals[:k])


@settings(max_examples=300)
@given(pool_and_removals())
def test_changes_say_who_left_moved_up_and_entered(data: tuple[d.Pool, list[d.Removal]]) -> None:
    pool, removals = data
    versions = d.derive(pool, removals)
    for before, after, removal in zip(versions[:-1], versions[1:], removals, strict=True):
        old = {r.citizen_id: r.rank for r in before.rows}
        new = {r.citizen_id: r.rank for r in after.rows}
        by_kind: dict[str, set[int]] = {d.REMOVED: set(), d.MOVED: set(), d.ENTERED: set()}
        for ch in after.changes:
            by_kind[ch.kind].add(ch.citizen_id)
            assert ch.before == old.get(ch.citizen_id) and ch.after == new.get(ch.citizen_id)
            if ch.kind == d.MOVED:
                assert ch.before is not None and ch.after is not None and ch.after == ch.before - 1  # one step up
        assert by_kind[d.REMOVED] == set(old) - set(new) <= {removal.citizen_id}
        assert by_kind[d.ENTERED] == set(new) - set(old) and len(by_kind[d.ENTERED]) <= 1
        assert by_kind[d.MOVED] == {c for c in set(old) & set(new) if old[c] != new[c]}
        # nobody moves down
        assert all(new[c] <= old[c] for c in set(old) & set(new))


@settings(max_examples=200)
@given(pool_and_removals())
def test_next_version_agrees_with_the_full_derivation(data: tuple[d.Pool, list[d.Removal]]) -> None:
    pool, removals = data
    versions = d.derive(pool, removals)
    for k in range(1, len(versions)):
        assert d.next_version(pool, versions[k - 1], removals[:k]) == versions[k]


@settings(max_examples=200)
@given(pool_and_removals())
def test_canonical_bytes_round_trip_and_seal(data: tuple[d.Pool, list[d.Removal]]) -> None:
    pool, removals = data
    assert d.pool_from_bytes(d.pool_bytes(pool)) == pool
    for version in d.derive(pool, removals):
        data_bytes = d.version_bytes(version)
        assert d.version_from_bytes(data_bytes) == version
        assert d.checksum(data_bytes) == d.checksum(d.version_bytes(d.version_from_bytes(data_bytes)))
    assert d.derive(pool, removals) == d.derive(pool, list(removals))  # deterministic


def test_the_entry_drops_out_and_the_ninth_enters() -> None:
    pool = d.Pool("2026-W47", TIERS, 10, tuple(d.Candidate(i, f"市*{i}", 100 - i, T0) for i in range(1, 11)))
    v1, v2 = d.derive(pool, [d.Removal(7, 2, "void_case")])
    assert [r.citizen_id for r in v1.rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r.citizen_id for r in v2.rows] == [1, 3, 4, 5, 6, 7, 8, 9]
    assert v2.rows[1].tier == "二等奖" and v2.rows[3].tier == "二等奖" and v2.rows[4].tier == "三等奖"
    assert v2.changes[0] == d.Change(d.REMOVED, 2, "市*2", 2, None, d.PUBLIC_REASONS["void_case"])
    assert v2.changes[-1] == d.Change(d.ENTERED, 9, "市*9", None, 8, d.ENTERED_REASON)
