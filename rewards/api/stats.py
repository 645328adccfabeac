"""The public city-management record as JSON: aggregates per week and month, city-wide, per district and department."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from rewards.deps import PUBLIC, Stats
from rewards.stats.schemas import FiguresOut, OverviewOut, PeriodOut, TrendPointOut
from rewards.stats.service import PeriodRecord

router = APIRouter(prefix="/api/v1/stats", tags=["stats"], dependencies=PUBLIC)
WeekKey = Annotated[str, Path(description="ISO week, e.g. 2026-W48", max_length=16)]
MonthKey = Annotated[str, Path(description="calendar month, e.g. 2026-11", max_length=16)]


def _point(r: PeriodRecord) -> TrendPointOut:
    return TrendPointOut(period=r.period.key, label=r.period.label, live=r.live, city=FiguresOut.of(r.city))


@router.get("", response_model=OverviewOut)
def overview(stats: Stats) -> OverviewOut:
    """City-wide figures of recent weeks and months, oldest first (the current one still growing: live)."""
    return OverviewOut(weeks=[_point(r) for r in stats.trend("week")], months=[_point(r) for r in stats.trend("month")])


@router.get("/weeks/{week}", response_model=PeriodOut)
def week(stats: Stats, week: WeekKey) -> PeriodOut:
    """A week's record (Monday to Sunday in the program's time zone): city, districts, departments."""
    return PeriodOut.of(stats.record(stats.period(week=week)))


@router.get("/months/{month}", response_model=PeriodOut)
def month(stats: Stats, month: MonthKey) -> PeriodOut:
    """A calendar month's record: city, districts, departments."""
    return PeriodOut.of(stats.record(stats.period(month=month)))
