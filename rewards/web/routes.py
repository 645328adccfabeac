"""Citizen H5 pages: 我的, weekly / all-time / district leaderboards, past weeks, rules."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from sqlalchemy import select

from rewards.cases import service as cases
from rewards.clock import IsoWeek, week_of
from rewards.deps import (
    PUBLIC,
    ClockDep,
    Closer,
    Db,
    Leaderboard,
    Milestones,
    ProgramDep,
    Publishing,
    Ratings,
    SettingsDep,
)
from rewards.errors import DomainError, Unavailable
from rewards.leaderboard.service import LeaderboardService
from rewards.leaderboard.weeks import WeeklySnapshot
from rewards.publish.models import PUBLISHED, UNFINISHED
from rewards.publish.outbox import data_uri
from rewards.publish.port import PublishError
from rewards.publish.render import render_article
from rewards.publish.service import article_of, asset
from rewards.scoring import history
from rewards.web import messages
from rewards.web.me_ratings import rating_view
from rewards.web.review import MeReview, ReviewSection
from rewards.web.templating import STATIC, page

router = APIRouter(include_in_schema=False, dependencies=PUBLIC)
STATUS_TEXT = {PUBLISHED: "已发布"} | dict.fromkeys(UNFINISHED, "发布中")
DISTRICTS_HINT = ("城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县")


def mount_static(app: FastAPI) -> None:
    """Serve the pages' stylesheet and images."""
    app.mount("/static/web", StaticFiles(directory=str(STATIC)), name="web-static")


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The site icon browsers ask for on every first visit."""
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    """The entry point opens 我的."""
    return RedirectResponse("/me", status_code=307)


@router.get("/me", response_class=HTMLResponse)
def me(
    request: Request,
    db: Db,
    settings: SettingsDep,
    leaderboard: Leaderboard,
    milestones: Milestones,
    ratings: Ratings,
    review_me: MeReview,  # objections and prize claims (rewards/web/review.py, me_review.html)
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    rated: Annotated[str | None, Query(max_length=64)] = None,  # the rating form's outcome (rewards/web/me_ratings)
    rating_case: Annotated[str | None, Query(max_length=64)] = None,
    rating_error: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """我的: this week's and all-time rank and points, prize tier, gap to the prize list, every report."""
    openid = getattr(request.state, "citizen_openid", None)
    if not isinstance(openid, str):
        dev = settings.dev_login and settings.environment == "development"
        ready = bool(settings.wechat_app_id)
        return page("signin.html", nav="me", next_path="/me", dev=dev, notice=None, wechat_ready=ready)
    with db.read() as session:
        citizen = cases.find_citizen(session, openid)
        reports = history.report_history(session, settings, citizen, 20, offset) if citizen else None
        reached = milestones.progress(session, citizen) if citizen else None
        case_ids = [r.case_id for r in reports.reports] if reports else []
        rating = rating_view(session, ratings, citizen, case_ids, rated, rating_case, rating_error) if citizen else None
    standing = leaderboard.standing(openid) if citizen is not None else None
    return page(
        "me.html",
        nav="me",
        standing=standing,
        stale=bool(standing and standing.stale),
        reports=reports,
        offset=offset,
        places=leaderboard.prizes.places,
        milestones=reached,
        rating=rating,
        review_me=review_me,
    )


def _board_page(
    leaderboard: LeaderboardService, kind: str, week: str | None, district: str | None, offset: int, view: str = "all"
) -> HTMLResponse:
    data, error, status = None, None, 200
    try:
        parsed = IsoWeek.from_text(week) if week is not None else None
        if view == "prizes":  # the prize list: 80 eligible places, the ineligible among them marked
            data = leaderboard.prize_list(week=parsed, offset=offset, limit=80)
        else:
            data = leaderboard.page(kind, week=parsed, district=district, offset=offset, limit=80)  # type: ignore[arg-type]
    except Unavailable:
        error, status = "排行榜暂时无法访问，请稍后再试", 503
    except DomainError as exc:  # a bad week or district: say why, on the page
        error, status = messages.reason_of(exc), exc.status
    context = {"data": data, "kind": kind, "district": district, "error": error, "districts": DISTRICTS_HINT}
    context |= {"view": view, "week_param": week}
    return page("board.html", nav="board", status_code=status, **context)


@router.get("/leaderboard", response_class=HTMLResponse)
def weekly_board(
    leaderboard: Leaderboard,
    week: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    view: Annotated[str, Query(max_length=16)] = "prizes",
) -> HTMLResponse:
    """This week's (or a given week's) prize list by default (view=all: the full board), masked names, tiers."""
    return _board_page(leaderboard, "weekly", week, None, offset, "all" if view == "all" else "prizes")


@router.get("/leaderboard/all-time", response_class=HTMLResponse)
def all_time_board(leaderboard: Leaderboard, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    """The all-time board."""
    return _board_page(leaderboard, "all-time", None, None, offset)


@router.get("/leaderboard/districts/{district}", response_class=HTMLResponse)
def district_board(
    district: str,
    leaderboard: Leaderboard,
    week: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """A district's weekly board."""
    return _board_page(leaderboard, "district-weekly", week, district, offset)


@router.get("/weeks", response_class=HTMLResponse)
def weeks(db: Db) -> HTMLResponse:
    """Past weeks' announcements, newest first."""
    with db.read() as session:
        rows = session.execute(
            select(WeeklySnapshot.week, WeeklySnapshot.closed_at).order_by(WeeklySnapshot.week.desc()).limit(104)
        ).all()
    return page("weeks.html", nav="weeks", weeks=[{"week": w, "closed_at": at} for w, at in rows])


@router.get("/rules", response_class=HTMLResponse)
def rules(program: ProgramDep, milestones: Milestones) -> HTMLResponse:
    """The program's rules, written from the objects that enforce them."""
    return page(
        "rules.html",
        nav="rules",
        rules=program.lines(),
        categories=program.category_points(),
        milestone_rules=milestones.rules.lines(),
    )


@router.get("/weeks/{week}", response_class=HTMLResponse)
def week_page(
    week: str,
    closer: Closer,
    publishing: Publishing,
    settings: SettingsDep,
    program: ProgramDep,
    clock: ClockDep,
    review: ReviewSection,  # 公示: the current list version, 异议处理结果, the objection form (rewards/web/review.py)
) -> HTMLResponse:
    """The week's announcement as published (or, before that, a preview of it); masked names only."""
    iso = IsoWeek.from_text(week)
    closed = closer.load(iso)
    if closed is None:
        message, status = not_closed_message(iso, week_of(clock.now(), settings.tz))
        return page("week.html", nav="weeks", status_code=status, week=str(iso), message=message, article=None)
    pub = publishing.get(str(iso))
    if pub is not None and pub.content is not None:
        article = article_of(pub)  # exactly what was sent
        status_text = STATUS_TEXT.get(pub.state, "待发布")
    else:
        try:
            image: str | None = data_uri(asset(settings.wechat_banner_image, "banner.png")[1])
        except PublishError:
            image = None  # a misconfigured banner must not take the page down
        article = render_article(closed.snapshot, settings, program, image)
        status_text = "预览（尚未发布）"
    url = pub.article_url if pub is not None and pub.state == PUBLISHED else None
    return page(
        "week.html",
        nav="weeks",
        week=str(iso),
        message=None,
        article=article,
        body=Markup(article.content),  # rendered by rewards.publish.render with autoescape
        status_text=status_text,
        published_url=url if url and url.startswith("https://") else None,
        review=review,
    )


def not_closed_message(week: IsoWeek, current: IsoWeek) -> tuple[str, int]:
    """What the page of a week without a snapshot says, and its status: 200 while it is coming, 404 otherwise."""
    if week == current:
        return "本周尚未结算，获奖名单将在下周一公布。", 200
    if week == current.previous():
        return "上周的榜单正在结算，获奖名单将于本周一公布，请稍后再来。", 200
    if current < week:
        return messages.reason("week_in_future", 404), 404
    return messages.reason("week_not_found", 404), 404


def login_url(next_path: str) -> str:
    """The WeChat sign-in URL that returns to `next_path`."""
    return f"/auth/wechat/login?next={quote(next_path)}"
