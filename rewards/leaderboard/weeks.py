"""Closed weeks: the stored, immutable snapshot of each finished week and the service that closes weeks.

The database refuses UPDATE (and, on PostgreSQL, DELETE) of snapshot rows: see migration 0003. Every load
re-checks the stored canonical text against its checksum.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from rewards.cases.models import Citizen
from rewards.clock import Clock, IsoWeek, to_utc, week_of
from rewards.db import Base, Database, UTCDateTime
from rewards.errors import Conflict
from rewards.leaderboard.ranking import Standing, totals_from_entries
from rewards.leaderboard.snapshot import (
    BOARD_DIFFERS,
    Entrant,
    Snapshot,
    SnapshotRow,
    build_snapshot,
    canonical_bytes,
    compare_with_board,
)
from rewards.logs import get_logger
from rewards.prizes import PrizeTable, PrizeTier
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.rules import is_eligible

log = get_logger("weeks")


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


def week_standings(session: Session, week: str) -> tuple[list[Standing], dict[int, Entrant]]:
    """Return the week's totals per citizen (ledger sums, latest entry time) and who those citizens are."""
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
        tiers=tuple(PrizeTier(*t) for t in doc["tiers"]),
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


class WeeklyBoard(Protocol):
    """The Redis weekly eligible board, read to cross-check a closed week (rewards.leaderboard.boards.Boards)."""

    def weekly_top(self, week: str, n: int) -> list[tuple[int, int]]:
        """The first n of a week's eligible-only board as (citizen_id, points), best first."""
        ...


def redis_weekly_top(board: WeeklyBoard, week: str, n: int) -> list[tuple[int, int]] | None:
    """Read the top n of the Redis weekly eligible board as (citizen_id, points); None when it cannot be read."""
    try:
        return [(int(cid), int(points)) for cid, points in board.weekly_top(week, n)]
    except Exception as exc:  # the board is derived state: its absence must not block closing the week
        log.warning("could not read the Redis weekly board of %s: %r", week, exc)
        return None


def default_week(clock: Clock, tz: tzinfo) -> IsoWeek:
    """The week a close without --week means: the one before the current week."""
    return week_of(clock.now(), tz).previous()


class WeekCloser:
    """Closes finished weeks into immutable snapshots, once each (the first close wins; later ones read it)."""

    def __init__(self, db: Database, clock: Clock, tz: tzinfo, timezone: str, prizes: PrizeTable, board: WeeklyBoard):
        self.db = db
        self.clock = clock
        self.tz = tz
        self.timezone = timezone
        self.prizes = prizes
        self.board = board

    def default_week(self) -> IsoWeek:
        """The week that ended last."""
        return default_week(self.clock, self.tz)

    def load(self, week: IsoWeek) -> ClosedWeek | None:
        """The stored snapshot of a week (checksum verified), or None when it is not closed."""
        with self.db.read() as session:
            return load_closed_week(session, str(week))

    def close(self, week: IsoWeek | None = None) -> ClosedWeek:
        """Close a finished week once: rank the ledger, store the snapshot; a second close returns the stored one."""
        week = week or self.default_week()
        label = str(week)
        ends = week.end(self.tz)
        if self.clock.now() < ends:
            local_end = ends.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
            raise Conflict(
                f"week {label} has not ended yet (it ends {local_end} {self.timezone}); it cannot be closed",
                code="week_not_ended",
            )
        with self.db.read() as session:
            stored = load_closed_week(session, label)
            if stored is not None:
                return stored
            standings, entrants = week_standings(session, label)
        snapshot = build_snapshot(label, standings, entrants, self.prizes)
        status, diffs = compare_with_board(snapshot.rows, redis_weekly_top(self.board, label, self.prizes.places))
        if status == BOARD_DIFFERS:
            log.warning("week %s: the Redis weekly board differs from the ledger at %d positions", label, len(diffs))
        text = canonical_bytes(snapshot)
        closed_at = self.clock.now()
        try:
            with self.db.uow() as uow:
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
            raced = self.load(week)
            if raced is None:
                raise
            return raced
        log.info("closed week %s: %d winners of %d participants", label, len(snapshot.rows), snapshot.participants)
        return ClosedWeek(snapshot, hashlib.sha256(text).hexdigest(), closed_at, status, diffs, created=True)


_ROW_FIELDS = ("rank", "citizen_id", "display_name", "points", "reached_at", "tier", "prize")
