"""/stats: the public city-management record as an H5 page, charts drawn on the server as inline SVG (no script)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from rewards.deps import PUBLIC, Stats
from rewards.errors import DomainError
from rewards.stats.charts import BarChart, LineChart, bar_chart, line_chart
from rewards.stats.figures import Figures, hours_text, percent
from rewards.stats.periods import Period, PeriodKind, current_month, current_week
from rewards.stats.service import PeriodRecord, StatsService
from rewards.web import messages
from rewards.web.templating import page

router = APIRouter(include_in_schema=False, dependencies=PUBLIC)
PeriodText = Annotated[str | None, Query(max_length=16)]
REASONS = {  # the record's own error codes, in Chinese (the others: rewards.web.messages)
    "invalid_month": "月份格式不正确，应为 2026-11 这样的形式。",
    "invalid_period": "请只选择一周或一个月。",
    "period_in_future": "这段时间还没有开始，暂无数据。",
}


@dataclass(frozen=True)
class Chart:
    """A chart with its accessible name and description, and the table that says the same in text."""

    id: str
    title: str
    desc: str
    line: LineChart | None
    bars: BarChart | None
    rows: list[tuple[str, str]]  # (label, value as text): the table under the chart


def figure_cards(f: Figures) -> list[tuple[str, str, str]]:
    """The city's headline figures: (id, label, value)."""
    c = f.counts
    return [
        ("received", "受理举报", f"{c.received}"),
        ("valid-rate", "有效率", percent(f.valid_rate)),
        ("filed", "立案", f"{c.filed}"),
        ("dispatched", "派遣", f"{c.dispatched}"),
        ("closed", "结案", f"{c.closed}"),
        ("closing-rate", "当期结案率", percent(f.closing_rate)),
        ("to-filing", "举报到立案（中位）", hours_text(f.median_filing_hours)),
        ("to-closing", "举报到结案（中位）", hours_text(f.median_closing_hours)),
        ("on-time", "按期结案率", percent(f.on_time_rate)),
        ("satisfaction", "满意率", percent(f.satisfaction_rate)),
        ("active", "参与市民", f"{c.active_reporters}"),
        ("first-time", "首次参与", f"{c.first_time_reporters}"),
    ]


def short_label(p: Period) -> str:
    """An axis label: W47 for a week, 11月 for a month."""
    return p.key[5:] if p.kind == "week" else f"{int(p.key[5:])}月"


def charts(record: PeriodRecord, trend: list[PeriodRecord]) -> list[Chart]:
    """The page's three charts: reports received and the closing rate over recent periods, districts' reports."""
    unit = "周" if record.period.kind == "week" else "月"
    received = [(short_label(r.period), float(r.city.counts.received)) for r in trend]
    closing = [(short_label(r.period), r.city.closing_rate) for r in trend]
    first, last = trend[0].period.label, trend[-1].period.label
    most, least = max((int(v) for _, v in received), default=0), min((int(v) for _, v in received), default=0)
    districts = [(f.scope, float(f.counts.received), str(f.counts.received)) for f in record.districts]
    top = max(record.districts, key=lambda f: f.counts.received, default=None)
    return [
        Chart(
            "trend-received",
            f"近{len(trend)}{unit}受理举报数",
            f"{first}至{last}每{unit}受理的举报数折线图；" + f"最多 {most} 件，最少 {least} 件。",
            line_chart(received),
            None,
            [(r.period.label + ("（进行中）" if r.live else ""), str(r.city.counts.received)) for r in trend],
        ),
        Chart(
            "trend-closing",
            f"近{len(trend)}{unit}当期结案率",
            f"{first}至{last}每{unit}立案的案件中当{unit}结案的比例折线图；无立案的{unit}不画点。",
            line_chart(closing, percent=True),
            None,
            [(r.period.label + ("（进行中）" if r.live else ""), percent(r.city.closing_rate)) for r in trend],
        ),
        Chart(
            "districts-received",
            f"{record.period.label}各区县受理举报数",
            f"各区县受理举报数条形图，共 {len(districts)} 个区县"
            + (f"，{top.scope}最多（{top.counts.received} 件）。" if top is not None else "，本期暂无举报。"),
            None,
            bar_chart(districts),
            [(name, text) for name, _, text in districts],
        ),
    ]


def neighbours(p: Period) -> tuple[str, str]:
    """The query strings of the period before and after."""
    if p.kind == "week":
        from rewards.clock import IsoWeek  # the week arithmetic lives on IsoWeek (a pure-core type)

        w = IsoWeek.parse(p.key)
        return f"week={w.previous()}", f"week={w.next()}"
    year, month = int(p.key[:4]), int(p.key[5:])
    before = (year - 1, 12) if month == 1 else (year, month - 1)
    after = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"month={before[0]:04d}-{before[1]:02d}", f"month={after[0]:04d}-{after[1]:02d}"


def render(stats: StatsService, week: str | None, month: str | None) -> HTMLResponse:
    """The page for a period, or the page with the reason a period cannot be shown."""
    try:
        period = stats.period(week=week, month=month)
    except DomainError as exc:
        reason = REASONS.get(exc.code) or messages.reason_of(exc)
        return page("stats.html", nav="stats", status_code=exc.status, error=reason, record=None)
    kind: PeriodKind = period.kind
    trend = stats.trend(kind, period)
    record = next((r for r in trend if r.period.key == period.key), None) or stats.record(period)
    before, after = neighbours(period)
    now = stats.clock.now()
    this_week, this_month = current_week(now, stats.tz).key, current_month(now, stats.tz).key
    return page(
        "stats.html",
        nav="stats",
        error=None,
        record=record,
        cards=figure_cards(record.city),
        charts=charts(record, trend),
        percent=percent,
        hours_text=hours_text,
        before=before,
        after=after if not record.live else None,
        this_week=this_week,
        this_month=this_month,
    )


@router.get("/stats", response_class=HTMLResponse)
def stats_page(stats: Stats, week: PeriodText = None, month: PeriodText = None) -> HTMLResponse:
    """城市管理公开数据: a week's (default: this week's) or month's figures, trends and districts, departments."""
    return render(stats, week, month)
