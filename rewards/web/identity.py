"""Citizen identity: sign-in (create or refresh the citizen), where a citizen stands, and wiring into the app.

`read_standing()` asks the leaderboard service (Redis boards); when Redis is unavailable it falls back to
`ledger_standing()`, which reads the SQL ledger (the source of truth) with the rule of rewards.leaderboard.ranking:
points desc, reached_at asc, citizen id asc, where reached_at is the created_at of the citizen's latest ledger
entry in the scope. The weekly prize list ranks eligible citizens only (verified and not banned).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from rewards.cases.models import Citizen
from rewards.cases.service import upsert_citizen
from rewards.errors import NotFound, Unavailable
from rewards.leaderboard.ledger_standing import CitizenStanding, Placing, ledger_standing
from rewards.leaderboard.schemas import StandingOut
from rewards.leaderboard.service import standing as board_standing
from rewards.logs import get_logger
from rewards.web.ratelimit import limiter_for

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rewards.bootstrap import Container

log = get_logger("identity")


def sign_in_citizen(session: Session, openid: str, now: datetime, *, snapshot_user: bool = False) -> Citizen:
    """Create the citizen on first sign-in; flag a WeChat snapshot-page user (is_snapshotuser=1), never unflag."""
    return upsert_citizen(session, openid, now, snapshot_user=True if snapshot_user else None)


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
