"""List versions (pure): a week's prize list derived from the sealed candidate pool minus the removed entries.

The one rule: version n = the pool's candidates in their sealed order, without every citizen removed by an upheld
objection up to decision n-1, the first `places` of them given ranks 1.. and the tiers of the prize table used at
the close. So the entry drops out, everyone below moves up, and the next eligible citizen of the pool enters.
The changes of a version (who left, who moved, who entered, why) are computed from its predecessor, in masked
form (the pool holds masked names only). Canonical bytes and the SHA-256 checksum follow the snapshot's style.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rewards.clock import to_utc
from rewards.leaderboard.snapshot import SnapshotRow
from rewards.prizes import PrizeTable, PrizeTier

REMOVED, MOVED, ENTERED = "removed", "moved", "entered"
# public reasons per action: the reviewer's own words go to the objector only, never onto the public list
PUBLIC_REASONS = {
    "void_case": "所涉上报经核查作废，撤出获奖名单",
    "disqualify": "经核查取消本周评奖资格，撤出获奖名单",
}
MOVED_REASON = "因前列条目撤下，名次递进"
ENTERED_REASON = "因前列条目撤下，递补进入获奖名单"


@dataclass(frozen=True)
class Candidate:
    """One eligible citizen of the closed week, in ranking order (masked name only)."""

    citizen_id: int
    display_name: str
    points: int
    reached_at: datetime


@dataclass(frozen=True)
class Pool:
    """The sealed candidates of a week: the snapshot's winners first, then the next eligible citizens."""

    week: str
    tiers: tuple[PrizeTier, ...]
    participants: int
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Removal:
    """An upheld objection's effect: this citizen leaves the week's list (action: void_case | disqualify)."""

    decision_id: int
    citizen_id: int
    action: str


ListRow = SnapshotRow  # one prize place of a version: the same facts as a row of the sealed snapshot


@dataclass(frozen=True)
class Change:
    """One line of "异议处理结果": who left, moved or entered, with a public reason (masked names)."""

    kind: str  # removed | moved | entered
    citizen_id: int
    display_name: str
    before: int | None  # rank in the previous version (None: entered)
    after: int | None  # rank in this version (None: removed)
    reason: str


@dataclass(frozen=True)
class Version:
    """A version of the week's list: its number, the decisions it rests on, its rows and its changes."""

    week: str
    number: int
    decisions: tuple[int, ...]  # decision ids applied, in order
    tiers: tuple[PrizeTier, ...]
    rows: tuple[ListRow, ...]
    changes: tuple[Change, ...]


def rows_of(pool: Pool, removed: Iterable[int]) -> tuple[ListRow, ...]:
    """The prize places: the pool's candidates without the removed citizens, ranked 1.. with the pool's tiers."""
    gone = set(removed)
    table = PrizeTable(pool.tiers)
    rows: list[ListRow] = []
    for candidate in (c for c in pool.candidates if c.citizen_id not in gone):
        position = len(rows) + 1
        tier = table.tier_for(position)
        if tier is None:
            break
        rows.append(
            ListRow(
                position,
                candidate.citizen_id,
                candidate.display_name,
                candidate.points,
                to_utc(candidate.reached_at),
                tier.name,
                tier.value,
            )
        )
    return tuple(rows)


def changes_between(before: Sequence[ListRow], after: Sequence[ListRow], removal: Removal | None) -> tuple[Change, ...]:
    """Who left, moved or entered between two versions, best rank first (removed entries first)."""
    old = {r.citizen_id: r for r in before}
    new = {r.citizen_id: r for r in after}
    out: list[Change] = []
    for r in before:
        if r.citizen_id not in new:
            why = PUBLIC_REASONS.get(removal.action, PUBLIC_REASONS["disqualify"]) if removal else ""
            out.append(Change(REMOVED, r.citizen_id, r.display_name, r.rank, None, why))
    for r in after:
        was = old.get(r.citizen_id)
        if was is None:
            out.append(Change(ENTERED, r.citizen_id, r.display_name, None, r.rank, ENTERED_REASON))
        elif was.rank != r.rank:
            out.append(Change(MOVED, r.citizen_id, r.display_name, was.rank, r.rank, MOVED_REASON))
    return tuple(out)


def derive(pool: Pool, removals: Sequence[Removal]) -> tuple[Version, ...]:
    """Every version of the week's list, from the pool and the upheld decisions in the order they were made.

    Version 1 rests on no decision; version k+1 on the first k removals. A removal of a citizen who is not on
    the list any more (cannot happen through the service, which closes such objections as moot) changes nothing
    but still yields its version, so numbering follows the decisions one to one.
    """
    versions = [Version(pool.week, 1, (), pool.tiers, rows_of(pool, ()), ())]
    removed: list[int] = []
    for k, removal in enumerate(removals, start=1):
        removed.append(removal.citizen_id)
        rows = rows_of(pool, removed)
        versions.append(
            Version(
                pool.week,
                k + 1,
                tuple(r.decision_id for r in removals[:k]),
                pool.tiers,
                rows,
                changes_between(versions[-1].rows, rows, removal),
            )
        )
    return tuple(versions)


def next_version(pool: Pool, previous: Version, removals: Sequence[Removal]) -> Version:
    """The version that follows `previous` once the last of `removals` (all upheld so far, in order) applies."""
    rows = rows_of(pool, (r.citizen_id for r in removals))
    return Version(
        pool.week,
        previous.number + 1,
        tuple(r.decision_id for r in removals),
        pool.tiers,
        rows,
        changes_between(previous.rows, rows, removals[-1] if removals else None),
    )


# ------------------------------------------------------------ canonical text and checksums


def _iso(instant: datetime) -> str:
    return to_utc(instant).isoformat(timespec="microseconds")


def _dump(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def pool_bytes(pool: Pool) -> bytes:
    """The pool's canonical serialization (sorted keys, no spaces, UTF-8, microsecond UTC times)."""
    return _dump(
        {
            "week": pool.week,
            "participants": pool.participants,
            "tiers": [[t.first, t.last, t.name, t.value] for t in pool.tiers],
            "candidates": [[c.citizen_id, c.display_name, c.points, _iso(c.reached_at)] for c in pool.candidates],
        }
    )


def pool_from_bytes(data: bytes) -> Pool:
    """Read a pool back from its canonical serialization."""
    doc = json.loads(data)
    return Pool(
        week=doc["week"],
        tiers=tuple(PrizeTier(*t) for t in doc["tiers"]),
        participants=doc["participants"],
        candidates=tuple(Candidate(c[0], c[1], c[2], datetime.fromisoformat(c[3])) for c in doc["candidates"]),
    )


def version_bytes(version: Version) -> bytes:
    """A version's canonical serialization."""
    return _dump(
        {
            "week": version.week,
            "number": version.number,
            "decisions": list(version.decisions),
            "tiers": [[t.first, t.last, t.name, t.value] for t in version.tiers],
            "rows": [
                [r.rank, r.citizen_id, r.display_name, r.points, _iso(r.reached_at), r.tier, r.prize]
                for r in version.rows
            ],
            "changes": [[c.kind, c.citizen_id, c.display_name, c.before, c.after, c.reason] for c in version.changes],
        }
    )


def version_from_bytes(data: bytes) -> Version:
    """Read a version back from its canonical serialization."""
    doc = json.loads(data)
    return Version(
        week=doc["week"],
        number=doc["number"],
        decisions=tuple(doc["decisions"]),
        tiers=tuple(PrizeTier(*t) for t in doc["tiers"]),
        rows=tuple(ListRow(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), r[5], r[6]) for r in doc["rows"]),
        changes=tuple(Change(*c) for c in doc["changes"]),
    )


def checksum(data: bytes) -> str:
    """SHA-256 of canonical bytes, hex."""
    return hashlib.sha256(data).hexdigest()
