"""Weekly snapshots (pure): the closed week's top list with prize tiers, its canonical text and checksum.

`build_snapshot` decides, `compare_with_board` cross-checks the Redis board; rewards.leaderboard.weeks stores the
result once per week (the database refuses UPDATE and, on PostgreSQL, DELETE of snapshot rows: migration 0003).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rewards.clock import to_utc
from rewards.leaderboard.ranking import Standing, rank
from rewards.masking import mask_name
from rewards.prizes import PrizeTable, PrizeTier

BOARD_MATCH, BOARD_DIFFERS, BOARD_UNAVAILABLE = "match", "differs", "unavailable"


@dataclass(frozen=True)
class Entrant:
    """What the snapshot needs to know about a citizen with points in the week."""

    citizen_id: int
    name: str | None
    eligible: bool  # verified and not banned


@dataclass(frozen=True)
class SnapshotRow:
    """One winner: strict rank, masked name, points, when the total was reached, tier and prize."""

    rank: int
    citizen_id: int
    display_name: str
    points: int
    reached_at: datetime
    tier: str
    prize: int


@dataclass(frozen=True)
class Snapshot:
    """A closed week: the tiers used, how many eligible citizens scored, and the winners best first."""

    week: str
    tiers: tuple[PrizeTier, ...]  # the prize table as it stood when the week was closed
    participants: int
    rows: tuple[SnapshotRow, ...]


def build_snapshot(
    week: str, standings: Iterable[Standing], entrants: Mapping[int, Entrant], prizes: PrizeTable
) -> Snapshot:
    """Rank eligible citizens with the ranking rule and give the first prizes.places their tier."""
    ranked = rank(s for s in standings if entrants[s.citizen_id].eligible)
    rows = []
    for position, standing in enumerate(ranked[: prizes.places], start=1):
        tier = prizes.tier_for(position)
        assert tier is not None  # a PrizeTable's tiers are contiguous from rank 1
        rows.append(
            SnapshotRow(
                rank=position,
                citizen_id=standing.citizen_id,
                display_name=mask_name(entrants[standing.citizen_id].name),
                points=standing.points,
                reached_at=to_utc(standing.reached_at),
                tier=tier.name,
                prize=tier.value,
            )
        )
    return Snapshot(week=week, tiers=prizes.tiers, participants=len(ranked), rows=tuple(rows))


def canonical_bytes(snapshot: Snapshot) -> bytes:
    """Serialize a snapshot canonically (sorted keys, no spaces, UTF-8, microsecond UTC times)."""
    doc = {
        "week": snapshot.week,
        "participants": snapshot.participants,
        "tiers": [[t.first, t.last, t.name, t.value] for t in snapshot.tiers],
        "rows": [
            [r.rank, r.citizen_id, r.display_name, r.points, _iso(r.reached_at), r.tier, r.prize] for r in snapshot.rows
        ],
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def checksum(snapshot: Snapshot) -> str:
    """Return the SHA-256 of the canonical serialization."""
    return hashlib.sha256(canonical_bytes(snapshot)).hexdigest()


def compare_with_board(
    rows: Sequence[SnapshotRow], board: Sequence[tuple[int, int]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Compare the winners with the Redis weekly board's top, position by position; return (status, diffs)."""
    if board is None:
        return BOARD_UNAVAILABLE, []
    diffs: list[dict[str, Any]] = []
    for position in range(max(len(rows), len(board))):
        ours = [rows[position].citizen_id, rows[position].points] if position < len(rows) else None
        theirs = [int(board[position][0]), int(board[position][1])] if position < len(board) else None
        if ours != theirs:
            diffs.append({"rank": position + 1, "ledger": ours, "board": theirs})
    return (BOARD_DIFFERS if diffs else BOARD_MATCH), diffs


def _iso(instant: datetime) -> str:
    return to_utc(instant).isoformat(timespec="microseconds")
