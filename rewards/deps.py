"""FastAPI dependencies, declared once: each route names the collaborators it uses, typed.

Every alias reads the one Container that bootstrap() built for the application (app.state.container).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from rewards.batching.verdicts import VerdictBatcher
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


# The dependencies below only read the container: `async def` runs them on the event loop (FastAPI sends a plain
# `def` dependency through the thread pool, one hop per dependency per request). Blocking ones stay plain `def`.


async def _container(request: Request) -> Container:
    return container(request)


def on_loop(check: Callable[[Request], Principal]) -> Callable[[Request], Awaitable[Principal]]:
    """A credential check (in-memory, no I/O) as an `async` dependency: run on the loop, not in the thread pool."""

    async def run(request: Request) -> Principal:
        return check(request)

    run.__name__ = check.__name__
    return run


async def _settings(request: Request) -> Settings:
    return container(request).settings


async def _clock(request: Request) -> Clock:
    return container(request).clock


async def _db(request: Request) -> Database:
    return container(request).db


async def _flows(request: Request) -> CaseFlows:
    return container(request).flows


async def _verdicts(request: Request) -> VerdictBatcher:
    return container(request).verdicts


async def _leaderboard(request: Request) -> LeaderboardService:
    return container(request).leaderboard


async def _publishing(request: Request) -> PublishService:
    return container(request).publishing


async def _closer(request: Request) -> WeekCloser:
    return container(request).closer


async def _program(request: Request) -> Program:
    return container(request).program


async def _milestones(request: Request) -> MilestoneService:
    return container(request).milestones


async def _ratings(request: Request) -> RatingService:
    return container(request).ratings


async def _stats(request: Request) -> StatsService:
    return container(request).stats


async def _limiter(request: Request) -> RateLimiter:
    return container(request).http.limiter


async def _codec(request: Request) -> SessionCodec:
    return container(request).http.codec


async def week_param(
    week: str | None = Query(None, description="ISO week, e.g. 2026-W48 (default: this week)", max_length=16),
) -> IsoWeek | None:
    """An optional ?week= query parameter as an IsoWeek (422 invalid_week otherwise)."""
    return None if week is None else IsoWeek.from_text(week)


async def week_path(week: str = Path(description="ISO week, e.g. 2026-W48", max_length=16)) -> IsoWeek:
    """A {week} path parameter as an IsoWeek (422 invalid_week otherwise)."""
    return IsoWeek.from_text(week)


SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
Db = Annotated[Database, Depends(_db)]
Flows = Annotated[CaseFlows, Depends(_flows)]
Verdicts = Annotated[VerdictBatcher, Depends(_verdicts)]
Leaderboard = Annotated[LeaderboardService, Depends(_leaderboard)]
Publishing = Annotated[PublishService, Depends(_publishing)]
Closer = Annotated[WeekCloser, Depends(_closer)]
ProgramDep = Annotated[Program, Depends(_program)]
Limiter = Annotated[RateLimiter, Depends(_limiter)]
Milestones = Annotated[MilestoneService, Depends(_milestones)]
Ratings = Annotated[RatingService, Depends(_ratings)]
Stats = Annotated[StatsService, Depends(_stats)]
Codec = Annotated[SessionCodec, Depends(_codec)]
Services = Annotated[Container, Depends(_container)]
WeekQuery = Annotated[IsoWeek | None, Depends(week_param)]
WeekPath = Annotated[IsoWeek, Depends(week_path)]
Validator = Annotated[Principal, Depends(on_loop(require("validator")))]
PublisherRole = Annotated[Principal, Depends(on_loop(require("publisher")))]
PUBLIC = [Depends(public_rate_limit)]  # public pages and APIs: per IP (and per signed-in citizen), 429 past it
