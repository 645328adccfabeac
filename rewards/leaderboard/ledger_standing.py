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
from rewards.leaderboard.schemas import ScopeStandingOut, StandingOut
from rewards.prizes import PrizeTable
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.rules import is_eligible

NOT_VERIFIED = "未完成实名认证，暂不参与评奖"
BANNED = "已被取消评奖资格"


@dataclass(frozen=True)
class Placing:
    """A citizen's total in one scope and their strict rank (None when the total is not positive)."""

    points: int
    rank: int | None


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


def _scope(placing: Placing) -> ScopeStandingOut:
    return ScopeStandingOut(
        ranked=placing.rank is not None, rank=placing.rank, points=placing.points, total=None, above=[], below=[]
    )


def ledger_standing(session: Session, prizes: PrizeTable, openid: str, week: str) -> StandingOut | None:
    """Return where a citizen stands, computed from the SQL ledger; None for an unknown openid."""
    citizen = find_citizen(session, openid)
    if citizen is None:
        return None
    places = prizes.places
    eligible = is_eligible(citizen.verified, citizen.banned)
    this_week = _placing(session, citizen.id, week, eligible_only=False)
    prize_rank = _placing(session, citizen.id, week, eligible_only=True).rank if eligible else None
    on_list = prize_rank is not None and prize_rank <= places
    to_prize: int | None = None
    if eligible:
        to_prize = 0 if on_list else points_needed(this_week.points, _cutoff_points(session, week, places))
    message = f"本周第 {this_week.rank} 名" if this_week.rank is not None else "本周暂未上榜，提交有效举报即可获得积分"
    return StandingOut(
        week=week,
        message=message,
        weekly=_scope(this_week),
        all_time=_scope(_placing(session, citizen.id, None, eligible_only=False)),
        eligible=eligible,
        eligibility_note=None if eligible else (BANNED if citizen.banned else NOT_VERIFIED),
        prize_places=places,
        prize_rank=prize_rank if on_list else None,
        tier=prizes.tier_for(prize_rank) if on_list else None,
        points_to_prize=to_prize,
    )
