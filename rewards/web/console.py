"""Command-center console: the queue (filters, size and age, photos, location view, duplicate suspects, keyboard
shortcuts in static/console.js), verdicts, voids, citizens (search, their cases, ledger and standing), bans,
publications, audit. Every word staff read is Chinese (rewards/web/messages.py)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases import service as cases
from rewards.cases.commands import Actor, GiveVerdict, SetBan, VoidCase
from rewards.cases.duplicates import find_duplicates
from rewards.cases.geo import to_wgs84
from rewards.cases.models import AuditEntry, Case, Citizen
from rewards.deps import Services
from rewards.errors import DomainError, Forbidden, NotFound, Unauthorized
from rewards.http.auth import Principal, require
from rewards.leaderboard.schemas import StandingOut
from rewards.leaderboard.weeks import WeeklySnapshot
from rewards.masking import mask_name, mask_phone
from rewards.publish.models import STATE_LABELS, Publication
from rewards.publish.port import FINAL, NOTICE
from rewards.scoring.ledger import entries_for_case
from rewards.scoring.service import citizen_points
from rewards.web import messages
from rewards.web.location import LocationView, Neighbour, plot
from rewards.web.templating import page

router = APIRouter(prefix="/console", include_in_schema=False)
C = Services
_require_validator = require("validator")
VERDICT_LABELS = {"valid": "有效，已立案", "invalid": "无效，不予立案", "duplicate": "重复举报"}
PAGE_SIZE = 30
SECTIONS = {  # which item of the console's navigation a page belongs to
    "console/queue.html": "queue",
    "console/case.html": "cases",
    "console/citizens.html": "citizens",
    "console/citizen.html": "citizens",
    "console/weeks.html": "weeks",
    "console/audit.html": "audit",
}
MAX_ID = 2**31 - 1  # ids are 32-bit


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
        raise Forbidden("invalid form token; reload the page and try again", code="bad_form_token")


def back(path: str, message: str, error: bool = False) -> RedirectResponse:
    """Redirect after a form post (POST/redirect/GET) with a one-line message; the path keeps its own query."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("flash", "error")]
    query.append(("error" if error else "flash", message))
    return RedirectResponse(f"{parts.path}?{urlencode(query, quote_via=quote)}", status_code=303)


def console_path(value: str, default: str = "/console") -> str:
    """A console page to return to after a form (anything else falls back to the default)."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or "\\" in value or "//" in value:
        return default
    return value


def category_name(c: Container, code: str) -> str:
    """The Chinese name of a category code (the code itself when unknown)."""
    category = c.settings.category(code)
    return category.name if category else code


def console_page(
    c: Container, who: Principal, template: str, flash: str | None, error: str | None, **context: Any
) -> HTMLResponse:
    """Render a console page with the signed-in user, their form token and the one-line message."""
    token = csrf_token(c.http.codec.secret, who)
    return page(
        template,
        nav="console",
        section=SECTIONS.get(template, ""),
        who=who,
        role=messages.ROLE_LABELS.get(who.role, who.role),
        csrf=token,
        flash=flash,
        error=error,
        **context,
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(error: str | None = None) -> HTMLResponse:
    """The console sign-in form (a validator's or admin's token, exchanged for a console session cookie)."""
    return page("console/login.html", error=error)


# ----------------------------------------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class Suspect:
    """A nearby report of the same category, as the queue and the case page list it."""

    number: int
    case_id: str
    distance_m: float
    reported_at: datetime
    earlier: bool  # reported first: it may be named as the original


@dataclass(frozen=True)
class Surroundings:
    """A case's nearby reports and the location view that plots them."""

    suspects: list[Suspect]
    view: LocationView | None
    lat: float | None
    lon: float | None


def surroundings(c: Container, session: Session, case: Case) -> Surroundings:
    """Reports of the same category near the case and close in time (nearest first), plotted around it."""
    if case.lat is None or case.lon is None:
        return Surroundings([], None, None, None)  # no location: nothing can be near it
    window = timedelta(hours=c.settings.duplicate_window_hours)
    hints = find_duplicates(session, case, c.settings.duplicate_radius_m, window)
    lat, lon = to_wgs84(case.lat, case.lon, case.coord_system)
    neighbours = [Neighbour(h.case.case_id, h.lat, h.lon, h.distance_m, h.earlier) for h in hints]
    view = plot(lat, lon, neighbours, c.settings.duplicate_radius_m)
    suspects = [
        Suspect(n, h.case.case_id, h.distance_m, h.case.reported_at, h.earlier) for n, h in enumerate(hints, start=1)
    ]
    return Surroundings(suspects, view, case.lat, case.lon)


def duplicate_hints(c: Container, session: Session, case: Case) -> list[Suspect]:
    """Open cases of the same category nearby that were reported earlier: the first report to name."""
    return [s for s in surroundings(c, session, case).suspects if s.earlier]


@dataclass(frozen=True)
class QueueFilter:
    """What the validator narrowed the queue to."""

    district: str
    category: str

    def conditions(self) -> list[ColumnElement[bool]]:
        """The SQL conditions of the filtered queue."""
        found = [Case.status == lc.REPORTED]
        if self.district:
            found.append(Case.district == self.district)
        if self.category:
            found.append(Case.category == self.category)
        return found

    def query(self, **extra: object) -> str:
        """The queue's URL with this filter (and extra parameters)."""
        params = {"district": self.district, "category": self.category, **extra}
        kept = {k: str(v) for k, v in params.items() if v not in ("", None, 0)}
        return "/console" + (f"?{urlencode(kept)}" if kept else "")


def queue_stats(c: Container, session: Session, wanted: QueueFilter) -> dict[str, object]:
    """The queue's size (all, filtered), the wait of its oldest case and the counts behind the filters."""
    waiting = Case.status == lc.REPORTED
    total = session.scalar(select(func.count(Case.id)).where(waiting)) or 0
    shown = session.scalar(select(func.count(Case.id)).where(*wanted.conditions())) or 0
    oldest = session.scalar(select(func.min(Case.reported_at)).where(*wanted.conditions()))
    districts = session.execute(
        select(Case.district, func.count(Case.id)).where(waiting).group_by(Case.district).order_by(Case.district)
    ).all()
    categories = dict(
        session.execute(select(Case.category, func.count(Case.id)).where(waiting).group_by(Case.category)).all()
    )
    return {
        "total": total,
        "shown": shown,
        "oldest_wait": messages.wait_text(c.clock.now() - oldest) if oldest is not None else None,
        "districts": [(d, n) for d, n in districts if d],
        "categories": [(cat.code, cat.name, categories.get(cat.code, 0)) for cat in c.settings.categories],
    }


def case_row(c: Container, session: Session, case: Case) -> dict[str, object]:
    """A case as the queue shows it: masked reporter (linked), Chinese category, surroundings."""
    reporter = case.reporter
    around = surroundings(c, session, case)
    return {
        "case": case,
        "reporter": mask_name(reporter.name) if reporter else "匿名",
        "reporter_id": reporter.id if reporter else None,
        "verified": bool(reporter and reporter.verified),
        "category": category_name(c, case.category),
        "around": around,
        "hints": [s for s in around.suspects if s.earlier],
    }


@router.get("", response_class=HTMLResponse)
def queue(
    c: C,
    who: Validator,
    flash: str | None = None,
    error: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    district: Annotated[str, Query(max_length=64)] = "",
    category: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """The queue of reported cases, oldest first, optionally of one district and category."""
    wanted = QueueFilter(district.strip(), category.strip())
    with c.read() as session:
        stmt = select(Case).where(*wanted.conditions()).order_by(Case.reported_at, Case.id)
        found = session.scalars(stmt.limit(PAGE_SIZE).offset(offset)).unique().all()
        rows = [case_row(c, session, case) for case in found]
        stats = queue_stats(c, session, wanted)
    here = wanted.query(offset=offset)
    return console_page(
        c,
        who,
        "console/queue.html",
        flash,
        error,
        rows=rows,
        offset=offset,
        page_size=PAGE_SIZE,
        wanted=wanted,
        stats=stats,
        here=here,
        next_page=wanted.query(offset=offset + PAGE_SIZE),
        radius_m=c.settings.duplicate_radius_m,
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
    back_to: Annotated[str, Form(max_length=512)] = "/console",
) -> RedirectResponse:
    """Give a verdict from the console, then return to the queue as it was filtered."""
    check_csrf(c, who, csrf)
    target = console_path(back_to)
    original = duplicate_of.strip()
    if verdict == "duplicate" and not original:
        return back(target, f"{case_id}：{messages.reason('duplicate_needs_original', 422)}", error=True)
    # the form pre-fills "重复于" with the first report nearby; it only means something for the verdict duplicate
    command = GiveVerdict(
        case_id,
        verdict,
        duplicate_of=original if verdict == "duplicate" else None,
        reason=reason.strip() or None,
    )
    try:  # given with the API's verdicts posted at the same time (one transaction); the answer is the redirect
        c.verdicts.give(command, Actor(who.name, "console"), lambda _session, _case: None)
    except DomainError as exc:
        return back(target, f"{case_id}：{messages.reason_of(exc)}", error=True)
    return back(target, f"{case_id} 已处理：{VERDICT_LABELS.get(verdict, verdict)}")


# ----------------------------------------------------------------------------------------------------- cases


@router.post("/cases/{case_id}/void")
def void(
    case_id: str, c: C, who: Validator, reason: Annotated[str, Form()], csrf: Annotated[str, Form()]
) -> RedirectResponse:
    """Void a filed case from the console (fraud); its points are reversed."""
    check_csrf(c, who, csrf)
    here = f"/console/cases?case_id={quote(case_id)}"
    try:
        with c.uow() as uow:
            c.flows.void(uow, VoidCase(case_id, reason), Actor(who.name, "console"))
    except DomainError as exc:
        return back(here, f"{case_id}：{messages.reason_of(exc)}", error=True)
    return back(here, f"{case_id} 已作废，积分已扣回")


@router.get("/cases", response_class=HTMLResponse)
def find_case(
    c: C,
    who: Validator,
    case_id: Annotated[str, Query(max_length=64)] = "",
    flash: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """Look a case up by id: its reporter (linked), photos, location, timeline, ledger lines, void."""
    found, row, lines = None, None, []
    with c.read() as session:
        if case_id.strip():
            found = cases.find_case(session, case_id.strip())
            if found is None:
                error = f"没有找到案件 {case_id}"
            else:
                row = case_row(c, session, found)
                lines = [(e.points, e.reason, e.week, e.created_at) for e in entries_for_case(session, found.id)]
    return console_page(
        c,
        who,
        "console/case.html",
        flash,
        error,
        case=found,
        row=row,
        lines=lines,
        query=case_id,
        filed_states=lc.FILED_STATES,
        verdict_labels=VERDICT_LABELS,
        radius_m=c.settings.duplicate_radius_m,
    )


# ----------------------------------------------------------------------------------------------------- citizens


def _as_int(text: str) -> int:
    value = int(text) if text.isdigit() and len(text) <= 10 else -1
    return value if value <= MAX_ID else -1  # ids are 32-bit: a phone number is not an id


def _like(term: str) -> str:
    """A masked name or phone as a LIKE pattern: each * stands for one hidden character."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "_")


def citizen_search(term: str) -> ColumnElement[bool]:
    """Who a search term names: case id (its reporter), openid, phone, name, #id, or a masked name or phone."""
    number = _as_int(term.removeprefix("#"))
    found: list[ColumnElement[bool]] = [
        Citizen.openid == term,
        Citizen.phone == term,
        Citizen.name == term,
        Citizen.id == number,
        Citizen.id.in_(select(Case.reporter_id).where(Case.case_id == term)),
    ]
    if "*" in term:
        pattern = _like(term)
        found += [Citizen.name.like(pattern, escape="\\"), Citizen.phone.like(pattern, escape="\\")]
    return or_(*found)


def citizen_view(cit: Citizen) -> dict[str, object]:
    """A citizen as staff see them: masked name and phone, never the openid."""
    return {
        "id": cit.id,
        "name": mask_name(cit.name),
        "phone": mask_phone(cit.phone),
        "district": cit.district or "",
        "verified": cit.verified,
        "banned": cit.banned,
    }


@router.get("/citizens", response_class=HTMLResponse)
def citizens(
    c: C,
    who: Validator,
    q: Annotated[str, Query(max_length=128)] = "",
    flash: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """Find citizens by case id, openid, phone, name or a masked name (张*明); shown masked."""
    rows: list[dict[str, object]] = []
    term = q.strip()
    with c.read() as session:
        if term:
            stmt = select(Citizen).where(citizen_search(term)).order_by(Citizen.id).limit(50)
            rows = [citizen_view(cit) for cit in session.scalars(stmt)]
    if term and not rows and error is None:
        error = f"没有找到与“{term}”相符的市民"
    return console_page(c, who, "console/citizens.html", flash, error, rows=rows, q=q)


@router.get("/citizens/{citizen_id}", response_class=HTMLResponse)
def citizen_page(
    c: C,
    who: Validator,
    citizen_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    flash: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """One citizen: standing, every ledger line, every report (linked), ban or unban."""
    week = str(c.leaderboard.current_week())
    with c.read() as session:
        cit = session.get(Citizen, citizen_id)
        if cit is None:
            raise NotFound("unknown citizen", code="unknown_citizen")
        openid = cit.openid
        total, this_week, lines = citizen_points(session, cit.id, week)
        reports = cases.cases_of_citizen(session, cit.id)[:200]
        case_ids = {r.id: r.case_id for r in reports}
        ledger = [(e.created_at, case_ids.get(e.case_pk, ""), e.reason, e.points, e.week) for e in lines]
        reported = [(r, category_name(c, r.category)) for r in reports]
        view = citizen_view(cit)
    return console_page(
        c,
        who,
        "console/citizen.html",
        flash,
        error,
        citizen=view,
        standing=standing_of(c, openid),
        total=total,
        this_week=this_week,
        week=week,
        ledger=ledger,
        reports=reported,
        verdict_labels=VERDICT_LABELS,
    )


def standing_of(c: Container, openid: str) -> StandingOut | None:
    """The citizen's standing (from the ledger, marked stale, while the boards are down); None when unknown."""
    try:
        return c.leaderboard.standing(openid)
    except DomainError:
        return None


@router.post("/citizens/{citizen_id}/ban")
def ban(
    citizen_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    c: C,
    who: Validator,
    reason: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
    banned: Annotated[bool, Form()] = True,
) -> RedirectResponse:
    """Ban (or unban) a citizen: a ban removes them from prize eligibility."""
    check_csrf(c, who, csrf)
    here = f"/console/citizens/{citizen_id}"
    try:
        with c.uow() as uow:
            cit = uow.session.get(Citizen, citizen_id)
            if cit is None:
                return back("/console/citizens", "没有这位市民", error=True)
            c.flows.set_banned(uow, SetBan(cit.openid, banned, reason), Actor(who.name, "console"))
    except DomainError as exc:
        return back(here, messages.reason_of(exc), error=True)
    return back(here, f"市民 #{citizen_id} 已{'取消评奖资格' if banned else '恢复评奖资格'}")


# ----------------------------------------------------------------------------------------------------- audit, weeks


@router.get("/audit", response_class=HTMLResponse)
def audit(c: C, who: Validator) -> HTMLResponse:
    """Who did what, newest first."""
    with c.read() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)).all()
    return console_page(
        c,
        who,
        "console/audit.html",
        None,
        None,
        rows=rows,
        labels=messages.AUDIT_LABELS,
        role_labels=messages.ROLE_LABELS,
        state_labels=STATE_LABELS,
    )


@router.get("/weeks", response_class=HTMLResponse)
def weeks(c: C, who: Validator, flash: str | None = None, error: str | None = None) -> HTMLResponse:
    """Every closed week with its publication state, the reason of a failure and a retry button for failed ones."""
    with c.read() as session:
        snaps = session.execute(
            select(WeeklySnapshot.week, WeeklySnapshot.closed_at, WeeklySnapshot.participants)
            .order_by(WeeklySnapshot.week.desc())
            .limit(60)
        ).all()
        pubs = {(p.week, p.kind): p for p in session.scalars(select(Publication))}
    rows = []
    for w, at, n in snaps:
        pub, final = pubs.get((w, NOTICE)), pubs.get((w, FINAL))
        problem = messages.publication_problem(pub.error_code, pub.error_message) if pub is not None else None
        final_problem = messages.publication_problem(final.error_code, final.error_message) if final else None
        if final_problem is not None:
            problem = f"{problem + '；' if problem else ''}定榜：{final_problem}"
        rows.append({"week": w, "closed_at": at, "participants": n, "pub": pub, "final": final, "problem": problem})
    return console_page(c, who, "console/weeks.html", flash, error, rows=rows, state_labels=STATE_LABELS)


@router.post("/weeks/{week}/retry")
def retry_week(
    week: str, c: C, who: Validator, csrf: Annotated[str, Form()], kind: Annotated[str, Form()] = NOTICE
) -> RedirectResponse:
    """Ask for a failed publication (公示 notice or 定榜 final) to be retried from where it stopped (audited); the
    scheduler runs it."""
    check_csrf(c, who, csrf)
    if kind not in (NOTICE, FINAL):
        return back("/console/weeks", f"{week}：未知的发布类型", error=True)
    try:
        pub = c.publishing.request_retry(week, kind)
    except DomainError as exc:
        return back("/console/weeks", f"{week}：{messages.reason_of(exc)}", error=True)
    with c.uow() as uow:
        cases.audit(uow.session, c.clock.now(), who.name, "publish:retry-requested", week, pub.state)
    return back("/console/weeks", f"{week} 已安排重新发布，进度见下表（每分钟自动续发）")
