"""A citizen rates the handling of their resolved or closed report, once (rewards/engagement/ratings.py).

The citizen's own session, like every /api/v1/citizens/{openid}/ route (or a validator's token: the command
center recording a rating a citizen gave on a call-back). Refusals are 4xx with a code and reason and write
nothing: unknown_case 404, not_your_case 403, already_rated 409, not_rateable_yet 409, rating_window_closed 409,
invalid_rating / comment_too_long 422.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from rewards.cases import service as cases
from rewards.cases.models import Case
from rewards.deps import PUBLIC, Db, Ratings
from rewards.engagement import rating_rules
from rewards.engagement.ratings import CaseRating, RatingResult
from rewards.errors import Forbidden, NotFound
from rewards.http.auth import require_citizen_or
from rewards.scoring.ledger import entries_for_case
from rewards.scoring.model import RULE_RATING_AWARD

router = APIRouter(prefix="/api/v1/citizens", tags=["citizens"], dependencies=PUBLIC)
OwnOpenid = Annotated[str, Depends(require_citizen_or("validator"))]
CaseId = Annotated[str, Path(min_length=1, max_length=rating_rules.CASE_ID_MAX)]


class RatingIn(BaseModel):
    """A rating: 满意 / 基本满意 / 不满意 (or satisfied / basic / unsatisfied) and an optional comment."""

    rating: str = Field(min_length=1, max_length=16, examples=["满意", "unsatisfied"])
    comment: str | None = Field(default=None, max_length=rating_rules.COMMENT_MAX)


class RatingOut(BaseModel):
    """A recorded rating and what it earned (0 points unless the operator turned the rating award on)."""

    case_id: str
    rating: str
    label: str
    comment: str | None
    rated_at: datetime
    followup: bool  # a 不满意 with a comment: a follow-up item for the department
    points: int
    award_note: str | None = None


def rating_out(result: RatingResult) -> RatingOut:
    """The API view of a recorded rating."""
    return RatingOut(
        case_id=result.case_id,
        rating=result.level,
        label=result.label,
        comment=result.comment,
        rated_at=result.rated_at,
        followup=result.followup,
        points=result.points,
        award_note=result.award_note,
    )


@router.post("/{openid}/reports/{case_id}/rating", response_model=RatingOut, status_code=201)
def rate(openid: OwnOpenid, case_id: CaseId, body: RatingIn, ratings: Ratings) -> RatingOut:
    """Rate the handling of one's own resolved or closed report, once, within the rating window."""
    result = ratings.rate(openid, case_id, body.rating, body.comment, rating_rules.CHANNEL_API)
    return rating_out(result)


@router.get("/{openid}/reports/{case_id}/rating", response_model=RatingOut)
def rating_of(openid: OwnOpenid, case_id: CaseId, db: Db) -> RatingOut:
    """The rating given to one's own report (404 not_rated while there is none)."""
    with db.read() as session:
        case = cases.get_case(session, case_id)
        citizen = cases.find_citizen(session, openid)
        if citizen is None or case.reporter_id != citizen.id:
            raise Forbidden("only the citizen who reported this case may see its rating", code="not_your_case")
        found = session.scalar(select(CaseRating).where(CaseRating.case_pk == case.id))
        if found is None:
            raise NotFound("this case has not been rated", code="not_rated")
        return RatingOut(
            case_id=case.case_id,
            rating=found.level,
            label=rating_rules.LEVEL_LABELS.get(found.level, found.level),
            comment=found.comment,
            rated_at=found.rated_at,
            followup=rating_rules.is_followup(found.level, found.comment),
            points=sum(e.points for e in entries_for_case(session, case.id) if e.rule == RULE_RATING_AWARD),
        )


class RateableOut(BaseModel):
    """A report its citizen may rate now, and until when."""

    case_id: str
    status: str
    open_until: datetime


class RatedOut(BaseModel):
    """A rating the citizen gave."""

    case_id: str
    rating: str
    label: str
    comment: str | None
    rated_at: datetime


class RatingsOverviewOut(BaseModel):
    """What a citizen may still rate (soonest closing first) and what they rated (newest first)."""

    window_days: int
    rateable: list[RateableOut]
    rated: list[RatedOut]


@router.get("/{openid}/ratings", response_model=RatingsOverviewOut)
def ratings_overview(openid: OwnOpenid, db: Db, ratings: Ratings) -> RatingsOverviewOut:
    """The citizen's reports open for rating and the ratings they gave (e.g. for the mini program's list)."""
    with db.read() as session:
        citizen = cases.get_citizen(session, openid)
        open_cases, given = ratings.overview(session, citizen.id)
        ids = dict(session.execute(select(Case.id, Case.case_id).where(Case.id.in_({r.case_pk for r in given}))).all())
        return RatingsOverviewOut(
            window_days=ratings.window_days,
            rateable=[
                RateableOut(
                    case_id=c.case_id,
                    status=c.status,
                    open_until=rating_rules.window_closes(c.status_at, ratings.window_days),
                )
                for c in open_cases
            ],
            rated=[
                RatedOut(
                    case_id=ids[r.case_pk],
                    rating=r.level,
                    label=rating_rules.LEVEL_LABELS.get(r.level, r.level),
                    comment=r.comment,
                    rated_at=r.rated_at,
                )
                for r in given
            ],
        )
