"""Where a citizen stands, computed from the SQL ledger (the source of truth): the fallback when Redis is down.

Same rule as rewards.leaderboard.ranking: points desc, reached_at asc, citizen id asc, where reached_at is the
created_at of the citizen's latest ledger entry in the scope. The weekly prize list ranks eligible citizens only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from rewards.cases.models import Citizen
from rewards.cases.service import find_citizen
from rewards.config import Settings
from rewards.leaderboard.tiers import prize_places, tier_index
from rewards.scoring.ledger import LedgerEntry, is_eligible

NOT_VERIFIED = "未完成实名认证，暂不参与评奖"
BANNED = "已被取消评奖资格"


@dataclass(frozen=True)
class Placing:
    """A citizen's total in one scope and their strict rank (None when the total is not positive)."""

    points: int
    rank: int | None


@dataclass(frozen=True)
class CitizenStanding:
    """Where a citizen stands this week and all time, and how far the weekly prize list is."""

    week: str
    this_week: Placing
    all_time: Placing
    eligibility_note: str | None  # None: may win a prize; else why not (not verified, banned)
    prize_rank: int | None  # rank among eligible citizens, only when on the prize list
    prize_tier: str | None
    points_to_prize: int | None  # points still needed to enter the prize list; None when on it or not eligible
    prize_places: int


def _totals(week: str | None, eligible_only: bool) -> Select[int, int, datetime]:
    stmt = select(
        LedgerEntry.citizen_id.label("cid"),
        func.sum(LedgerEntry.points).label("pts"),
        func.max(LedgerEntry.created_at).label("at"),
    ).group_by(LedgerEntry.citizen_id)
    if week is not None:
        stmt = stmt.where(LedgerEntry.week == week)
    if eligible_only:
        stmt = stmt.join(Citizen, Citizen.id == LedgerEntry.citizen_id).where(
            Citizen.verified.is_(True), Citizen.banned.is_(False)
        )
    return stmt


def _placing(session: Session, citizen_id: int, week: str | None, eligible_only: bool) -> Placing:
    totals = _totals(week, eligible_only)
    mine = session.execute(totals.where(LedgerEntry.citizen_id == citizen_id)).first()
    if mine is None:
        return Placing(0, None)
    points, reached = int(mine.pts), mine.at
    if points <= 0:
        return Placing(points, None)
    t = totals.subquery()
    tie = or_(t.c.at < reached, and_(t.c.at == reached, t.c.cid < citizen_id))  # reached first, then lower id
    ahead = or_(t.c.pts > points, and_(t.c.pts == points, tie))
    better = session.execute(select(func.count()).select_from(t).where(t.c.pts > 0, ahead)).scalar_one()
    return Placing(points, int(better) + 1)


def _cutoff_points(session: Session, week: str, places: int) -> int | None:
    """Return the points of the last prize place this week, or None when fewer citizens are on the list."""
    t = _totals(week, eligible_only=True).subquery()
    stmt = select(t.c.pts).where(t.c.pts > 0).order_by(t.c.pts.desc(), t.c.at, t.c.cid).offset(places - 1).limit(1)
    value = session.execute(stmt).scalar_one_or_none()
    return None if value is None else int(value)


def points_needed(my_points: int, cutoff: int | None) -> int:
    """Points a citizen off the list must still earn: pass the last place (equal totals rank whoever was first)."""
    if cutoff is None:  # fewer citizens than prize places: any positive total is on the list
        return max(1 - my_points, 0)
    return max(cutoff - my_points + 1, 0)


def ledger_standing(session: Session, settings: Settings, openid: str, week: str) -> CitizenStanding | None:
    """Return where a citizen stands, computed from the SQL ledger; None for an unknown openid."""
    citizen = find_citizen(session, openid)
    if citizen is None:
        return None
    tiers = sorted(settings.prize_tiers, key=lambda t: t.first)
    specs = [(t.first, t.last, t.value) for t in tiers]
    places = prize_places(specs)
    eligible = is_eligible(citizen.verified, citizen.banned)
    this_week = _placing(session, citizen.id, week, eligible_only=False)
    prize_rank = _placing(session, citizen.id, week, eligible_only=True).rank if eligible else None
    on_list = prize_rank is not None and prize_rank <= places
    tier = tier_index(prize_rank, specs) if on_list and prize_rank is not None else None
    return CitizenStanding(
        week=week,
        this_week=this_week,
        all_time=_placing(session, citizen.id, None, eligible_only=False),
        eligibility_note=None if eligible else (BANNED if citizen.banned else NOT_VERIFIED),
        prize_rank=prize_rank if on_list else None,
        prize_tier=tiers[tier].name if tier is not None else None,
        points_to_prize=points_needed(this_week.points, _cutoff_points(session, week, places))
        if eligible and not on_list
        else None,
        prize_places=places,
    )
