"""API payloads of the public city-management record: aggregates only, never a citizen."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from rewards.stats.figures import Figures, ScopeKind
from rewards.stats.periods import PeriodKind
from rewards.stats.service import PeriodRecord


class FiguresOut(BaseModel):
    """The figures of one scope (the city, a district or a department) in one period; rates are 0-1 or null."""

    scope_kind: ScopeKind
    scope: str  # "" for the city
    received: int  # reports made in the period
    filed: int  # verdicts valid (立案) given in the period
    refused: int  # verdicts invalid or duplicate given in the period
    valid_rate: float | None  # filed / (filed + refused)
    dispatched: int
    closed: int
    closing_rate: float | None  # of the cases filed in the period, the share closed in it too
    median_hours_to_filing: float | None  # from report to filing, cases filed in the period
    median_hours_to_closing: float | None  # from report to closing, cases closed in the period
    closed_with_deadline: int  # closed in the period, with a deadline from the case system
    on_time_rate: float | None  # of those, the share closed by the deadline
    rated: int  # satisfaction ratings given in the period
    satisfaction_rate: float | None  # (满意 + 基本满意) / rated
    active_reporters: int  # citizens who reported in the period
    first_time_reporters: int  # citizens whose first report ever was in the period
    points: int  # ledger points awarded in the period

    @classmethod
    def of(cls, f: Figures) -> FiguresOut:
        """The payload of a scope's figures."""
        c = f.counts
        return cls(
            scope_kind=f.scope_kind,
            scope=f.scope,
            received=c.received,
            filed=c.filed,
            refused=c.refused,
            valid_rate=f.valid_rate,
            dispatched=c.dispatched,
            closed=c.closed,
            closing_rate=f.closing_rate,
            median_hours_to_filing=f.median_filing_hours,
            median_hours_to_closing=f.median_closing_hours,
            closed_with_deadline=c.closed_with_deadline,
            on_time_rate=f.on_time_rate,
            rated=c.rated,
            satisfaction_rate=f.satisfaction_rate,
            active_reporters=c.active_reporters,
            first_time_reporters=c.first_time_reporters,
            points=c.points,
        )


class PeriodOut(BaseModel):
    """A week's or month's record: city-wide, per district and per department (busiest first)."""

    period: str  # 2026-W48 | 2026-11
    kind: PeriodKind
    label: str
    start: datetime
    end: datetime
    live: bool  # the period has not ended: the figures still grow
    sealed: bool  # read from the stored record of a period that has ended and settled
    city: FiguresOut
    districts: list[FiguresOut]
    departments: list[FiguresOut]

    @classmethod
    def of(cls, r: PeriodRecord) -> PeriodOut:
        """The payload of a period's record."""
        p = r.period
        return cls(
            period=p.key,
            kind=p.kind,
            label=p.label,
            start=p.start,
            end=p.end,
            live=r.live,
            sealed=r.sealed,
            city=FiguresOut.of(r.city),
            districts=[FiguresOut.of(f) for f in r.districts],
            departments=[FiguresOut.of(f) for f in r.departments],
        )


class TrendPointOut(BaseModel):
    """The city-wide figures of one period of a trend."""

    period: str
    label: str
    live: bool
    city: FiguresOut


class OverviewOut(BaseModel):
    """The city-wide trend of recent weeks and months, oldest first (per-scope figures: the period routes)."""

    weeks: list[TrendPointOut]
    months: list[TrendPointOut]
