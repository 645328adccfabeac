"""Weekly snapshots: the closed week's top list with prize tiers, immutable once stored.

The pure part (`build_snapshot`, `canonical_bytes`, `compare_with_board`) decides; `close_week` stores the result
once per week. The database refuses UPDATE (and, on PostgreSQL, DELETE) of snapshot rows: see migration 0003.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from rewards.clock import IsoWeek, to_utc, week_of
from rewards.db import Base, UTCDateTime
from rewards.errors import Conflict
from rewards.leaderboard.ranking import Standing, rank, totals_from_entries
from rewards.leaderboard.tiers import prize_places, tier_index
from rewards.logs import get_logger
from rewards.masking import mask_name

if TYPE_CHECKING:
    from rewards.bootstrap import Container

log = get_logger("snapshot")

BOARD_MATCH, BOARD_DIFFERS, BOARD_UNAVAILABLE = "match", "differs", "unavailable"


@dataclass(frozen=True)
class Entrant:
    """What the snapshot needs to know about a citizen with points in the week."""

    citizen_id: int
    name: str | None
    eligible: bool  # verified and not banned


@dataclass(frozen=True)
class TierRule:
    """A prize band as it stood when the week was closed."""

    first: int
    last: int
    name: str
    value: int


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
    tiers: tuple[TierRule, ...]
    participants: int
    rows: tuple[SnapshotRow, ...]


def build_snapshot(
    week: str, standings: Iterable[Standing], entrants: Mapping[int, Entrant], tiers: Sequence[TierRule]
) -> Snapshot:
    """Rank eligible citizens with the ranking rule and give the first prize_places(tiers) their tier."""
    ordered_tiers = tuple(sorted(tiers, key=lambda t: t.first))
    specs = [(t.first, t.last, t.value) for t in ordered_tiers]
    ranked = rank(s for s in standings if entrants[s.citizen_id].eligible)
    rows = []
    for position, standing in enumerate(ranked[: prize_places(specs)], start=1):
        index = tier_index(position, specs)
        assert index is not None  # tiers are contiguous from rank 1 (validated in Settings)
        tier = ordered_tiers[index]
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
    return Snapshot(week=week, tiers=ordered_tiers, participants=len(ranked), rows=tuple(rows))


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


class WeeklySnapshot(Base):
    """The stored snapshot of a closed week (one per week; the database refuses updates)."""

    __tablename__ = "weekly_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), unique=True)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    participants: Mapped[int] = mapped_column(Integer)
    winners: Mapped[int] = mapped_column(Integer)
    canonical: Mapped[str] = mapped_column(Text)  # canonical_bytes() as stored: re-checked on every load
    checksum: Mapped[str] = mapped_column(String(64))
    board_status: Mapped[str] = mapped_column(String(16))  # match | differs | unavailable
    board_diff: Mapped[str | None] = mapped_column(Text)  # JSON list of differing positions

    rows: Mapped[list[WeeklySnapshotRow]] = relationship(order_by="WeeklySnapshotRow.rank", lazy="selectin")


class WeeklySnapshotRow(Base):
    """One winner of a closed week (immutable)."""

    __tablename__ = "weekly_snapshot_rows"
    __table_args__ = (
        UniqueConstraint("snapshot_id", "rank", name="uq_weekly_snapshot_rows_rank"),
        UniqueConstraint("snapshot_id", "citizen_id", name="uq_weekly_snapshot_rows_citizen"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("weekly_snapshots.id"))
    rank: Mapped[int] = mapped_column(Integer)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tier: Mapped[str] = mapped_column(Text)
    prize: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class ClosedWeek:
    """A stored snapshot with its metadata; `created` is False when the week had been closed before."""

    snapshot: Snapshot
    checksum: str
    closed_at: datetime
    board_status: str
    board_diff: list[dict[str, Any]]
    created: bool


class SnapshotCorrupted(Exception):
    """A stored snapshot no longer matches its canonical text or checksum."""


def tier_rules(tiers: Iterable[Any]) -> list[TierRule]:
    """Convert Settings.prize_tiers into TierRules."""
    return [TierRule(t.first, t.last, t.name, t.value) for t in tiers]


def week_standings(session: Session, week: str) -> tuple[list[Standing], dict[int, Entrant]]:
    """Return the week's totals per citizen (ledger sums, latest entry time) and who those citizens are."""
    from rewards.cases.models import Citizen
    from rewards.scoring.ledger import LedgerEntry, is_eligible

    stmt = (
        select(
            LedgerEntry.citizen_id,
            func.sum(LedgerEntry.points),
            func.max(LedgerEntry.created_at),
            Citizen.name,
            Citizen.verified,
            Citizen.banned,
        )
        .join(Citizen, Citizen.id == LedgerEntry.citizen_id)
        .where(LedgerEntry.week == week)
        .group_by(LedgerEntry.citizen_id, Citizen.name, Citizen.verified, Citizen.banned)
    )
    lines: list[tuple[int, int, datetime]] = []
    entrants: dict[int, Entrant] = {}
    for cid, total, reached, name, verified, banned in session.execute(stmt):
        lines.append((cid, int(total), to_utc(reached)))
        entrants[cid] = Entrant(cid, name, is_eligible(verified, banned))
    return totals_from_entries(lines), entrants


def load_closed_week(session: Session, week: str) -> ClosedWeek | None:
    """Return the stored snapshot of a week (checksum verified), or None when the week is not closed."""
    stored = session.scalars(select(WeeklySnapshot).where(WeeklySnapshot.week == week)).one_or_none()
    if stored is None:
        return None
    doc = json.loads(stored.canonical)
    snapshot = Snapshot(
        week=stored.week,
        tiers=tuple(TierRule(*t) for t in doc["tiers"]),
        participants=stored.participants,
        rows=tuple(
            SnapshotRow(r.rank, r.citizen_id, r.display_name, r.points, r.reached_at, r.tier, r.prize)
            for r in stored.rows
        ),
    )
    again = canonical_bytes(snapshot)
    if again != stored.canonical.encode("utf-8") or hashlib.sha256(again).hexdigest() != stored.checksum:
        raise SnapshotCorrupted(f"the stored snapshot of {week} does not match its checksum")
    return ClosedWeek(
        snapshot=snapshot,
        checksum=stored.checksum,
        closed_at=stored.closed_at,
        board_status=stored.board_status,
        board_diff=json.loads(stored.board_diff) if stored.board_diff else [],
        created=False,
    )


def redis_weekly_top(container: Container, week: str, n: int) -> list[tuple[int, int]] | None:
    """Read the top n of the Redis weekly eligible board (`Boards.weekly_top`) as (citizen_id, points)."""
    reader = getattr(container.boards, "weekly_top", None)
    if reader is None:
        return None
    try:
        return [(int(cid), int(points)) for cid, points in reader(week, n)]
    except Exception as exc:  # the board is derived state: its absence must not block closing the week
        log.warning("could not read the Redis weekly board of %s: %r", week, exc)
        return None


def default_week(container: Container) -> IsoWeek:
    """The week a close without --week means: the one before the current week."""
    return week_of(container.clock.now(), container.settings.tz).previous()


def close_week(container: Container, week: IsoWeek | None = None) -> ClosedWeek:
    """Close a finished week once: rank the ledger, store the snapshot; a second close returns the stored one."""
    settings = container.settings
    week = week or default_week(container)
    label = str(week)
    ends = week.end(settings.tz)
    if container.clock.now() < ends:
        local_end = ends.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        raise Conflict(
            f"week {label} has not ended yet (it ends {local_end} {settings.timezone}); it cannot be closed",
            code="week_not_ended",
        )
    with container.read() as session:
        stored = load_closed_week(session, label)
        if stored is not None:
            return stored
        standings, entrants = week_standings(session, label)
    snapshot = build_snapshot(label, standings, entrants, tier_rules(settings.prize_tiers))
    places = prize_places([(t.first, t.last, t.value) for t in snapshot.tiers])
    status, diffs = compare_with_board(snapshot.rows, redis_weekly_top(container, label, places))
    if status == BOARD_DIFFERS:
        log.warning("week %s: the Redis weekly board differs from the ledger at %d positions", label, len(diffs))
    text = canonical_bytes(snapshot)
    closed_at = container.clock.now()
    try:
        with container.uow() as uow:
            header = WeeklySnapshot(
                week=label,
                closed_at=closed_at,
                participants=snapshot.participants,
                winners=len(snapshot.rows),
                canonical=text.decode("utf-8"),
                checksum=hashlib.sha256(text).hexdigest(),
                board_status=status,
                board_diff=json.dumps(diffs, ensure_ascii=False, sort_keys=True) if diffs else None,
            )
            uow.session.add(header)
            uow.session.flush()
            uow.session.add_all(
                WeeklySnapshotRow(snapshot_id=header.id, **{k: getattr(r, k) for k in _ROW_FIELDS})
                for r in snapshot.rows
            )
    except IntegrityError:
        # another process closed the same week first: its snapshot is the one that counts
        with container.read() as session:
            raced = load_closed_week(session, label)
        if raced is None:
            raise
        return raced
    log.info("closed week %s: %d winners of %d participants", label, len(snapshot.rows), snapshot.participants)
    return ClosedWeek(snapshot, hashlib.sha256(text).hexdigest(), closed_at, status, diffs, created=True)


_ROW_FIELDS = ("rank", "citizen_id", "display_name", "points", "reached_at", "tier", "prize")
