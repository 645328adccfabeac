"""Citizens' points: total, this week, and every ledger line with its reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from rewards.auth import require_citizen_or
from rewards.bootstrap import Container
from rewards.cases import service as cases
from rewards.cases.models import Case
from rewards.clock import week_of
from rewards.deps import container
from rewards.scoring.schemas import LedgerLineOut, PointsOut
from rewards.scoring.service import citizen_points

router = APIRouter(prefix="/api/v1/citizens", tags=["citizens"])
C = Annotated[Container, Depends(container)]


@router.get("/{openid}/points", response_model=PointsOut)
def points(openid: Annotated[str, Depends(require_citizen_or("validator"))], c: C) -> PointsOut:
    """A citizen's total, this week's points and the ledger lines that explain them."""
    week = str(week_of(c.clock.now(), c.settings.tz))
    with c.read() as session:
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
