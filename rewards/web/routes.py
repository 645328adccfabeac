"""Citizen H5 pages: 我的, weekly / all-time / district leaderboards, past weeks, rules."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from rewards.bootstrap import Container
from rewards.cases import history
from rewards.cases import service as cases
from rewards.deps import container
from rewards.errors import DomainError, Unavailable
from rewards.leaderboard import service as boards
from rewards.leaderboard.snapshot import WeeklySnapshot
from rewards.program import category_points, rule_lines
from rewards.web.ratelimit import public_rate_limit
from rewards.web.templating import STATIC, page

router = APIRouter(include_in_schema=False, dependencies=[Depends(public_rate_limit)])
C = Annotated[Container, Depends(container)]
DISTRICTS_HINT = ("城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县")


def mount_static(app: FastAPI) -> None:
    """Serve the pages' stylesheet and images."""
    app.mount("/static/web", StaticFiles(directory=str(STATIC)), name="web-static")


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    """The entry point opens 我的."""
    return RedirectResponse("/me", status_code=307)


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, c: C, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
    """我的: this week's and all-time rank and points, prize tier, gap to the prize list, every report."""
    openid = getattr(request.state, "citizen_openid", None)
    if not isinstance(openid, str):
        dev = c.settings.dev_login and c.settings.environment == "development"
        return page("signin.html", nav="me", next_path="/me", dev=dev, status_code=200)
    with c.read() as session:
        citizen = cases.find_citizen(session, openid)
        reports = history.report_history(session, c.settings, citizen, 20, offset) if citizen else None
    standing = boards.standing_or_ledger(c, openid) if citizen is not None else None
    return page(
        "me.html",
        nav="me",
        standing=standing,
        stale=bool(standing and standing.stale),
        reports=reports,
        offset=offset,
        places=boards.prize_places(c.settings),
    )


def _board_page(c: Container, kind: str, week: str | None, district: str | None, offset: int) -> HTMLResponse:
    data, error, status = None, None, 200
    try:
        data = boards.page(c, kind, week=week, district=district, offset=offset, limit=80)  # type: ignore[arg-type]
    except Unavailable:
        error, status = "排行榜暂时无法访问，请稍后再试", 503
    except DomainError as exc:  # a bad week or district: say why, on the page
        error, status = exc.message, exc.status
    context = {"data": data, "kind": kind, "district": district, "error": error, "districts": DISTRICTS_HINT}
    return page("board.html", nav="board", status_code=status, **context)


@router.get("/leaderboard", response_class=HTMLResponse)
def weekly_board(c: C, week: str | None = None, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    """This week's (or a given week's) top 80, masked names, tiers, eligibility."""
    return _board_page(c, "weekly", week, None, offset)


@router.get("/leaderboard/all-time", response_class=HTMLResponse)
def all_time_board(c: C, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    """The all-time board."""
    return _board_page(c, "all-time", None, None, offset)


@router.get("/leaderboard/districts/{district}", response_class=HTMLResponse)
def district_board(
    district: str, c: C, week: str | None = None, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
) -> HTMLResponse:
    """A district's weekly board."""
    return _board_page(c, "district-weekly", week, district, offset)


@router.get("/weeks", response_class=HTMLResponse)
def weeks(c: C) -> HTMLResponse:
    """Past weeks' announcements, newest first."""
    with c.read() as session:
        rows = session.execute(
            select(WeeklySnapshot.week, WeeklySnapshot.closed_at).order_by(WeeklySnapshot.week.desc()).limit(104)
        ).all()
    return page("weeks.html", nav="weeks", weeks=[{"week": w, "closed_at": at} for w, at in rows])


@router.get("/rules", response_class=HTMLResponse)
def rules(c: C) -> HTMLResponse:
    """The program's rules, generated from Settings."""
    return page("rules.html", nav="rules", rules=rule_lines(c.settings), categories=category_points(c.settings))


def login_url(next_path: str) -> str:
    """The WeChat sign-in URL that returns to `next_path`."""
    return f"/auth/wechat/login?next={quote(next_path)}"
