"""A citizen's own data: points with every ledger line, report history, and standing (or a validator's view)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from rewards.cases import service as cases
from rewards.cases.models import Case
from rewards.deps import Db, Leaderboard, SettingsDep
from rewards.http.auth import require_citizen_or
from rewards.leaderboard.schemas import StandingOut
from rewards.leaderboard.service import LeaderboardService
from rewards.scoring import history
from rewards.scoring.schemas import LedgerLineOut, PointsOut, ReportHistoryOut
from rewards.scoring.service import citizen_points

router = APIRouter(prefix="/api/v1/citizens", tags=["citizens"])
OwnOpenid = Annotated[str, Depends(require_citizen_or("validator"))]


@router.get("/{openid}/points", response_model=PointsOut)
def points(openid: OwnOpenid, db: Db, leaderboard: Leaderboard) -> PointsOut:
    """A citizen's total, this week's points and the ledger lines that explain them."""
    week = str(leaderboard.current_week())
    with db.read() as session:
        citizen = cases.get_citizen(session, openid)
        total, this_week, lines = citizen_points(session, citizen.id, week)
        case_ids = dict(
            session.execute(select(Case.id, Case.case_id).where(Case.id.in_({e.case_pk for e in lines}))).all()
        )
        return PointsOut(
            total=total,
            this_week=this_week,
            week=week,
            lines=[
                LedgerLineOut(
                    case_id=case_ids[e.case_pk],
                    rule=e.rule,
                    points=e.points,
                    week=e.week,
                    reason=e.reason,
                    created_at=e.created_at,
                )
                for e in lines
            ],
        )


@router.get("/{openid}/reports", response_model=ReportHistoryOut)
def report_history(
    openid: OwnOpenid,
    db: Db,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReportHistoryOut:
    """A citizen's reports, newest first: each with its timeline, outcome and the points it earned or lost."""
    with db.read() as session:
        return history.report_history(session, settings, cases.get_citizen(session, openid), limit, offset)


_own_or_validator = require_citizen_or("validator")


async def own_openid_inline(request: Request, openid: str) -> str:
    """The same check as OwnOpenid, run on the event loop: it is pure CPU (a token or session compare), so it
    saves the hot standing path one thread-pool hop."""
    return _own_or_validator(request, openid)


@router.get("/{openid}/standing", response_model=StandingOut, tags=["leaderboards"])
def standing(openid: Annotated[str, Depends(own_openid_inline)], request: Request) -> Response:
    """This week's and all-time rank and points, prize tier, points still needed, and the neighbours around.

    While Redis is down the answer comes from the ledger with `stale: true` (no neighbours) instead of failing.
    """
    leaderboard: LeaderboardService = request.app.state.container.leaderboard  # no dependency hop on the hot path
    out = leaderboard.standing(openid)
    # the model was validated when built: serialize it once (orjson), not again through the response model
    return Response(orjson.dumps(out.model_dump(mode="json")), media_type="application/json")
