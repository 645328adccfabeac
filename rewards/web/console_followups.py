"""Console: follow-up items for departments — every 不满意 rating with a comment, until staff mark it handled.

Open items are listed oldest first (filter by department); marking one handled takes an optional note, is
audited (`rating:followup-handled`) and happens once (a second attempt is refused with the reason).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from rewards.deps import Ratings, Services
from rewards.engagement import rating_rules
from rewards.engagement.ratings import CaseRating, followups
from rewards.errors import DomainError
from rewards.web import messages
from rewards.web.console import MAX_ID, Validator, back, category_name, check_csrf, csrf_token
from rewards.web.templating import page

router = APIRouter(prefix="/console/followups", include_in_schema=False)
NOTE_MAX = 500
REFUSED = {
    "unknown_followup": "没有这条待跟进事项。",
    "already_handled": "这条事项已由他人标记为已处理。",
    "comment_too_long": f"处理说明最多 {NOTE_MAX} 个字。",
    "bad_comment": "处理说明中含有无法识别的字符。",
}


@router.get("", response_class=HTMLResponse)
def followup_list(
    c: Services,
    who: Validator,
    handled: Annotated[bool, Query()] = False,
    department: Annotated[str | None, Query(max_length=128)] = None,
    flash: Annotated[str | None, Query(max_length=300)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """待跟进: 不满意 ratings with a comment, open (oldest first) or handled (newest first)."""
    wanted = department or None
    with c.read() as session:
        items = followups(session, handled=handled, department=wanted, limit=200)
        departments = sorted(
            d
            for d in session.scalars(
                select(CaseRating.department)
                .where(CaseRating.level == rating_rules.UNSATISFIED, CaseRating.comment.is_not(None))
                .distinct()
            )
            if d
        )
        rows = [
            {
                "id": r.id,
                "case_id": case.case_id,
                "category": category_name(c, case.category),
                "district": r.district or "",
                "department": r.department or "未指定部门",
                "comment": r.comment,
                "rated_at": r.rated_at,
                "citizen_id": r.citizen_id,
                "handled_at": r.handled_at,
                "handled_by": r.handled_by,
                "handled_note": r.handled_note,
            }
            for r, case in items
        ]
    return page(
        "console/followups.html",
        nav="console",
        section="followups",
        who=who,
        role=messages.ROLE_LABELS.get(who.role, who.role),
        csrf=csrf_token(c.http.codec.secret, who),
        flash=flash,
        error=error,
        rows=rows,
        handled=handled,
        department=wanted or "",
        departments=departments,
        note_max=NOTE_MAX,
    )


@router.post("/{rating_id}/handled")
def mark_handled(
    c: Services,
    who: Validator,
    ratings: Ratings,
    rating_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    csrf: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    """Mark a follow-up item handled, with an optional note (audited, once)."""
    check_csrf(c, who, csrf)
    try:
        rating = ratings.mark_handled(rating_id, who.name, note)
    except DomainError as exc:
        reason = REFUSED.get(exc.code) or messages.reason_of(exc)
        return back("/console/followups", f"#{rating_id}：{reason}", error=True)
    return back("/console/followups", f"已标记为已处理（评价 #{rating.id}）")
