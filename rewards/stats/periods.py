"""The periods of the public city-management record (pure): ISO weeks and calendar months in the program's zone.

A period is a half-open interval [start, end) of UTC instants; its key is what routes and the cache name it by
(`2026-W48`, `2026-11`). A period is *closed* once its end has passed; the record of a closed period is sealed
(computed once and kept) after a settling time, so that events the case system sends a little late still count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal

from rewards.clock import IsoWeek, to_utc, week_of
from rewards.errors import Invalid

PeriodKind = Literal["week", "month"]
_MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")
MIN_YEAR, MAX_YEAR = 2000, 2999


@dataclass(frozen=True)
class Period:
    """One week or month of the record, with its UTC bounds."""

    kind: PeriodKind
    key: str
    start: datetime
    end: datetime
    label: str  # as citizens read it: 2026年第48周, 2026年11月

    def closed(self, now: datetime) -> bool:
        """True once the period has ended."""
        return to_utc(now) >= self.end

    def sealable(self, now: datetime, settle: timedelta) -> bool:
        """True once the period has ended and the settling time has passed: its record may be computed and kept."""
        return to_utc(now) >= self.end + settle


def week_period(week: IsoWeek, tz: tzinfo) -> Period:
    """The period of an ISO week in the program's zone."""
    if not MIN_YEAR <= week.year <= MAX_YEAR:
        raise Invalid(f"week out of range: {week}", code="invalid_week")
    return Period("week", str(week), week.start(tz), week.end(tz), week.label())


def month_start(year: int, month: int, tz: tzinfo) -> datetime:
    """The first instant of a calendar month in the program's zone, as aware UTC."""
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def month_period(year: int, month: int, tz: tzinfo) -> Period:
    """The period of a calendar month in the program's zone."""
    if not (MIN_YEAR <= year <= MAX_YEAR and 1 <= month <= 12):
        raise Invalid(f"month out of range: {year:04d}-{month:02d}", code="invalid_month")
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return Period(
        "month", f"{year:04d}-{month:02d}", month_start(year, month, tz), month_start(*nxt, tz), f"{year}年{month}月"
    )


def parse_month(text: str, tz: tzinfo) -> Period:
    """Parse '2026-11' (a caller's query or path); Invalid (422, code invalid_month) otherwise."""
    m = _MONTH_RE.match(text.strip())
    if not m:
        raise Invalid(f"not a month (expected YYYY-MM, e.g. 2026-11): {text!r}", code="invalid_month")
    return month_period(int(m.group(1)), int(m.group(2)), tz)


def parse_week(text: str, tz: tzinfo) -> Period:
    """Parse '2026-W48'; Invalid (422, code invalid_week) otherwise."""
    return week_period(IsoWeek.from_text(text), tz)


def current_week(now: datetime, tz: tzinfo) -> Period:
    """The week that `now` falls in."""
    return week_period(week_of(now, tz), tz)


def current_month(now: datetime, tz: tzinfo) -> Period:
    """The month that `now` falls in."""
    day = to_utc(now).astimezone(tz).date()
    return month_period(day.year, day.month, tz)


def recent_weeks(now: datetime, tz: tzinfo, count: int) -> list[Period]:
    """The last `count` weeks up to and including the current one, oldest first."""
    week = week_of(now, tz)
    weeks = [week]
    for _ in range(count - 1):
        weeks.append(weeks[-1].previous())
    return [week_period(w, tz) for w in reversed(weeks)]


def recent_months(now: datetime, tz: tzinfo, count: int) -> list[Period]:
    """The last `count` months up to and including the current one, oldest first."""
    day: date = to_utc(now).astimezone(tz).date()
    months = []
    year, month = day.year, day.month
    for _ in range(count):
        months.append(month_period(year, month, tz))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(months))
