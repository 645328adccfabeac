"""Command-center console: the queue with photos and duplicate hints, verdicts, voids, bans, publications, audit."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases import service as cases
from rewards.cases.commands import Actor, GiveVerdict, SetBan, VoidCase
from rewards.cases.duplicates import find_duplicates
from rewards.cases.models import AuditEntry, Case, Citizen
from rewards.deps import Services
from rewards.errors import DomainError, Forbidden, Unauthorized
from rewards.http.auth import Principal, require
from rewards.leaderboard.weeks import WeeklySnapshot
from rewards.masking import mask_name, mask_phone
from rewards.publish.models import STATE_LABELS, Publication
from rewards.web.templating import page

router = APIRouter(prefix="/console", include_in_schema=False)
C = Services
_require_validator = require("validator")
VERDICT_LABELS = {"valid": "有效，已立案", "invalid": "无效，不予立案", "duplicate": "重复举报"}


def console_user(request: Request) -> Principal:
    """The signed-in validator; a browser without a console session is sent to the sign-in page instead of a 401."""
    try:
        return _require_validator(request)
    except Unauthorized:
        if "text/html" in request.headers.get("accept", "") and request.method == "GET":
            raise HTTPException(status_code=303, headers={"Location": "/console/login"}) from None
        raise


Validator = Annotated[Principal, Depends(console_user)]


def csrf_token(secret: str, principal: Principal) -> str:
    """Return the form token bound to this console user (forms must echo it back)."""
    return hmac.new(secret.encode(), f"console:{principal.name}:{principal.role}".encode(), hashlib.sha256).hexdigest()


def check_csrf(c: Container, who: Principal, token: str) -> None:
    """Refuse a console form post whose token does not match the signed-in user (403)."""
    if not hmac.compare_digest(csrf_token(c.http.codec.secret, who), token):
        raise Forbidden("invalid form token; reload the page and try again")


def back(path: str, message: str, error: bool = False) -> RedirectResponse:
    """Redirect after a form post (POST/redirect/GET) with a one-line message."""
    key = "error" if error else "flash"
    return RedirectResponse(f"{path}?{key}={quote(message)}", status_code=303)


def duplicate_hints(c: Container, session: Session, case: Case) -> list[dict[str, object]]:
    """Open cases of the same category nearby that were reported earlier: the first report to name."""
    if case.lat is None or case.lon is None:
        return []  # no location: nothing can be near it
    window = timedelta(hours=c.settings.duplicate_window_hours)
    hints = find_duplicates(session, case, c.settings.duplicate_radius_m, window)
    return [
        {"case_id": h.case.case_id, "distance_m": h.distance_m, "reported_at": h.case.reported_at}
        for h in hints
        if h.earlier
    ]


def console_page(
    c: Container, who: Principal, template: str, flash: str | None, error: str | None, **context: Any
) -> HTMLResponse:
    """Render a console page with the signed-in user, their form token and the one-line message."""
    token = csrf_token(c.http.codec.secret, who)
    return page(template, nav="console", who=who, csrf=token, flash=flash, error=error, **context)


@router.get("/login", response_class=HTMLResponse)
def login_page(error: str | None = None) -> HTMLResponse:
    """The console sign-in form (a validator's or admin's token, exchanged for a console session cookie)."""
    return page("console/login.html", error=error)


@router.get("", response_class=HTMLResponse)
def queue(
    c: C,
    who: Validator,
    flash: str | None = None,
    error: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """The queue of reported cases, oldest first."""
    with c.read() as session:
        rows = []
        for case in cases.queue(session, lc.REPORTED, limit=30, offset=offset):
            reporter = case.reporter
            rows.append(
                {
                    "case": case,
                    "reporter": mask_name(reporter.name) if reporter else "匿名",
                    "verified": bool(reporter and reporter.verified),
                    "category": category_name(c, case.category),
                    "hints": duplicate_hints(c, session, case),
                }
            )
    return console_page(
        c,
        who,
        "console/queue.html",
        flash,
        error,
        rows=rows,
        offset=offset,
    )


@router.post("/cases/{case_id}/verdict")
def verdict(
    case_id: str,
    c: C,
    who: Validator,
    verdict: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    duplicate_of: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Give a verdict from the console."""
    check_csrf(c, who, csrf)
    # the form pre-fills "重复于" with the first report nearby; it only means something for the verdict duplicate
    command = GiveVerdict(
        case_id,
        verdict,
        duplicate_of=(duplicate_of.strip() or None) if verdict == "duplicate" else None,
        reason=reason.strip() or None,
    )
    try:
        with c.uow() as uow:
            c.flows.verdict(uow, command, Actor(who.name, "console"))
    except DomainError as exc:
        return back("/console", f"{case_id}：{exc.message}", error=True)
    return back("/console", f"{case_id} 已处理：{VERDICT_LABELS.get(verdict, verdict)}")


@router.post("/cases/{case_id}/void")
def void(
    case_id: str, c: C, who: Validator, reason: Annotated[str, Form()], csrf: Annotated[str, Form()]
) -> RedirectResponse:
    """Void a filed case from the console (fraud); its points are reversed."""
    check_csrf(c, who, csrf)
    try:
        with c.uow() as uow:
            c.flows.void(uow, VoidCase(case_id, reason), Actor(who.name, "console"))
    except DomainError as exc:
        return back("/console/cases", f"{case_id}：{exc.message}", error=True)
    return back("/console/cases", f"{case_id} 已作废，积分已扣回")


@router.get("/cases", response_class=HTMLResponse)
def find_case(
    c: C, who: Validator, case_id: str = "", flash: str | None = None, error: str | None = None
) -> HTMLResponse:
    """Look a case up by id (to void it, or to read its timeline)."""
    found = None
    with c.read() as session:
        if case_id.strip():
            found = cases.find_case(session, case_id.strip())
            if found is None:
                error = f"没有找到案件 {case_id}"
    return console_page(
        c,
        who,
        "console/case.html",
        flash,
        error,
        case=found,
        query=case_id,
        filed_states=lc.FILED_STATES,
    )


@router.get("/citizens", response_class=HTMLResponse)
def citizens(c: C, who: Validator, q: str = "", flash: str | None = None, error: str | None = None) -> HTMLResponse:
    """Find citizens by phone or name (shown masked) to ban or unban them."""
    rows: list[dict[str, object]] = []
    with c.read() as session:
        if q.strip():
            term = q.strip()
            stmt = (
                select(Citizen)
                .where((Citizen.phone == term) | (Citizen.name == term) | (Citizen.id == _as_int(term)))
                .limit(50)
            )
            for cit in session.scalars(stmt):
                rows.append(
                    {
                        "id": cit.id,
                        "name": mask_name(cit.name),
                        "phone": mask_phone(cit.phone),
                        "district": cit.district or "",
                        "verified": cit.verified,
                        "banned": cit.banned,
                    }
                )
    return console_page(
        c,
        who,
        "console/citizens.html",
        flash,
        error,
        rows=rows,
        q=q,
    )


def category_name(c: Container, code: str) -> str:
    """The Chinese name of a category code (the code itself when unknown)."""
    category = c.settings.category(code)
    return category.name if category else code


def _as_int(text: str) -> int:
    value = int(text) if text.isdigit() and len(text) <= 10 else -1
    return value if value < 2**31 else -1  # ids are 32-bit: a phone number is not an id


@router.post("/citizens/{citizen_id}/ban")
def ban(
    citizen_id: int,
    c: C,
    who: Validator,
    reason: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
    banned: Annotated[bool, Form()] = True,
) -> RedirectResponse:
    """Ban (or unban) a citizen: a ban removes them from prize eligibility."""
    check_csrf(c, who, csrf)
    try:
        with c.uow() as uow:
            cit = uow.session.get(Citizen, citizen_id)
            if cit is None:
                return back("/console/citizens", "没有这位市民", error=True)
            c.flows.set_banned(uow, SetBan(cit.openid, banned, reason), Actor(who.name, "console"))
    except DomainError as exc:
        return back("/console/citizens", exc.message, error=True)
    return back("/console/citizens", f"市民 #{citizen_id} 已{'取消资格' if banned else '恢复资格'}")


@router.get("/audit", response_class=HTMLResponse)
def audit(c: C, who: Validator, request: Request) -> HTMLResponse:
    """Who did what, newest first."""
    with c.read() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)).all()
    return page("console/audit.html", nav="console", rows=rows, who=who, flash=None, error=None)


@router.get("/weeks", response_class=HTMLResponse)
def weeks(c: C, who: Validator, flash: str | None = None, error: str | None = None) -> HTMLResponse:
    """Every closed week with its publication state, error and a retry button for failed ones."""
    with c.read() as session:
        snaps = session.execute(
            select(WeeklySnapshot.week, WeeklySnapshot.closed_at, WeeklySnapshot.participants)
            .order_by(WeeklySnapshot.week.desc())
            .limit(60)
        ).all()
        pubs = {p.week: p for p in session.scalars(select(Publication))}
    rows = [{"week": w, "closed_at": at, "participants": n, "pub": pubs.get(w)} for w, at, n in snaps]
    return console_page(
        c,
        who,
        "console/weeks.html",
        flash,
        error,
        rows=rows,
        state_labels=STATE_LABELS,
    )


@router.post("/weeks/{week}/retry")
def retry_week(week: str, c: C, who: Validator, csrf: Annotated[str, Form()]) -> RedirectResponse:
    """Ask for a failed publication to be retried from where it stopped (audited); the scheduler runs it."""
    check_csrf(c, who, csrf)
    try:
        pub = c.publishing.request_retry(week)
    except DomainError as exc:
        return back("/console/weeks", f"{week}：{exc.message}", error=True)
    with c.uow() as uow:
        cases.audit(uow.session, c.clock.now(), who.name, "publish:retry-requested", week, pub.state)
    return back("/console/weeks", f"{week} 已安排重新发布，进度见下表（每分钟自动续发）")
