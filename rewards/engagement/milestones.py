"""Milestones read from SQL: a citizen's cases with their ledger lines, their places on the sealed weekly prize
lists, the closed weeks they topped their district; and the notices that make a WeChat reply mention a newly
reached milestone once.

The rules (what holds, with which evidence) are pure, in rewards.engagement.milestone_rules. The prize list of
a week is its sealed snapshot (rewards.leaderboard.weeks.WeeklySnapshotRow): when amended list versions exist
(issue 12, rewards.review), `_list_weeks` is the one place to read the final version instead.
A notice records that a milestone was mentioned, never the milestone itself: milestones stay derived.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from rewards.cases.models import Case, Citizen
from rewards.cases.service import find_citizen
from rewards.clock import Clock, to_utc
from rewards.config import Settings
from rewards.db import Base, Database, UTCDateTime, insert_or_ignore
from rewards.engagement.milestone_rules import (
    CaseLedger,
    History,
    Line,
    ListWeek,
    MilestoneRules,
    Progress,
    Reached,
    TopWeek,
    news,
    progress,
    reached,
    tops_district,
)
from rewards.leaderboard.ranking import Standing
from rewards.leaderboard.weeks import WeeklySnapshot, WeeklySnapshotRow
from rewards.scoring.ledger import LedgerEntry


class MilestoneNotice(Base):
    """That a milestone was mentioned to a citizen (once: the unique key admits one mention, even under races)."""

    __tablename__ = "milestone_notices"
    __table_args__ = (UniqueConstraint("citizen_id", "milestone", name="uq_milestone_notices_citizen_milestone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    milestone: Mapped[str] = mapped_column(String(32))
    mentioned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_key: Mapped[str] = mapped_column(String(64))  # the message whose reply mentioned it (its retries too)


def milestone_rules(settings: Settings) -> MilestoneRules:
    """The milestone thresholds from Settings (the one object /me, WeChat and /rules use)."""
    return MilestoneRules(tuple(settings.milestone_valid_reports), settings.milestone_streak_weeks)


def _cases(session: Session, citizen_id: int) -> tuple[CaseLedger, ...]:
    stmt = (
        select(
            Case.case_id,
            Case.verdict,
            LedgerEntry.id,
            LedgerEntry.rule,
            LedgerEntry.points,
            LedgerEntry.created_at,
            LedgerEntry.week,
        )
        .join(Case, Case.id == LedgerEntry.case_pk)
        .where(LedgerEntry.citizen_id == citizen_id)
    )
    lines: dict[str, list[Line]] = defaultdict(list)
    verdicts: dict[str, str | None] = {}
    for case_id, verdict, entry_id, rule, points, created_at, week in session.execute(stmt):
        verdicts[case_id] = verdict
        lines[case_id].append(Line(entry_id, rule, points, to_utc(created_at), week))
    return tuple(CaseLedger(cid, verdicts[cid], tuple(lines[cid])) for cid in sorted(lines))


def _list_weeks(session: Session, citizen_id: int) -> tuple[ListWeek, ...]:
    # the sealed snapshot is the prize list of a closed week (a final amended version, once issue 12 lands, goes here)
    stmt = (
        select(WeeklySnapshot.week, WeeklySnapshotRow.rank, WeeklySnapshotRow.tier)
        .join(WeeklySnapshot, WeeklySnapshot.id == WeeklySnapshotRow.snapshot_id)
        .where(WeeklySnapshotRow.citizen_id == citizen_id)
    )
    return tuple(ListWeek(week, rank, tier) for week, rank, tier in session.execute(stmt))


def _top_weeks(session: Session, citizen_id: int, district: str | None) -> tuple[TopWeek, ...]:
    """Closed weeks in which the citizen ranked first among the citizens of their (current) district."""
    if not district:
        return ()
    closed = select(WeeklySnapshot.week)
    mine = select(LedgerEntry.week).where(LedgerEntry.citizen_id == citizen_id, LedgerEntry.week.in_(closed))
    weeks = sorted(set(session.scalars(mine.distinct())))
    if not weeks:
        return ()
    totals = (
        select(
            LedgerEntry.citizen_id.label("cid"),
            LedgerEntry.week.label("wk"),
            func.sum(LedgerEntry.points).label("pts"),
            func.max(LedgerEntry.created_at).label("at"),
        )
        .join(Citizen, Citizen.id == LedgerEntry.citizen_id)
        .where(Citizen.district == district, LedgerEntry.week.in_(weeks))
        .group_by(LedgerEntry.citizen_id, LedgerEntry.week)
        .subquery()
    )
    best = select(totals.c.wk, func.max(totals.c.pts).label("top")).group_by(totals.c.wk).subquery()
    # only the citizens level with each week's best total can be first; the ranking rule breaks their tie
    leaders = select(totals.c.cid, totals.c.wk, totals.c.pts, totals.c.at).join(
        best, (best.c.wk == totals.c.wk) & (best.c.top == totals.c.pts)
    )
    by_week: dict[str, list[Standing]] = defaultdict(list)
    for cid, wk, pts, at in session.execute(leaders):
        by_week[wk].append(Standing(cid, int(pts), to_utc(at)))
    return tuple(
        TopWeek(wk, district, next(s.points for s in tied if s.citizen_id == citizen_id))
        for wk, tied in sorted(by_week.items())
        if tops_district(tied, citizen_id)
    )


def history_of(session: Session, citizen: Citizen) -> History:
    """Everything a citizen's milestones are decided from."""
    return History(
        cases=_cases(session, citizen.id),
        list_weeks=_list_weeks(session, citizen.id),
        top_weeks=_top_weeks(session, citizen.id, citizen.district),
    )


def mentioned(session: Session, citizen_id: int) -> set[str]:
    """The milestone keys already mentioned to a citizen."""
    stmt = select(MilestoneNotice.milestone).where(MilestoneNotice.citizen_id == citizen_id)
    return set(session.scalars(stmt))


class MilestoneService:
    """Milestones of a citizen for /me, and the once-only mention of new ones in the WeChat rank reply."""

    def __init__(self, db: Database, rules: MilestoneRules, clock: Clock) -> None:
        self.db = db
        self.rules = rules
        self.clock = clock

    def progress(self, session: Session, citizen: Citizen) -> Progress:
        """The citizen's milestones with their evidence, and the next valid-report threshold."""
        return progress(self.rules, history_of(session, citizen))

    def reached(self, session: Session, citizen: Citizen) -> list[Reached]:
        """The milestones that hold for the citizen now."""
        return reached(self.rules, history_of(session, citizen))

    def announce(self, openid: str, message_key: str) -> list[Reached]:
        """The milestones the reply to one message mentions: reached, and never mentioned to this citizen before.

        A notice row per (citizen, milestone) is inserted with ON CONFLICT DO NOTHING: of concurrent replies,
        exactly one inserts it and mentions the milestone; the others see it taken and stay silent. The reply to
        a retry of the same message (same `message_key`) mentions again what its first attempt recorded, so
        WeChat's retries get the same reply and a mention is not lost with a first reply that came too late.
        """
        with self.db.uow() as uow:
            citizen = find_citizen(uow.session, openid)
            if citizen is None:
                return []
            got = self.reached(uow.session, citizen)
            now = self.clock.now()
            for r in news(got, mentioned(uow.session, citizen.id)):
                values = {"citizen_id": citizen.id, "milestone": r.key, "mentioned_at": now, "message_key": message_key}
                insert_or_ignore(uow.session, MilestoneNotice, values, ("citizen_id", "milestone"))
            mine = select(MilestoneNotice.milestone).where(
                MilestoneNotice.citizen_id == citizen.id, MilestoneNotice.message_key == message_key
            )
            keys = set(uow.session.scalars(mine))
            return [r for r in got if r.key in keys]
