"""Citizen identity: sign-in (create or refresh the citizen), where a citizen stands, and wiring into the app.

`read_standing()` asks the leaderboard service (Redis boards); when Redis is unavailable it falls back to
`ledger_standing()`, which reads the SQL ledger (the source of truth) with the rule of rewards.leaderboard.ranking:
points desc, reached_at asc, citizen id asc, where reached_at is the created_at of the citizen's latest ledger
entry in the scope. The weekly prize list ranks eligible citizens only (verified and not banned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from rewards.cases.models import Citizen
from rewards.cases.service import find_citizen, upsert_citizen
from rewards.config import Settings
from rewards.errors import NotFound, Unavailable
from rewards.leaderboard.schemas import StandingOut
from rewards.leaderboard.service import BANNED, NOT_VERIFIED
from rewards.leaderboard.service import standing as board_standing
from rewards.leaderboard.tiers import prize_places, tier_index
from rewards.logs import get_logger
from rewards.scoring.ledger import LedgerEntry, is_eligible
from rewards.web.ratelimit import limiter_for

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rewards.bootstrap import Container

log = get_logger("identity")


def sign_in_citizen(session: Session, openid: str, now: datetime, *, snapshot_user: bool = False) -> Citizen:
    """Create the citizen on first sign-in; flag a WeChat snapshot-page user (is_snapshotuser=1), never unflag."""
    return upsert_citizen(session, openid, now, snapshot_user=True if snapshot_user else None)


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


def from_boards(out: StandingOut) -> CitizenStanding:
    """Return the reply's view of the leaderboard service's standing (read from the Redis boards)."""
    on_list = out.prize_rank is not None and out.prize_rank <= out.prize_places
    return CitizenStanding(
        week=out.week,
        this_week=Placing(out.weekly.points, out.weekly.rank),
        all_time=Placing(out.all_time.points, out.all_time.rank),
        eligibility_note=out.eligibility_note,
        prize_rank=out.prize_rank if on_list else None,
        prize_tier=out.tier.name if on_list and out.tier is not None else None,
        points_to_prize=out.points_to_prize if out.eligibility_note is None and not on_list else None,
        prize_places=out.prize_places,
    )


def read_standing(container: Container, openid: str, week: str) -> CitizenStanding | None:
    """Return a citizen's standing from the Redis boards (fast), or from the ledger when Redis is unavailable."""
    # Redis just failed (seen by the rate limiter): go straight to the ledger, a dead Redis costs seconds per call
    if not limiter_for(container).redis_down:
        try:
            return from_boards(board_standing(container, openid, week=week, neighbours=0))
        except NotFound:
            return None
        except Unavailable:
            log.warning("leaderboards unavailable: answering the standing from the ledger")
    with container.read() as session:
        return ledger_standing(session, container.settings, openid, week)


def install(app: FastAPI, container: Container) -> None:
    """Add the session middleware and the identity and WeChat routers to the app."""
    from rewards.web.oauth import install_redaction
    from rewards.web.oauth import router as oauth_router
    from rewards.web.session import SessionMiddleware
    from rewards.web.wechat import router as wechat_router

    install_redaction()
    app.add_middleware(SessionMiddleware, container=container)
    app.include_router(oauth_router)
    app.include_router(wechat_router)
