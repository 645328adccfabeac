"""The console's review desk (staff): open objections with the entry's evidence (ledger lines, cases, photos,
duplicate hints), decisions (reject with a reason, or uphold: void a case or disqualify, with a reason), prize
claim redemption (a typed or scanned code, looked up, then handed over) and the payout export (role admin only).

The use cases are `rewards.review.service.ReviewService`; every decision, redemption and export is audited there.
A refused form answers with its 4xx status and the reason on the page it came from; nothing is written.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from rewards.bootstrap import Container
from rewards.cases.commands import Actor
from rewards.clock import IsoWeek
from rewards.deps import Services
from rewards.errors import DomainError, Invalid, Unauthorized
from rewards.http.auth import Principal, require
from rewards.review.schemas import ClaimOut, ReviewStatusOut
from rewards.web import messages
from rewards.web.console import MAX_ID, Validator, back, category_name, check_csrf, csrf_token
from rewards.web.review import ACTION_LABELS, reason_text
from rewards.web.templating import page

router = APIRouter(prefix="/console/review", include_in_schema=False)
C = Services
_require_admin = require("admin")
RECENT_WEEKS = 6  # weeks listed on the desk (their phase, open objections, claims)


def console_admin(request: Request) -> Principal:
    """The signed-in admin; a browser without a console session goes to the sign-in page instead of a 401."""
    try:
        return _require_admin(request)
    except Unauthorized:
        if "text/html" in request.headers.get("accept", "") and request.method == "GET":
            raise HTTPException(status_code=303, headers={"Location": "/console/login"}) from None
        raise


Admin = Annotated[Principal, Depends(console_admin)]


def review_page(
    c: Container,
    who: Principal,
    template: str,
    *,
    flash: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a review page in the console's frame (navigation item 异议与领奖), with the user's form token."""
    return page(
        template,
        status_code=status_code,
        nav="console",
        section="review",
        who=who,
        role=messages.ROLE_LABELS.get(who.role, who.role),
        csrf=csrf_token(c.http.codec.secret, who),
        flash=flash,
        error=error,
        is_admin=who.may("admin"),
        **context,
    )


def recent_weeks(c: Container) -> list[ReviewStatusOut]:
    """The last few weeks that have a list, newest first, with where their review stands."""
    week, found = c.leaderboard.current_week(), []
    for _ in range(RECENT_WEEKS):
        week = week.previous()
        status = c.review.status(str(week))
        if status.phase != "no_list":
            found.append(status)
    return found


# ------------------------------------------------------------------------------------------------ objections


@router.get("", response_class=HTMLResponse)
def desk(c: C, who: Validator, flash: str | None = None, error: str | None = None) -> HTMLResponse:
    """Open objections (oldest first), recently decided ones, the weeks under review and the claim code field."""
    opened = c.review.objections()
    decided = [o for o in c.review.objections(status=None) if o.status != "open"][-20:][::-1]
    return review_page(
        c,
        who,
        "console/review.html",
        flash=flash,
        error=error,
        opened=opened,
        decided=decided,
        weeks=recent_weeks(c),
    )


def objection_page(
    c: Container, who: Principal, objection_id: int, *, flash: str | None, error: str | None, status_code: int = 200
) -> HTMLResponse:
    """One objection with the entry's evidence and the decision forms."""
    evidence = c.review.evidence(objection_id)
    status = c.review.status(evidence.objection.week)
    categories = {case.case_id: category_name(c, case.category) for case in evidence.cases}
    return review_page(
        c,
        who,
        "console/review_objection.html",
        flash=flash,
        error=error,
        status_code=status_code,
        ev=evidence,
        o=evidence.objection,
        week_status=status,
        categories=categories,
        action_labels=ACTION_LABELS,
        filed_cases=[case.case_id for case in evidence.cases if case.status != "voided"],
    )


ObjectionId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/objections/{objection_id}", response_class=HTMLResponse)
def objection(
    c: C, who: Validator, objection_id: ObjectionId, flash: str | None = None, error: str | None = None
) -> HTMLResponse:
    """An objection and its evidence: the entry's ledger lines in the week, the cases (photos, duplicate hints)."""
    return objection_page(c, who, objection_id, flash=flash, error=error)


@router.post("/objections/{objection_id}/reject", response_model=None)
def reject(
    c: C,
    who: Validator,
    objection_id: ObjectionId,
    csrf: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Reject an objection with the reason the objector will read."""
    check_csrf(c, who, csrf)
    try:
        c.review.reject(objection_id, reason, Actor(who.name, "console"))
    except DomainError as exc:
        return refused(c, who, objection_id, exc)
    return back(f"/console/review/objections/{objection_id}", f"异议 #{objection_id} 已处理：未采纳")


@router.post("/objections/{objection_id}/uphold", response_model=None)
def uphold(
    c: C,
    who: Validator,
    objection_id: ObjectionId,
    csrf: Annotated[str, Form()],
    action: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=20_000)] = "",
    case_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Uphold an objection: void the named case or disqualify the citizen for the week; a new list version follows."""
    check_csrf(c, who, csrf)
    try:
        out = c.review.uphold(objection_id, action, reason, Actor(who.name, "console"), case_id=case_id or None)
    except DomainError as exc:
        return refused(c, who, objection_id, exc)
    made = f"，已生成第 {out.version.number} 版名单" if out.version is not None else ""
    return back(f"/console/review/objections/{objection_id}", f"异议 #{objection_id} 已采纳{made}")


def refused(c: Container, who: Principal, objection_id: int, exc: DomainError) -> HTMLResponse:
    """The objection page again with the refusal's status and reason (an unknown objection is a plain 404)."""
    if exc.code == "objection_not_found":
        raise exc
    return objection_page(c, who, objection_id, flash=None, error=reason_text(exc), status_code=exc.status)


# ------------------------------------------------------------------------------------------------ claims


@router.get("/claims", response_class=HTMLResponse)
def claims(
    c: C,
    who: Validator,
    code: Annotated[str, Query(max_length=64)] = "",
    week: Annotated[str, Query(max_length=16)] = "",
    flash: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """Look a claim code up before handing the prize over (typed, or typed by a scanner), or list a week's claims."""
    found: ClaimOut | None = None
    listed: list[ClaimOut] = []
    status_code = 200
    try:
        if code.strip():
            found = c.review.claim(code)
        if week.strip():
            listed = c.review.claims(week)
    except DomainError as exc:
        error, status_code = reason_text(exc), exc.status
    return claims_page(c, who, code=code, week=week, found=found, listed=listed, flash=flash, error=error,
                       status_code=status_code)  # fmt: skip


def claims_page(
    c: Container,
    who: Principal,
    *,
    code: str,
    week: str,
    found: ClaimOut | None,
    listed: list[ClaimOut],
    flash: str | None,
    error: str | None,
    status_code: int,
) -> HTMLResponse:
    """The claims page: the code field, the looked-up claim with its hand-over button, a week's claims."""
    return review_page(
        c,
        who,
        "console/review_claims.html",
        flash=flash,
        error=error,
        status_code=status_code,
        code=code,
        week=week,
        found=found,
        listed=listed,
        weeks=recent_weeks(c),
    )


@router.post("/claims/redeem", response_model=None)
def redeem(
    c: C,
    who: Validator,
    csrf: Annotated[str, Form()],
    code: Annotated[str, Form(max_length=64)] = "",
    week: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Hand a prize over: redeem the code once (who and when are recorded and audited)."""
    check_csrf(c, who, csrf)
    try:
        out = c.review.redeem(code, Actor(who.name, "console"), week=week.strip() or None)
    except DomainError as exc:
        found = None
        with suppress(DomainError):  # a malformed or unknown code: nothing to show beside the reason
            found = c.review.claim(code)
        return claims_page(c, who, code=code, week=week, found=found, listed=[], flash=None,
                           error=reason_text(exc), status_code=exc.status)  # fmt: skip
    message = (
        f"领奖码 {out.code} 已核销：{out.week} 周第 {out.rank} 名 {out.display_name}，{out.tier}（{out.prize} 元）"
    )
    return back(f"/console/review/claims?code={quote(out.code)}", message)


@router.get("/payouts/{week}", response_model=None)
def payout(
    c: C,
    who: Admin,
    week: Annotated[str, Path(max_length=16)],
    format: Annotated[str, Query(max_length=8)] = "csv",
) -> Response:
    """The week's payout list for finance (CSV or XLSX; real names and phones): role admin only, every download
    audited."""
    try:
        label = str(IsoWeek.from_text(week))
        if format not in ("csv", "xlsx"):
            raise Invalid(f"unknown format {format!r}: csv or xlsx", code="unknown_format")
        made = c.review.export_payout(label, Actor(who.name, "console"), format)
    except DomainError as exc:
        return claims_page(c, who, code="", week="", found=None, listed=[], flash=None, error=reason_text(exc),
                           status_code=exc.status)  # fmt: skip
    disposition = f"attachment; filename=\"{made.filename}\"; filename*=UTF-8''{quote(made.filename)}"
    return Response(
        made.content,
        media_type=made.media_type,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )
