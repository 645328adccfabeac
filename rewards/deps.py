"""FastAPI dependencies, declared once: each route names the collaborators it uses, typed.

Every alias reads the one Container that bootstrap() built for the application (app.state.container).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from rewards.bootstrap import Container
from rewards.clock import Clock, IsoWeek
from rewards.config import Settings
from rewards.db import Database
from rewards.engagement.milestones import MilestoneService
from rewards.engagement.ratings import RatingService
from rewards.flows import CaseFlows
from rewards.http.auth import Principal, require
from rewards.http.ratelimit import RateLimiter, public_rate_limit
from rewards.http.session import SessionCodec
from rewards.leaderboard.service import LeaderboardService
from rewards.leaderboard.weeks import WeekCloser
from rewards.program import Program
from rewards.publish.service import PublishService
from rewards.stats.service import StatsService


def container(request: Request) -> Container:
    """The application's services."""
    c: Container = request.app.state.container
    return c


def _settings(request: Request) -> Settings:
    return container(request).settings


def _clock(request: Request) -> Clock:
    return container(request).clock


def _db(request: Request) -> Database:
    return container(request).db


def _flows(request: Request) -> CaseFlows:
    return container(request).flows


def _leaderboard(request: Request) -> LeaderboardService:
    return container(request).leaderboard


def _publishing(request: Request) -> PublishService:
    return container(request).publishing


def _closer(request: Request) -> WeekCloser:
    return container(request).closer


def _program(request: Request) -> Program:
    return container(request).program


def _milestones(request: Request) -> MilestoneService:
    return container(request).milestones


def _ratings(request: Request) -> RatingService:
    return container(request).ratings


def _stats(request: Request) -> StatsService:
    return container(request).stats


def _limiter(request: Request) -> RateLimiter:
    return container(request).http.limiter


def _codec(request: Request) -> SessionCodec:
    return container(request).http.codec


def week_param(
    week: str | None = Query(None, description="ISO week, e.g. 2026-W48 (default: this week)", max_length=16),
) -> IsoWeek | None:
    """An optional ?week= query parameter as an IsoWeek (422 invalid_week otherwise)."""
    return None if week is None else IsoWeek.from_text(week)


def week_path(week: str = Path(description="ISO week, e.g. 2026-W48", max_length=16)) -> IsoWeek:
    """A {week} path parameter as an IsoWeek (422 invalid_week otherwise)."""
    return IsoWeek.from_text(week)


SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
Db = Annotated[Database, Depends(_db)]
Flows = Annotated[CaseFlows, Depends(_flows)]
Leaderboard = Annotated[LeaderboardService, Depends(_leaderboard)]
Publishing = Annotated[PublishService, Depends(_publishing)]
Closer = Annotated[WeekCloser, Depends(_closer)]
ProgramDep = Annotated[Program, Depends(_program)]
Limiter = Annotated[RateLimiter, Depends(_limiter)]
Milestones = Annotated[MilestoneService, Depends(_milestones)]
Ratings = Annotated[RatingService, Depends(_ratings)]
Stats = Annotated[StatsService, Depends(_stats)]
Codec = Annotated[SessionCodec, Depends(_codec)]
Services = Annotated[Container, Depends(container)]
WeekQuery = Annotated[IsoWeek | None, Depends(week_param)]
WeekPath = Annotated[IsoWeek, Depends(week_path)]
Validator = Annotated[Principal, Depends(require("validator"))]
PublisherRole = Annotated[Principal, Depends(require("publisher"))]
PUBLIC = [Depends(public_rate_limit)]  # public pages and APIs: per IP (and per signed-in citizen), 429 past it
