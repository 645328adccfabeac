"""Redis key names of the leaderboards (pure): the one place that spells them.

Layout (P = Settings.leaderboard_key_prefix, g = generation, m = 12-digit zero-padded citizen id):

    {P:lb}:gen                current generation (absent: never built here, generation 0; or lost)
    {P:lb}:genseq             counter that hands out new generations (rebuilds)
    {P:lb}:shadow             generation a rebuild is building (cleaned up if that rebuild died)
    {P:lb}:lock               rebuild lock (one rebuild at a time)
    {P:lb}:g:reg              board registry of generation g: hash board name -> updated tick
    {P:lb}:g:hw               high-water mark of generation g: the largest ledger entry id applied
    {P:lb}:g:cw               the largest citizen-change id restated into generation g
    {P:lb}:g:at               all-time board, every citizen with points > 0
    {P:lb}:g:w:2026-W48       weekly board, every citizen with points > 0 that week
    {P:lb}:g:we:2026-W48      weekly board of eligible citizens only (verified, not banned): prize ranks
    {P:lb}:g:dw:2026-W48:城关区 weekly board of one district (the citizen's district)
    {P:lb}:g:c:m              citizen summary (hash): applied entry ids, per-scope points and reached tick, and the
                              citizen's data a standing shows: masked display name (n), banned flag (b)
    {P:lb}:g:oid              openid -> member (hash) of every citizen: a standing starts from the openid

Every key of a program's boards carries ONE hash tag, ``{P:lb}``: the apply script touches a citizen's summary
and every board of the entry atomically, and Redis Cluster only runs a script whose keys share a slot. The
board family therefore lives on one shard (4.4M citizens are ~2 GB, see docs/leaderboard.md); RENAME-free
rebuilds swap the generation pointer instead of renaming millions of keys.

Board *names* ("at", "w:2026-W48", ...) are generation-free; a key is ``base(prefix, gen) + name``. The Lua
script in scripts.py builds the same names by concatenation; tests assert the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MEMBER_DIGITS = 12  # zero-padded so that the lexicographic member order is ascending citizen id
MAX_CITIZEN_ID = 10**MEMBER_DIGITS - 1
ALL_TIME = "at"
_WEEK = r"\d{4}-W\d{2}"
_NAME_RE = re.compile(rf"^(?:(at)|(w|we):({_WEEK})|(dw):({_WEEK}):(.+))$", re.S)


def tag(prefix: str) -> str:
    """Return the hash tag every key of this program's boards shares."""
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"leaderboard key prefix must be non-empty and free of braces: {prefix!r}")
    return "{" + prefix + ":lb}"


def gen_key(prefix: str) -> str:
    """Return the key holding the current generation."""
    return tag(prefix) + ":gen"


def genseq_key(prefix: str) -> str:
    """Return the counter key that hands out new generations."""
    return tag(prefix) + ":genseq"


def shadow_key(prefix: str) -> str:
    """Return the key naming the generation a rebuild is building."""
    return tag(prefix) + ":shadow"


def catchup_key(prefix: str) -> str:
    """Return the key naming the generation a rebuild swapped in and has not caught up yet ("gen:after_id": the
    ledger entries past after_id may still be missing from it). Standings are not answered from that generation
    until the catch-up is done: a rebuild clears the key after its catch-up, the projector after an abandoned one."""
    return tag(prefix) + ":catchup"


def lock_key(prefix: str) -> str:
    """Return the rebuild lock key."""
    return tag(prefix) + ":lock"


def base(prefix: str, gen: int) -> str:
    """Return the prefix of every board and summary key of a generation."""
    if gen < 0:
        raise ValueError(f"generation must be >= 0: {gen}")
    return f"{tag(prefix)}:{gen}:"


def registry_key(prefix: str, gen: int) -> str:
    """Return the hash listing a generation's boards (name -> updated tick)."""
    return base(prefix, gen) + "reg"


def high_water_key(prefix: str, gen: int) -> str:
    """Return the key holding the largest ledger entry id applied to a generation (set by the apply script)."""
    return base(prefix, gen) + "hw"


def changes_key(prefix: str, gen: int) -> str:
    """Return the key holding the largest citizen-change id restated into a generation (set by the projector)."""
    return base(prefix, gen) + "cw"


def openids_key(prefix: str, gen: int) -> str:
    """Return the hash mapping every citizen's openid to their member (kept with the citizen data, per generation)."""
    return base(prefix, gen) + "oid"


def board_key(prefix: str, gen: int, name: str) -> str:
    """Return the sorted-set key of a board name in a generation."""
    parse_name(name)  # refuse anything that is not a board name
    return base(prefix, gen) + name


def summary_key(prefix: str, gen: int, citizen_id: int) -> str:
    """Return the hash key of a citizen's summary in a generation."""
    return base(prefix, gen) + "c:" + member(citizen_id)


def generation_pattern(prefix: str, gen: int) -> str:
    """Return the SCAN MATCH pattern of every key of a generation (glob characters of the prefix escaped)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in base(prefix, gen)) + "*"


def member(citizen_id: int) -> str:
    """Return a citizen's sorted-set member: the id zero-padded so ties fall to the lower id."""
    if not 0 < citizen_id <= MAX_CITIZEN_ID:
        raise ValueError(f"citizen id out of range for a {MEMBER_DIGITS}-digit member: {citizen_id}")
    return f"{citizen_id:0{MEMBER_DIGITS}d}"


def citizen_of(member_text: str) -> int:
    """Return the citizen id of a member."""
    if len(member_text) != MEMBER_DIGITS or not member_text.isdigit():
        raise ValueError(f"not a board member: {member_text!r}")
    return int(member_text)


def weekly(week: str) -> str:
    """Return the name of a week's board (all citizens)."""
    return _checked(f"w:{week}")


def weekly_eligible(week: str) -> str:
    """Return the name of a week's eligible-only board (prize ranks)."""
    return _checked(f"we:{week}")


def district_weekly(week: str, district: str) -> str:
    """Return the name of a district's weekly board."""
    if not district:
        raise ValueError("a district board needs a district")
    return _checked(f"dw:{week}:{district}")


@dataclass(frozen=True)
class BoardName:
    """A parsed board name."""

    kind: str  # at | w | we | dw
    week: str | None = None
    district: str | None = None


def parse_name(name: str) -> BoardName:
    """Parse a board name; raise ValueError for anything else."""
    m = _NAME_RE.match(name)
    if not m:
        raise ValueError(f"not a board name: {name!r}")
    if m.group(1):
        return BoardName(ALL_TIME)
    if m.group(2):
        return BoardName(m.group(2), m.group(3))
    return BoardName("dw", m.group(5), m.group(6))


def boards_of(scope: str, district: str, eligible: bool) -> list[str]:
    """Return the board names a citizen's total in a scope ("at" or a week) belongs to."""
    if scope == ALL_TIME:
        return [ALL_TIME]
    names = [weekly(scope)]
    if eligible:
        names.append(weekly_eligible(scope))
    if district:
        names.append(district_weekly(scope, district))
    return names


@lru_cache(maxsize=4096)  # rebuilds name the same few boards millions of times
def _checked(name: str) -> str:
    parse_name(name)
    return name
