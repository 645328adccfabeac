"""我的: the rating form under each resolved or closed report, and the form's POST (redirects back to 我的).

The form posts with the citizen's session cookie (SameSite=Lax) from this site only: a cross-site post is
refused. A refused rating comes back to 我的 as an error code the page turns into its Chinese reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from rewards.cases.models import Citizen
from rewards.deps import PUBLIC, Ratings, SettingsDep
from rewards.engagement import rating_rules
from rewards.engagement.ratings import RatingService, RatingState
from rewards.errors import DomainError, Unauthorized
from rewards.web.oauth import cross_site

router = APIRouter(include_in_schema=False, dependencies=PUBLIC)


@dataclass(frozen=True)
class RatingView:
    """What 我的 shows about ratings: each report's state, the level labels, and the outcome of the last post."""

    states: dict[str, RatingState]
    labels: dict[str, str]
    comment_max: int
    window_days: int
    rated: str | None  # the case just rated
    error_case: str | None
    error_text: str | None


def rating_view(
    session: Session,
    ratings: RatingService,
    citizen: Citizen,
    case_ids: list[str],
    rated: str | None,
    error_case: str | None,
    error_code: str | None,
) -> RatingView:
    """The rating part of 我的 for the reports on the page."""
    text = rating_rules.refusal_text(error_code, ratings.comment_max) if error_code else None
    return RatingView(
        states=ratings.states(session, citizen.id, case_ids),
        labels=dict(rating_rules.LEVEL_LABELS),
        comment_max=ratings.comment_max,
        window_days=ratings.window_days,
        rated=rated,
        error_case=error_case if text else None,
        error_text=text,
    )


def _back(**query: str) -> RedirectResponse:
    anchor = quote(query.get("rated") or query.get("rating_case") or "", safe="")
    return RedirectResponse(f"/me?{urlencode(query)}#report-{anchor}", status_code=303)


@router.post("/me/ratings/{case_id}")
def rate_from_me(
    request: Request,
    ratings: Ratings,
    settings: SettingsDep,
    case_id: Annotated[str, Path(min_length=1, max_length=rating_rules.CASE_ID_MAX)],
    rating: Annotated[str, Form(max_length=16)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    """Rate one's own report from 我的, then go back to it (PRG)."""
    openid = getattr(request.state, "citizen_openid", None)
    if not isinstance(openid, str):  # signed out (an expired session): the error page links to the sign-in
        raise Unauthorized("sign in to rate your report", code="sign_in_required")
    if cross_site(request, settings):
        return _back(rating_case=case_id, rating_error="cross_site")
    try:
        ratings.rate(openid, case_id, rating, comment, rating_rules.CHANNEL_ME)
    except DomainError as exc:
        return _back(rating_case=case_id, rating_error=exc.code)
    return _back(rated=case_id)
