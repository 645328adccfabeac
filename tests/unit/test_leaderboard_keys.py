"""Key layout of the boards: one hash tag per program, names that parse back, members in citizen-id order."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.leaderboard import keys

WEEKS = st.builds(lambda y, w: f"{y:04d}-W{w:02d}", st.integers(2020, 2156), st.integers(1, 53))
DISTRICTS = st.text(min_size=1, max_size=12)
PREFIXES = st.text(min_size=1, max_size=10).filter(lambda p: "{" not in p and "}" not in p)


def hash_slot(key: str) -> int:
    """Redis Cluster's slot of a key (CRC16/XMODEM of the hash tag, as the cluster spec defines it)."""
    raw = key.encode()
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return binascii.crc_hqx(raw, 0) % 16384


@settings(max_examples=200, deadline=None)
@given(PREFIXES, st.integers(0, 10**6), WEEKS, DISTRICTS, st.integers(1, keys.MAX_CITIZEN_ID))
def test_every_key_of_a_program_shares_one_cluster_slot(prefix: str, gen: int, week: str, d: str, cid: int) -> None:
    all_keys = [
        keys.gen_key(prefix),
        keys.genseq_key(prefix),
        keys.shadow_key(prefix),
        keys.catchup_key(prefix),
        keys.lock_key(prefix),
        keys.registry_key(prefix, gen),
        keys.summary_key(prefix, gen, cid),
        *(keys.board_key(prefix, gen, n) for n in (keys.ALL_TIME, keys.weekly(week), keys.weekly_eligible(week))),
        keys.board_key(prefix, gen, keys.district_weekly(week, d)),
    ]
    assert len({hash_slot(k) for k in all_keys}) == 1
    assert all(prefix in k for k in all_keys)  # tests clean up with SCAN MATCH *prefix*


@settings(max_examples=200, deadline=None)
@given(WEEKS, DISTRICTS)
def test_board_names_parse_back(week: str, district: str) -> None:
    assert keys.parse_name(keys.ALL_TIME) == keys.BoardName("at")
    assert keys.parse_name(keys.weekly(week)) == keys.BoardName("w", week)
    assert keys.parse_name(keys.weekly_eligible(week)) == keys.BoardName("we", week)
    assert keys.parse_name(keys.district_weekly(week, district)) == keys.BoardName("dw", week, district)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, keys.MAX_CITIZEN_ID), st.integers(1, keys.MAX_CITIZEN_ID))
def test_member_order_is_citizen_id_order(a: int, b: int) -> None:
    assert (keys.member(a) < keys.member(b)) == (a < b)
    assert keys.citizen_of(keys.member(a)) == a


@pytest.mark.parametrize("bad", ["", "a{b", "a}b"])
def test_unusable_prefix_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        keys.tag(bad)


@pytest.mark.parametrize("cid", [0, -1, keys.MAX_CITIZEN_ID + 1])
def test_member_refuses_ids_it_cannot_order(cid: int) -> None:
    with pytest.raises(ValueError):
        keys.member(cid)


@pytest.mark.parametrize("name", ["", "w:2026-48", "x:2026-W48", "dw:2026-W48:", "we:2026-W48:x", "c:000000000001"])
def test_non_board_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        keys.parse_name(name)


def test_scopes_map_to_boards() -> None:
    assert keys.boards_of("at", "城关区", True) == ["at"]
    assert keys.boards_of("2026-W48", "", False) == ["w:2026-W48"]
    assert keys.boards_of("2026-W48", "城关区", True) == ["w:2026-W48", "we:2026-W48", "dw:2026-W48:城关区"]


def test_generation_pattern_escapes_glob_characters() -> None:
    assert keys.generation_pattern("a*b?[c]", 3) == "{a\\*b\\?\\[c\\]:lb}:3:*"
