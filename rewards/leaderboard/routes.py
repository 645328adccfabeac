"""HTTP routes of the leaderboard domain: public boards (masked names) and a citizen's standing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from rewards.auth import require_citizen_or
from rewards.bootstrap import Container
from rewards.deps import container
from rewards.leaderboard import service
from rewards.leaderboard.schemas import BoardPageOut, StandingOut
from rewards.web.ratelimit import public_rate_limit

router = APIRouter(tags=["leaderboards"])
C = Annotated[Container, Depends(container)]
Week = Annotated[str | None, Query(description="ISO week, e.g. 2026-W48 (default: this week)", max_length=16)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT)]
Public = [Depends(public_rate_limit)]  # per IP, and per citizen when signed in: 429 with Retry-After


@router.get("/api/v1/leaderboards/weekly", dependencies=Public, response_model=BoardPageOut)
def weekly(c: C, week: Week = None, offset: Offset = 0, limit: Limit = 80) -> BoardPageOut:
    """A week's board: rank, masked name, points, eligibility, prize tier."""
    return service.page(c, "weekly", week=week, offset=offset, limit=limit)


@router.get("/api/v1/leaderboards/all-time", dependencies=Public, response_model=BoardPageOut)
def all_time(c: C, offset: Offset = 0, limit: Limit = 80) -> BoardPageOut:
    """The all-time board (prizes are weekly: no tiers here)."""
    return service.page(c, "all-time", offset=offset, limit=limit)


@router.get("/api/v1/leaderboards/districts/{district}/weekly", dependencies=Public, response_model=BoardPageOut)
def district_weekly(c: C, district: str, week: Week = None, offset: Offset = 0, limit: Limit = 80) -> BoardPageOut:
    """A district's weekly board; prize ranks are the city-wide ones."""
    return service.page(c, "district-weekly", week=week, district=district, offset=offset, limit=limit)


@router.get("/api/v1/citizens/{openid}/standing", response_model=StandingOut)
def standing(openid: Annotated[str, Depends(require_citizen_or("validator"))], c: C) -> StandingOut:
    """This week's and all-time rank and points, prize tier, points still needed, and the neighbours around.

    While Redis is down the answer comes from the ledger with `stale: true` (no neighbours) instead of failing.
    """
    return service.standing_or_ledger(c, openid)
