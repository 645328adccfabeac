"""Public boards (masked names): weekly, all-time and per district."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from rewards.deps import PUBLIC, Leaderboard, WeekQuery
from rewards.leaderboard.schemas import BoardPageOut
from rewards.leaderboard.service import MAX_LIMIT

router = APIRouter(tags=["leaderboards"])
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


View = Annotated[
    Literal["all", "prizes"],
    Query(
        description="all: every citizen with points, `offset`/`limit` count board places. prizes: the prize list, "
        "`offset`/`limit` count prize places (获奖名次, `prize_rank`), and the ineligible citizens ranked among "
        "them come along marked `eligible: false` without a prize place (a page may hold more than `limit` rows)"
    ),
]


@router.get("/api/v1/leaderboards/weekly", dependencies=PUBLIC, response_model=BoardPageOut)
def weekly(
    leaderboard: Leaderboard, week: WeekQuery, offset: Offset = 0, limit: Limit = 80, view: View = "all"
) -> BoardPageOut:
    """A week's board: rank, masked name, points, eligibility, prize tier (`view=prizes`: the prize list)."""
    if view == "prizes":
        return leaderboard.prize_list(week=week, offset=offset, limit=limit)
    return leaderboard.page("weekly", week=week, offset=offset, limit=limit)


@router.get("/api/v1/leaderboards/all-time", dependencies=PUBLIC, response_model=BoardPageOut)
def all_time(leaderboard: Leaderboard, offset: Offset = 0, limit: Limit = 80) -> BoardPageOut:
    """The all-time board (prizes are weekly: no tiers here)."""
    return leaderboard.page("all-time", offset=offset, limit=limit)


@router.get("/api/v1/leaderboards/districts/{district}/weekly", dependencies=PUBLIC, response_model=BoardPageOut)
def district_weekly(
    leaderboard: Leaderboard, district: str, week: WeekQuery, offset: Offset = 0, limit: Limit = 80
) -> BoardPageOut:
    """A district's weekly board; prize ranks are the city-wide ones."""
    return leaderboard.page("district-weekly", week=week, district=district, offset=offset, limit=limit)
