"""公示 over the API: a week's review status and list versions (public, masked), a citizen's objections (file and
follow them) and prize claims (the citizen's own session, or a validator).

The use cases are `rewards.review.service.ReviewService`; objections are rate limited per citizen and per IP
(bucket "objection", as on the H5 page and in WeChat).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from rewards.deps import PUBLIC, Services, WeekPath
from rewards.http.auth import require_citizen_or
from rewards.http.ratelimit import Limit, client_ip, limiter_of
from rewards.review.schemas import ClaimOut, ListVersionOut, ObjectionOut, ReviewStatusOut

router = APIRouter(tags=["review"])
OwnOpenid = Annotated[str, Depends(require_citizen_or("validator"))]
OBJECTIONS_PER_WINDOW = 5  # as rewards/web/review.py: objections per citizen per rate-limit window


class WeekReviewOut(BaseModel):
    """A week's review: where it stands and its current list version (None while the week has no list)."""

    status: ReviewStatusOut
    current: ListVersionOut | None


class ObjectionIn(BaseModel):
    """An objection to one entry of a week's current list version."""

    week: str = Field(max_length=16, description="ISO week of the list, e.g. 2026-W48")
    rank: int = Field(description="获奖名次 of the entry in the current version", ge=-(2**31), le=2**31 - 1)
    reason: str = Field(max_length=20_000, description="why (required; at most REWARDS_OBJECTION_REASON_MAX chars)")


@router.get("/api/v1/review/weeks/{week}", dependencies=PUBLIC, response_model=WeekReviewOut)
def week_review(c: Services, week: WeekPath) -> WeekReviewOut:
    """公示 of a week: phase (no_list, not_published, open, reviewing, final), objection deadline, the current list
    version (masked names) with its checksum and its changes (异议处理结果)."""
    status = c.review.status(str(week))
    current = c.review.current(str(week)) if status.phase != "no_list" else None
    return WeekReviewOut(status=status, current=current)


@router.get("/api/v1/review/weeks/{week}/versions", dependencies=PUBLIC, response_model=list[ListVersionOut])
def versions(c: Services, week: WeekPath) -> list[ListVersionOut]:
    """Every sealed version of a week's list, oldest first (404 no_list when the week has none)."""
    return c.review.versions(str(week))


@router.get("/api/v1/review/weeks/{week}/versions/{number}", dependencies=PUBLIC, response_model=ListVersionOut)
def version(c: Services, week: WeekPath, number: Annotated[int, Path(ge=1, le=100_000)]) -> ListVersionOut:
    """One sealed version of a week's list with its checksum (404 no_such_version)."""
    return c.review.version(str(week), number)


@router.post("/api/v1/citizens/{openid}/objections", status_code=201, response_model=ObjectionOut)
def file_objection(request: Request, openid: OwnOpenid, c: Services, body: ObjectionIn) -> ObjectionOut:
    """Object to the entry at `rank` of the week's list during its 公示 (one objection per citizen per entry).

    Refusals (nothing written): 422 invalid_week / reason_required / reason_too_long / invalid_rank, 404 no_list /
    no_such_rank, 409 not_published / objections_closed / already_objected, 429 rate_limited.
    """
    limiter = limiter_of(request)
    limits = [
        Limit("citizen", openid, OBJECTIONS_PER_WINDOW),
        Limit("ip", client_ip(request), limiter.settings.rate_limit_per_ip),
    ]
    limiter.hit("objection", limits)
    return c.review.object(body.week, body.rank, openid, body.reason, channel="api")


@router.get("/api/v1/citizens/{openid}/objections", response_model=list[ObjectionOut])
def objections(openid: OwnOpenid, c: Services) -> list[ObjectionOut]:
    """A citizen's objections with their status and outcome (the reviewer's reason), newest first."""
    return c.review.objections_of(openid)


@router.get("/api/v1/citizens/{openid}/claims", response_model=list[ClaimOut])
def claims(openid: OwnOpenid, c: Services) -> list[ClaimOut]:
    """A citizen's prize claims: claim code, rank, tier, status and claim deadline (owner and staff only)."""
    return c.review.claims_of(openid)
